// `nudge lab overoptimization`: Goodhart's law in a gradient, measured (the experiment is NudgeAlign's
// OveroptimizationExperiment), `nudge lab instruments`, `nudge lab methods` and `nudge lab process-rewards` (NudgeAlign's labs).

import ArgumentParser
import Foundation
import Nudge

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab", abstract: "Experiments that measure: reward over-optimization, the seeds' instruments.",
        subcommands: [OveroptimizationLab.self, InstrumentsCommand.self, MethodsCommand.self, ProcessRewardsCommand.self])

    struct InstrumentsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "instruments",
            abstract: "Bradley–Terry link and fit, PPO clip, DPO loss, a GRPO group, KL_bon: SVGs and report.html.")
        @Option var seed: UInt64 = 1
        @Option(help: "Run directory.") var output = "runs/lab/instruments"
        func run() throws {
            let (page, count) = try InstrumentsLab.writeReport(to: URL(fileURLWithPath: output), seed: seed)
            print("Wrote \(count) instruments and \(page.path)")
        }
    }

    struct ProcessRewardsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "process-rewards", abstract: "GRPO with outcome vs PRM step rewards on the carries task, one warm start, same budget (writes a run and report.html).",
            discussion: ProcessRewardLab.schema.discussion(examples: ["nudge lab process-rewards", "nudge lab process-rewards --set steps=100 --set seed=2 --set prm.model=runs/prm"]))
        @OptionGroup var config: ConfigOptions
        func resolved() throws -> ResolvedConfig { try config.resolve(ProcessRewardLab.schema) }
        func validate() throws { _ = try resolved() }
        func run() throws { try ProcessRewardLab.compare(config: resolved()) }
    }
}

struct MethodsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "methods", abstract: "Offline DPO, online DPO, RFT, GRPO and (task=carries) PRM-GRPO from one warm start at one budget of rollouts (report.html).",
        discussion: MethodsLab.schema.discussion(examples: ["nudge lab methods --quick", "nudge lab methods --set task=carries --set rollouts=19200 --set seed=1"]))
    @OptionGroup var config: ConfigOptions
    @Flag(help: "A smoke test: no warm start, 512 completions (key: quick).") var quick = false
    func run() throws { try MethodsLab.run(config: config.resolve(MethodsLab.schema, flags: [.init("quick", "--quick", quick ? .bool(true) : nil)])) }
}

struct OveroptimizationLab: ParsableCommand {
    static let schema = OveroptimizationExperiment.schema

    static let configuration = CommandConfiguration(
        commandName: "overoptimization",
        abstract: "Proxy vs gold reward under best-of-n, GRPO and PPO with a β sweep, and the length-bias case (writes a run and report.html).",
        discussion: schema.discussion(examples: [
            "nudge lab overoptimization --quick          (about a minute and a half in release)",
            "nudge lab overoptimization                  (the full sweep)",
            "nudge lab overoptimization --set proxy.pairs=200 --set 'grpo.betas=[0, 0.05]'",
        ]))

    @OptionGroup var config: ConfigOptions
    @Flag(help: "Shorter runs and fewer probes.") var quick = false
    @Option(help: "Random seed (key: seed).") var seed: Int?
    @Option(help: "Run directory (key: output).") var output: String?

    func validate() throws { _ = try resolved() }

    func resolved() throws -> ResolvedConfig {
        var c = try config.resolve(Self.schema, flags: [
            .init("seed", "--seed", seed.map { .int($0) }), .init("output", "--output", output.map { .string($0) }),
        ])
        if quick { OveroptimizationExperiment.setQuickDefaults(&c) }
        return c
    }

    func run() throws {
        let c = try resolved()
        let lab = try OveroptimizationExperiment(config: c)
        try lab.run()
    }
}
