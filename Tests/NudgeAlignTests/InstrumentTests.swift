// The seeds' instruments against their formulas at chosen points: the Bradley–Terry link and item
// fit, PPO's clipped objective, DPO's loss and gradient weight, a GRPO group, best-of-n's KL and
// sampler, the gold turnover, the comparison table, and the SVG files the lab writes.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeReport
import NudgeTensor

private func near(_ a: Double, _ b: Double, _ tol: Double = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(abs(a - b) < tol, "\(a) vs \(b)", sourceLocation: sourceLocation)
}

private func sigma(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

@Suite("Instruments") struct InstrumentTests {
    @Test func rewardGapCurveIsTheLogisticAndItsLoss() {
        let at = rewardGapCurve(gaps: [0, 2])
        near(at[0].probability, 0.5)
        near(at[0].loss, log(2.0))
        near(at[1].probability, 0.8808, 1e-4)
        let gaps = instrumentGrid(-6, 6)
        #expect(gaps.count == 121 && gaps.first == -6 && gaps.last == 6)
        for point in rewardGapCurve(gaps: gaps) {
            near(point.probability, sigma(point.gap))
            near(point.loss, -log(sigma(point.gap)))
        }
        let plot = rewardGapPlot(gaps: gaps)
        #expect(plot.series.count == 2 && plot.series[0].y == rewardGapCurve(gaps: gaps).map(\.probability))
    }

    @Test func bradleyTerryFitRecoversTheCenteredTrueRewards() {
        // The seed's case (as in PreferenceLossTests): true rewards 2, 1, 0, −1, 600 comparisons.
        let fit = bradleyTerryFit(trueRewards: [2, 1, 0, -1], comparisons: 600, seed: 7)
        #expect(fit.trueRewards == [1.5, 0.5, -0.5, -1.5])
        #expect(fit.learnedRewards == fit.learnedRewards.sorted(by: >), "ranking \(fit.learnedRewards)")
        near(fit.learnedRewards.reduce(0, +), 0, 1e-5)
        #expect(fit.maxAbsoluteError < 0.4, "\(fit.learnedRewards) vs \(fit.trueRewards)")
        let chart = bradleyTerryFitChart(fit)
        #expect(chart.categories.count == 4 && chart.series.map(\.values) == [fit.trueRewards, fit.learnedRewards])
    }

    @Test func ppoClippedObjectiveAtChosenRatios() {
        let ratios = [0.5, 0.9, 1, 1.1, 1.5]
        let positive = ppoClippedObjective(ratios: ratios, advantage: 1, epsilon: 0.2)
        let negative = ppoClippedObjective(ratios: ratios, advantage: -1, epsilon: 0.2)
        for (a, b) in zip(positive, [0.5, 0.9, 1, 1.1, 1.2]) { near(a, b) }
        for (a, b) in zip(negative, [-0.8, -0.9, -1, -1.1, -1.5]) { near(a, b) }
        // Everywhere on the grid, and for another A and ε: min(r·A, clip(r, 1 − ε, 1 + ε)·A).
        let grid = instrumentGrid(0, 2, count: 201)
        for (advantage, epsilon) in [(1.0, 0.2), (-1.0, 0.2), (0.5, 0.1), (-2.0, 0.3)] {
            for (r, value) in zip(grid, ppoClippedObjective(ratios: grid, advantage: advantage, epsilon: epsilon)) {
                near(value, min(r * advantage, min(max(r, 1 - epsilon), 1 + epsilon) * advantage))
            }
        }
        #expect(ppoClipPlot().series.count == 4)
    }

    @Test func dpoLossAndGradientWeightByHand() {
        // β = 0.1, h = 0, 10, −20: β·h = 0, 1, −2.
        let curve = dpoLossCurve(margins: [0, 10, -20], beta: 0.1)
        near(curve[0].loss, log(2.0)); near(curve[0].gradientWeight, 0.5)
        near(curve[1].scaledMargin, 1)
        near(curve[1].loss, log(1 + exp(-1.0))); near(curve[1].gradientWeight, sigma(-1))
        near(curve[2].loss, log(1 + exp(2.0))); near(curve[2].gradientWeight, 0.8808, 1e-4)
        for beta in [0.1, 1, 2] {
            for point in dpoLossCurve(margins: instrumentGrid(-6, 6, count: 25), beta: beta) {
                near(point.loss, -log(sigma(beta * point.margin)), 1e-4)
                near(point.gradientWeight, sigma(-beta * point.margin), 1e-5)
            }
        }
        let plot = dpoLossPlot(beta: 0.1)
        #expect(plot.series.count == 2)
        near(plot.series[0].x.first!, -6, 1e-9)
    }

    @Test func grpoGroupOfTwoRightAnswers() {
        // The seed's group (1, 0, 0, 1): mean ½, population std ½ → (1, −1, −1, 1).
        #expect(grpoGroupAdvantages(rewards: [1, 0, 0, 1], epsilon: 0) == [1, -1, -1, 1])
        for (a, b) in zip(grpoGroupAdvantages(rewards: [1, 0, 0, 1]), [1.0, -1, -1, 1]) { near(a, b, 1e-3) }
        // TRL's unbiased std √(1/3): ±0.5·√3.
        for (a, b) in zip(grpoGroupAdvantages(rewards: [1, 0, 0, 1], unbiased: true, epsilon: 0), [1.0, -1, -1, 1]) {
            near(a, b * 0.5 * 3.0.squareRoot())
        }
        let chart = grpoGroupChart(rewards: [1, 0, 0, 1])
        #expect(chart.series.count == 3 && chart.series[0].values == [1, 0, 0, 1])
        #expect(chart.series[1].values == grpoGroupAdvantages(rewards: [1, 0, 0, 1]))
    }

    @Test func bestOfNKLFormula() {
        near(bestOfNKL(1), 0, 1e-12)
        near(bestOfNKL(2), log(2.0) - 0.5, 1e-12)
        near(bestOfNKL(16), log(16.0) - 15.0 / 16, 1e-12)
        #expect(bestOfNKLPlot(maxN: 16).series[0].x == [1, 2, 4, 8, 16])
    }

    @Test func bestOfNProxyRewardMonotoneInNOnATinyCase() throws {
        let (model, tokenizer) = tinyPolicy(seed: 3)
        let prompts = ["What is 1 + 2?", "Hi", "Sort the letters: abc", "7"].map {
            OnlinePrompt(ids: tokenizer.encode($0, addSpecialTokens: false), text: $0, answer: nil)
        }
        let ascii = ClosureReward(name: "ascii") { s in
            Double(s.completionIDs.filter { $0 < 128 }.count) / Double(max(1, s.completionIDs.count))
        }
        let length = ClosureReward(name: "length") { s in Double(s.completionIDs.count) }
        let ns = [1, 2, 4, 8]
        let points = try bestOfN(policy: model, tokenizer: tokenizer, prompts: prompts, n: ns, proxy: ascii, gold: length,
                                 maxNewTokens: 6, seed: 5)
        #expect(points.map(\.n) == ns)
        for (a, b) in zip(points, points.dropFirst()) {
            #expect(a.meanProxy <= b.meanProxy)
            for (x, y) in zip(a.pickedProxy, b.pickedProxy) { #expect(x <= y, "n = \(a.n) → \(b.n): \(x) > \(y)") }
        }
        #expect(points.last!.meanProxy > points[0].meanProxy, "\(points.map(\.meanProxy))")
        near(points[3].sqrtKL, bestOfNKL(8).squareRoot(), 1e-12)
        // The same picks from one direct sample (all prompts fit in one batch, so it uses `seed`).
        var config = GenerationConfig()
        config.maxNewTokens = 6
        config.eosTokenID = tokenizer.eosTokenID
        config.padTokenID = Collator.padID(for: tokenizer)
        config.seed = 5
        let rollout = try Rollout.sample(model: model, tokenizer: tokenizer, prompts: prompts, repeats: 8, generation: config)
        let proxy = try ascii.scores(rollout.samples).map { $0! }, gold = try length.scores(rollout.samples).map { $0! }
        for point in points {
            for p in prompts.indices {
                let group = Array((p * 8)..<(p * 8 + point.n))
                let best = group.first { proxy[$0] == group.map { proxy[$0] }.max()! }!
                #expect(point.pickedProxy[p] == proxy[best] && point.pickedGold[p] == gold[best])
            }
            near(point.meanGold, point.pickedGold.reduce(0, +) / 4, 1e-12)
        }
    }

    @Test func goldTurnoverOnHandMadeCurves() {
        let sqrtKL = [0, 0.5, 1, 1.5, 2]
        let turnover = goldTurnover(sqrtKL: sqrtKL, gold: [0, 0.3, 0.5, 0.4, 0.1])
        #expect(turnover?.index == 2 && turnover?.sqrtKL == 1)
        #expect(goldTurnover(sqrtKL: sqrtKL, gold: [0, 0.1, 0.2, 0.3, 0.4]) == nil)  // still rising
        #expect(goldTurnover(sqrtKL: sqrtKL, gold: [0, .nan, 0.5, 0.5, .nan])?.index == 2)  // first of a tie; NaN skipped
        #expect(goldTurnover(sqrtKL: [], gold: []) == nil)

        let plot = overoptimizationPlot(series: [("PPO", sqrtKL, [0, 0.4, 0.8, 1.2, 1.6], [0, 0.3, 0.5, 0.4, 0.1]),
                                                 ("best-of-n", sqrtKL, [0, 0.3, 0.6, 0.9, 1.2], [0, 0.2, 0.3, 0.35, 0.4])])
        // Gold and proxy per series, plus the PPO turnover marker; best-of-n has no turnover yet.
        #expect(plot.series.map(\.name) == ["PPO: gold", "PPO: proxy", "", "best-of-n: gold", "best-of-n: proxy"])
        #expect(plot.series[1].dash == .dashed && plot.series[0].dash == .solid)
        #expect(plot.series[0].color == plot.series[1].color && plot.series[0].color != plot.series[3].color)
        #expect(plot.series[2].x == [1] && plot.series[2].y == [0.5])
        #expect(plot.referenceLines.map(\.value) == [1])
        #expect(plot.renderSVG().contains("PPO: gold peak"))

        let bon = bestOfNSeries("BoN", [BestOfNPoint(n: 4, kl: bestOfNKL(4), meanProxy: 0.7, meanGold: 0.2, pickedProxy: [], pickedGold: [])])
        #expect(bon.label == "BoN" && bon.sqrtKL == [bestOfNKL(4).squareRoot()] && bon.proxy == [0.7] && bon.gold == [0.2])
    }

    @Test func methodComparisonTables() {
        let rows = [MethodComparison(method: "PPO-RLHF", modelsInMemory: 4, rolloutsGenerated: 2048, wallSeconds: 95.26, finalGold: 0.61234),
                    MethodComparison(method: "DPO|offline", modelsInMemory: 2, rolloutsGenerated: 0, wallSeconds: 12, finalGold: 0.5)]
        let lines = MethodComparison.markdownTable(rows).split(separator: "\n").map(String.init)
        #expect(lines == [
            "| method | models in memory | rollouts generated | wall time (s) | final gold reward |",
            "| --- | ---: | ---: | ---: | ---: |",
            "| PPO-RLHF | 4 | 2048 | 95.3 | 0.612 |",
            "| DPO\\|offline | 2 | 0 | 12.0 | 0.500 |",
        ])
        let table = MethodComparison.htmlTable(rows)
        #expect(table.header.count == 5 && table.rows[0] == ["PPO-RLHF", "4", "2048", "95.3", "0.612"])
        var report = HTMLReport(title: "comparison")
        report.tables.append(table)
        #expect(report.render().contains("DPO|offline"))
    }

    @Test func writeAllWritesSVGFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-instruments-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let names = try InstrumentsLab.writeAll(to: directory, seed: 7)
        #expect(names.count == 6 && Set(names).count == 6)
        for name in names {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            #expect(!text.isEmpty && text.contains("<svg"), "\(name)")
        }
    }
}
