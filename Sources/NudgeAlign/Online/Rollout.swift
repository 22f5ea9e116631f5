// The "sample, score" half of online RL, shared by GRPO/RLOO/REINFORCE++ and PPO-RLHF: prompts come
// from a reshuffled dataset, each is sampled G times with the KV cache, completions are decoded and
// scored, and the sequences are laid out right-padded for the training passes. Token tensors use the
// one-position shift of `completionLogProbs`: column t − 1 scores token t.

import Foundation
import NudgeLM
import NudgeNN
import NudgePolicyGradient
import NudgeTensor

/// One prompt of an online dataset.
public struct OnlinePrompt: Sendable {
    public var ids: [Int]
    /// The prompt as reward functions see it.
    public var text: String
    /// The reference answer (verifiable rows).
    public var answer: String?
}

/// Tokenizes rows into prompts (any row with a prompt works; verifiable rows keep their answer).
public func onlinePrompts(rows: [DatasetRow], tokenizer: any Tokenizer, template: ChatTemplate? = nil,
                          maxPromptLength: Int? = nil, limits: TokenLimits? = nil, maxNewTokens: Int = 0) throws -> [OnlinePrompt] {
    let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template, options: TokenizationOptions(maxPromptLength: maxPromptLength),
                                    limits: limits)
    return try rowTokenizer.each(rows) { row in
        let example = try rowTokenizer.prompt(row)
        // Room for the completion too, where positions are learned (GPT-2).
        try limits?.check(example.promptIDs, extra: maxNewTokens)
        let text: String
        switch row {
        case .promptOnly(let p), .promptCompletion(let p, _), .preference(let p, _, _), .unpairedPreference(let p, _, _),
             .verifiable(let p, _):
            text = p.plainText
        default:
            text = tokenizer.decode(example.promptIDs, skipSpecialTokens: true)
        }
        return OnlinePrompt(ids: example.promptIDs, text: text, answer: example.answer)
    }
}

/// Cycles through prompts in a fresh seeded order each epoch.
struct PromptCursor {
    let prompts: [OnlinePrompt]
    let seed: UInt64
    var order: [Int] = []
    var position = 0
    var rng: RandomGenerator
    /// Prompts handed out so far (a checkpoint's position).
    private(set) var consumed = 0

    init(_ prompts: [OnlinePrompt], seed: UInt64) throws {
        guard !prompts.isEmpty else {
            throw TrainerConfigurationError(field: "data", message: "online training needs at least one prompt; the dataset has none")
        }
        self.prompts = prompts
        self.seed = seed
        rng = RandomGenerator(seed: seed)
    }

    /// The cursor of the same prompts and seed after `consumed` prompts were handed out.
    func replayed(to consumed: Int) -> PromptCursor {
        var cursor = try! PromptCursor(prompts, seed: seed)  // the same non-empty prompts
        _ = cursor.next(consumed)
        return cursor
    }

    mutating func next(_ n: Int) -> [OnlinePrompt] {
        consumed += n
        return (0..<n).map { _ in
            if position == order.count {
                order = Array(prompts.indices)
                rng.shuffle(&order)
                position = 0
            }
            defer { position += 1 }
            return prompts[order[position]]
        }
    }
}

/// Sampled completions laid out for training: row r is prompt r's ids followed by completion r's,
/// right-padded.
public struct Rollout {
    public var prompts: [OnlinePrompt]
    public var completions: [[Int]]
    public var finishReasons: [FinishReason]
    /// log-probs of the sampled tokens under the sampling distribution.
    public var samplingLogProbs: [[Float]]
    public var samples: [RewardSample]
    public var input: TokenBatch
    /// (B, T) completion-token marks of `input`.
    public var completionMask: [[Bool]]
    /// Rows that share a prompt (G samples each), whose prompt the scoring passes compute once.
    public var sharing: SharedPrefixes?

    /// Samples `repeats` completions of each prompt (consecutive rows share a prompt).
    public static func sample(model: any CausalLanguageModel, tokenizer: any Tokenizer, prompts: [OnlinePrompt], repeats: Int,
                              generation: GenerationConfig) throws -> Rollout {
        let expanded = prompts.flatMap { Array(repeating: $0, count: repeats) }
        try generation.validate(prompts: prompts.map(\.ids), limits: TokenLimits(model: model))
        let result = generate(model: model, prompts: expanded.map(\.ids), config: generation)
        return Rollout(prompts: expanded, completions: result.tokens, finishReasons: result.finishReasons,
                       samplingLogProbs: result.logProbs, tokenizer: tokenizer, padID: generation.padTokenID)
    }

    /// Lays out given completions (also for tests and re-scoring).
    public init(prompts: [OnlinePrompt], completions: [[Int]], finishReasons: [FinishReason], samplingLogProbs: [[Float]],
                tokenizer: any Tokenizer, padID: Int) {
        self.prompts = prompts
        self.completions = completions
        self.finishReasons = finishReasons
        self.samplingLogProbs = samplingLogProbs
        samples = zip(prompts, zip(completions, finishReasons)).map { p, c in
            RewardSample(prompt: p.text, completion: tokenizer.decode(c.0, skipSpecialTokens: true), answer: p.answer,
                         promptIDs: p.ids, completionIDs: c.0, finishReason: c.1)
        }
        let sequences = zip(prompts, completions).map { $0.ids + $1 }
        let length = sequences.map(\.count).max() ?? 0
        input = TokenBatch(ids: sequences.map { $0 + Array(repeating: padID, count: length - $0.count) },
                           attentionMask: sequences.map { Array(repeating: true, count: $0.count) + Array(repeating: false, count: length - $0.count) })
        sharing = SharedPrefixes(prompts: prompts.map(\.ids))
        completionMask = zip(prompts, completions).map { p, c in
            Array(repeating: false, count: p.ids.count) + Array(repeating: true, count: c.count)
                + Array(repeating: false, count: length - p.ids.count - c.count)
        }
    }

    public var count: Int { completions.count }

    /// Positions whose logits score a completion token: from the shortest prompt's last token on
    /// (TRL's `logits_to_keep`, completion length + 1 when the prompts are equally long).
    public var logitsToKeep: Int { input.length - (prompts.map(\.ids.count).min() ?? 1) + 1 }

    /// The (B, T − 1) mask in the shifted frame, with `excluding` rows zeroed (e.g. truncated ones).
    func shiftedMask(excluding: Set<Int> = []) -> [Float] {
        completionMask.enumerated().flatMap { r, row in row.dropFirst().map { $0 && !excluding.contains(r) ? Float(1) : 0 } }
    }

    /// Per-token log-probs (B, T − 1) of the completions under `model` (with gradients when taped),
    /// and each scored position's entropy when asked; through the fused head where the model allows,
    /// so the (B, k, V) logits are never held.
    func logProbsAndEntropies(_ model: any CausalLanguageModel, temperature: Float, entropy: Bool) -> (Tensor, [Float]?) {
        let (logProbs, entropies) = completionLogProbs(
            model: model, input: input, keepingLast: logitsToKeep, sharing: sharing, completionMask: completionMask,
            temperature: temperature, entropy: entropy)
        return (logProbs.perToken, entropies)
    }

    /// Per-token log-probs (B, T − 1) of the completions under `model`, without gradients.
    func logProbs(_ model: any CausalLanguageModel, temperature: Float) -> Tensor {
        withoutGradients { logProbsAndEntropies(model, temperature: temperature, entropy: false).0 }
    }

    /// Per-token log-probs (B, T − 1) under an online trainer's frozen reference (see
    /// `onlineReference`): `reference`, or with `adapterFreePolicy` the policy with its LoRA adapters
    /// switched off for the pass; nil when there is neither.
    func referenceLogProbs(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)?, adapterFreePolicy: Bool,
                           temperature: Float) -> Tensor? {
        if adapterFreePolicy {
            setLoRAEnabled(false, in: policy)
            defer { setLoRAEnabled(true, in: policy) }
            return logProbs(policy, temperature: temperature)
        }
        return reference.map { logProbs($0, temperature: temperature) }
    }
}

/// The frozen reference of an online trainer that `needs` one: the given `reference` (checked
/// against the policy's vocabulary); else, when the policy has LoRA adapters, the policy itself with
/// them switched off (`adapterFreePolicy`, no second copy of the weights); else a frozen copy of the
/// initial policy. Without need and without a given reference: none.
func onlineReference(_ reference: (any CausalLanguageModel)?, of policy: any CausalLanguageModel, needs: Bool,
                     dtype: ReferenceDType = .float32) throws -> (model: (any CausalLanguageModel)?, adapterFreePolicy: Bool)
{
    if let reference {
        try checkReference(reference, of: policy)
        return (reference, false)
    }
    guard needs else { return (nil, false) }
    if !loraLayers(in: policy).isEmpty { return (nil, true) }
    let copy = try LanguageModelLoader.frozenCopy(of: policy)
    if dtype == .bf16 {
        quantizeFrozenBase(of: copy, to: .bf16)
        // The copy's Float32 projections are free now; hand their buffers back rather than keep them cached.
        BufferPool.trim()
    }
    return (copy, false)
}

/// How an online trainer holds the frozen copy of the initial policy it makes as its reference
/// (`ref_model_dtype`; the values follow transformers' `dtype` names).
public enum ReferenceDType: String, Sendable, CaseIterable {
    /// Float32, as the policy.
    case float32
    /// The attention and MLP projections in bf16 (`quantizeFrozenBase(of:to: .bf16)`): half their
    /// bytes; embeddings, norms and the head stay Float32.
    case bf16
}

/// Each reward function's mean and std over the samples it scored (rewards/<name>/mean, …/std), and
/// each monitor's mean (monitor/<name>), as the online trainers log them.
func rewardMetrics(_ rewards: WeightedRewards, perFunction: [[Double?]], monitors: [any RewardFunction], samples: [RewardSample],
                   gather: ([Double?]) -> [Double?] = { $0 }) throws -> [(String, Double)]
{
    var metrics: [(String, Double)] = []
    for (f, column) in zip(rewards.functions, perFunction) {
        let (m, s) = meanAndStd(column)
        metrics += [("rewards/\(f.function.name)/mean", m), ("rewards/\(f.function.name)/std", s)]
    }
    for monitor in monitors {
        metrics.append(("monitor/\(monitor.name)", meanAndStd(gather(try monitor.scores(samples))).0))
    }
    return metrics
}

/// Mean and (unbiased) std of the non-nil values.
func meanAndStd(_ values: [Double?]) -> (Double, Double) {
    let v = values.compactMap { $0 }
    guard !v.isEmpty else { return (.nan, .nan) }
    let (mean, variance) = meanAndVariance(v)
    return (mean, variance.squareRoot())
}

/// TRL's completion-length metrics.
func completionMetrics(_ rollout: Rollout) -> [(String, Double)] {
    completionMetrics(lengths: rollout.completions.map(\.count), clipped: rollout.finishReasons.map { $0 == .length })
}

/// TRL's completion-length metrics from each completion's length and whether it was cut at the maximum.
func completionMetrics(lengths: [Int], clipped flags: [Bool]) -> [(String, Double)] {
    let terminated = zip(lengths, flags).filter { !$0.1 }.map(\.0)
    let clipped = flags.filter { $0 }.count
    func mean(_ x: [Int]) -> Double { x.isEmpty ? 0 : Double(x.reduce(0, +)) / Double(x.count) }
    return [("completions/mean_length", mean(lengths)), ("completions/min_length", Double(lengths.min() ?? 0)),
            ("completions/max_length", Double(lengths.max() ?? 0)),
            ("completions/clipped_ratio", Double(clipped) / Double(max(lengths.count, 1))),
            ("completions/mean_terminated_length", mean(terminated))]
}

/// One completion of a step, for samples.jsonl.
public struct OnlineSample: Sendable {
    public var prompt: String
    public var completion: String
    public var reward: Double?
    public var advantage: Double
}

/// What one online step did.
public struct OnlineStepResult: Sendable {
    public var step: Int
    public var metrics: [(String, Double)]
    public var samples: [OnlineSample]

    /// A metric by name.
    public subscript(_ name: String) -> Double? { metrics.first { $0.0 == name }?.1 }
}

/// Throws unless online sampling settings can train: the log-probs divide by the temperature, so
/// it must be positive (greedy decoding is for evaluation), and a completion needs a token.
func checkSampling(temperature: Float, maxCompletionLength: Int) throws {
    guard temperature.isFinite, temperature > 0 else {
        throw TrainerConfigurationError(field: "temperature", message: "training samples at a temperature > 0 (its log-probs divide by it), got \(temperature)")
    }
    guard maxCompletionLength >= 1 else {
        throw TrainerConfigurationError(field: "max_completion_length", message: "expected at least 1 new token, got \(maxCompletionLength)")
    }
}

/// Throws when the exact-answer reward is used on a prompt without an answer: every such sample
/// would be unscored (no reward, nothing trained) without a word.
func checkAnswers(_ prompts: [OnlinePrompt], rewards: WeightedRewards) throws {
    guard rewards.functions.contains(where: { $0.function is ExactAnswerReward }),
          let missing = prompts.firstIndex(where: { $0.answer == nil }) else { return }
    throw RowError(row: missing + 1, underlying: TrainerConfigurationError(
        field: "answer", message: "the accuracy reward needs an answer for every prompt (\(prompts.filter { $0.answer == nil }.count) of \(prompts.count) have none); give rows an \"answer\" or choose other reward_funcs"))
}
