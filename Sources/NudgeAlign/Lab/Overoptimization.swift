// Reward over-optimization, measured (Gao, Schulman & Hilton 2022): a policy optimized against a
// proxy reward is probed on fixed prompts for its proxy reward, its gold reward and its KL from the
// reference, so gold and proxy can be drawn against √KL for best-of-n and for RL alike.
//
// The KL is the sequence-level KL(π ‖ π_ref) in nats, estimated with k1 on completions sampled from
// π at temperature 1: E_{y∼π}[Σ_t log π(y_t | ·) − log π_ref(y_t | ·)]. Both log-probs come from the
// same forward code, so a policy equal to its reference measures exactly 0.

import Foundation
import NudgeLM
import NudgePolicyGradient
import NudgeTensor

/// One probe of a policy: its KL from the reference and its proxy and gold rewards.
public struct OveroptimizationProbe: Sendable, Equatable {
    /// The optimizer step the probe was taken at (0: before training).
    public var step: Int
    /// Sequence KL(π ‖ π_ref) in nats per completion (k1 estimate; can dip below 0 by sampling noise).
    public var kl: Double
    /// √max(KL, 0): the x-axis of the over-optimization curves.
    public var sqrtKL: Double { max(kl, 0).squareRoot() }
    /// Mean proxy reward of the samples (nil scores skipped).
    public var proxy: Double
    /// Mean gold reward of the samples (nil scores skipped).
    public var gold: Double
    /// Mean completion length in tokens (EOS included).
    public var meanLength: Double

    public init(step: Int, kl: Double, proxy: Double, gold: Double, meanLength: Double) {
        self.step = step
        self.kl = kl
        self.proxy = proxy
        self.gold = gold
        self.meanLength = meanLength
    }

    /// The probe as metrics (`probe/…`).
    public var metrics: [(String, Double)] {
        [("probe/kl", kl), ("probe/sqrt_kl", sqrtKL), ("probe/proxy", proxy), ("probe/gold", gold), ("probe/mean_length", meanLength)]
    }
}

/// Samples `samplesPerPrompt` completions per prompt from `policy` at temperature 1 (seeded), scores
/// them with `proxy` and `gold`, and estimates the sequence KL to `reference`.
public func probeOveroptimization(policy: any CausalLanguageModel, reference: any CausalLanguageModel, tokenizer: any Tokenizer,
                                  prompts: [OnlinePrompt], samplesPerPrompt: Int, proxy: any RewardFunction,
                                  gold: any RewardFunction, maxNewTokens: Int, seed: UInt64, step: Int = 0,
                                  batchSize: Int = 256) throws -> OveroptimizationProbe {
    precondition(samplesPerPrompt >= 1, "a probe needs at least one sample per prompt")
    var config = GenerationConfig(tokenizer: tokenizer, maxNewTokens: maxNewTokens)
    var kls: [Double] = [], proxies: [Double?] = [], golds: [Double?] = [], lengths: [Int] = []
    let promptsPerBatch = max(1, batchSize / samplesPerPrompt)
    for (k, start) in stride(from: 0, to: prompts.count, by: promptsPerBatch).enumerated() {
        config.seed = seed &+ UInt64(k)
        let chunk = Array(prompts[start..<min(start + promptsPerBatch, prompts.count)])
        let rollout = try Rollout.sample(model: policy, tokenizer: tokenizer, prompts: chunk, repeats: samplesPerPrompt, generation: config)
        kls += sequenceKL(rollout, policy: policy, reference: reference)
        proxies += try checkedScores(proxy, rollout.samples)
        golds += try checkedScores(gold, rollout.samples)
        lengths += rollout.completions.map(\.count)
    }
    func mean(_ v: [Double?]) -> Double {
        let x = v.compactMap { $0 }
        return x.isEmpty ? .nan : x.reduce(0, +) / Double(x.count)
    }
    return OveroptimizationProbe(step: step, kl: mean(kls), proxy: mean(proxies), gold: mean(golds),
                                 meanLength: mean(lengths.map { Double($0) }))
}

/// Per sample: Σ over completion tokens of log π − log π_ref (temperature 1).
func sequenceKL(_ rollout: Rollout, policy: any CausalLanguageModel, reference: any CausalLanguageModel) -> [Double] {
    let mask = rollout.shiftedMask()
    let logP = rollout.logProbs(policy, temperature: 1).scalars
    let logQ = rollout.logProbs(reference, temperature: 1).scalars
    let width = mask.count / max(rollout.count, 1)
    return (0..<rollout.count).map { r in
        var sum = 0.0
        for i in (r * width)..<((r + 1) * width) where mask[i] != 0 { sum += Double(logP[i]) - Double(logQ[i]) }
        return sum
    }
}

/// An RL run's probes as an over-optimization series (x = √KL).
public func probeSeries(_ label: String, _ probes: [OveroptimizationProbe]) -> OveroptimizationSeries {
    (label, probes.map(\.sqrtKL), probes.map(\.proxy), probes.map(\.gold))
}

/// A reward that grows by `perToken` for each completion token (EOS included): the slight length
/// preference reward models are known to pick up, added to a score to make a length-biased proxy.
public struct LengthBonus: RewardFunction {
    public var name = "length_bonus"
    public var perToken: Double

    public init(perToken: Double) { self.perToken = perToken }

    public func scores(_ samples: [RewardSample]) throws -> [Double?] {
        samples.map { perToken * Double($0.completionIDs.count) }
    }
}

/// The over-optimization summary of one run: where gold peaked and how far proxy and gold moved.
public struct OveroptimizationSummary: Sendable, Equatable {
    public var label: String
    public var finalKL: Double
    public var proxyChange: Double
    public var goldChange: Double
    /// Gold's highest value and the √KL where it was reached.
    public var peakGold: Double
    public var peakSqrtKL: Double
    /// True when gold peaked before the last probe (it turned over).
    public var turnedOver: Bool

    /// Summarizes probes in order (the first is the starting point).
    public init(label: String, probes: [OveroptimizationProbe]) {
        self.label = label
        let first = probes.first, last = probes.last
        finalKL = last?.kl ?? .nan
        proxyChange = (last?.proxy ?? .nan) - (first?.proxy ?? .nan)
        goldChange = (last?.gold ?? .nan) - (first?.gold ?? .nan)
        let series = probeSeries(label, probes)
        var peak: Int?
        for i in probes.indices where probes[i].gold.isFinite && (peak == nil || probes[i].gold > probes[peak!].gold) { peak = i }
        peakGold = peak.map { probes[$0].gold } ?? .nan
        peakSqrtKL = peak.map { probes[$0].sqrtKL } ?? .nan
        turnedOver = goldTurnover(sqrtKL: series.sqrtKL, gold: series.gold) != nil
    }
}

/// `scale · f + shift`: a reward put on another reward's scale (nil scores stay nil).
public struct AffineReward: RewardFunction {
    public var name: String
    public let base: any RewardFunction
    public var scale: Double
    public var shift: Double

    public init(_ base: any RewardFunction, scale: Double, shift: Double, name: String? = nil) {
        self.base = base
        self.scale = scale
        self.shift = shift
        self.name = name ?? base.name
    }

    public func scores(_ samples: [RewardSample]) throws -> [Double?] {
        try base.scores(samples).map { $0.map { scale * $0 + shift } }
    }
}

/// The positive scale and the shift that give `values` the mean and standard deviation of `target`
/// (scale 1 when `values` do not vary). Monotone, so a proxy mapped this way ranks samples as before.
public func momentMatching(_ values: [Double], onto target: [Double]) -> (scale: Double, shift: Double) {
    func moments(_ x: [Double]) -> (Double, Double) {
        guard !x.isEmpty else { return (0, 0) }
        let (m, variance) = meanAndVariance(x, correction: 0)
        return (m, variance.squareRoot())
    }
    let (mv, sv) = moments(values), (mt, st) = moments(target)
    let scale = sv > 0 && st > 0 ? st / sv : 1
    return (scale, mt - scale * mv)
}
