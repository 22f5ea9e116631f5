// The over-optimization experiment (`nudge lab overoptimization`): Goodhart's law in a gradient, measured. A tiny model is warm-started
// on a built-in task whose gold reward is known; a proxy reward model is trained on a limited number
// of gold-labelled pairs of the warm policy's samples; then the proxy is optimized three ways —
// best-of-n sampling (KL_bon = log n − (n − 1)/n), GRPO and PPO-RLHF with a sweep over β — while
// proxy reward, gold reward and KL to the reference are probed on fixed prompts. A second experiment
// gives the proxy a slight preference for longer answers and shows the length drift and gold drop,
// then a composite reward with a length penalty and a larger β. Everything lands in one run
// directory: each run's metrics, best_of_n.jsonl, the over-optimization plots and report.html.

import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport
import NudgeTensor

/// The experiment behind `nudge lab overoptimization`.
public struct OveroptimizationExperiment {
    /// The keys of `nudge lab overoptimization`.
    public static let schema = ConfigSchema([
        .string("model", "", help: "A Hugging Face model directory or a .gguf file; empty: a fresh 'tiny' byte-level Llama warm-started by SFT."),
        .choice("task", AlignRun.taskNames, default: "sorting",
                help: "The built-in task; its hidden gold reward is the gold standard (sorting: partial credit a tiny reward model can learn; on addition it stays near chance)."),
        .int("seed", 1, min: 0, help: "Seed of the model, data, sampling and training."),
        .string("output", "runs/lab/overoptimization", help: "Run directory (a previous run there is replaced)."),
    ] + OnlineConfig.warmup + [
        .int("max_completion_length", 6, min: 1, help: "New tokens per completion (best-of-n, GRPO, PPO)."),
        .int("proxy.pairs", 1500, min: 1, help: "The label budget: gold-labelled pairs of the warm policy's samples the proxy is trained on."),
        .int("proxy.epochs", 3, min: 1, help: "Epochs of the proxy reward model."),
        .double("proxy.learning_rate", 1e-3, min: 0, help: "The proxy reward model's learning rate."),
        .int("probe.prompts", 64, min: 1, help: "Fixed held-out prompts every probe samples."),
        .int("probe.samples", 4, min: 1, help: "Samples per prompt per probe (temperature 1)."),
        .int("probe.every", 25, min: 1, help: "Probe every this many steps (every fifth of that before the first)."),
        .array("best_of_n.n", of: .int, [1, 2, 4, 8, 16, 32, 64].map { .int($0) }, help: "The n of best-of-n (nested prefixes of one sample)."),
        .int("best_of_n.prompts", 128, min: 1, help: "Held-out prompts for best-of-n."),
        .array("grpo.betas", of: .double, [0, 0.02, 0.1].map { .double($0) }, help: "GRPO runs against the proxy, one per β (k3 in the loss)."),
        .int("grpo.steps", 300, min: 0, help: "Steps of each GRPO run."),
        .double("grpo.learning_rate", 3e-4, min: 0, help: "GRPO learning rate."),
        .int("grpo.prompts_per_step", 16, min: 1, help: "Prompts per GRPO step."),
        .int("grpo.num_generations", 8, min: 2, help: "G: completions per prompt."),
        .array("ppo.betas", of: .double, [0.01, 0.05, 0.2].map { .double($0) }, help: "PPO-RLHF runs against the proxy, one per β (k1 in the reward)."),
        .int("ppo.steps", 60, min: 0, help: "Rollout batches of each PPO run."),
        .double("ppo.learning_rate", 1e-4, min: 0, help: "PPO learning rate."),
        .int("ppo.batch_size", 32, min: 2, help: "Prompts per PPO rollout batch (2 mini-batches, 4 epochs)."),
        .bool("length.enabled", true, help: "Run the length-bias experiment."),
        .double("length.bonus", 0.1, min: 0, help: "The length-biased proxy: gold + bonus · completion tokens."),
        .int("length.max_completion_length", 12, min: 1, help: "Room to grow: new tokens per completion in the length runs."),
        .double("length.biased_beta", 0, min: 0, help: "β of the run on the length-biased proxy."),
        .double("length.penalty_coefficient", 0.1, min: 0, help: "The fix: − c · max(0, tokens − threshold) added to the proxy..."),
        .int("length.penalty_threshold", 4, min: 0, help: "...with this many tokens free."),
        .double("length.fixed_beta", 0.1, min: 0, help: "...and this larger β."),
        .int("length.steps", 300, min: 0, help: "Steps of each length run (GRPO)."),
    ])

    /// `--quick`: shorter runs and fewer probes, where the user set nothing.
    public static func setQuickDefaults(_ c: inout ResolvedConfig) {
        c.setDefault("grpo.steps", .int(80))
        c.setDefault("ppo.steps", .int(32))
        c.setDefault("length.steps", .int(80))
        c.setDefault("probe.every", .int(16))
        c.setDefault("probe.prompts", .int(32))
        c.setDefault("best_of_n.n", .array([1, 2, 4, 8, 16].map { .int($0) }))
        c.setDefault("best_of_n.prompts", .int(64))
    }

    let config: ResolvedConfig
    let root: URL
    var seed: UInt64 { UInt64(config.int("seed")) }
    let stop = StopSignal.install()

    public init(config: ResolvedConfig) throws {
        self.config = config
        let output = config.string("output")
        guard !output.isEmpty else { throw RunSetupError("output: expected a directory path, got an empty string") }
        root = URL(fileURLWithPath: output)
    }

    var task: SyntheticTask { AlignRun(config: config).syntheticTask }
    let gold = ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }

    /// One optimization run's probes and wall time.
    struct RunResult {
        var label: String
        var method: String
        var beta: Double
        var probes: [OveroptimizationProbe]
        var seconds: Double
        var rollouts: Int
        /// Policy, reference (when β > 0 or PPO), reward model and value model, as the run held them.
        var modelsInMemory = 0
    }

    public func run() throws {
        let started = Date()
        let directory = try RunDirectory.create(at: root, config: config.asConfigTable(), mode: .overwrite)
        let maxLength = config.int("max_completion_length")

        // 1. The warm policy (also the frozen reference of every run).
        let online = OnlineRun(config: config, name: "warm start")
        let (warm, tokenizer) = try online.loadModel()
        print("1/5  Warm start: \(warm.parameterCount) parameters on \(config.string("task"))")
        try online.warmStart(warm, tokenizer, maxNewTokens: maxLength)
        warm.freeze()

        // 2. The proxy: a reward model on a limited budget of gold-labelled pairs, put on gold's scale.
        print("2/5  Proxy reward model on \(config.int("proxy.pairs")) gold-labelled pairs of the warm policy's samples")
        let pairs = try goldLabelledPairs(policy: warm, tokenizer: tokenizer, task: task, count: config.int("proxy.pairs"),
                                          maxNewTokens: maxLength, seed: seed &+ 3)
        let rewardModel = ScalarHeadModel(trunk: try LanguageModelLoader.frozenCopy(of: warm), seed: seed &+ 11)
        rewardModel.unfreeze()
        var rm = RewardConfig()
        rm.learningRate = config.float("proxy.learning_rate")
        rm.epochs = config.int("proxy.epochs")
        rm.batchSize = 16
        rm.seed = seed
        let history = try RewardTrainer.train(model: rewardModel, tokenizer: tokenizer, rows: pairs, config: rm)
        rewardModel.freeze()
        let rawProxy = RewardModelReward(model: rewardModel, padTokenID: Collator.padID(for: tokenizer))
        let probePrompts = try onlinePrompts(rows: task.verifiableRows(count: config.int("probe.prompts"), seed: seed &+ 777), tokenizer: tokenizer)
        let calibration = try Rollout.sample(model: warm, tokenizer: tokenizer, prompts: probePrompts, repeats: 8,
                                         generation: generationConfig(tokenizer, maxLength, seed: seed &+ 5))
        let (scale, shift) = momentMatching(try rawProxy.scores(calibration.samples).compactMap { $0 },
                                            onto: try gold.scores(calibration.samples).compactMap { $0 })
        let proxy = AffineReward(rawProxy, scale: scale, shift: shift, name: "proxy")
        let agreement = try pairAgreement(proxy: proxy, samples: calibration.samples)
        let late = history.suffix(8)
        print(String(format: "  %d pairs; training accuracy %.3f (last %d batches); agreement with gold on fresh sample pairs %.3f; scale %.3g",
                     pairs.count, late.map(\.accuracy).reduce(0, +) / Float(max(late.count, 1)), late.count, agreement, scale))
        try directory.log(step: 0, [("proxy/pairs", Double(pairs.count)), ("proxy/gold_agreement", agreement), ("proxy/scale", scale),
                                    ("proxy/shift", shift)])

        // 3. Best-of-n against the proxy.
        let ns = config.array("best_of_n.n").compactMap { if case .int(let n) = $0 { n } else { nil } }
        print("3/5  Best-of-n, n = \(ns.map(String.init).joined(separator: ", ")), on \(config.int("best_of_n.prompts")) prompts")
        let bonPrompts = try onlinePrompts(rows: task.verifiableRows(count: config.int("best_of_n.prompts"), seed: seed &+ 778), tokenizer: tokenizer)
        let bon = try bestOfN(policy: warm, tokenizer: tokenizer, prompts: bonPrompts, n: ns, proxy: proxy, gold: gold,
                              maxNewTokens: maxLength, seed: seed &+ 6)
        let bonLines = try AppendOnlyLines(url: root.appendingPathComponent("best_of_n.jsonl"))
        for p in bon {
            try bonLines.append(["n": p.n, "kl": p.kl, "sqrt_kl": p.sqrtKL, "proxy": p.meanProxy, "gold": p.meanGold])
            print(String(format: "  n = %3d  √KL %.3f  proxy %.3f  gold %.3f", p.n, p.sqrtKL, p.meanProxy, p.meanGold))
        }

        // 4. RL against the proxy: GRPO and PPO-RLHF, a β sweep each.
        var runs: [RunResult] = []
        let betas = { (key: String) in config.array(key).compactMap { v -> Double? in
            switch v { case .double(let d): d; case .int(let i): Double(i); default: nil } } }
        print("4/5  RL against the proxy: GRPO β ∈ \(betas("grpo.betas")), PPO-RLHF β ∈ \(betas("ppo.betas"))")
        for beta in betas("grpo.betas") where !stop.requested {
            runs.append(try grpoRun(label: "GRPO β=\(beta)", beta: beta, warm: warm, tokenizer: tokenizer,
                                    rewards: WeightedRewards([(proxy, 1)]), probeProxy: proxy, prompts: probePrompts,
                                    maxLength: maxLength, steps: config.int("grpo.steps")))
        }
        for beta in betas("ppo.betas") where !stop.requested {
            runs.append(try ppoRun(beta: beta, warm: warm, rewardModel: rewardModel, tokenizer: tokenizer, proxy: proxy, prompts: probePrompts,
                                   maxLength: maxLength))
        }

        // 5. The length-bias case.
        var lengthRuns: [RunResult] = []
        if config.bool("length.enabled") && !stop.requested {
            let bonus = config.double("length.bonus"), longest = config.int("length.max_completion_length")
            print(String(format: "5/5  Length bias: proxy = gold + %.3g · tokens, then + length penalty and β = %.3g", bonus,
                         config.double("length.fixed_beta")))
            let biased = WeightedRewards([(gold, 1), (LengthBonus(perToken: bonus), 1)])
            lengthRuns.append(try grpoRun(label: "length-biased proxy, β=\(config.double("length.biased_beta"))",
                                          beta: config.double("length.biased_beta"), warm: warm, tokenizer: tokenizer, rewards: biased,
                                          probeProxy: biased, prompts: probePrompts, maxLength: longest, steps: config.int("length.steps")))
            if !stop.requested {
                let penalty = LengthPenalty(coefficient: config.double("length.penalty_coefficient"),
                                            threshold: config.int("length.penalty_threshold"), eosTokenID: nil)
                lengthRuns.append(try grpoRun(label: "+ length penalty, β=\(config.double("length.fixed_beta"))",
                                              beta: config.double("length.fixed_beta"), warm: warm, tokenizer: tokenizer,
                                              rewards: WeightedRewards(biased.functions.map { ($0.function, $0.weight) } + [(penalty, 1)]),
                                              probeProxy: biased, prompts: probePrompts, maxLength: longest,
                                              steps: config.int("length.steps")))
            }
        } else {
            print("5/5  Length bias: skipped")
        }
        directory.close()
        try writeReport(bon: bon, runs: runs, lengthRuns: lengthRuns, agreement: agreement, pairs: pairs.count,
                        seconds: Date().timeIntervalSince(started))
    }

    func generationConfig(_ tokenizer: any Tokenizer, _ maxLength: Int, seed: UInt64) -> GenerationConfig {
        GenerationConfig(tokenizer: tokenizer, maxNewTokens: maxLength, seed: seed)
    }

    /// How often the proxy orders two samples of a prompt as gold does (ties in gold skipped).
    func pairAgreement(proxy: any RewardFunction, samples: [RewardSample]) throws -> Double {
        let p = try proxy.scores(samples), g = try gold.scores(samples)
        var agree = 0, total = 0
        for k in stride(from: 0, to: samples.count - 1, by: 2) {
            guard let pa = p[k], let pb = p[k + 1], let ga = g[k], let gb = g[k + 1], ga != gb else { continue }
            total += 1
            if (pa - pb) * (ga - gb) > 0 { agree += 1 }
        }
        return total == 0 ? .nan : Double(agree) / Double(total)
    }

    func trainingRows() -> [DatasetRow] { task.verifiableRows(count: 5000, seed: seed &+ 2) }

    func copy(of warm: any CausalLanguageModel) throws -> any CausalLanguageModel {
        let policy = try LanguageModelLoader.frozenCopy(of: warm)
        policy.unfreeze()
        return policy
    }

    func slug(_ label: String) -> String {
        String(label.replacingOccurrences(of: "β", with: "beta").lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == ".") ? $0 : "-" })
            .replacingOccurrences(of: "--", with: "-").trimmingCharacters(in: CharacterSet(charactersIn: "-"))
    }

    /// Probes at step 0, every `probe.every` steps and at the end, logging each step's metrics to the run's own directory.
    func optimize(label: String, method: String, beta: Double, policy: any CausalLanguageModel, warm: any CausalLanguageModel,
                  tokenizer: any Tokenizer, probeProxy: any RewardFunction, prompts: [OnlinePrompt], maxLength: Int, steps: Int,
                  rolloutsPerStep: Int, step: () throws -> OnlineStepResult?) throws -> RunResult {
        let started = Date()
        let dir = try RunDirectory.create(at: root.appendingPathComponent(slug(label)), config: config.asConfigTable(), mode: .overwrite)
        let every = config.int("probe.every")
        func probe(_ k: Int) throws -> OveroptimizationProbe {
            try probeOveroptimization(policy: policy, reference: warm, tokenizer: tokenizer, prompts: prompts,
                                      samplesPerPrompt: config.int("probe.samples"), proxy: probeProxy, gold: gold,
                                      maxNewTokens: maxLength, seed: seed &+ 900 &+ UInt64(k), step: k)
        }
        var probes = [try probe(0)]
        try dir.log(step: 0, probes[0].metrics)
        let progress = ProgressReporter(total: steps, label: label)
        var done = 0
        for k in 1...max(steps, 1) where steps > 0 {
            if stop.requested { break }
            guard let result = try step() else { continue }
            var metrics = result.metrics
            // Five times as dense over the first interval: the KL moves fastest at the start.
            if k % every == 0 || k == steps || (k < every && k % max(1, every / 5) == 0) {
                let p = try probe(k)
                probes.append(p)
                metrics += p.metrics
            }
            try dir.log(step: k, metrics)
            progress.update(completed: k, metrics: [("gold", probes.last!.gold), ("proxy", probes.last!.proxy), ("√KL", probes.last!.sqrtKL)])
            done = k
        }
        if done > 0 && probes.last?.step != done { probes.append(try probe(done)) }
        progress.finish()
        dir.close()
        let last = probes.last!
        print(String(format: "  %@: gold %.3f → %.3f, proxy %.3f → %.3f, √KL %.3f, length %.1f", label, probes[0].gold, last.gold,
                     probes[0].proxy, last.proxy, last.sqrtKL, last.meanLength))
        return RunResult(label: label, method: method, beta: beta, probes: probes, seconds: Date().timeIntervalSince(started),
                         rollouts: done * rolloutsPerStep)
    }

    func grpoRun(label: String, beta: Double, warm: any CausalLanguageModel, tokenizer: any Tokenizer, rewards: WeightedRewards,
                 probeProxy: any RewardFunction, prompts: [OnlinePrompt], maxLength: Int, steps: Int) throws -> RunResult {
        let policy = try copy(of: warm)
        var c = GRPOConfig()
        c.learningRate = config.float("grpo.learning_rate")
        c.promptsPerStep = config.int("grpo.prompts_per_step")
        c.numGenerations = config.int("grpo.num_generations")
        c.maxCompletionLength = maxLength
        c.beta = Float(beta)
        c.seed = seed
        let trainer = try GRPOTrainer(policy: policy, reference: beta > 0 ? warm : nil, tokenizer: tokenizer, rows: trainingRows(),
                                      rewards: rewards, config: c)
        trainer.monitors = [gold]
        var result = try optimize(label: label, method: "GRPO", beta: beta, policy: policy, warm: warm, tokenizer: tokenizer,
                                  probeProxy: probeProxy, prompts: prompts, maxLength: maxLength, steps: steps,
                                  rolloutsPerStep: c.promptsPerStep * c.numGenerations) { try trainer.trainStep() }
        let usesRewardModel = rewards.functions.contains { $0.function is AffineReward }
        result.modelsInMemory = 1 + (beta > 0 ? 1 : 0) + (usesRewardModel ? 1 : 0)
        return result
    }

    func ppoRun(beta: Double, warm: any CausalLanguageModel, rewardModel: ScalarHeadModel, tokenizer: any Tokenizer,
                proxy: any RewardFunction, prompts: [OnlinePrompt], maxLength: Int) throws -> RunResult {
        let policy = try copy(of: warm)
        let value = ScalarHeadModel(trunk: try LanguageModelLoader.frozenCopy(of: rewardModel.trunk), seed: seed &+ 12)
        value.unfreeze()
        var c = PPORLHFConfig()
        c.learningRate = config.float("ppo.learning_rate")
        c.batchSize = config.int("ppo.batch_size")
        c.miniBatches = 2
        guard c.batchSize % 2 == 0 else { throw RunSetupError("ppo.batch_size: expected an even number (2 mini-batches), got \(c.batchSize)") }
        c.ppoEpochs = 4
        c.maxCompletionLength = maxLength
        // Temperature 1, so the KL the leash sees is the KL the probes measure.
        c.temperature = 1
        c.klCoefficient = beta
        c.missingEOSPenalty = nil
        c.seed = seed
        let trainer = try PPORLHFTrainer(policy: policy, value: value, reference: warm, tokenizer: tokenizer, rows: trainingRows(),
                                         rewards: WeightedRewards([(proxy, 1)]), config: c)
        trainer.monitors = [gold]
        var result = try optimize(label: "PPO β=\(beta)", method: "PPO-RLHF", beta: beta, policy: policy, warm: warm, tokenizer: tokenizer,
                                  probeProxy: proxy, prompts: prompts, maxLength: maxLength, steps: config.int("ppo.steps"),
                                  rolloutsPerStep: c.batchSize) { try trainer.trainStep() }
        result.modelsInMemory = 4
        return result
    }

    func writeReport(bon: [BestOfNPoint], runs: [RunResult], lengthRuns: [RunResult], agreement: Double, pairs: Int, seconds: Double) throws {
        var page = HTMLReport(title: "Reward over-optimization: proxy vs gold (\(config.string("task")), seed \(seed))")
        let bonSeries = bestOfNSeries("best-of-n", bon)
        let grpo = runs.filter { $0.method == "GRPO" }, ppo = runs.filter { $0.method == "PPO-RLHF" }
        let plots: [(String, [OveroptimizationSeries])] = [
            ("Best-of-n and GRPO against the proxy", [bonSeries] + grpo.map { probeSeries($0.label, $0.probes) }),
            ("PPO-RLHF against the proxy, β sweep", ppo.map { probeSeries($0.label, $0.probes) }),
        ]
        for (title, series) in plots where !series.isEmpty {
            let plot = overoptimizationPlot(series: series, title: "\(title): gold (solid) and proxy (dashed) vs √KL")
            page.addPlot(plot)
            try plot.write(to: root.appendingPathComponent(slug(title) + ".svg"))
        }
        if !lengthRuns.isEmpty {
            var length = LinePlot(title: "Length bias: mean completion length", xLabel: "step", yLabel: "tokens")
            var goldPlot = LinePlot(title: "Length bias: gold reward", xLabel: "step", yLabel: "gold reward")
            for r in lengthRuns {
                length.add(.line(r.label, x: r.probes.map { Double($0.step) }, y: r.probes.map(\.meanLength)))
                goldPlot.add(.line(r.label, x: r.probes.map { Double($0.step) }, y: r.probes.map(\.gold)))
            }
            for plot in [length, goldPlot] { page.addPlot(plot) }
            try length.write(to: root.appendingPathComponent("length_bias_length.svg"))
            try goldPlot.write(to: root.appendingPathComponent("length_bias_gold.svg"))
        }
        var rows: [[String]] = []
        func f(_ x: Double) -> String { String(format: "%.3f", x) }
        if let first = bon.first, let last = bon.last {
            let turnover = goldTurnover(sqrtKL: bonSeries.sqrtKL, gold: bonSeries.gold)
            rows.append(["best-of-n (n = \(first.n)…\(last.n))", "–", f(last.sqrtKL), f(last.meanProxy - first.meanProxy),
                         f(last.meanGold - first.meanGold), turnover.map { f($0.sqrtKL) } ?? "not reached", "–"])
        }
        for r in runs + lengthRuns {
            let s = OveroptimizationSummary(label: r.label, probes: r.probes)
            rows.append([r.label, f(r.beta), f(r.probes.last?.sqrtKL ?? .nan), f(s.proxyChange), f(s.goldChange),
                         s.turnedOver ? f(s.peakSqrtKL) : "not reached", String(format: "%.1f", r.probes.last?.meanLength ?? .nan)])
        }
        page.tables.append(HTMLReport.Table(
            title: "Each run from the same warm start (changes are last probe − first probe)",
            header: ["run", "β", "final √KL", "Δ proxy", "Δ gold", "gold peak at √KL", "final length"], rows: rows,
            numericColumns: [1, 2, 3, 4, 5, 6]))
        page.tables.append(MethodComparison.htmlTable((runs + lengthRuns).map {
            MethodComparison(method: $0.label, modelsInMemory: $0.modelsInMemory,
                             rolloutsGenerated: $0.rollouts, wallSeconds: $0.seconds, finalGold: $0.probes.last?.gold ?? .nan)
        }, title: "Cost of each run (models in memory include the reward model)"))
        page.notes = [
            String(format: "The proxy is a reward model trained on %d gold-labelled pairs of the warm policy's samples; on fresh pairs it orders samples as gold does %.0f%% of the time. Its scores are mapped (a monotone affine map) onto gold's mean and spread on the warm policy's samples, so the two share an axis.", pairs, 100 * agreement),
            "KL is the sequence KL(π ‖ π_ref) in nats, estimated on completions sampled at temperature 1 on \(config.int("probe.prompts")) fixed held-out prompts × \(config.int("probe.samples")); best-of-n uses the analytic KL_bon = log n − (n − 1)/n.",
            "A diamond and a dotted line mark where a run's gold reward peaked before its last probe (its turnover); runs whose gold was still at its highest at the end show none.",
            String(format: "Total wall time %.0f s%@.", seconds, stop.requested ? " (interrupted: the report covers the runs completed)" : ""),
        ]
        let url = root.appendingPathComponent("report.html")
        try page.write(to: url)
        print(String(format: "Done in %.0f s: %@", seconds, url.path))
        for row in rows { print("  " + row.joined(separator: " | ")) }
    }
}
