// Bandit agents and experiments: posterior updates by hand, UCB's and KL-UCB's bounds,
// the gradient bandit's update, determinism, and learning that works (sublinear regret).

import Foundation
import Nudge
import Testing
@testable import NudgeRL
import NudgeReport
import NudgeTensor

@Suite("Bandits") struct BanditTests {
    @Test func thompsonBetaPosteriorCountsSuccessesAndFailures() {
        let agent = ThompsonBeta(arms: 2)
        agent.update(arm: 0, reward: 1)
        agent.update(arm: 0, reward: 1)
        agent.update(arm: 0, reward: 0)
        agent.update(arm: 1, reward: 0)
        #expect(agent.alpha == [3, 1] && agent.beta == [2, 2])
    }

    @Test func thompsonGaussianPosteriorMatchesConjugateFormula() {
        let agent = ThompsonGaussian(arms: 1, priorMean: 0, priorVariance: 1, noiseVariance: 4)
        agent.update(arm: 0, reward: 2)
        agent.update(arm: 0, reward: 4)
        // precision 1 + 2/4 = 1.5; mean (0 + 6/4)/1.5 = 1
        #expect(abs(agent.posteriorPrecisions[0] - 1.5) < 1e-12 && abs(agent.posteriorMeans[0] - 1) < 1e-12)
    }

    @Test func ucbTriesEveryArmFirstThenUsesTheBonus() {
        let agent = UCB(arms: 3, c: 2)
        var arms: [Int] = []
        for _ in 0..<3 { let a = agent.selectArm(); arms.append(a); agent.update(arm: a, reward: Double(a)) }
        #expect(arms == [0, 1, 2])
        // t = 4: scores a + 2√(ln 4 / 1): arm 2 wins.
        #expect(agent.selectArm() == 2)
    }

    @Test func klUCBBoundSolvesTheKLEquation() {
        let q = KLUCB.upperBound(mean: 0.5, pulls: 10, budget: 2)
        #expect(abs(10 * bernoulliKL(0.5, q) - 2) < 1e-6)
        #expect(q > 0.5 && q < 1)
        #expect(KLUCB.upperBound(mean: 1, pulls: 5, budget: 1) == 1)
    }

    @Test func gradientBanditUpdateByHand() {
        let agent = GradientBandit(arms: 2, stepSize: 0.5)
        agent.update(arm: 0, reward: 1)  // baseline becomes 1 → advantage 0
        #expect(agent.preferences == [0, 0])
        agent.update(arm: 1, reward: 3)  // baseline 2, advantage 1, π = (½, ½)
        #expect(agent.preferences == [-0.25, 0.25])
    }

    @Test func exp3ProbabilitiesMixInUniformExploration() {
        let agent = EXP3(arms: 4, gamma: 0.2)
        #expect(agent.probabilities.allSatisfy { abs($0 - 0.25) < 1e-12 })
        agent.update(arm: 0, reward: 1)
        let p = agent.probabilities
        #expect(p[0] > 0.25 && p.allSatisfy { $0 >= 0.05 - 1e-12 } && abs(p.reduce(0, +) - 1) < 1e-12)
    }

    @Test func sameSeedSameRun() {
        func run() -> [Double] {
            runBanditExperiment(runs: 3, steps: 50, seed: 7, makeBandit: { BernoulliBandit(probabilities: [0.2, 0.8], seed: $0) },
                                makeAgent: { ThompsonBeta(arms: 2, seed: $0) }).cumulativeRegret
        }
        #expect(run() == run())
    }

    @Test func thompsonAndReinforceLearnTheBestArm() {
        let p = [0.1, 0.3, 0.5, 0.7, 0.9]
        for make in [{ (s: UInt64) -> any BanditAgent in ThompsonBeta(arms: 5, seed: s) },
                     { (s: UInt64) -> any BanditAgent in REINFORCEBandit(arms: 5, seed: s) }] {
            let curves = runBanditExperiment(runs: 20, steps: 500, seed: 1, makeBandit: { BernoulliBandit(probabilities: p, seed: $0) }, makeAgent: make)
            // Uniform play would lose 0.4 per step (200 over 500 steps).
            #expect(curves.cumulativeRegret.last! < 60, "\(curves.name): regret \(curves.cumulativeRegret.last!)")
            #expect(curves.optimalFraction.suffix(50).reduce(0, +) / 50 > 0.6)
        }
    }

    @Test func regretGrowsSublinearlyForUCBAndKLUCB() {
        let p = [0.45, 0.55]
        for make in [{ (s: UInt64) -> any BanditAgent in UCB(arms: 2, c: 2.0.squareRoot(), seed: s) },
                     { (s: UInt64) -> any BanditAgent in KLUCB(arms: 2, seed: s) }] {
            let c = runBanditExperiment(runs: 20, steps: 4000, seed: 2, makeBandit: { BernoulliBandit(probabilities: p, seed: $0) }, makeAgent: make)
            let r1 = c.cumulativeRegret[999], r4 = c.cumulativeRegret[3999]
            #expect(r4 < 3 * r1, "\(c.name): regret 1000 → \(r1), 4000 → \(r4)")
        }
        #expect(abs(laiRobbinsConstant(probabilities: [0.45, 0.55]) - 0.1 / bernoulliKL(0.45, 0.55)) < 1e-12)
    }

    @Test func linUCBHasSublinearRegretOnALinearProblem() {
        let bandit = LinearGaussianBandit(arms: 4, dimension: 5, noise: 0.1, seed: 3)
        let agent = LinUCB(arms: 4, dimension: 5, alpha: 0.5, seed: 3)
        var regret = [Double]()
        var total = 0.0
        for _ in 0..<3000 {
            let x = bandit.nextContext()
            let means = bandit.expectedRewards
            let a = agent.selectArm(context: x)
            agent.update(context: x, arm: a, reward: bandit.pull(a))
            total += (means.max() ?? 0) - means[a]
            regret.append(total)
        }
        let early = regret[999], late = regret[2999] - regret[1999]
        #expect(late < early / 3, "regret first 1000: \(early), last 1000: \(late)")
    }

    @Test func contextualAgentsBeatChanceOnClassification() {
        for make in [{ LinearThompson(arms: 4, dimension: 5, seed: 1) as any ContextualAgent },
                     { EpsilonGreedyRidge(arms: 4, dimension: 5, seed: 1) as any ContextualAgent },
                     { SoftmaxPolicyAgent(arms: 4, dimension: 5, seed: 1) as any ContextualAgent }] {
            let bandit = ClassificationBandit.blobs(classes: 4, dimension: 5, samples: 500, spread: 0.5, seed: 4)
            let agent = make()
            var late = 0.0
            for t in 0..<2000 {
                let x = bandit.nextContext()
                let a = agent.selectArm(context: x)
                let r = bandit.pull(a)
                agent.update(context: x, arm: a, reward: r)
                if t >= 1500 { late += r }
            }
            #expect(late / 500 > 0.6, "\(agent.name): accuracy \(late / 500)")
        }
    }
}

@Suite("Experiments") struct ExperimentTests {
    func scratch() -> URL { FileManager.default.temporaryDirectory.appendingPathComponent("nudge-lab-\(UUID().uuidString)") }

    @Test func banditExperimentsWriteRunsAndPlots() throws {
        let dir = scratch()
        let a = try BanditLab.thompsonVsReinforce(steps: 60, runs: 4, output: dir.appendingPathComponent("tvr"))
        let b = try BanditLab.testbed(runs: 5, steps: 30, output: dir.appendingPathComponent("testbed"))
        let c = try BanditLab.regret(steps: 300, runs: 3, output: dir.appendingPathComponent("regret"))
        for summary in [a, b, c] {
            for plot in summary.plots {
                let svg = try String(contentsOf: summary.directory.appendingPathComponent(plot), encoding: .utf8)
                #expect(svg.hasPrefix("<svg") || svg.hasPrefix("<?xml"))
            }
            let rows = try MetricsLog.read(summary.directory.appendingPathComponent("metrics.jsonl"))
            #expect(!rows.isEmpty)
            #expect(FileManager.default.fileExists(atPath: summary.directory.appendingPathComponent("config.toml").path))
        }
        let rows = try MetricsLog.read(a.directory.appendingPathComponent("metrics.jsonl"))
        #expect(rows.count == 60 && rows[59].values["thompson/cumulative_regret"] != nil)
    }

    /// The labs' experiments from a configuration, as `nudge bandit|tabular` run them: the schema's
    /// keys are recorded in config.toml, and arm probabilities are checked.
    @Test func labExperimentsRunFromAConfiguration() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let experiment = LabExperiment.thompsonVsReinforce
        let config = try experiment.schema.resolve(overrides: ["runs=2", "steps=10", "output=\(dir.path)"])
        let summary = try experiment.run(config: config)
        #expect(summary.directory.path == dir.path && summary.description.contains("Run directory: \(dir.path)"))
        let recorded = try ConfigDocument.load(path: dir.appendingPathComponent("config.toml").path)
        #expect(try experiment.schema.resolve(file: recorded) == config)
        let bad = try experiment.schema.resolve(overrides: ["probabilities=[0.5, 2]"])
        #expect(throws: RunSetupError.self) { try experiment.check(bad) }
        #expect(LabExperiment.gridWorld.schema.field("output")?.defaultValue == .string("runs/tabular/gridworld"))
    }
}
