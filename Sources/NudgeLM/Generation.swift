// Batched sampling with a KV cache. Prompts are left-padded to a common length (padding masked,
// positions counted from each row's first real token); each step feeds one new token per row.
// Sampling applies temperature, then top-k, top-p (nucleus; Holtzman et al. 2020) and min-p
// filters, renormalizes, and draws with the seeded generator. Each returned log-prob is the
// sampled token's under that final sampling distribution (for greedy, under the plain softmax),
// so RL trains on exactly the tokens and probabilities that were sampled.

import Foundation
import NudgeNN
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
    /// When set, row r draws from its own stream keyed by (`seed`, `firstRowKey + r`) instead of
    /// one stream shared by the rows in turn, so a row's tokens do not depend on which other rows
    /// are in the batch (data-parallel ranks sampling parts of one batch draw what one process would).
    public var firstRowKey: Int?
    /// The precision of the weights that pick the tokens: Float32, or bf16 copies of the linear
    /// layers' weights made for this call (half the bytes read per decoded token). The returned
    /// log-probs are the bf16 model's; trainers re-score the tokens with the Float32 policy.
    public var weights: GenerationWeights = .float32

    /// Settings with these sampling values (by default 64 new tokens sampled at temperature 1, no filters, seed 0).
    public init(maxNewTokens: Int = 64, temperature: Float = 1, topK: Int = 0, topP: Float = 1, minP: Float = 0, seed: UInt64 = 0) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.seed = seed
    }
}

/// The weights generation samples with (the values follow transformers' `dtype` names).
public enum GenerationWeights: String, Sendable, CaseIterable {
    /// The model's own Float32 weights.
    case float32
    /// bf16 copies (rounded to nearest even) of every linear layer's weight and a tied head, for
    /// the decoding products of at most 32 rows; longer products (prompts) run on bf16 operands
    /// with Float32 sums (`MixedPrecision`) where the CPU has AVX512_BF16, else in Float32.
    case bf16
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
///
/// Where the unpacked few-row kernels run (AVX2 and up), the batch decodes as one, each weight
/// product split by output columns over the threads, so a step reads every weight from memory once
/// (SmolLM2-135M, 16 rows × 32 tokens, NudgeBench --only realgen on a 2-core Zen 3: 2.4–3.5 s a
/// call, medians about 2.85, against 2.8–3.8 s, about 3.3, for two halves each with its own cache,
/// which read the weights twice; the halves won only while every fork-join went through GCD).
/// Elsewhere a batch of at least `2 × minimumDecodeRows` rows decodes as two such halves side by
/// side when its half-batch MLP product is under OpenBLAS's own threading threshold
/// (m·n·k ≤ 2¹⁸); larger ones are threaded inside BLAS. Tokens are drawn in row order afterwards,
/// so results do not depend on the thread count. When prompts repeat (G samples per prompt), each
/// distinct prompt is prefilled once and its rows decode from copies of its cache.
public func generate(model: any CausalLanguageModel, prompts: [[Int]], config: GenerationConfig) -> GenerationResult {
    if config.weights == .bf16 {
        var float32 = config
        float32.weights = .float32
        // Prompts go through the bf16 product too: the same rounding the decoding kernel applies
        // to x and W, at twice Float32's speed (SmolLM2, 16 prompts of 22 tokens: NudgeBench
        // --only realgen --weights bf16).
        return RolloutWeights.with(bf16: linearWeights(of: model)) {
            MixedPrecision.bf16 { generate(model: model, prompts: prompts, config: float32) }
        }
    }
    return withoutGradients {
        let b = prompts.count
        let longest = prompts.map(\.count).max() ?? 0
        var mask = prompts.map { Array(repeating: false, count: longest - $0.count) + Array(repeating: true, count: $0.count) }
        let ids = prompts.map { Array(repeating: config.padTokenID, count: longest - $0.count) + $0 }
        var nextPosition = prompts.map(\.count)
        let c = model.configuration
        let split = DecodeSplit.forced.map { $0 && b >= 2 } ?? (b >= 2 * minimumDecodeRows && !BLAS.smallRowKernel
            && (b / 2) * c.hiddenSize * c.intermediateSize <= 1 << 18)
        let parts = split ? [0..<(b / 2), (b / 2)..<b] : [0..<b]
        let capacity = longest + config.maxNewTokens
        var caches = parts.map { _ in KVCache(layers: model.configuration.layerCount, capacity: capacity) }
        var shared = RandomGenerator(seed: config.seed)
        var rowStreams = config.firstRowKey.map { first in (0..<b).map { shared.derive(stream: UInt64(first + $0)) } }
        var tokens = [[Int]](repeating: [], count: b), logProbs = [[Float]](repeating: [], count: b)
        var finish = [FinishReason?](repeating: nil, count: b)

        /// Each part's last-position logits (rows, V) for the batch `input(rows)` makes.
        func step(_ input: (Range<Int>) -> TokenBatch) -> [Tensor] {
            let results = PartResults(count: parts.count)
            parallelRanges(parts.count, minimum: 2, grain: 1) { range in
                for k in range {
                    results.set(k, model.logits(input(parts[k]), keepingLast: 1, cache: caches[k]).reshaped([parts[k].count, -1]))
                }
            }
            return results.tensors
        }
        var last: [Tensor]
        if let sharing = SharedPrefixes(prompts: prompts) {
            // Each distinct prompt is prefilled once; its rows start from copies of its cache.
            let cache = KVCache(layers: c.layerCount, capacity: capacity)
            let finalLogits = model.logits(TokenBatch(ids: sharing.firstRow.map { ids[$0] }, attentionMask: sharing.firstRow.map { mask[$0] }),
                                           keepingLast: 1, cache: cache).reshaped([sharing.lengths.count, -1])
            caches = parts.map { cache.selecting(rows: Array(sharing.group[$0])) }
            last = parts.map { finalLogits.indexSelect(Array(sharing.group[$0])) }
        } else {
            last = step { rows in TokenBatch(ids: Array(ids[rows]), attentionMask: Array(mask[rows])) }
        }
        for _ in 0..<config.maxNewTokens {
            var chosen = [Int](repeating: config.padTokenID, count: b)
            let active = finish.map { $0 == nil }
            // Each row's one random number is drawn in row order, then the rows are sampled in
            // parallel (softmax over the vocabulary, serial otherwise): the same tokens either way.
            let drawing = (0..<b).filter { active[$0] }
            let uniforms = drawing.map { r in
                config.temperature == 0 ? 0 : rowStreams == nil ? shared.uniform() : rowStreams![r].uniform()
            }
            let drawn = UnsafeMutableBufferPointer<(Int, Float)>.allocate(capacity: drawing.count)
            defer { drawn.deallocate() }
            let rowLogits = drawing.map { r in
                let k = parts.firstIndex { $0.contains(r) }!
                return (last[k].data + (r - parts[k].lowerBound) * last[k].shape[1], last[k].shape[1])
            }
            let work = UncheckedSendableRows(rowLogits: rowLogits, uniforms: uniforms, drawn: drawn)
            parallelRanges(drawing.count, minimum: 2, grain: 1) { range in
                for i in range {
                    let (start, vocabulary) = work.rowLogits[i]
                    work.drawn[i] = sampleToken(UnsafeBufferPointer(start: start, count: vocabulary), config: config,
                                                uniform: work.uniforms[i])
                }
            }
            for (i, r) in drawing.enumerated() {
                let (token, logProb) = drawn[i]
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
            last = step { rows in
                TokenBatch(ids: chosen[rows].map { [$0] }, positions: Array(positions[rows]), attentionMask: Array(mask[rows]))
            }
        }
        for r in 0..<b where finish[r] == nil { finish[r] = .length }
        return GenerationResult(tokens: tokens, logProbs: logProbs, finishReasons: finish.map { $0 ?? .length })
    }
}

/// What the parallel sampling of one step reads and writes (each row's slot written by one task).
private struct UncheckedSendableRows: @unchecked Sendable {
    let rowLogits: [(UnsafeMutablePointer<Float>, Int)]
    let uniforms: [Double]
    let drawn: UnsafeMutableBufferPointer<(Int, Float)>
}

/// Rows per half below which a batch is decoded whole.
let minimumDecodeRows = 4

/// Forcing the two-halves decoding on or off (tests, benchmarks); nil chooses by the CPU.
enum DecodeSplit {
    /// `NUDGE_DECODE_SPLIT=1|0` sets the process-wide default.
    @TaskLocal static var forced: Bool? = ProcessInfo.processInfo.environment["NUDGE_DECODE_SPLIT"].flatMap { ["1": true, "0": false][$0] }
}

/// Per-part results written by concurrent decoding tasks (each task writes only its own slot).
private final class PartResults: @unchecked Sendable {
    private var slots: [Tensor?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ k: Int, _ t: Tensor) { lock.withLock { slots[k] = t } }
    var tensors: [Tensor] { lock.withLock { slots.map { $0! } } }
}

/// Draws one token from logits with the config's filters; returns it and its log-probability under
/// the distribution it was drawn from.
public func sampleToken(_ logits: [Float], config: GenerationConfig, rng: inout RandomGenerator) -> (Int, Float) {
    sampleToken(logits, config: config, uniform: config.temperature == 0 ? 0 : rng.uniform())
}

/// `sampleToken` with its one random number, a uniform draw in [0, 1) (unused when greedy), given.
func sampleToken(_ logits: [Float], config: GenerationConfig, uniform: Double) -> (Int, Float) {
    logits.withUnsafeBufferPointer { sampleToken($0, config: config, uniform: uniform) }
}

/// `sampleToken` on a row of logits in place (the decoding loop's rows of the last logits).
func sampleToken(_ logits: UnsafeBufferPointer<Float>, config: GenerationConfig, uniform: Double) -> (Int, Float) {
    if config.temperature == 0 {
        // The kernel's pass finds the maximum; the token is its first occurrence.
        let (m, z) = ElementwiseKernels.maxAndExpSum(logits)
        let best = logits.firstIndex(of: m) ?? 0
        return (best, logits[best] - (m + Foundation.log(z)))
    }
    // Plain sampling reads the logits where they lie; only the filters need a working copy.
    let filtered = config.temperature != 1 || (config.topK > 0 && config.topK < logits.count) || config.topP < 1 || config.minP > 0
    guard filtered else { return draw(logits, uniform: uniform) }
    // x / 1 is x exactly: no pass over the vocabulary at temperature 1.
    var scaled = config.temperature == 1 ? Array(logits) : logits.map { $0 / config.temperature }
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
    return scaled.withUnsafeBufferPointer { draw($0, uniform: uniform) }
}

/// An inverse-CDF draw from softmax(x) with one uniform number, and the drawn token's log-prob.
/// The Gumbel-max trick would spend two logarithms and a uniform draw per vocabulary entry. The
/// exponentials run on the vector kernels; the running sum goes block by block (64 entries, four
/// accumulators) and token by token only inside the block where it passes u · Σ.
private func draw(_ x: UnsafeBufferPointer<Float>, uniform: Double) -> (Int, Float) {
    let n = x.count
    let weights = UnsafeMutablePointer<Float>.allocate(capacity: n)
    defer { weights.deallocate() }
    let (m, z) = ElementwiseKernels.maxAndExpSum(x, exponentials: weights)
    let u = uniform * Double(z)
    var cumulative = 0.0
    var start = 0
    while start < n {
        let end = Swift.min(start + 64, n)
        var lanes = (0.0, 0.0, 0.0, 0.0)
        var i = start
        while i + 4 <= end {
            lanes.0 += Double(weights[i]); lanes.1 += Double(weights[i + 1])
            lanes.2 += Double(weights[i + 2]); lanes.3 += Double(weights[i + 3])
            i += 4
        }
        var block = (lanes.0 + lanes.1) + (lanes.2 + lanes.3)
        while i < end { block += Double(weights[i]); i += 1 }
        if u < cumulative + block {
            for j in start..<end {
                cumulative += Double(weights[j])
                if u < cumulative { return (j, x[j] - m - Foundation.log(z)) }
            }
        } else {
            cumulative += block
        }
        start = end
    }
    // Rounding left u at or past the total: the last token with any weight.
    let token = (0..<n).last { weights[$0] > 0 } ?? 0
    return (token, x[token] - m - Foundation.log(z))
}

func logSumExp(_ x: [Float]) -> Float {
    let (m, z) = x.withUnsafeBufferPointer { ElementwiseKernels.maxAndExpSum($0) }
    return m == -.infinity ? m : m + Foundation.log(z)
}

/// The Float32 weights a model's linear products read: every `Linear` layer's (adapters included),
/// each LoRA layer's unquantized base, and the embedding when it is the tied head.
func linearWeights(of model: any CausalLanguageModel) -> [Tensor] {
    var weights: [Tensor] = []
    func walk(_ module: Module) {
        if let layer = module as? Linear { weights.append(layer.weight) }
        if let layer = module as? LoRALinear, !layer.isBaseQuantized { weights.append(layer.weight) }
        for (_, child) in module.items().children { walk(child) }
    }
    walk(model)
    if let head = model.plainHeadWeight { weights.append(head) }
    return weights
}
