// A judge that is a Nudge language model in this process (e.g. SmolLM2-Instruct from its GGUF),
// prompted with the same templates as the HTTP judge through its chat template. It does not
// sample: pairwise it compares the next-token logits of "0" and "1" after the judging prompt, so
// its verdicts are deterministic; pointwise it takes the expected score under the next-token
// distribution restricted to the score tokens (the scores 1–10 whose text is one token: 1–9 for
// tokenizers that split digits, as SmolLM2's does), which ranks finer than the argmax.

import Foundation
import NudgeLM
import NudgeNN
import NudgeTensor

/// A pairwise and pointwise judge backed by a local causal language model.
public final class LocalModelJudge: PairwiseJudge, PointwiseJudge {
    public let model: any CausalLanguageModel
    public let tokenizer: any Tokenizer
    public let name: String
    /// The pairwise prompt, with `{prompt}`, `{response0}`, `{response1}` (as `HTTPJudgeConfig`'s).
    public var pairwiseTemplate = HTTPJudgeConfig.defaultPairwiseTemplate
    /// The pointwise prompt, with `{prompt}` and `{response}`.
    public var pointwiseTemplate = HTTPJudgeConfig.defaultPointwiseTemplate
    /// Present each pair in a seeded order from the pair itself and map the answer back (position bias).
    public var shuffleOrder = true
    public var seed: UInt64
    private let zero: Int, one: Int
    private let scoreTokens: [(score: Double, id: Int)]

    /// - Throws: `RunSetupError` when "0" or "1" is not a single token of `tokenizer`.
    public init(model: any CausalLanguageModel, tokenizer: any Tokenizer, name: String = "local", seed: UInt64 = 0) throws {
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.seed = seed
        func single(_ text: String) -> Int? {
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            return ids.count == 1 ? ids[0] : nil
        }
        guard let zero = single("0"), let one = single("1") else {
            throw RunSetupError("local judge \(name): its tokenizer does not encode \"0\" and \"1\" as single tokens")
        }
        self.zero = zero
        self.one = one
        scoreTokens = (1...10).compactMap { score in single(String(score)).map { (Double(score), $0) } }
    }

    /// The judging prompt's token ids: through the tokenizer's chat template as one user turn, else the text.
    func promptIDs(_ content: String) throws -> [Int] {
        if let format = tokenizer.chatFormat {
            return try format.tokenize(messages: [.user(content)], addGenerationPrompt: true, tokenizer: tokenizer).ids
        }
        return tokenizer.encode(content, addSpecialTokens: true)
    }

    private func nextTokenLogits(_ content: String) throws -> [Float] {
        let ids = try promptIDs(content)
        try TokenLimits(model: model).check(ids, extra: 1)
        return withoutGradients { model.logits(TokenBatch(ids: [ids]), keepingLast: 1) }.scalars
    }

    public func judge(_ pairs: [JudgePair]) -> [PairwiseVerdict] {
        pairs.enumerated().map { row, pair in
            let flipped = shuffleOrder && SplitMix64.first(seed: seed ^ fnv1a([pair.prompt, pair.first.completion, pair.second.completion])) & 1 == 1
            let (a, b) = flipped ? (pair.second.completion, pair.first.completion) : (pair.first.completion, pair.second.completion)
            let logits: [Float]
            do {
                logits = try nextTokenLogits(fillTemplate(pairwiseTemplate, ["prompt": pair.prompt, "response0": a, "response1": b]))
            } catch {
                return .failed(JudgeFailure(judge: name, row: row, reason: "\(error)"))
            }
            let l0 = logits[zero], l1 = logits[one]
            guard l0.isFinite, l1.isFinite else { return .failed(JudgeFailure(judge: name, row: row, reason: "non-finite logits \(l0), \(l1)")) }
            if l0 == l1 { return .tie }
            let shownFirstWins = l0 > l1
            return shownFirstWins != flipped ? .first : .second
        }
    }

    public func judge(_ samples: [RewardSample]) -> [Result<Double, JudgeFailure>] {
        samples.enumerated().map { row, sample in
            guard !scoreTokens.isEmpty else { return .failure(JudgeFailure(judge: name, row: row, reason: "no score 1–10 is a single token")) }
            let logits: [Float]
            do { logits = try nextTokenLogits(fillTemplate(pointwiseTemplate, ["prompt": sample.prompt, "response": sample.completion])) } catch {
                return .failure(JudgeFailure(judge: name, row: row, reason: "\(error)"))
            }
            let values = scoreTokens.map { Double(logits[$0.id]) }
            guard let top = values.max(), top.isFinite else { return .failure(JudgeFailure(judge: name, row: row, reason: "non-finite logits")) }
            let weights = values.map { exp($0 - top) }
            let total = weights.reduce(0, +)
            return .success(zip(weights, scoreTokens).map { $0 * $1.score }.reduce(0, +) / total)
        }
    }
}

/// `template` with each `{name}` in `values` replaced, in one left-to-right pass (a completion that
/// itself contains "{response1}" is not substituted again); other braces stay as they are.
func fillTemplate(_ template: String, _ values: [String: String]) -> String {
    var out = ""
    var rest = Substring(template)
    while let open = rest.firstIndex(of: "{") {
        out += rest[..<open]
        if let close = rest[open...].firstIndex(of: "}"), let value = values[String(rest[rest.index(after: open)..<close])] {
            out += value
            rest = rest[rest.index(after: close)...]
        } else {
            out.append("{")
            rest = rest[rest.index(after: open)...]
        }
    }
    return out + rest
}
