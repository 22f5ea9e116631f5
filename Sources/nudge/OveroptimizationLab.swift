// `nudge lab overoptimization` (the experiment itself is NudgeAlign's OveroptimizationExperiment) and
// `nudge lab instruments`. Goodhart's law in a gradient, measured. A tiny model is warm-started
// on a built-in task whose gold reward is known; a proxy reward model is trained on a limited number
// of gold-labelled pairs of the warm policy's samples; then the proxy is optimized three ways —
// best-of-n sampling (KL_bon = log n − (n − 1)/n), GRPO and PPO-RLHF with a sweep over β — while
// proxy reward, gold reward and KL to the reference are probed on fixed prompts. A second experiment
// gives the proxy a slight preference for longer answers and shows the length drift and gold drop,
// then a composite reward with a length penalty and a larger β. Everything lands in one run
// directory: each run's metrics, best_of_n.jsonl, the over-optimization plots and report.html.

import ArgumentParser
import Foundation
import Nudge

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab", abstract: "Experiments that measure: reward over-optimization, the seeds' instruments.",
        subcommands: [OveroptimizationLab.self, InstrumentsCommand.self])

    struct InstrumentsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "instruments",
            abstract: "Bradley–Terry link and fit, PPO clip, DPO loss, a GRPO group, KL_bon: SVGs and report.html.")
        @Option var seed: UInt64 = 1
        @Option(help: "Run directory.") var output = "runs/lab/instruments"
        func run() throws {
            let dir = URL(fileURLWithPath: output)
            var page = HTMLReport(title: "The seeds' instruments")
            for name in try InstrumentsLab.writeAll(to: dir, seed: seed) {
                let data = try Data(contentsOf: dir.appendingPathComponent(name))
                page.images.append(.init(caption: name.replacingOccurrences(of: ".svg", with: "").replacingOccurrences(of: "_", with: " "),
                                         svgData: data))
            }
            page.notes = ["Each curve is computed from its formula at the plotted points (seed \(seed) for the Bradley–Terry fit)."]
            try page.write(to: dir.appendingPathComponent("report.html"))
            print("Wrote \(page.images.count) instruments and \(dir.appendingPathComponent("report.html").path)")
        }
    }
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
