import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import Testing
@testable import NudgeAlign

/// A judge that only compares (no scores): prefers the longer completion, ties equal lengths.
private struct LongerIsBetter: PairwiseJudge {
    var name: String { "longer" }
    func judge(_ pairs: [JudgePair]) -> [PairwiseVerdict] {
        pairs.map { p in
            let (a, b) = (p.first.completion.count, p.second.completion.count)
            return a > b ? .first : (b > a ? .second : .tie)
        }
    }
}

@Suite("Online DPO") struct OnlineDPOTests {
    func sample(_ completion: String, finish: FinishReason = .eos) -> RewardSample {
        RewardSample(prompt: "p", completion: completion, finishReason: finish)
    }

    @Test func theJudgesBestAndWorstFormThePairAndTiesAreSkipped() {
        let count = ClosureReward(name: "sevens") { s in Double(s.completion.filter { $0 == "7" }.count) }
        let samples = ["17", "777", "1", "77",  // group 0: best 1, worst 2
                       "7", "7", "7", "7"].map { sample($0) }  // group 1: all equal
        let groups = judgeGroups(samples, groupSize: 4, judge: RewardJudge(count))
        #expect(groups.map(\.ranking) == [.pair(chosen: 1, rejected: 2), .tie])
        #expect(groups[0].scores == [1, 3, 0, 2] && groups.allSatisfy { $0.failures.isEmpty })
        // The missing-EOS penalty lowers a truncated completion's score before ranking.
        let truncated = [sample("777", finish: .length), sample("7")]
        #expect(judgeGroups(truncated, groupSize: 2, judge: RewardJudge(count), missingEOSPenalty: 5).map(\.ranking)
                == [.pair(chosen: 1, rejected: 0)])
        // A pairwise-only judge ranks by wins over every pair of the group.
        let byLength = judgeGroups(["ab", "abcd", "a"].map { sample($0) }, groupSize: 3, judge: LongerIsBetter())
        #expect(byLength.map(\.ranking) == [.pair(chosen: 1, rejected: 2)])
    }

    @Test func aFailingJudgesRowsAreReportedAndNeverScored() {
        // Scores only completions that are numbers: "x" gets no verdict.
        let numeric = ClosureRewardOptional(name: "numeric") { Double($0.completion) }
        let groups = judgeGroups(["3", "x", "1", "x", "x", "5"].map { sample($0) }, groupSize: 3, judge: RewardJudge(numeric))
        #expect(groups[0].ranking == .pair(chosen: 0, rejected: 2))
        #expect(groups[0].scores == [3, nil, 1] && groups[0].failures.map(\.row) == [1])
        guard case .failed = groups[1].ranking else { Issue.record("one scored completion cannot make a pair"); return }
        #expect(groups[1].failures.map(\.row) == [3, 4] && groups[1].scores == [nil, nil, 5])
    }

    func trainer(seed: UInt64 = 5, judge: any PairwiseJudge, rounds: Int = 0, rows: Int = 3) throws -> OnlineDPOTrainer {
        let (model, tokenizer) = tinyPolicy(seed: seed)
        var config = OnlineDPOConfig()
        config.batchSize = 2
        config.numGenerations = 3
        config.maxNewTokens = 4
        config.learningRate = 3e-3
        config.temperature = 1
        config.steps = 4
        config.iterativeRounds = rounds
        config.seed = 3
        // 3 prompts, 2 per step: the cursor reshuffles mid-step, which a resume must replay.
        return try OnlineDPOTrainer(policy: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).verifiableRows(count: rows, seed: 1),
                                    judge: judge, config: config)
    }

    static var sevens: RewardJudge { RewardJudge(ClosureReward(name: "sevens") { s in Double(s.completion.filter { $0 == "7" }.count) + Double(s.completion.count) / 10 }) }

    @Test func aStepLogsTRLsMetricsAndAnAllTieStepMakesNoUpdate() throws {
        let t = try trainer(judge: Self.sevens)
        let result = try #require(try t.trainStep())
        for name in ["loss", "objective/kl", "objective/entropy", "objective/non_score_reward", "objective/rlhf_reward", "objective/scores",
                     "objective/scores_margin", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                     "logps/chosen", "logps/rejected", "val/contain_eos_token", "beta", "judge/ties", "judge/failed_groups"] {
            #expect(result[name]?.isFinite == true, "\(name)")
        }
        // At the first step the policy is the reference: no KL, rewards 0.
        #expect(abs(result["objective/kl"]!) < 1e-4 && abs(result["rewards/margins"]!) < 1e-5)
        #expect(result["objective/scores_margin"]! > 0)
        #expect(result.samples.count == 6 && result.samples.filter { $0.advantage == 1 }.count == Int(result["judge/pairs"]!))

        let constant = RewardJudge(ClosureReward(name: "constant") { _ in 1 })
        let tied = try trainer(judge: constant)
        let before = tied.policy.parameters().map(\.1.scalars)
        let step = try #require(try tied.trainStep())
        #expect(step["judge/ties"] == 2 && step["judge/pairs"] == 0 && step["loss"] == nil && tied.step == 1)
        #expect(tied.policy.parameters().map(\.1.scalars) == before, "a step with no pair leaves the weights alone")
    }

    @Test func judgeFailuresAreCountedAndHandedOverWithTheirRows() throws {
        let never = RewardJudge(ClosureRewardOptional(name: "never") { _ in nil })
        let t = try trainer(judge: never)
        var reported: [JudgeFailure] = []
        t.onJudgeFailures = { _, failures, samples in
            reported += failures
            #expect(failures.allSatisfy { $0.row < samples.count })
        }
        let step = try #require(try t.trainStep())
        #expect(step["judge/failed_groups"] == 2 && step["judge/failed_rows"] == 6 && step["loss"] == nil)
        #expect(reported.map(\.row) == Array(0..<6) && step.samples.allSatisfy { $0.reward == nil })
    }

    @Test(arguments: [0, 2]) func resumingRepeatsTheUninterruptedRun(rounds: Int) throws {
        func comparable(_ r: OnlineStepResult?) throws -> [String] {
            try #require(r).metrics.filter { $0.0 != "step_time" }.map { "\($0.0)=\($0.1)" }
        }
        let straight = try trainer(judge: Self.sevens, rounds: rounds)
        let uninterrupted = try (1...4).map { _ in try comparable(try straight.trainStep()) }
        let first = try trainer(judge: Self.sevens, rounds: rounds)
        // Stop after step 1: with two rounds of two steps, mid-round (the round's pairs are in the checkpoint).
        try first.trainStep()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-odpo-resume-\(getpid())-\(rounds)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try first.saveCheckpoint(to: directory)
        let resumed = try trainer(judge: Self.sevens, rounds: rounds)
        try resumed.restoreCheckpoint(from: directory)
        #expect(resumed.step == 1)
        let after = try (2...4).map { _ in try comparable(try resumed.trainStep()) }
        #expect(after == Array(uninterrupted[1...]))
        #expect(resumed.policy.parameters().map(\.1.scalars) == straight.policy.parameters().map(\.1.scalars))
        if rounds == 2 {
            // Iterative: the round's second step trains on the pairs sampled at its first (no new samples).
            #expect(uninterrupted[1].contains { $0.hasPrefix("objective/scores=") } == false)
        }
    }

    @Test func theRunResolvesItsKeysAndLossFamily() throws {
        let config = try OnlineDPORun.schema.resolve(overrides: ["online_dpo.loss_type=ipo", "online_dpo.iterative_rounds=3", "online_dpo.beta=0.2"])
        #expect(try DPORun.lossKind(config, section: "online_dpo", key: "loss_type") == .ipo)
        let c = OnlineDPORun.keys.apply(OnlineDPORun.withDefaults(config), to: OnlineDPOConfig())
        #expect(c.iterativeRounds == 3 && c.beta == 0.2 && c.numGenerations == 8 && c.maxNewTokens == 6)
        #expect(throws: RunSetupError.self) {
            try JudgeConfig.judge(try OnlineDPORun.schema.resolve(overrides: ["online_dpo.judge=reward_model"]), "online_dpo",
                                   policy: tinyPolicy().0, tokenizer: tinyPolicy().1)
        }
    }

    @Test(.tags(.learning), .enabled(if: LearningRuns.enabled, LearningRuns.reason))
    func onlineDPORaisesAToyReward() throws {
        // The judge prefers completions with more "7"s; 20 steps at a high learning rate must raise
        // the sampled mean (objective/scores) from a random tiny model.
        let (model, tokenizer) = tinyPolicy(seed: 2)
        var config = OnlineDPOConfig()
        config.batchSize = 4
        config.numGenerations = 4
        config.maxNewTokens = 6
        config.learningRate = 1e-2
        config.temperature = 1
        config.steps = 30
        config.seed = 3
        let sevens = RewardJudge(ClosureReward(name: "sevens") { s in Double(s.completion.filter { $0 == "7" }.count) / 6 })
        let t = try OnlineDPOTrainer(policy: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).verifiableRows(count: 16, seed: 1),
                                     judge: sevens, config: config)
        var scores: [Double] = []
        for _ in 0..<30 { scores.append(try #require(try t.trainStep())["objective/scores"]!) }
        let early = scores.prefix(3).reduce(0, +) / 3, late = scores.suffix(3).reduce(0, +) / 3
        #expect(late > early + 0.2, "\(scores)")
    }
}

/// A reward that may decline to score a sample (nil).
struct ClosureRewardOptional: RewardFunction {
    var name: String
    let score: @Sendable (RewardSample) -> Double?
    init(name: String, _ score: @escaping @Sendable (RewardSample) -> Double?) {
        self.name = name
        self.score = score
    }
    func scores(_ samples: [RewardSample]) throws -> [Double?] { samples.map(score) }
}

@Suite("Rejection-sampling fine-tuning") struct RFTTests {
    func trainer(judge: any PairwiseJudge, threshold: Double = 1) throws -> RFTTrainer {
        let (model, tokenizer) = tinyPolicy(seed: 5)
        var config = RFTConfig()
        config.promptsPerStep = 3
        config.numGenerations = 3
        config.maxNewTokens = 4
        config.threshold = threshold
        config.sft.learningRate = 3e-3
        config.sft.batchSize = 2
        config.sft.epochs = 2
        config.steps = 3
        config.seed = 3
        return try RFTTrainer(policy: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).verifiableRows(count: 4, seed: 1),
                              judge: judge, config: config)
    }

    static var sevens: RewardJudge { RewardJudge(ClosureReward(name: "sevens") { s in Double(s.completion.filter { $0 == "7" }.count) }) }

    @Test func keepsOnlyTheBestCompletionAboveTheThresholdAndTrainsOnIt() throws {
        // Threshold 0: every prompt's best is kept; the kept one has the group's highest score.
        let t = try trainer(judge: Self.sevens, threshold: 0)
        let step = try #require(try t.trainStep())
        #expect(step["rft/kept"] == 3 && step["sft_steps"] == 4 && step["loss"]?.isFinite == true && step["rollouts"] == 9)
        for g in 0..<3 {
            let group = step.samples[(g * 3)..<(g * 3 + 3)]
            let kept = try #require(group.first { $0.advantage == 1 })
            #expect(kept.reward == group.compactMap(\.reward).max())
        }
        // A threshold nothing reaches keeps nothing and leaves the weights alone.
        let strict = try trainer(judge: Self.sevens, threshold: 100)
        let before = strict.policy.parameters().map(\.1.scalars)
        let none = try #require(try strict.trainStep())
        #expect(none["rft/kept"] == 0 && none["loss"] == nil && strict.policy.parameters().map(\.1.scalars) == before)
        // A judge that fails every row: reported, nothing kept.
        let failing = try trainer(judge: RewardJudge(ClosureRewardOptional(name: "never") { _ in nil }), threshold: 0)
        var reported = 0
        failing.onJudgeFailures = { _, f, _ in reported += f.count }
        let failed = try #require(try failing.trainStep())
        #expect(failed["judge/failed_groups"] == 3 && reported == 9 && failed["rft/kept"] == 0)
    }

    @Test func resumingRepeatsTheUninterruptedRun() throws {
        func comparable(_ r: OnlineStepResult?) throws -> [String] {
            try #require(r).metrics.filter { $0.0 != "step_time" }.map { "\($0.0)=\($0.1)" }
        }
        let straight = try trainer(judge: Self.sevens, threshold: 0)
        let uninterrupted = try (1...3).map { _ in try comparable(try straight.trainStep()) }
        let first = try trainer(judge: Self.sevens, threshold: 0)
        try first.trainStep()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-rft-resume-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try first.saveCheckpoint(to: directory)
        let resumed = try trainer(judge: Self.sevens, threshold: 0)
        try resumed.restoreCheckpoint(from: directory)
        let after = try (2...3).map { _ in try comparable(try resumed.trainStep()) }
        #expect(after == Array(uninterrupted[1...]))
        #expect(resumed.policy.parameters().map(\.1.scalars) == straight.policy.parameters().map(\.1.scalars))
    }

    @Test(.tags(.learning), .enabled(if: LearningRuns.enabled, LearningRuns.reason))
    func rftRaisesAToyReward() throws {
        let (model, tokenizer) = tinyPolicy(seed: 2)
        var config = RFTConfig()
        // Only completions with a "7" are kept (the best of 8 per prompt): from a random model that
        // is a handful per round at first, so each round's SFT takes several passes over them.
        config.promptsPerStep = 16
        config.numGenerations = 8
        config.maxNewTokens = 6
        config.threshold = 0.1
        config.sft.learningRate = 1e-2
        config.sft.batchSize = 8
        config.sft.epochs = 4
        config.steps = 12
        config.seed = 3
        let sevens = RewardJudge(ClosureReward(name: "sevens") { s in Double(s.completion.filter { $0 == "7" }.count) / 6 })
        let t = try RFTTrainer(policy: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).verifiableRows(count: 16, seed: 1),
                               judge: sevens, config: config)
        var rewards: [Double] = []
        for _ in 0..<12 { rewards.append(try #require(try t.trainStep())["reward"]!) }
        let early = rewards.prefix(2).reduce(0, +) / 2, late = rewards.suffix(2).reduce(0, +) / 2
        #expect(late > early + 0.2, "\(rewards)")
    }
}

@Suite("Methods lab") struct MethodsLabTests {
    @Test func theQuickComparisonHasEveryMethodWithFiniteNumbers() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-lab-methods-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        // The multi-step task, through the lab's keys: all five methods, PRM-GRPO with its PRM trained first.
        let config = try MethodsLab.schema.resolve(overrides: ["seed=1", "output=\(directory.path)", "task=carries", "quick=true", "rollouts=32"])
        let results = try MethodsLab.run(config: config)
        #expect(results.map(\.comparison.method) == ["offline DPO", "online DPO", "RFT", "GRPO", "PRM-GRPO"])
        #expect(MethodsLab.methods(for: "addition").map(\.name) == ["offline DPO", "online DPO", "RFT", "GRPO"])
        let prmGRPO = try #require(results.last)
        #expect(prmGRPO.comparison.modelsInMemory == 2 && prmGRPO.notes.contains { $0.contains("PRM was trained first") })
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("prm/checkpoints/prm.safetensors").path))
        for r in results {
            let c = r.comparison
            #expect(c.finalGold.isFinite && (0...1).contains(c.finalGold) && c.wallSeconds.isFinite && c.wallSeconds > 0, "\(c)")
            #expect(c.rolloutsGenerated > 0 && c.rolloutsGenerated <= 32 && c.modelsInMemory >= 1, "\(c)")
            #expect(r.accuracies.first?.0 == 0 && r.accuracies.allSatisfy { $0.1.isFinite }, "\(c.method): the curve starts at the warm start")
        }
        let table = try String(contentsOf: directory.appendingPathComponent("table.md"), encoding: .utf8)
        #expect(MethodsLab.methods.allSatisfy { table.contains("| \($0.name) |") } && table.contains("PRM was trained first"))
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("report.html").path))
    }
}
