// The demo (`nudge demo`): the main job. It walks the seeds' line end to end on built-in tasks: a slot machine
// (Thompson sampling vs REINFORCE), the Bradley–Terry link and fit, PPO on CartPole, then a tiny
// language model taken by SFT to partial accuracy on two-digit addition and post-trained two ways
// on the same warm start: DPO on pairs of its own samples labelled by a hidden gold reward and GRPO
// with the verifiable exact-answer reward; then the same preset warm-started on 5-letter sorting and
// taken through PPO-RLHF against a reward model trained on gold-labelled pairs of its samples, with
// the gold reward and the KL to the reference logged. Everything lands under runs/demo/, with one page,
// runs/demo/report.html, drawing the numbers each stage computed.

import Foundation
import NudgeAlign
import NudgeConfig
import NudgeLM
import NudgeNN
import NudgeRL
import NudgeReport

/// `nudge demo`: the built-in walk, or the real-model demo.
public enum Demo {
    /// The built-in walk (`quick`: about a minute); writes `output` and prints each stage.
    public static func run(seed: UInt64 = 1, output: String = "runs/demo", quick: Bool = false) throws {
        let root = URL(fileURLWithPath: output)
        let started = Date()
        var page = HTMLReport(title: "Nudge demo: sample, score, nudge — from a slot machine to a reasoning policy")
        var summary: [[String]] = []
        func row(_ stage: String, _ metric: String, _ value: String) { summary.append([stage, metric, value]) }
        func image(_ url: URL, _ caption: String) {
            if let data = try? Data(contentsOf: url) { page.images.append(.init(caption: caption, svgData: data)) }
        }

        print("1/7  Bandit: Thompson sampling vs REINFORCE, 5 Bernoulli arms p = 0.1…0.9, T = 500")
        let bandit = try BanditLab.thompsonVsReinforce(runs: quick ? 50 : 200, seed: seed, output: root.appendingPathComponent("bandit"))
        report(bandit)
        for (k, v) in bandit.results { row("bandit", k, String(format: "%.3f", v)) }
        image(bandit.directory.appendingPathComponent("regret.svg"), "Bandit: cumulative regret")

        print("2/7  Bradley–Terry: the link σ(Δ) and a fit of item rewards (2, 1, 0, −1) from sampled comparisons")
        let fit = bradleyTerryFit(trueRewards: [2, 1, 0, -1], comparisons: 600, seed: seed)
        print(String(format: "  learned (centered): %@; largest error %.3f",
                     fit.learnedRewards.map { String(format: "%.2f", $0) }.joined(separator: ", "), fit.maxAbsoluteError))
        row("bradley-terry", "max |learned − true|", String(format: "%.3f", fit.maxAbsoluteError))
        let instruments = root.appendingPathComponent("instruments")
        for name in try InstrumentsLab.writeAll(to: instruments, seed: seed) {
            image(instruments.appendingPathComponent(name), InstrumentsLab.caption(name))
        }

        let timesteps = quick ? 20_000 : 100_000
        print("3/7  PPO on CartPole-v1, \(timesteps) steps")
        let cartPole = try RLRunner.train(algorithm: "ppo", environmentID: "CartPole-v1", seed: seed, totalTimesteps: timesteps,
                                          directory: root.appendingPathComponent("ppo-cartpole"))
        for (k, v) in cartPole {
            print(String(format: "  %@: %.4g", k, v))
            row("ppo cartpole", k, String(format: "%.4g", v))
        }
        image(root.appendingPathComponent("ppo-cartpole/returns.svg"), "PPO on CartPole: episode returns")

        // The language-model line: one warm start, three post-training methods from copies of it.
        let grpoConfig = try resolved(GroupRun.grpo.schema, [
            "seed=\(seed)", "output=\(root.appendingPathComponent("grpo").path)", "grpo.steps=\(quick ? 150 : 1000)",
            "eval.every=\(quick ? 50 : 100)",
        ])
        let warmRun = OnlineRun(config: grpoConfig, name: "warm start")
        let (warm, tokenizer) = try warmRun.loadModel()
        print("4/7  Tiny Llama (\(warm.parameterCount) parameters, byte tokenizer): SFT on 2-digit addition to partial accuracy")
        try warmRun.warmStart(warm, tokenizer, maxNewTokens: 6)
        let heldOut = try warmRun.rows().heldOut
        let warmAccuracy = try exactMatchAccuracy(model: warm, tokenizer: tokenizer, rows: heldOut, maxNewTokens: 6)
        print(String(format: "  held-out greedy accuracy after SFT: %.3f", warmAccuracy))
        row("sft", "held-out accuracy", String(format: "%.3f", warmAccuracy))
        func copyOfWarm() throws -> any CausalLanguageModel {
            let copy = try LanguageModelLoader.frozenCopy(of: warm)
            copy.unfreeze()
            return copy
        }

        print("5/7  DPO (β = 0.1) on pairs of the warm model's own samples, labelled by the hidden gold reward")
        let pairs = try goldLabelledPairs(policy: warm, tokenizer: tokenizer, task: .addition(digits: 2), count: quick ? 500 : 2000,
                                          maxNewTokens: 6, seed: seed &+ 3)
        let dpoPolicy = try copyOfWarm()
        var dpo = DPOConfig()
        dpo.learningRate = 1e-4
        dpo.batchSize = 16
        dpo.seed = seed
        let dpoStart = Date()
        let dpoHistory = try DPOTrainer.train(policy: dpoPolicy, tokenizer: tokenizer, rows: pairs, config: dpo)
        let dpoSeconds = Date().timeIntervalSince(dpoStart)
        let dpoAccuracy = try exactMatchAccuracy(model: dpoPolicy, tokenizer: tokenizer, rows: heldOut, maxNewTokens: 6)
        let dpoLate = dpoHistory.suffix(10)
        print(String(format: "  %d pairs, %d steps in %.1f s: rewards/accuracies %.3f; held-out accuracy %.3f → %.3f", pairs.count,
                     dpoHistory.count, dpoSeconds, dpoLate.map(\.rewardsAccuracies).reduce(0, +) / Float(max(dpoLate.count, 1)),
                     warmAccuracy, dpoAccuracy))
        row("dpo", "held-out accuracy", String(format: "%.3f → %.3f", warmAccuracy, dpoAccuracy))

        print("6/7  GRPO with the exact-answer reward (16 prompts × 8 samples per step)")
        let grpo = try GroupRun.grpo.train(config: grpoConfig, warm: (try copyOfWarm(), tokenizer))
        if let first = grpo.accuracies.first, let last = grpo.accuracies.last {
            row("grpo", "held-out accuracy", String(format: "%.3f → %.3f (%d steps, %.0f s)", first.1, last.1, grpo.steps, grpo.seconds))
        }
        var accuracyPlot = LinePlot(title: "GRPO: held-out exact-match accuracy", xLabel: "step", yLabel: "accuracy")
        accuracyPlot.series.append(.line("greedy accuracy", x: grpo.accuracies.map { Double($0.0) }, y: grpo.accuracies.map(\.1)))
        page.addPlot(accuracyPlot)
        var rewardPlot = LinePlot(title: "GRPO: sampled reward (exact answer)", xLabel: "step", yLabel: "reward")
        let reward = grpo.series("reward")
        rewardPlot.series.append(.line("reward", x: reward.x, y: reward.y, smoothing: 25))
        page.addPlot(rewardPlot)

        // PPO-RLHF gets its own warm start on sorting: a reward model as small as the policy can verify a
        // sorted string (local checks) but not a sum, and a proxy that cannot verify gives PPO only noise.
        print("7/7  PPO-RLHF on 5-letter sorting: SFT warm start, a reward model on gold-labelled pairs of its samples, then PPO (the gold reward is only watched)")
        let ppoConfig = PPORun.withDefaults(try resolved(PPORun.schema, [
            "seed=\(seed)", "output=\(root.appendingPathComponent("ppo-rlhf").path)", "task=sorting",
        ] + (quick ? ["ppo.steps=40", "eval.every=20", "ppo.reward_model_pairs=2000"] : [])))
        let ppo = try PPORun.train(config: ppoConfig)
        let early = max(1, ppo.steps / 5)
        if let first = ppo.accuracies.first, let last = ppo.accuracies.last {
            row("ppo-rlhf", "held-out accuracy (sorting)", String(format: "%.3f → %.3f (%d steps, %.0f s)", first.1, last.1, ppo.steps, ppo.seconds))
        }
        for name in ["objective/scores", "monitor/gold", "objective/kl"] {
            row("ppo-rlhf", name, String(format: "%.3f → %.3f (first/last %d steps)", ppo.mean(name, first: early), ppo.mean(name, last: early), early))
        }
        var ppoPlot = LinePlot(title: "PPO-RLHF: proxy (reward model) vs gold reward", xLabel: "step", yLabel: "reward")
        for (name, label) in [("objective/scores", "proxy (reward model)"), ("monitor/gold", "gold (hidden)")] {
            let s = ppo.series(name)
            ppoPlot.series.append(.line(label, x: s.x, y: s.y, smoothing: 5))
        }
        page.addPlot(ppoPlot)
        var klPlot = LinePlot(title: "PPO-RLHF: KL to the reference (nats per completion)", xLabel: "step", yLabel: "KL")
        let kl = ppo.series("objective/kl")
        klPlot.series.append(.line("KL", x: kl.x, y: kl.y, smoothing: 5))
        page.addPlot(klPlot)

        page.tables.insert(HTMLReport.Table(title: "What each stage measured", header: ["stage", "metric", "value"], rows: summary), at: 0)
        page.tables.append(MethodComparison.htmlTable([
            MethodComparison(method: "DPO", modelsInMemory: 1, rolloutsGenerated: 2 * pairs.count, wallSeconds: dpoSeconds, finalGold: dpoAccuracy),
            MethodComparison(method: "GRPO", modelsInMemory: 1, rolloutsGenerated: grpo.steps * 128, wallSeconds: grpo.seconds,
                             finalGold: grpo.accuracies.last?.1 ?? .nan),
            MethodComparison(method: "PPO-RLHF (sorting)", modelsInMemory: 4, rolloutsGenerated: ppo.steps * ppoConfig.int("ppo.batch_size"),
                             wallSeconds: ppo.seconds, finalGold: ppo.accuracies.last?.1 ?? .nan),
        ], title: "Post-training methods (final gold = held-out accuracy; DPO and GRPO on addition from one warm start, PPO-RLHF on sorting)"))
        page.notes = [
            "Every number and curve on this page was computed by this run (seed \(seed)\(quick ? ", --quick" : "")); total wall time \(String(format: "%.0f", Date().timeIntervalSince(started))) s.",
            "DPO and GRPO share one warm start: a tiny Llama trained by SFT on 2-digit addition until its development accuracy reached 0.2. PPO-RLHF starts from the same preset trained the same way on 5-letter sorting, where a reward model of the policy's size can verify answers.",
            "PPO-RLHF optimizes a learned proxy; the hidden gold reward is logged but never trained on, so the gap between the two curves is reward over-optimization in miniature.",
        ]
        let reportURL = root.appendingPathComponent("report.html")
        try page.write(to: reportURL)
        print(String(format: "Done in %.0f s: %@ (runs under %@)", Date().timeIntervalSince(started), reportURL.path, root.path))
    }

    /// `--real`: 2-digit addition as SmolLM2-style chats ("What is 59 + 63? Reply with only the number.")
    /// from the seed, 200 held-out questions that share no prompt with the 2000 training ones (written
    /// to DIR/data/), GRPO by `nudge grpo`'s own path (DIR/grpo: metrics, samples, report.html), then the
    /// trained weights exported as DIR/model.gguf and checked by reloading it and evaluating again.
    public static func runReal(model: String, steps: Int = 40, seed: UInt64 = 1, output: String = "runs/demo") throws {
        let root = URL(fileURLWithPath: output)
        let started = Date()
        let dataDirectory = root.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
        let instruction = "Reply with only the number."
        let (train, heldOut) = SyntheticTask.addition(digits: 2).disjointProblems(train: 2000, heldOut: 200, seed: seed)
        func write(_ problems: [SyntheticProblem], _ name: String) throws -> URL {
            let url = dataDirectory.appendingPathComponent(name)
            let lines = try problems.map { p -> String in
                let object: [String: Any] = ["prompt": [["role": "system", "content": system], ["role": "user", "content": "\(p.prompt) \(instruction)"]],
                                             "answer": p.answer]
                return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            }
            try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
            return url
        }
        let trainURL = try write(train, "train.jsonl"), heldOutURL = try write(heldOut, "heldout.jsonl")
        print("1/3  Data: \(train.count) training and \(heldOut.count) held-out 2-digit addition chats (no prompt in both), in \(dataDirectory.path)")
        let config = try resolved(GroupRun.grpo.schema, [
            "seed=\(seed)", "model=\(model)", "output=\(root.appendingPathComponent("grpo").path)",
            "data=\(trainURL.path)", "eval.data=\(heldOutURL.path)", "eval.rows=\(heldOut.count)", "eval.every=20",
            "grpo.steps=\(steps)", "grpo.prompts_per_step=4", "grpo.num_generations=8", "grpo.learning_rate=1e-5",
            "grpo.max_completion_length=16", "checkpoint.every=1000",
        ])
        let (policy, tokenizer) = try OnlineRun(config: config, name: "GRPO").loadModel()
        print("2/3  GRPO on \(model) (\(policy.parameterCount) parameters): \(steps) steps of 4 prompts × 8 samples, lr 1e-5, ≤ 16 new tokens, exact-answer reward")
        let grpo = try GroupRun.grpo.train(config: config, warm: (policy, tokenizer))
        let exported = root.appendingPathComponent("model.gguf")
        let source = URL(fileURLWithPath: model)
        let tokenizerMetadata = LanguageModelLoader.isGGUF(source) ? GGUFExport.tokenizerMetadata(from: try GGUFFile(url: source))
                                                                   : try GGUFExport.tokenizerMetadata(directory: source)
        try GGUFExport.write(policy, tokenizer: tokenizerMetadata, name: source.deletingPathExtension().lastPathComponent + "-nudge-grpo",
                             type: .f16, to: exported)
        let reloaded = try OnlineRun(config: try resolved(GroupRun.grpo.schema, ["model=\(exported.path)"]), name: "export").loadModel()
        let exportedAccuracy = try exactMatchAccuracy(model: reloaded.0, tokenizer: reloaded.1, rows: try OnlineRun(config: config, name: "GRPO").rows().heldOut,
                                                      maxNewTokens: 16)
        print(String(format: "3/3  Exported %@ (f16); its held-out greedy accuracy, reloaded: %.3f", exported.path, exportedAccuracy))
        let seconds = Date().timeIntervalSince(started)
        var lines = ["Real-model demo (seed \(seed)): \(model)", "training chats: \(train.count); held-out chats: \(heldOut.count) (no prompt in both)"]
        if let first = grpo.accuracies.first, let last = grpo.accuracies.last {
            lines.append(String(format: "held-out greedy accuracy: %.3f before → %.3f after %d GRPO steps (%.0f s); exported model.gguf: %.3f",
                                first.1, last.1, grpo.steps, grpo.seconds, exportedAccuracy))
        }
        lines.append(String(format: "total wall time %.0f s; report %@", seconds, grpo.directory.appendingPathComponent("report.html").path))
        try (lines.joined(separator: "\n") + "\n").write(to: root.appendingPathComponent("summary.txt"), atomically: true, encoding: .utf8)
        print(lines.joined(separator: "\n"))
    }

    static func resolved(_ schema: ConfigSchema, _ overrides: [String]) throws -> ResolvedConfig {
        do throws(ConfigError) { return try schema.resolve(overrides: overrides) } catch { throw RunSetupError(error.description) }
    }

    static func report(_ summary: ExperimentSummary) {
        for (name, value) in summary.results { print(String(format: "  %@: %.4f", name, value)) }
        print("Run directory: \(summary.directory.path) (plots: \(summary.plots.joined(separator: ", ")))")
    }
}
