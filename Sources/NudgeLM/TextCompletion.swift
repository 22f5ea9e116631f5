// One text prompt continued by a model, as `nudge generate` does it (the prompt as text, or as a
// chat in the model's own template), and the next-token logits `nudge lm logits` prints to compare
// with transformers.

import Foundation
import NudgeTensor

/// A prompt's continuation: the reply's text and how generation went.
public struct TextCompletion: Sendable {
    /// The reply, decoded without special tokens.
    public var text: String
    /// Why generation stopped.
    public var finishReason: FinishReason
    /// The reply's length in tokens.
    public var tokenCount: Int
    /// The mean log-probability of the reply's tokens under the sampling distribution.
    public var meanLogProb: Float

    /// Continues the prompt `ids` with `config`, whose EOS defaults to the tokenizer's, else the model's.
    ///
    /// - Throws: `TokenLimitError.invalidSetting` for a setting out of range; `RowError` (row 1) for
    ///   a prompt the model cannot take (empty, out of vocabulary, or too long with the completion).
    public init(model: any CausalLanguageModel, tokenizer: any Tokenizer, prompt ids: [Int], config: GenerationConfig) throws {
        var config = config
        config.eosTokenID = config.eosTokenID ?? tokenizer.eosTokenID ?? model.configuration.eosTokenID
        try config.validate(prompts: [ids], limits: TokenLimits(model: model))
        let result = generate(model: model, prompts: [ids], config: config)
        text = tokenizer.decode(result.tokens[0], skipSpecialTokens: true)
        finishReason = result.finishReasons[0]
        tokenCount = result.tokens[0].count
        meanLogProb = result.logProbs[0].reduce(0, +) / Float(max(result.logProbs[0].count, 1))
    }

    /// `finish: <reason>, <n> tokens, mean log-prob <x>`.
    public var statistics: String {
        "finish: \(finishReason.rawValue), \(tokenCount) tokens, mean log-prob \(String(format: "%.3f", meanLogProb))"
    }
}

extension Tokenizer {
    /// The ids of `prompt`: the text with the tokenizer's sequence tokens, or with `chat` one user
    /// message (after a `system` message, when given) rendered by the tokenizer's chat template with
    /// the generation prompt; nil for a chat without a chat template.
    public func promptIDs(_ prompt: String, chat: Bool = false, system: String? = nil) throws -> [Int]? {
        guard chat else { return encode(prompt, addSpecialTokens: true) }
        guard let format = chatFormat else { return nil }
        let messages = (system.map { [ChatMessage.system($0)] } ?? []) + [.user(prompt)]
        return try format.tokenize(messages: messages, addGenerationPrompt: true, tokenizer: self).ids
    }
}

/// The logits of the token after a prompt, one per vocabulary entry (to compare with transformers).
public struct NextTokenLogits: Sendable {
    /// The prompt's token ids.
    public var ids: [Int]
    /// The logits of the next token.
    public var logits: [Float]

    /// The logits of the token after `ids` under `model`.
    ///
    /// - Throws: `TokenLimitError` when `ids` is empty or the model cannot take it.
    public init(model: any CausalLanguageModel, ids: [Int]) throws(TokenLimitError) {
        guard !ids.isEmpty else { throw .emptyPrompt }
        try TokenLimits(model: model).check(ids)
        let all = withoutGradients { model(TokenBatch(ids: [ids])) }
        self.ids = ids
        logits = Array(all.scalars[((ids.count - 1) * all.shape[2])...])
    }

    /// `{"ids": […], "logits": […]}`.
    public func json() throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: ["ids": ids, "logits": logits.map(Double.init)]), as: UTF8.self)
    }

    /// `vocabulary V; top-10 next tokens: id (logit), …`.
    public var summary: String {
        let top = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(10)
        return "vocabulary \(logits.count); top-10 next tokens: " + top.map { "\($0) (\(String(format: "%.4f", logits[$0])))" }.joined(separator: ", ")
    }
}
