// `nudge lab process-rewards`: outcome-only against process (per-step) rewards on the multi-step
// `carries` task, at a matched budget. One warm start (a tiny Llama trained by SFT on worked
// solutions until its development accuracy reaches warmup.target_accuracy), one process reward model
// (`nudge prm` on the task's stepwise rows), then GRPO from copies of the warm start with the same
// seeds, prompts and steps: with the exact-answer reward (outcome supervision), with the PRM's step
// scores (DeepSeekMath §4.1.3's process supervision), with both (reward_mode = mixed: PRIME's sum of
// the two advantages), and with the gold step checker's scores (a perfect PRM). The run directory
// holds every GRPO run, the PRM run, a table (held-out accuracy at every evaluation; the first step
// each reached the stated accuracy) and report.html with the curves.

import Foundation
import NudgeConfig
import NudgeLM
import NudgeNN
import NudgeReport

/// The process-rewards comparison.
public enum ProcessRewardLab {
    public static let schema = ConfigSchema([
        .int("seed", 1, min: 0, help: "Seed of the model, the task, the PRM and both GRPO runs."),
        .string("output", "runs/lab/process-rewards", help: "Run directory (replaced)."),
        .int("steps", 300, min: 1, help: "GRPO steps of each run (the matched budget)."),
        .int("eval.every", 25, min: 1, help: "Evaluate held-out greedy accuracy every this many steps."),
        .int("eval.rows", 200, min: 1, help: "Held-out problems."),
        .int("prompts_per_step", 8, min: 1, help: "GRPO prompts per step."),
        .int("num_generations", 8, min: 2, help: "GRPO completions per prompt."),
        .double("learning_rate", 3e-4, min: 0, help: "GRPO learning rate (both runs)."),
        .double("target_accuracy", 0, min: 0, max: 1,
                help: "The accuracy whose first step is reported for each run; 0: the warm start's held-out accuracy + 0.1."),
        .string("prm.model", "", help: "A PRM from nudge prm (prm.safetensors or its run directory); empty: train one here with nudge prm's defaults."),
        .int("prm.rows", 60000, min: 1, help: "Stepwise rows of the PRM trained here (nudge prm's default)."),
        .int("prm.epochs", 3, min: 1, help: "Epochs of the PRM trained here (nudge prm's default)."),
        .double("warmup.target_accuracy", 0.2, min: 0, max: 1, help: "Stop the SFT warm start at this development accuracy."),
        .int("warmup.sft_epochs", 30, min: 0, help: "At most this many SFT epochs of the warm start."),
        .int("warmup.sft_rows", 2000, min: 1, help: "SFT rows of the warm start."),
        .bool("gold_steps", true, help: "Also run GRPO with the task's gold step checker as the process reward (what a perfect PRM would give)."),
        .bool("mixed", true, help: "Also run GRPO with the outcome reward and the PRM's step scores together (grpo.reward_mode = mixed)."),
        .double("process_reward_weight", 1, min: 0, help: "The mixed run's grpo.process_reward_weight (w in Â = Â_outcome + w·Â_process)."),
    ])

    /// One GRPO run of the comparison.
    public struct Arm {
        public var name: String
        public var outcome: RunOutcome
        /// The first evaluated step whose held-out accuracy reached the target (nil: never).
        public var stepsToTarget: Int?
        public var row: MethodComparison
    }

    /// What the comparison measured.
    public struct Result {
        public var directory: URL
        public var warmAccuracy: Double
        public var target: Double
        public var prm: PRMMetrics?
        public var arms: [Arm]
    }

    /// The first evaluated step at which `accuracies` reached `target`.
    public static func firstStep(reaching target: Double, in accuracies: [(Int, Double)]) -> Int? {
        accuracies.first { $0.1 >= target - 1e-12 }?.0
    }

    /// The GRPO configuration of both arms (`mode` outcome or process).
    static func grpoConfig(_ c: ResolvedConfig, output: URL, task: String, mode: RewardMode, processRewardModel: String) throws -> ResolvedConfig {
        try resolve(GroupRun.grpo.schema, [
            "seed=\(c.int("seed"))", "task=\(task)", "output=\(output.path)", "grpo.steps=\(c.int("steps"))",
            "eval.every=\(c.int("eval.every"))", "eval.rows=\(c.int("eval.rows"))", "grpo.prompts_per_step=\(c.int("prompts_per_step"))",
            "grpo.num_generations=\(c.int("num_generations"))", "grpo.learning_rate=\(c.double("learning_rate"))",
            "grpo.reward_mode=\(mode.rawValue)", "grpo.process_reward_weight=\(c.double("process_reward_weight"))",
            "warmup.target_accuracy=\(c.double("warmup.target_accuracy"))", "warmup.sft_epochs=\(c.int("warmup.sft_epochs"))",
            "warmup.sft_rows=\(c.int("warmup.sft_rows"))", "checkpoint.every=\(max(c.int("steps"), 1))",
        ] + (processRewardModel.isEmpty ? [] : ["grpo.process_reward_model=\(processRewardModel)"]))
    }

    static func resolve(_ schema: ConfigSchema, _ overrides: [String]) throws -> ResolvedConfig {
        do throws(ConfigError) { return try schema.resolve(overrides: overrides) } catch { throw RunSetupError(error.description) }
    }

    /// GRPO with PRM-shaped process rewards from a given warm start (a copy is trained), as a row of
    /// the post-training methods table: `processRewardModel` is a PRM file or run directory of `nudge
    /// prm` (trained from the warm start's architecture) or "gold"; `mode` process (the step scores
    /// alone) or mixed (with the outcome reward); `overrides` are `nudge grpo` keys (e.g.
    /// `grpo.steps=300`, `output=runs/x`, `task=carries`).
    public static func prmGRPO(warm: any CausalLanguageModel, tokenizer: any Tokenizer, processRewardModel: String,
                               mode: RewardMode = .process, overrides: [String]) throws -> (row: MethodComparison, outcome: RunOutcome) {
        let config = try resolve(GroupRun.grpo.schema, ["task=carries"] + overrides + [
            "grpo.reward_mode=\(mode == .outcome ? RewardMode.process.rawValue : mode.rawValue)", "grpo.process_reward_model=\(processRewardModel)",
        ])
        let copy = try LanguageModelLoader.frozenCopy(of: warm)
        copy.unfreeze()
        let outcome = try GroupRun.grpo.train(config: config, warm: (copy, tokenizer))
        let perStep = config.int("grpo.prompts_per_step") * config.int("grpo.num_generations")
        return (MethodComparison(method: "PRM-GRPO", modelsInMemory: config.double("grpo.beta") > 0 ? 3 : 2,
                                 rolloutsGenerated: outcome.steps * perStep, wallSeconds: outcome.seconds,
                                 finalGold: outcome.accuracies.last?.1 ?? .nan), outcome)
    }

    /// Runs the comparison (see the file's opening comment) into `output`; prints progress.
    @discardableResult
    public static func compare(config c: ResolvedConfig) throws -> Result {
        let root = URL(fileURLWithPath: c.string("output"))
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let started = Date()
        let seed = UInt64(c.int("seed"))
        let task = "carries"

        // 1. The warm start, shared by both arms.
        let base = try grpoConfig(c, output: root.appendingPathComponent("grpo-outcome"), task: task, mode: .outcome, processRewardModel: "")
        let warmRun = OnlineRun(config: base, name: "warm start")
        let (warm, tokenizer) = try warmRun.loadModel()
        let maxNewTokens = AlignRun.completionLength(task: task)
        let stages = 4 + (c.bool("gold_steps") ? 1 : 0) + (c.bool("mixed") ? 1 : 0)
        print("1/\(stages)  Warm start: SFT of a tiny Llama on worked 3-digit additions (carries)")
        try warmRun.warmStart(warm, tokenizer, maxNewTokens: maxNewTokens)
        let heldOut = try warmRun.rows().heldOut
        let warmAccuracy = try exactMatchAccuracy(model: warm, tokenizer: tokenizer, rows: heldOut, maxNewTokens: maxNewTokens)
        let target = c.double("target_accuracy") > 0 ? c.double("target_accuracy") : min(1, warmAccuracy + 0.1)
        print(String(format: "  held-out accuracy %.3f; target %.3f", warmAccuracy, target))

        // 2. The process reward model.
        var prmPath = c.string("prm.model")
        var prmMetrics: PRMMetrics?
        if prmPath.isEmpty {
            print("2/\(stages)  Process reward model (nudge prm on the carries task's stepwise rows)")
            let prmDirectory = root.appendingPathComponent("prm")
            let prmConfig = try resolve(PRMRun.schema, [
                "seed=\(seed)", "output=\(prmDirectory.path)", "rows=\(c.int("prm.rows"))", "prm.epochs=\(c.int("prm.epochs"))",
                "prm.eval_rows=\(c.int("eval.rows"))",
            ])
            prmMetrics = try PRMRun.train(config: prmConfig)
            prmPath = prmDirectory.path
        } else {
            print("2/\(stages)  Process reward model: \(prmPath)")
        }

        // 3–6. GRPO, outcome then process (the PRM, outcome + PRM, then the gold steps), from copies of the warm start.
        var arms: [Arm] = []
        let runs: [(name: String, directory: String, mode: RewardMode, process: String)] =
            [("GRPO (outcome)", "grpo-outcome", .outcome, ""), ("PRM-GRPO (process)", "grpo-process", .process, prmPath)]
            + (c.bool("mixed") ? [("PRM-GRPO (outcome + process)", "grpo-mixed", .mixed, prmPath)] : [])
            + (c.bool("gold_steps") ? [("GRPO (process, gold steps)", "grpo-gold-steps", .process, "gold")] : [])
        for (k, arm) in runs.enumerated() {
            print("\(3 + k)/\(2 + runs.count)  \(arm.name)")
            let config = try grpoConfig(c, output: root.appendingPathComponent(arm.directory), task: task, mode: arm.mode,
                                        processRewardModel: arm.process)
            let copy = try LanguageModelLoader.frozenCopy(of: warm)
            copy.unfreeze()
            let outcome = try GroupRun.grpo.train(config: config, warm: (copy, tokenizer))
            let name = arm.name
            let row = MethodComparison(method: name, modelsInMemory: arm.process.isEmpty || arm.process == "gold" ? 1 : 2,
                                       rolloutsGenerated: outcome.steps * c.int("prompts_per_step") * c.int("num_generations"),
                                       wallSeconds: outcome.seconds, finalGold: outcome.accuracies.last?.1 ?? .nan)
            arms.append(Arm(name: name, outcome: outcome, stepsToTarget: firstStep(reaching: target, in: outcome.accuracies), row: row))
        }
        let result = Result(directory: root, warmAccuracy: warmAccuracy, target: target, prm: prmMetrics, arms: arms)
        try writeReport(result, config: c, seconds: Date().timeIntervalSince(started))
        return result
    }

    /// table.md and report.html of a finished comparison.
    static func writeReport(_ r: Result, config c: ResolvedConfig, seconds: Double) throws {
        var page = HTMLReport(title: "Process rewards vs outcome reward (GRPO on carries)")
        let evaluated = r.arms.first?.outcome.accuracies.map(\.0) ?? []
        var rows: [[String]] = []
        for step in evaluated {
            rows.append([String(step)] + r.arms.map { arm in
                arm.outcome.accuracies.first { $0.0 == step }.map { String(format: "%.3f", $0.1) } ?? "–"
            })
        }
        page.tables.append(HTMLReport.Table(title: "Held-out greedy accuracy by step", header: ["step"] + r.arms.map(\.name), rows: rows,
                                            numericColumns: Set(0...r.arms.count)))
        let reach = r.arms.map { [$0.name, $0.stepsToTarget.map(String.init) ?? "not reached", String(format: "%.3f", $0.outcome.accuracies.last?.1 ?? .nan),
                                  String(format: "%.0f", $0.outcome.seconds)] }
        page.tables.append(HTMLReport.Table(title: String(format: "Steps to reach held-out accuracy %.3f", r.target),
                                            header: ["run", "first step at target", "final accuracy", "wall time (s)"], rows: reach,
                                            numericColumns: [1, 2, 3]))
        page.tables.append(MethodComparison.htmlTable(r.arms.map(\.row), title: "Methods at a matched budget (final gold = held-out accuracy)"))
        var plot = LinePlot(title: "Held-out accuracy: outcome vs process reward", xLabel: "step", yLabel: "accuracy")
        for arm in r.arms {
            plot.series.append(.line(arm.name, x: arm.outcome.accuracies.map { Double($0.0) }, y: arm.outcome.accuracies.map(\.1)))
        }
        page.addPlot(plot)
        var rewardPlot = LinePlot(title: "Sampled outcome reward (exact answer) per step", xLabel: "step", yLabel: "reward")
        for arm in r.arms {
            let s = arm.outcome.series("rewards/accuracy/mean")
            rewardPlot.series.append(.line(arm.name, x: s.x, y: s.y, smoothing: 10))
        }
        page.addPlot(rewardPlot)
        var notes = [
            String(format: "Every number on this page was measured by this run (seed %d); total wall time %.0f s.", c.int("seed"), seconds),
            String(format: "All runs start from one warm start (held-out accuracy %.3f) and use the same seed, prompts, %d steps of %d prompts × %d completions, and learning rate %g.",
                   r.warmAccuracy, c.int("steps"), c.int("prompts_per_step"), c.int("num_generations"), c.double("learning_rate")),
            String(format: "Outcome: GRPO's group-normalized exact-answer reward on every token. Process: every step's PRM score p(correct) normalized over the group's steps, a token's advantage the sum over the steps ending at or after it (DeepSeekMath §4.1.3). Outcome + process: the outcome advantage plus w × the process one (PRIME's sum; `mixedAdvantages`), w = %g. Gold steps: process supervision with the task's step checker (1/0 per step) in place of the PRM, what a perfect PRM would give.", c.double("process_reward_weight")),
        ]
        if let prm = r.prm {
            notes.append(String(format: "The PRM (trained here): held-out step accuracy %.3f, precision %.3f, recall %.3f, F1 %.3f over %d steps.",
                                prm.accuracy, prm.precision, prm.recall, prm.f1, prm.steps))
        }
        page.notes = notes
        try page.write(to: r.directory.appendingPathComponent("report.html"))
        var markdown = "| step | " + r.arms.map(\.name).joined(separator: " | ") + " |\n|" + String(repeating: " ---: |", count: r.arms.count + 1) + "\n"
        for row in rows { markdown += "| " + row.joined(separator: " | ") + " |\n" }
        markdown += "\n" + String(format: "Steps to reach %.3f: ", r.target)
            + r.arms.map { "\($0.name) \($0.stepsToTarget.map(String.init) ?? "not reached")" }.joined(separator: "; ") + "\n\n"
        markdown += MethodComparison.markdownTable(r.arms.map(\.row)) + "\n"
        try markdown.write(to: r.directory.appendingPathComponent("table.md"), atomically: true, encoding: .utf8)
        print(markdown)
        print("Report: \(r.directory.appendingPathComponent("report.html").path)")
    }
}
