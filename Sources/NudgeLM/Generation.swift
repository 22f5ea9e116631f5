// Batched sampling with a KV cache. Prompts are left-padded to a common length (padding masked,
// positions counted from each row's first real token); each step feeds one new token per row.
// Sampling applies temperature, then top-k, top-p (nucleus; Holtzman et al. 2020) and min-p
// filters, renormalizes, and draws with the seeded generator. Each returned log-prob is the
// sampled token's under that final sampling distribution (for greedy, under the plain softmax),
// so RL trains on exactly the tokens and probabilities that were sampled.

import Foundation
import NudgeTensor

/// Sampling settings.
public struct GenerationConfig: Sendable {
    public var maxNewTokens = 64
    /// 0 means greedy decoding.
    public var temperature: Float = 1
    /// Keep the k most likely tokens (0: off).
    public var topK = 0
    /// Keep the smallest set of tokens whose probability reaches p (1: off).
    public var topP: Float = 1
    /// Drop tokens less likely than minP × the most likely one's probability (0: off).
    public var minP: Float = 0
    /// Tokens that end a sequence besides EOS (not part of the output's finish reason "eos").
    public var stopTokens: [Int] = []
    public var eosTokenID: Int?
    public var padTokenID = 0
    public var seed: UInt64 = 0

    public init() {}
}

/// Why a sequence stopped.
public enum FinishReason: String, Sendable, Equatable {
    case eos, stop, length
}

/// Generated completions.
public struct GenerationResult: Sendable {
    /// The new tokens of each row (ending with the EOS or stop token when there was one).
    public var tokens: [[Int]]
    /// log p of each new token under the sampling distribution.
    public var logProbs: [[Float]]
    public var finishReasons: [FinishReason]
}

/// Generates continuations of `prompts` (token ids, any lengths).
public func generate(model: any CausalLanguageModel, prompts: [[Int]], config: GenerationConfig) -> GenerationResult {
    withoutGradients {
        let b = prompts.count
        let longest = prompts.map(\.count).max() ?? 0
        var mask = prompts.map { Array(repeating: false, count: longest - $0.count) + Array(repeating: true, count: $0.count) }
        let ids = prompts.map { Array(repeating: config.padTokenID, count: longest - $0.count) + $0 }
        var nextPosition = prompts.map(\.count)
        let cache = KVCache(layers: model.configuration.layerCount, capacity: longest + config.maxNewTokens)
        var rng = RandomGenerator(seed: config.seed)
        var tokens = [[Int]](repeating: [], count: b), logProbs = [[Float]](repeating: [], count: b)
        var finish = [FinishReason?](repeating: nil, count: b)

        let prefill = TokenBatch(ids: ids, attentionMask: mask)
        var logits = model.forward(prefill, cache: cache)  // (B, T, V)
        var last = logits.slice(axis: 1, (longest - 1)..<longest).reshaped([b, -1])
        for _ in 0..<config.maxNewTokens {
            var chosen = [Int](repeating: config.padTokenID, count: b)
            let active = finish.map { $0 == nil }
            for r in 0..<b where active[r] {
                let row = Array(UnsafeBufferPointer(start: last.data + r * last.shape[1], count: last.shape[1]))
                let (token, logProb) = sampleToken(row, config: config, rng: &rng)
                chosen[r] = token
                tokens[r].append(token)
                logProbs[r].append(logProb)
                if token == config.eosTokenID { finish[r] = .eos } else if config.stopTokens.contains(token) { finish[r] = .stop }
            }
            if finish.allSatisfy({ $0 != nil }) { break }
            // Rows finished before this step keep stepping with masked padding, so the batch stays
            // rectangular; each row attends only to its own keys, so this changes no other row.
            for r in 0..<b { mask[r].append(active[r]) }
            let positions = nextPosition.map { [$0] }
            for r in 0..<b { nextPosition[r] += 1 }
            logits = model.forward(TokenBatch(ids: chosen.map { [$0] }, positions: positions, attentionMask: mask), cache: cache)
            last = logits.reshaped([b, -1])
        }
        for r in 0..<b where finish[r] == nil { finish[r] = .length }
        return GenerationResult(tokens: tokens, logProbs: logProbs, finishReasons: finish.map { $0 ?? .length })
    }
}

/// Draws one token from logits with the config's filters; returns it and its log-probability under
/// the distribution it was drawn from.
public func sampleToken(_ logits: [Float], config: GenerationConfig, rng: inout RandomGenerator) -> (Int, Float) {
    let logZ1 = logSumExp(logits)
    if config.temperature == 0 {
        let best = logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) } ?? 0
        return (best, logits[best] - logZ1)
    }
    var scaled = logits.map { $0 / config.temperature }
    if config.topK > 0 && config.topK < scaled.count {
        let threshold = scaled.sorted(by: >)[config.topK - 1]
        var kept = 0
        for i in scaled.indices {
            // Ties at the threshold: keep the first ones up to k, as a stable top-k does.
            if scaled[i] > threshold || (scaled[i] == threshold && kept < config.topK) { kept += 1 } else { scaled[i] = -.infinity }
        }
    }
    if config.topP < 1 || config.minP > 0 {
        let logZ = logSumExp(scaled)
        let probs = scaled.map { Foundation.exp($0 - logZ) }
        if config.minP > 0, let top = probs.max() {
            for i in scaled.indices where probs[i] < config.minP * top { scaled[i] = -.infinity }
        }
        if config.topP < 1 {
            let order = probs.indices.sorted { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
            var cumulative: Float = 0
            var keep = Set<Int>()
            for i in order {
                keep.insert(i)
                cumulative += probs[i]
                if cumulative >= config.topP { break }
            }
            for i in scaled.indices where !keep.contains(i) { scaled[i] = -.infinity }
        }
    }
    let logZ = logSumExp(scaled)
    let token = rng.categorical(logits: scaled)
    return (token, scaled[token] - logZ)
}

func logSumExp(_ x: [Float]) -> Float {
    let m = x.max() ?? 0
    if m == -.infinity { return m }
    return m + Foundation.log(x.reduce(0) { $0 + Foundation.exp($1 - m) })
}
