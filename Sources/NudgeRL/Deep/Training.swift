// What every deep-RL trainer shares: how it reports (CleanRL's metric names through a callback),
// episode records, building environments by id, observation normalization inside the agent, and
// deterministic evaluation.

import Foundation
import NudgeNN
import NudgeTensor

/// A finished training episode.
public struct EpisodeRecord: Sendable, Equatable, Codable {
    public var globalStep: Int
    public var episodeReturn: Double
    public var length: Int
}

/// Receives metrics as training runs: (global step, [(name, value)]) with CleanRL's names
/// (charts/episodic_return, charts/SPS, losses/value_loss, …).
public typealias MetricsCallback = (Int, [(String, Double)]) -> Void

/// Mean of the last `n` episode returns (nil before any episode).
public func recentMeanReturn(_ episodes: [EpisodeRecord], last n: Int = 100) -> Double? {
    guard !episodes.isEmpty else { return nil }
    let tail = episodes.suffix(n)
    return tail.reduce(0) { $0 + $1.episodeReturn } / Double(tail.count)
}

/// The first global step at which the mean of the last `window` returns reached `threshold`.
public func firstStepReaching(_ threshold: Double, _ episodes: [EpisodeRecord], window: Int = 100) -> Int? {
    var sum = 0.0
    for (i, e) in episodes.enumerated() {
        sum += e.episodeReturn
        if i >= window { sum -= episodes[i - window].episodeReturn }
        if i + 1 >= window && sum / Double(window) >= threshold { return e.globalStep }
    }
    return nil
}

/// Running observation statistics kept inside an agent, so saving the agent saves them and
/// evaluation uses the statistics of training (Gymnasium's NormalizeObservation with clipping).
public final class ObservationNormalizer: Module {
    public var mean: Tensor
    public var variance: Tensor
    public var count: Tensor
    public let clip: Float
    public let epsilon: Float = 1e-8

    public init(size: Int, clip: Float = 10) {
        mean = Tensor.zeros([size])
        variance = Tensor.ones([size])
        count = Tensor([1e-4])
        self.clip = clip
        super.init()
        freeze()
    }

    /// Folds a batch of rows (B, size) into the statistics (Chan's parallel update).
    public func update(_ batch: [[Float]]) {
        var rms = RunningMeanStd(shape: mean.count)
        rms.mean = mean.scalars.map(Double.init)
        rms.variance = variance.scalars.map(Double.init)
        rms.count = Double(count.item())
        rms.update(batch.map { $0.map(Double.init) })
        mean.assign(Tensor(rms.mean.map(Float.init)))
        variance.assign(Tensor(rms.variance.map(Float.init)))
        count.assign(Tensor([Float(rms.count)]))
    }

    /// clip((x − μ)/√(σ² + ε), ±clip) for a row.
    public func normalize(_ x: [Float]) -> [Float] {
        let m = mean.data, v = variance.data
        return x.indices.map { i in Swift.min(Swift.max((x[i] - m[i]) / (v[i] + epsilon).squareRoot(), -clip), clip) }
    }
}

/// Builds a training environment by id with episode statistics recorded on raw rewards.
func makeTrainingEnvironment(_ id: String, normalizeReward: Bool = false, gamma: Double = 0.99) throws -> AnyEnvironment {
    let base = RecordEpisodeStatistics(try Registry.make(id))
    guard normalizeReward else { return AnyEnvironment(base) }
    // CleanRL's continuous-control stack: NormalizeReward then clip rewards to ±10.
    return AnyEnvironment(TransformReward(NormalizeReward(base, gamma: gamma)) { Swift.min(Swift.max($0, -10), 10) })
}

/// Episode returns and lengths from a vector step's (final) infos.
func finishedEpisodes<O>(_ s: VectorStep<O>) -> [(env: Int, episodeReturn: Double, length: Int)] {
    var out: [(Int, Double, Int)] = []
    for i in s.rewards.indices where s.terminated[i] || s.truncated[i] {
        let info = s.finalInfos[i] ?? s.infos[i]
        if case .double(let r)? = info["episode_return"], case .int(let l)? = info["episode_length"] { out.append((i, r, l)) }
    }
    return out
}

/// Records an episode that ended at `globalStep` and logs its return and length (CleanRL's
/// charts/episodic_return and charts/episodic_length, then `extra`) at `logStep` (default `globalStep`).
func recordEpisode(_ episodeReturn: Double, length: Int, globalStep: Int, logStep: Int? = nil, into episodes: inout [EpisodeRecord],
                   onMetrics: MetricsCallback?, extra: [(String, Double)] = []) {
    episodes.append(EpisodeRecord(globalStep: globalStep, episodeReturn: episodeReturn, length: length))
    onMetrics?(logStep ?? globalStep, [("charts/episodic_return", episodeReturn), ("charts/episodic_length", Double(length))] + extra)
}

/// Records and logs every episode a vector step finished.
func recordFinishedEpisodes<O>(_ s: VectorStep<O>, globalStep: Int, into episodes: inout [EpisodeRecord], onMetrics: MetricsCallback?) {
    for (_, r, l) in finishedEpisodes(s) { recordEpisode(r, length: l, globalStep: globalStep, into: &episodes, onMetrics: onMetrics) }
}

/// After step `globalStep` (0-based) of a single-environment run (DQN, SAC): when the episode ended,
/// records it as the statistics wrapper reported it (logged at `globalStep`, with `extra`) and
/// returns the reset observation; else the step's observation.
func observationAfter(_ s: Step<[Float]>, env: AnyEnvironment, globalStep: Int, episodes: inout [EpisodeRecord], onMetrics: MetricsCallback?,
                      extra: [(String, Double)] = []) -> [Float] {
    guard s.done else { return s.observation }
    if case .double(let r)? = s.info["episode_return"], case .int(let l)? = s.info["episode_length"] {
        recordEpisode(r, length: l, globalStep: globalStep + 1, logStep: globalStep, into: &episodes, onMetrics: onMetrics, extra: extra)
    }
    return env.reset(seed: nil, options: nil).observation
}

/// Environment steps per second since `start` (CleanRL's charts/SPS).
func stepsPerSecond(_ steps: Int, since start: Date) -> Double {
    Double(steps) / Swift.max(Date().timeIntervalSince(start), 1e-9)
}

extension TrainingResult {
    /// The result of a run that reached `globalSteps` and began at `start` (earlier for a resumed run).
    init(episodes: [EpisodeRecord], globalSteps: Int, start: Date) {
        let wall = Date().timeIntervalSince(start)
        self.init(episodes: episodes, wallTime: wall, stepsPerSecond: Double(globalSteps) / Swift.max(wall, 1e-9), globalSteps: globalSteps)
    }
}

/// Runs `episodes` episodes with `act` choosing actions from observations; returns each return.
public func evaluate(env: AnyEnvironment, episodes: Int, seed: UInt64, act: ([Float]) -> ActionValue) throws -> [Double] {
    var returns: [Double] = []
    for e in 0..<episodes {
        var (obs, _) = env.reset(seed: e == 0 ? seed : nil, options: nil)
        var total = 0.0
        while true {
            let s = try env.step(act(obs))
            total += s.reward
            if s.done { break }
            obs = s.observation
        }
        returns.append(total)
    }
    return returns
}
