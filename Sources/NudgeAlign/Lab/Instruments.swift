// The seeds' instruments (issue 8): the small pictures that explain each post-training method —
// the Bradley–Terry link and item fit (R6.1), PPO's clipped objective, DPO's loss and gradient
// weight, a GRPO group's advantages, best-of-n (its KL and a sampler), over-optimization curves
// with the gold turnover, and the R6.2 method-comparison table.
//
// Each instrument is a pure function that computes its numbers through the function training
// calls (bradleyTerryLoss, clippedSurrogateTerms, preferenceLoss, groupRelativeAdvantages,
// Rollout.sample), so a picture cannot drift from the code it explains; separate functions draw
// them as NudgeReport plots.

import Foundation
import NudgeLM
import NudgeConfig
import NudgeReport
import NudgePolicyGradient
import NudgeTensor

/// `count` evenly spaced values from `lower` to `upper`, both included (the instruments' x grids).
public func instrumentGrid(_ lower: Double, _ upper: Double, count: Int = 121) -> [Double] {
    guard count > 1 else { return [lower] }
    // Computed from the index rather than accumulated, so grid points such as 0.8 land exactly.
    return (0..<count).map { lower + (upper - lower) * Double($0) / Double(count - 1) }
}

// MARK: - R6.1: the Bradley–Terry link and the item-level fit

/// The Bradley–Terry model at one reward gap Δ = r_w − r_l.
public struct RewardGapPoint: Sendable, Equatable {
    public var gap: Double
    /// P(y_w ≻ y_l) = σ(Δ).
    public var probability: Double
    /// The reward-model loss −log σ(Δ).
    public var loss: Double
}

/// σ(Δ) and −log σ(Δ) at each gap. The loss is `bradleyTerryLoss` on one pair (r_w, r_l) = (Δ, 0)
/// and σ(Δ) = exp(−loss), so the curve is the one reward-model training minimizes.
public func rewardGapCurve(gaps: [Double]) -> [RewardGapPoint] {
    gaps.map { gap in
        let loss = Double(bradleyTerryLoss(chosen: Tensor([Float(gap)]), rejected: Tensor([0])).loss.item())
        return RewardGapPoint(gap: gap, probability: Foundation.exp(-loss), loss: loss)
    }
}

/// σ(Δ) and −log σ(Δ) against the reward gap, with P = ½ and ln 2 marked at Δ = 0.
public func rewardGapPlot(gaps: [Double] = instrumentGrid(-6, 6)) -> LinePlot {
    let curve = rewardGapCurve(gaps: gaps)
    var plot = LinePlot(title: "Bradley–Terry: P(y_w ≻ y_l) = σ(Δ) and the loss −log σ(Δ)",
                        xLabel: "reward gap Δ = r_w − r_l", yLabel: "value")
    plot.add(.line("σ(Δ)", x: gaps, y: curve.map(\.probability)))
    plot.add(.line("−log σ(Δ)", x: gaps, y: curve.map(\.loss)))
    plot.add(.vertical(0, label: "Δ = 0: σ = ½, loss = ln 2"))
    return plot
}

/// Learned against true item rewards from sampled comparisons.
public struct BradleyTerryFit: Sendable {
    /// The true rewards shifted to mean 0 (the model sees only differences, so this is what a fit can recover).
    public var trueRewards: [Double]
    /// The fitted rewards (mean 0).
    public var learnedRewards: [Double]
    public var comparisons: Int
    public var finalLoss: Double

    /// The largest |learned − true| over the items.
    public var maxAbsoluteError: Double {
        zip(learnedRewards, trueRewards).map { abs($0 - $1) }.max() ?? 0
    }
}

/// Samples `comparisons` pairs from the Bradley–Terry model with `trueRewards` and fits one reward
/// per item (`sampleComparisons` + `fitItemRewards`). The default 500 Adam steps leave the fit
/// where 2000 would for the seeds' rewards (2, 1, 0, −1: converged by about 200) at a quarter of the cost.
public func bradleyTerryFit(trueRewards: [Double], comparisons: Int = 600, seed: UInt64 = 7, steps: Int = 500)
    -> BradleyTerryFit {
    let pairs = sampleComparisons(trueRewards: trueRewards, count: comparisons, seed: seed)
    let (learned, loss) = fitItemRewards(comparisons: pairs, itemCount: trueRewards.count, steps: steps)
    let mean = trueRewards.reduce(0, +) / Double(max(trueRewards.count, 1))
    return BradleyTerryFit(trueRewards: trueRewards.map { $0 - mean }, learnedRewards: learned,
                           comparisons: comparisons, finalLoss: Double(loss))
}

/// True and learned rewards per item, side by side.
public func bradleyTerryFitChart(_ fit: BradleyTerryFit) -> BarChart {
    var chart = BarChart(title: "Bradley–Terry fit from \(fit.comparisons) sampled comparisons (both centered)",
                         xLabel: "item", yLabel: "reward", categories: fit.trueRewards.indices.map { "item \($0 + 1)" })
    chart.add(BarSeries("true", values: fit.trueRewards))
    chart.add(BarSeries("learned", values: fit.learnedRewards))
    chart.showsValues = true
    return chart
}

// MARK: - PPO's clipped objective

/// L(r) = min(r·A, clip(r, 1 − ε, 1 + ε)·A) at each ratio r, computed by `clippedSurrogateTerms`
/// (which returns −L per element, the quantity training minimizes) and negated back.
public func ppoClippedObjective(ratios: [Double], advantage: Double, epsilon: Double = 0.2) -> [Double] {
    let terms = withoutGradients {
        clippedSurrogateTerms(ratio: Tensor(ratios.map(Float.init)),
                              advantages: Tensor(repeating: Float(advantage), shape: [ratios.count]),
                              clipLow: Float(epsilon))
    }
    return terms.scalars.map { -Double($0) }
}

/// The clipped objective against r for A = +1 and A = −1, with the unclipped r·A faint and dotted
/// and the clip range 1 ± ε marked: beyond it, on the side that would raise the objective, the
/// curve goes flat (no gradient), which is what keeps an update near the old policy.
public func ppoClipPlot(ratios: [Double] = instrumentGrid(0, 2, count: 201), epsilon: Double = 0.2) -> LinePlot {
    var plot = LinePlot(title: "PPO clipped objective min(r·A, clip(r, 1 ± ε)·A), ε = \(compactNumber(epsilon))",
                        xLabel: "probability ratio r = π_θ / π_old", yLabel: "objective L(r)")
    for (advantage, color) in [(1.0, PlotColor.palette[0]), (-1.0, PlotColor.palette[3])] {
        let sign = advantage > 0 ? "+1" : "−1"
        plot.add(.line("A = \(sign)", x: ratios, y: ppoClippedObjective(ratios: ratios, advantage: advantage, epsilon: epsilon),
                       color: color, lineWidth: 2.25))
        plot.add(.line("r·A, A = \(sign) (unclipped)", x: ratios, y: ratios.map { $0 * advantage }, color: color,
                       dash: .dotted, lineWidth: 1))
    }
    plot.add(.vertical(1 - epsilon, label: "1 − ε"))
    plot.add(.vertical(1 + epsilon, label: "1 + ε"))
    return plot
}

// MARK: - DPO's loss and gradient weight

/// DPO at one log-ratio margin h = (log π_w − log π_ref,w) − (log π_l − log π_ref,l).
public struct DPOLossPoint: Sendable, Equatable {
    public var margin: Double
    /// β·h, the implicit reward margin.
    public var scaledMargin: Double
    /// −log σ(β·h).
    public var loss: Double
    /// σ(−β·h): how strongly a pair pushes (∂loss/∂log π_w = −β·σ(−β·h)). Near 1 where the implicit
    /// reward ranks the pair wrongly, near 0 once it ranks it right by a wide margin.
    public var gradientWeight: Double
}

/// The DPO loss and its gradient weight at each margin h, from `preferenceLoss(.sigmoid(), ...)` on
/// one pair per point (log π_w = h, everything else 0); the weight is read off autograd.
public func dpoLossCurve(margins: [Double], beta: Double) -> [DPOLossPoint] {
    margins.map { h in
        let (loss, gradients) = valueAndGrad([Tensor([Float(h)])]) { x in
            preferenceLoss(.sigmoid(), beta: Float(beta),
                           PairedLogProbs(chosen: x[0], rejected: Tensor([0]), referenceChosen: Tensor([0]),
                                          referenceRejected: Tensor([0]), chosenLengths: [1], rejectedLengths: [1])).loss
        }
        return DPOLossPoint(margin: h, scaledMargin: beta * h, loss: Double(loss.item()),
                            gradientWeight: -Double(gradients[0].item()) / beta)
    }
}

/// −log σ(β·h) and σ(−β·h) against the scaled margin β·h (computed at h = x/β, so the β that
/// training uses goes through `preferenceLoss`).
public func dpoLossPlot(scaledMargins: [Double] = instrumentGrid(-6, 6), beta: Double = 0.1) -> LinePlot {
    let curve = dpoLossCurve(margins: scaledMargins.map { $0 / beta }, beta: beta)
    var plot = LinePlot(title: "DPO: loss −log σ(β·h) and gradient weight σ(−β·h), β = \(compactNumber(beta))",
                        xLabel: "scaled log-ratio margin β·h", yLabel: "value")
    plot.add(.line("loss −log σ(β·h)", x: curve.map(\.scaledMargin), y: curve.map(\.loss)))
    plot.add(.line("gradient weight σ(−β·h)", x: curve.map(\.scaledMargin), y: curve.map(\.gradientWeight), dash: .dashed))
    plot.add(.vertical(0, label: "policy = reference"))
    return plot
}

// MARK: - A GRPO group

/// GRPO advantages (r_i − mean) / (std + ε) of one group, by `groupRelativeAdvantages`. `unbiased`
/// picks TRL's G − 1 std; the default is the population std of the seeds' worked example.
public func grpoGroupAdvantages(rewards: [Double], unbiased: Bool = false, epsilon: Double = 1e-4) -> [Double] {
    guard !rewards.isEmpty else { return [] }
    return groupRelativeAdvantages(rewards: rewards.map(Optional.some), groupSize: rewards.count, scaling: .group,
                                   unbiased: unbiased, epsilon: epsilon).advantages
}

/// A group's rewards and advantages per completion (population std, and TRL's unbiased std).
public func grpoGroupChart(rewards: [Double], epsilon: Double = 1e-4) -> BarChart {
    var chart = BarChart(title: "One GRPO group: rewards and group-relative advantages (G = \(rewards.count))",
                         xLabel: "completion", yLabel: "value", categories: rewards.indices.map { "o\($0 + 1)" })
    chart.add(BarSeries("reward", values: rewards))
    chart.add(BarSeries("advantage (population std)", values: grpoGroupAdvantages(rewards: rewards, epsilon: epsilon)))
    chart.add(BarSeries("advantage (unbiased std, TRL)",
                        values: grpoGroupAdvantages(rewards: rewards, unbiased: true, epsilon: epsilon)))
    chart.showsValues = true
    return chart
}

// MARK: - Best-of-n

/// The KL of the best-of-n policy from the base policy, log n − (n − 1)/n (Stiennon et al. 2020;
/// an upper bound in general, exact for continuous rewards without ties).
public func bestOfNKL(_ n: Int) -> Double {
    precondition(n >= 1, "best-of-n needs n ≥ 1")
    return Foundation.log(Double(n)) - Double(n - 1) / Double(n)
}

/// KL_bon(n) against n (log axis).
public func bestOfNKLPlot(maxN: Int = 256) -> LinePlot {
    let ns = (0...Int(Foundation.log2(Double(max(maxN, 1))))).map { 1 << $0 }
    var plot = LinePlot(title: "Best-of-n: KL(π_bon ‖ π) = log n − (n − 1)/n", xLabel: "n", yLabel: "KL (nats)",
                        xScale: .log)
    plot.add(PlotSeries("KL_bon(n)", x: ns.map(Double.init), y: ns.map(bestOfNKL), marker: .circle))
    return plot
}

/// The best-of-n policy at one n, over a set of prompts.
public struct BestOfNPoint: Sendable {
    public var n: Int
    /// log n − (n − 1)/n.
    public var kl: Double
    public var sqrtKL: Double { kl.squareRoot() }
    /// Mean proxy score of the picked completions.
    public var meanProxy: Double
    /// Mean gold score of the picked completions.
    public var meanGold: Double
    /// Per prompt: the picked completion's proxy score (NaN where the proxy scored none of the n).
    public var pickedProxy: [Double]
    /// Per prompt: the picked completion's gold score (NaN where gold gives none).
    public var pickedGold: [Double]
}

/// Best-of-n against a proxy reward: for each prompt, samples N = max(n) completions at temperature 1
/// (`Rollout.sample`), and for each n picks the highest proxy score among the first n of them,
/// reporting the mean proxy and gold scores of the picks.
///
/// The n values share nested prefixes of one sample, so the picked proxy score cannot fall as n
/// grows (per prompt) and the whole curve costs one sampling pass. Ties go to the earlier sample;
/// a nil proxy score is never picked over a scored one, and nil scores are left out of the means.
/// Prompts are sampled in batches of about `batchSize` sequences, batch k with seed `seed + k`.
public func bestOfN(policy: any CausalLanguageModel, tokenizer: any Tokenizer, prompts: [OnlinePrompt], n: [Int],
                    proxy: any RewardFunction, gold: any RewardFunction, maxNewTokens: Int = 32, seed: UInt64 = 0,
                    batchSize: Int = 256) throws -> [BestOfNPoint] {
    precondition(n.allSatisfy { $0 >= 1 }, "best-of-n needs n ≥ 1")
    guard let samplesPerPrompt = n.max(), !prompts.isEmpty else { return [] }
    var config = GenerationConfig(tokenizer: tokenizer, maxNewTokens: maxNewTokens)
    var proxyScores: [Double?] = [], goldScores: [Double?] = []
    let promptsPerBatch = max(1, batchSize / samplesPerPrompt)
    for (k, start) in stride(from: 0, to: prompts.count, by: promptsPerBatch).enumerated() {
        config.seed = seed &+ UInt64(k)
        let chunk = Array(prompts[start..<min(start + promptsPerBatch, prompts.count)])
        let rollout = try Rollout.sample(model: policy, tokenizer: tokenizer, prompts: chunk, repeats: samplesPerPrompt,
                                     generation: config)
        proxyScores += try checkedScores(proxy, rollout.samples)
        goldScores += try checkedScores(gold, rollout.samples)
    }
    return n.map { count in
        var pickedProxy: [Double] = [], pickedGold: [Double] = []
        for p in prompts.indices {
            let group = (p * samplesPerPrompt)..<(p * samplesPerPrompt + count)
            var best = group.lowerBound
            for i in group where (proxyScores[i] ?? -.infinity) > (proxyScores[best] ?? -.infinity) { best = i }
            pickedProxy.append(proxyScores[best] ?? .nan)
            pickedGold.append(goldScores[best] ?? .nan)
        }
        return BestOfNPoint(n: count, kl: bestOfNKL(count), meanProxy: meanSkippingNaN(pickedProxy),
                            meanGold: meanSkippingNaN(pickedGold), pickedProxy: pickedProxy, pickedGold: pickedGold)
    }
}

/// `function`'s scores, one per sample (else `RewardError.wrongCount`).
func checkedScores(_ function: any RewardFunction, _ samples: [RewardSample]) throws -> [Double?] {
    let scores = try function.scores(samples)
    guard scores.count == samples.count else {
        throw RewardError.wrongCount(function: function.name, expected: samples.count, got: scores.count)
    }
    return scores
}

private func meanSkippingNaN(_ values: [Double]) -> Double {
    let finite = values.filter { !$0.isNaN }
    return finite.isEmpty ? .nan : finite.reduce(0, +) / Double(finite.count)
}

// MARK: - Over-optimization curves

/// One method's over-optimization curve: proxy and gold reward against √KL from the reference.
public typealias OveroptimizationSeries = (label: String, sqrtKL: [Double], proxy: [Double], gold: [Double])

/// A best-of-n sweep as an over-optimization series (x = √KL_bon(n)).
public func bestOfNSeries(_ label: String, _ points: [BestOfNPoint]) -> OveroptimizationSeries {
    (label, points.map(\.sqrtKL), points.map(\.meanProxy), points.map(\.meanGold))
}

/// Where the gold reward peaks: the index and √KL of its maximum (the first, on ties; NaN points
/// are skipped). nil when there is no finite point or the maximum is the last point, i.e. gold is
/// still rising and no turnover has been seen.
public func goldTurnover(sqrtKL: [Double], gold: [Double]) -> (index: Int, sqrtKL: Double)? {
    let count = min(sqrtKL.count, gold.count)
    var best: Int?
    for i in 0..<count where gold[i].isFinite && sqrtKL[i].isFinite {
        if best == nil || gold[i] > gold[best!] { best = i }
    }
    let lastFinite = (0..<count).last { gold[$0].isFinite && sqrtKL[$0].isFinite }
    guard let best, best != lastFinite else { return nil }
    return (best, sqrtKL[best])
}

/// Gold (solid) and proxy (dashed) reward against √KL, one color per series, with each series'
/// gold turnover marked by a diamond and a dotted vertical line.
public func overoptimizationPlot(series: [OveroptimizationSeries],
                                 title: String = "Reward over-optimization: proxy vs gold reward") -> LinePlot {
    var plot = LinePlot(title: title, xLabel: "√KL(π ‖ π_ref)", yLabel: "reward")
    for (i, s) in series.enumerated() {
        let color = PlotColor.palette[i % PlotColor.palette.count]
        plot.add(.line("\(s.label): gold", x: s.sqrtKL, y: s.gold, color: color, lineWidth: 2.25))
        plot.add(.line("\(s.label): proxy", x: s.sqrtKL, y: s.proxy, color: color, dash: .dashed))
        if let turnover = goldTurnover(sqrtKL: s.sqrtKL, gold: s.gold) {
            // An unnamed series stays out of the legend; the reference line carries the label.
            plot.add(.scatter("", x: [turnover.sqrtKL], y: [s.gold[turnover.index]], color: color, marker: .diamond))
            plot.add(.vertical(turnover.sqrtKL, label: series.count > 1 ? "\(s.label): gold peak" : "gold peak",
                               color: color, dash: .dotted))
        }
    }
    return plot
}

// MARK: - R6.2: the method comparison

/// One row of the R6.2 comparison of post-training methods at a matched budget.
public struct MethodComparison: Sendable, Equatable {
    public var method: String
    /// Models held in memory during training (e.g. PPO-RLHF: policy, reference, reward, value = 4).
    public var modelsInMemory: Int
    /// Completions sampled during training (0 for offline methods such as DPO).
    public var rolloutsGenerated: Int
    public var wallSeconds: Double
    /// The gold reward of the final policy.
    public var finalGold: Double

    public init(method: String, modelsInMemory: Int, rolloutsGenerated: Int, wallSeconds: Double, finalGold: Double) {
        self.method = method
        self.modelsInMemory = modelsInMemory
        self.rolloutsGenerated = rolloutsGenerated
        self.wallSeconds = wallSeconds
        self.finalGold = finalGold
    }

    static let header = ["method", "models in memory", "rollouts generated", "wall time (s)", "final gold reward"]

    var cells: [String] {
        [method, String(modelsInMemory), String(rolloutsGenerated), String(format: "%.1f", wallSeconds),
         String(format: "%.3f", finalGold)]
    }

    /// The rows as a GitHub-flavored markdown table (numbers right-aligned).
    public static func markdownTable(_ rows: [MethodComparison]) -> String {
        func line(_ cells: [String]) -> String {
            "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
        }
        let rule = "|" + ([" --- "] + Array(repeating: " ---: ", count: header.count - 1)).joined(separator: "|") + "|"
        return ([line(header), rule] + rows.map { line($0.cells) }).joined(separator: "\n") + "\n"
    }

    /// The rows as a table for an `HTMLReport` (`report.tables.append(...)`).
    public static func htmlTable(_ rows: [MethodComparison], title: String = "Method comparison (R6.2)")
        -> HTMLReport.Table {
        HTMLReport.Table(title: title, header: header, rows: rows.map(\.cells), numericColumns: [1, 2, 3, 4])
    }
}

// MARK: - Writing them all

/// The instruments as SVG files.
public enum InstrumentsLab {
    /// Writes the instruments that need no language model into `directory` (created if needed):
    /// the Bradley–Terry link and item fit (seeded by `seed`), PPO's clip, DPO's loss and weight,
    /// a GRPO group and the best-of-n KL. Returns the file names written.
    public static func writeAll(to directory: URL, seed: UInt64) throws -> [String] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // The seeds' examples: four responses with rewards 2, 1, 0, −1; a group of four with two right answers.
        let plots: [(String, any SVGRenderable)] = [
            ("bradley_terry_link.svg", rewardGapPlot()),
            ("bradley_terry_fit.svg", bradleyTerryFitChart(bradleyTerryFit(trueRewards: [2, 1, 0, -1], seed: seed))),
            ("ppo_clip.svg", ppoClipPlot()),
            ("dpo_loss.svg", dpoLossPlot()),
            ("grpo_group.svg", grpoGroupChart(rewards: [1, 0, 0, 1])),
            ("best_of_n_kl.svg", bestOfNKLPlot()),
        ]
        for (name, plot) in plots { try plot.write(to: directory.appendingPathComponent(name)) }
        return plots.map(\.0)
    }

    /// Writes the instruments (`writeAll`) and report.html, a page showing them, into `directory`;
    /// returns the page and the number of instruments on it.
    public static func writeReport(to directory: URL, seed: UInt64) throws -> (page: URL, instruments: Int) {
        var page = HTMLReport(title: "The seeds' instruments")
        for name in try writeAll(to: directory, seed: seed) {
            page.images.append(.init(caption: caption(name), svgData: try Data(contentsOf: directory.appendingPathComponent(name))))
        }
        page.notes = ["Each curve is computed from its formula at the plotted points (seed \(seed) for the Bradley–Terry fit)."]
        let url = directory.appendingPathComponent("report.html")
        try page.write(to: url)
        return (url, page.images.count)
    }

    /// The caption of an instrument's file ("ppo_clip.svg" → "ppo clip").
    public static func caption(_ name: String) -> String {
        name.replacingOccurrences(of: ".svg", with: "").replacingOccurrences(of: "_", with: " ")
    }
}
