// `nudge lab methods`: post-training methods compared from ONE warm start on a built-in task, each
// given the same budget of sampled completions (rollouts): offline DPO on gold-labelled pairs of the
// warm model's own samples (as the demo does), online DPO, rejection-sampling fine-tuning, GRPO, and
// on the multi-step `carries` task PRM-GRPO (a process reward model trained first, its cost in the
// row). Each method is a named closure returning its row of the demo's `MethodComparison` table and
// its held-out accuracy curve, so another method is one more entry of `MethodsLab.methods`.

import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport

/// What every method of the lab starts from, and its budget.
public struct MethodsLabContext {
    /// The warm-started model; a method trains a copy (`copyOfWarm`).
    public let warm: any CausalLanguageModel
    public let tokenizer: any Tokenizer
    /// The built-in task's name (`AlignRun.taskNames`).
    public let task: String
    public let heldOut: [DatasetRow]
    public let warmAccuracy: Double
    /// Completions each method may sample.
    public let rollouts: Int
    /// Prompts per step of the online methods (each samples `generations` completions of each).
    public let promptsPerStep: Int
    public let generations: Int
    public let seed: UInt64
    public let quick: Bool
    /// The lab's run directory; each method writes its run under it.
    public let root: URL
    /// PRM-GRPO: how GRPO uses the PRM (process or mixed), and the PRM's stepwise rows and epochs.
    public var prmRewardMode: RewardMode = .mixed
    public var prmRows = 60000
    public var prmEpochs = 3

    /// New tokens of a completion of the task (greedy evaluation and sampling).
    public var maxNewTokens: Int { AlignRun.completionLength(task: task) }

    /// A trainable copy of the warm model.
    public func copyOfWarm() throws -> any CausalLanguageModel {
        let copy = try LanguageModelLoader.frozenCopy(of: warm)
        copy.unfreeze()
        return copy
    }

    /// Steps of an online method that samples `perStep` completions per step, within the budget.
    public func steps(perStep: Int) -> Int { max(1, rollouts / max(perStep, 1)) }

    /// Evaluate about this often, so each curve has about 6 points.
    public func evalEvery(steps: Int) -> Int { max(1, steps / 6) }

    /// The run-level overrides every method's configuration shares.
    public func common(_ name: String, steps: Int) -> [String] {
        ["seed=\(seed)", "task=\(task)", "output=\(root.appendingPathComponent(name).path)", "eval.rows=\(heldOut.count)",
         "eval.every=\(evalEvery(steps: steps))", "checkpoint.every=1000000", "log.samples_every=1000000"]
    }
}

/// One method's result: its table row and its held-out accuracy by step (step 0: the warm start).
public struct MethodsLabResult {
    public var comparison: MethodComparison
    public var accuracies: [(Int, Double)]
    /// Lines for the lab page (what the run's own metrics say about it).
    public var notes: [String] = []

    public init(comparison: MethodComparison, accuracies: [(Int, Double)], notes: [String] = []) {
        self.comparison = comparison
        self.accuracies = accuracies
        self.notes = notes
    }
}

/// The lab: the methods, and the run that compares them.
public enum MethodsLab {
    /// A method of the comparison.
    public struct Method: Sendable {
        public var name: String
        public var run: @Sendable (MethodsLabContext) throws -> MethodsLabResult

        public init(name: String, run: @escaping @Sendable (MethodsLabContext) throws -> MethodsLabResult) {
            self.name = name
            self.run = run
        }
    }

    static func resolved(_ schema: ConfigSchema, _ overrides: [String]) throws -> ResolvedConfig {
        do throws(ConfigError) { return try schema.resolve(overrides: overrides) } catch { throw RunSetupError(error.description) }
    }

    static func result(_ name: String, models: Int, rollouts: Int, _ outcome: RunOutcome) -> MethodsLabResult {
        // The DPO methods' own view of their pairs against held-out accuracy: offline DPO can win its
        // pairs (rewards/accuracies up) while the chosen completions lose probability and accuracy falls.
        let window = max(1, min(100, outcome.steps / 5))
        func change(_ metric: String) -> String {
            String(format: "%@ %.3f → %.3f", metric, outcome.mean(metric, first: window), outcome.mean(metric, last: window))
        }
        let notes = outcome.series("logps/chosen").y.isEmpty ? [] : [
            "\(name) (first → last \(window) steps): " + ["rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"].map(change).joined(separator: ", ")
                + String(format: "; held-out accuracy %.3f → %.3f.", outcome.accuracies.first?.1 ?? .nan, outcome.accuracies.last?.1 ?? .nan),
        ]
        return MethodsLabResult(comparison: MethodComparison(method: name, modelsInMemory: models, rolloutsGenerated: rollouts, wallSeconds: outcome.seconds,
                                                             finalGold: outcome.accuracies.last?.1 ?? .nan),
                                accuracies: outcome.accuracies, notes: notes)
    }

    /// Offline DPO (β = 0.1, as the demo trains it) on gold-labelled pairs of the warm model's own
    /// samples: the whole budget sampled from the warm model first, two completions per prompt, the
    /// one with the higher gold reward chosen (ties skipped). One model: the reference log-probs are
    /// computed once, before training.
    public static let offlineDPO = Method(name: "offline DPO") { c in
        let started = Date()
        let task = AlignRun.task(named: c.task) ?? .addition(digits: 2)
        var pairs: [DatasetRow] = []
        var sampled = 0, round: UInt64 = 0
        while sampled + 2 <= c.rollouts {
            let count = min(256, (c.rollouts - sampled) / 2)
            let prompts = try onlinePrompts(rows: task.verifiableRows(count: count, seed: c.seed &+ 1000 &+ round), tokenizer: c.tokenizer)
            let generation = GenerationConfig(tokenizer: c.tokenizer, maxNewTokens: c.maxNewTokens, seed: c.seed &+ 3 &+ round)
            let rollout = try Rollout.sample(model: c.warm, tokenizer: c.tokenizer, prompts: prompts, repeats: 2, generation: generation)
            sampled += rollout.count
            round += 1
            for k in stride(from: 0, to: rollout.count, by: 2) {
                let (a, b) = (rollout.samples[k], rollout.samples[k + 1])
                let (ga, gb) = (SyntheticTask.goldReward(prompt: a.prompt, completion: a.completion), SyntheticTask.goldReward(prompt: b.prompt, completion: b.completion))
                guard ga != gb else { continue }
                let (chosen, rejected) = ga > gb ? (a.completion, b.completion) : (b.completion, a.completion)
                pairs.append(.preference(prompt: .text(a.prompt), chosen: .text(chosen), rejected: .text(rejected)))
            }
        }
        let policy = try c.copyOfWarm()
        var dpo = DPOConfig()
        dpo.learningRate = 1e-4
        dpo.batchSize = 16
        dpo.seed = c.seed
        let trainer = try DPOTrainer.trainer(policy: policy, tokenizer: c.tokenizer, rows: pairs, config: dpo)
        let config = try resolved(DPORun.schema, ["seed=\(c.seed)", "output=\(c.root.appendingPathComponent("offline-dpo").path)"])
        var runner = AlignRunner(name: "offline DPO", directory: try AlignRun(config: config).directory(), model: policy, tokenizer: c.tokenizer)
        runner.heldOut = c.heldOut
        runner.maxNewTokens = c.maxNewTokens
        runner.evalEvery = c.evalEvery(steps: trainer.totalSteps)
        runner.checkpointEvery = 1_000_000
        runner.headline = ["loss", "rewards/accuracies", "eval/accuracy"]
        var outcome = try runner.run(trainer)
        outcome.seconds = Date().timeIntervalSince(started)  // pair sampling included
        return result("offline DPO", models: 1, rollouts: sampled, outcome)
    }

    /// Online DPO with the gold reward as the judge: k completions per prompt, best against worst.
    /// Two models: the policy and its frozen reference.
    public static let onlineDPO = Method(name: "online DPO") { c in
        let s = OnlineDPORun.section
        let steps = c.steps(perStep: c.promptsPerStep * c.generations)
        let config = try resolved(OnlineDPORun.schema, c.common("online-dpo", steps: steps) + [
            "\(s).steps=\(steps)", "\(s).batch_size=\(c.promptsPerStep)", "\(s).num_generations=\(c.generations)",
        ])
        let outcome = try OnlineDPORun.train(config: config, warm: (try c.copyOfWarm(), c.tokenizer))
        return result("online DPO", models: 2, rollouts: outcome.steps * c.promptsPerStep * c.generations, outcome)
    }

    /// Rejection-sampling fine-tuning: rounds of 4 × `promptsPerStep` prompts (64; fewer on a small
    /// budget) × `generations` samples, the correct best kept, SFT on them. One model.
    public static let rft = Method(name: "RFT") { c in
        let s = RFTRun.section
        let prompts = max(1, min(c.promptsPerStep * 4, c.rollouts / c.generations))
        let steps = c.steps(perStep: prompts * c.generations)
        let config = try resolved(RFTRun.schema, c.common("rft", steps: steps) + [
            "\(s).steps=\(steps)", "\(s).prompts_per_step=\(prompts)", "\(s).num_generations=\(c.generations)",
        ])
        let outcome = try RFTRun.train(config: config, warm: (try c.copyOfWarm(), c.tokenizer))
        return result("RFT", models: 1, rollouts: outcome.steps * prompts * c.generations, outcome)
    }

    /// GRPO with the exact-answer reward (β = 0: no reference model). One model.
    public static let grpo = Method(name: "GRPO") { c in
        let s = GroupRun.grpo.section
        let steps = c.steps(perStep: c.promptsPerStep * c.generations)
        let config = try resolved(GroupRun.grpo.schema, c.common("grpo", steps: steps) + [
            "\(s).steps=\(steps)", "\(s).prompts_per_step=\(c.promptsPerStep)", "\(s).num_generations=\(c.generations)",
        ])
        let outcome = try GroupRun.grpo.train(config: config, warm: (try c.copyOfWarm(), c.tokenizer))
        return result("GRPO", models: 1, rollouts: outcome.steps * c.promptsPerStep * c.generations, outcome)
    }

    /// GRPO with a process reward model's step scores, on the stepwise task (carries) only. The PRM is
    /// trained first (`nudge prm` with its defaults: a from-scratch tiny model on the task's stepwise
    /// rows labelled by the gold step checker; no rollouts), and its training time counts in the row's
    /// wall time. `prmRewardMode` mixed adds the outcome reward (`mixedAdvantages`); process uses the
    /// step scores alone. Two models: the policy and the PRM (β = 0: no reference).
    public static let prmGRPO = Method(name: "PRM-GRPO") { c in
        guard c.task == "carries" else {
            throw RunSetupError("task: PRM-GRPO needs the stepwise task (carries), whose steps a PRM can score, not \(c.task)")
        }
        let started = Date()
        let prmDirectory = c.root.appendingPathComponent("prm")
        let prmConfig = try resolved(PRMRun.schema, ["seed=\(c.seed)", "output=\(prmDirectory.path)", "rows=\(c.prmRows)",
                                                     "prm.epochs=\(c.prmEpochs)", "prm.eval_rows=\(max(c.heldOut.count, 1))"])
        let prm = try PRMRun.train(config: prmConfig)
        let prmSeconds = Date().timeIntervalSince(started)
        let s = GroupRun.grpo.section
        let steps = c.steps(perStep: c.promptsPerStep * c.generations)
        let (row, outcome) = try ProcessRewardLab.prmGRPO(warm: c.warm, tokenizer: c.tokenizer, processRewardModel: prmDirectory.path,
                                                          mode: c.prmRewardMode, overrides: c.common("prm-grpo", steps: steps) + [
            "\(s).steps=\(steps)", "\(s).prompts_per_step=\(c.promptsPerStep)", "\(s).num_generations=\(c.generations)",
        ])
        var comparison = row
        comparison.wallSeconds = Date().timeIntervalSince(started)
        let note = String(format: "PRM-GRPO (reward_mode = %@): its PRM was trained first on %d stepwise rows labelled by the gold step checker (%d epochs, no rollouts; %.1f s of the row's %.1f s wall time; held-out step accuracy %@); models in memory: the policy and the PRM.",
                          c.prmRewardMode.rawValue, c.prmRows, c.prmEpochs, prmSeconds, comparison.wallSeconds,
                          prm.map { String(format: "%.3f", $0.accuracy) } ?? "not measured")
        return MethodsLabResult(comparison: comparison, accuracies: outcome.accuracies, notes: [note])
    }

    /// The methods compared, in table order; another method is one more entry.
    public static let methods: [Method] = [offlineDPO, onlineDPO, rft, grpo, prmGRPO]

    /// The methods that run on `task`: PRM-GRPO needs the stepwise task (carries).
    public static func methods(for task: String) -> [Method] {
        task == "carries" ? methods : methods.filter { $0.name != prmGRPO.name }
    }

    /// The lab's keys (`nudge lab methods --set key=value`).
    public static let schema = ConfigSchema([
        .int("seed", 1, min: 0, help: "Seed of the warm start, the tasks' rows and every method."),
        .string("output", "runs/lab/methods", help: "Run directory (each method's run under it, report.html and table.md)."),
        .choice("task", AlignRun.taskNames, default: "addition",
                help: "The built-in task; carries (worked 3-digit additions, one checkable step a line) adds PRM-GRPO."),
        .int("rollouts", 0, min: 0, help: "Completions each method may sample; 0: 96,000 (quick: 512)."),
        .bool("quick", false, help: "A smoke test: no warm start, 8 held-out rows, 512 rollouts unless set, a tiny PRM."),
        .choice("prm_grpo.reward_mode", [RewardMode.process.rawValue, RewardMode.mixed.rawValue], default: RewardMode.mixed.rawValue,
                help: "PRM-GRPO: mixed (the outcome reward plus the PRM's step scores, grpo.reward_mode=mixed) or process (the step scores alone)."),
        .int("prm.rows", 0, min: 0, help: "PRM-GRPO: stepwise rows of its PRM; 0: nudge prm's default 60000 (quick: 16)."),
        .int("prm.epochs", 0, min: 0, help: "PRM-GRPO: epochs of its PRM; 0: nudge prm's default 3 (quick: 1)."),
    ])

    /// Runs the lab with a resolved `schema` configuration.
    @discardableResult
    public static func run(config c: ResolvedConfig) throws -> [MethodsLabResult] {
        let rollouts = c.int("rollouts")
        return try run(seed: UInt64(c.int("seed")), output: c.string("output"), task: c.string("task"), quick: c.bool("quick"),
                       rollouts: rollouts > 0 ? rollouts : nil, prmRewardMode: RewardMode(rawValue: c.string("prm_grpo.reward_mode")) ?? .mixed,
                       prmRows: c.int("prm.rows") > 0 ? c.int("prm.rows") : nil, prmEpochs: c.int("prm.epochs") > 0 ? c.int("prm.epochs") : nil)
    }

    /// Warm-starts one model on `task`, runs every method from it with `rollouts` completions each
    /// (default: 96,000, half of online DPO's default run; `quick`: no warm start, 8 held-out rows and 512
    /// rollouts, a smoke test), and writes
    /// `output`/report.html and table.md. Returns the table's rows.
    @discardableResult
    public static func run(seed: UInt64 = 1, output: String = "runs/lab/methods", task: String = "addition", quick: Bool = false,
                           rollouts: Int? = nil, methods: [Method]? = nil, prmRewardMode: RewardMode = .mixed, prmRows: Int? = nil,
                           prmEpochs: Int? = nil) throws -> [MethodsLabResult] {
        let started = Date()
        let root = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let warmConfig = try resolved(GroupRun.grpo.schema, ["seed=\(seed)", "task=\(task)", "output=\(root.appendingPathComponent("warm").path)"]
                                      + (quick ? ["warmup.sft_epochs=0", "eval.rows=8"] : []))
        let warmRun = OnlineRun(config: warmConfig, name: "warm start")
        let (warm, tokenizer) = try warmRun.loadModel()
        let maxNewTokens = AlignRun.completionLength(task: task)
        try warmRun.warmStart(warm, tokenizer, maxNewTokens: maxNewTokens)
        let heldOut = try warmRun.rows().heldOut
        let warmAccuracy = try exactMatchAccuracy(model: warm, tokenizer: tokenizer, rows: heldOut, maxNewTokens: maxNewTokens)
        print(String(format: "Warm start: held-out greedy accuracy %.3f on %d rows", warmAccuracy, heldOut.count))
        var context = MethodsLabContext(warm: warm, tokenizer: tokenizer, task: task, heldOut: heldOut, warmAccuracy: warmAccuracy,
                                        rollouts: rollouts ?? (quick ? 512 : 96_000), promptsPerStep: quick ? 4 : 16, generations: quick ? 4 : 8,
                                        seed: seed, quick: quick, root: root)
        context.prmRewardMode = prmRewardMode
        context.prmRows = prmRows ?? (quick ? 16 : 60000)
        context.prmEpochs = prmEpochs ?? (quick ? 1 : 3)
        var results: [MethodsLabResult] = []
        for method in methods ?? Self.methods(for: task) {
            print("\(method.name): \(context.rollouts) rollouts")
            results.append(try method.run(context))
        }
        var page = HTMLReport(title: "Post-training methods from one warm start, at one budget of rollouts")
        page.tables.append(MethodComparison.htmlTable(results.map(\.comparison),
                                                      title: "Methods on \(task) (final gold = held-out greedy accuracy; warm start \(String(format: "%.3f", warmAccuracy)))"))
        var plot = LinePlot(title: "Held-out greedy accuracy by step", xLabel: "step", yLabel: "accuracy")
        for r in results {
            plot.series.append(.line(r.comparison.method, x: r.accuracies.map { Double($0.0) }, y: r.accuracies.map(\.1)))
        }
        page.addPlot(plot)
        page.notes = [
            "Every number and curve on this page was computed by this run (seed \(seed)\(quick ? ", --quick" : "")); total wall time \(String(format: "%.0f", Date().timeIntervalSince(started))) s. Each method's own run (metrics, report) is in its directory beside this page.",
            "One warm start (SFT to partial accuracy) for every method; each may sample \(context.rollouts) completions. Offline DPO samples all of its pairs from the warm model before training; the online methods sample from the policy being trained.",
            "Why online DPO can raise held-out accuracy where offline DPO lowers it: offline DPO's pairs were sampled once, from the warm model; the loss asks only that each chosen completion gain on its rejected one relative to the reference, which it can meet by pushing both down, and the probability freed goes to completions no pair showed, which greedy decoding then picks. Online DPO judges what the current policy samples, so what it now prefers is corrected at the next step. The runs' own numbers:",
        ] + results.flatMap(\.notes)
        try page.write(to: root.appendingPathComponent("report.html"))
        let costs = results.filter { $0.comparison.method == prmGRPO.name }.flatMap(\.notes)
        try (MethodComparison.markdownTable(results.map(\.comparison)) + costs.map { "\n" + $0 + "\n" }.joined())
            .write(to: root.appendingPathComponent("table.md"), atomically: true, encoding: .utf8)
        print(MethodComparison.markdownTable(results.map(\.comparison)))
        print("Report: \(root.appendingPathComponent("report.html").path)")
        return results
    }
}
