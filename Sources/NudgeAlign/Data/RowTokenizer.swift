// RowTokenizer.swift
//
// Turns `DatasetRow`s into token ids with the model's tokenizer and chat
// template, in the layouts the trainers consume (TRL's conventions):
//
// - SFT: `inputIDs` and a `completionMask` (1 = token trained on): the
//   completion of prompt/completion rows, the assistant turns (with their
//   end-of-turn token) of conversations, or everything when
//   `completionOnlyLoss` is off.
// - Preference (DPO and friends): prompt ids, chosen ids, rejected ids.
// - Unpaired preference (KTO), and prompts (online methods, RLVR).
//
// Plain-text prompts get the tokenizer's sequence specials (e.g. BOS) when
// `addSpecialTokens` is on; plain-text completions get EOS appended when the
// tokenizer has one and `appendEOS` is on. Conversational rows are rendered by
// the chat template, which writes its own specials and end-of-turn tokens; the
// completion is what the full conversation adds after the prompt with its
// generation prompt. Pre-tokenized rows are used as they are (no template, no
// added specials) and only truncated.
//
// Truncation: the prompt is cut to `maxPromptLength` keeping its start or its
// end (`promptTruncation`), completions to `maxCompletionLength` keeping their
// start, and then prompt + completion to `maxLength` by cutting the completion
// (and, if the prompt alone is longer, the prompt, keeping the chosen side).

import NudgeLM

/// Which end of a sequence truncation keeps.
public enum TruncationSide: String, Sendable, Hashable {
    /// Keep the first tokens.
    case keepStart
    /// Keep the last tokens (the prompt's end, nearest to the completion).
    case keepEnd
}

/// Lengths and options for `RowTokenizer`.
public struct TokenizationOptions: Sendable, Hashable {
    /// The most tokens of prompt + completion, or nil for no limit.
    public var maxLength: Int?
    /// The most prompt tokens, or nil for no limit.
    public var maxPromptLength: Int?
    /// The most completion tokens, or nil for no limit.
    public var maxCompletionLength: Int?
    /// Which end of an over-long prompt is kept.
    public var promptTruncation: TruncationSide
    /// Whether plain-text completions end with the tokenizer's EOS (when it has one).
    public var appendEOS: Bool
    /// Whether plain-text prompts get the tokenizer's sequence special tokens (e.g. BOS).
    public var addSpecialTokens: Bool
    /// Whether SFT trains only on completions / assistant turns (else on every token).
    public var completionOnlyLoss: Bool

    /// Creates options; the defaults are no limits, keep the prompt's end, EOS and specials on,
    /// completion-only loss.
    public init(
        maxLength: Int? = nil, maxPromptLength: Int? = nil, maxCompletionLength: Int? = nil,
        promptTruncation: TruncationSide = .keepEnd, appendEOS: Bool = true, addSpecialTokens: Bool = true,
        completionOnlyLoss: Bool = true
    ) {
        self.maxLength = maxLength
        self.maxPromptLength = maxPromptLength
        self.maxCompletionLength = maxCompletionLength
        self.promptTruncation = promptTruncation
        self.appendEOS = appendEOS
        self.addSpecialTokens = addSpecialTokens
        self.completionOnlyLoss = completionOnlyLoss
    }
}

/// A tokenized SFT example.
public struct SFTExample: Sendable, Hashable {
    /// The token ids.
    public var inputIDs: [Int]
    /// 1 for tokens the loss is computed on, 0 for the others; as long as `inputIDs`.
    public var completionMask: [Int]

    /// Creates an example.
    public init(inputIDs: [Int], completionMask: [Int]) {
        self.inputIDs = inputIDs
        self.completionMask = completionMask
    }
}

/// A tokenized preference pair.
public struct PreferenceExample: Sendable, Hashable {
    /// The prompt's ids.
    public var promptIDs: [Int]
    /// The chosen completion's ids.
    public var chosenIDs: [Int]
    /// The rejected completion's ids.
    public var rejectedIDs: [Int]

    /// Creates an example.
    public init(promptIDs: [Int], chosenIDs: [Int], rejectedIDs: [Int]) {
        self.promptIDs = promptIDs
        self.chosenIDs = chosenIDs
        self.rejectedIDs = rejectedIDs
    }
}

/// A tokenized unpaired (KTO) example.
public struct UnpairedExample: Sendable, Hashable {
    /// The prompt's ids.
    public var promptIDs: [Int]
    /// The completion's ids.
    public var completionIDs: [Int]
    /// Whether the completion is desirable.
    public var label: Bool

    /// Creates an example.
    public init(promptIDs: [Int], completionIDs: [Int], label: Bool) {
        self.promptIDs = promptIDs
        self.completionIDs = completionIDs
        self.label = label
    }
}

/// A tokenized prompt for generation, with its reference answer when the row has one.
public struct PromptExample: Sendable, Hashable {
    /// The prompt's ids (ending with the generation prompt for conversations).
    public var promptIDs: [Int]
    /// The verifiable answer of RLVR rows.
    public var answer: String?

    /// Creates an example.
    public init(promptIDs: [Int], answer: String? = nil) {
        self.promptIDs = promptIDs
        self.answer = answer
    }
}

/// Truncates `ids` to at most `limit` tokens, keeping `side`.
public func truncate(_ ids: [Int], to limit: Int?, keeping side: TruncationSide) -> [Int] {
    guard let limit, ids.count > limit else { return ids }
    let kept = max(0, limit)
    return side == .keepStart ? Array(ids.prefix(kept)) : Array(ids.suffix(kept))
}

/// Tokenizes dataset rows with a tokenizer and, for conversational rows, a chat template.
public struct RowTokenizer: Sendable {
    /// The tokenizer.
    public var tokenizer: any Tokenizer
    /// The chat format for conversational rows: the given built-in template, else the model's own
    /// template the tokenizer carries, else the tokenizer's default built-in one.
    public var template: (any ChatFormat)?
    /// Lengths and options.
    public var options: TokenizationOptions
    /// The model's vocabulary and positions, when known: every example is checked against them
    /// (after truncation), so an id the model cannot embed is an error naming the row, not a trap.
    public var limits: TokenLimits?

    /// Creates a row tokenizer; `template` defaults to the tokenizer's default chat template.
    public init(tokenizer: any Tokenizer, template: ChatTemplate? = nil, options: TokenizationOptions = .init(),
                limits: TokenLimits? = nil) {
        self.tokenizer = tokenizer
        self.template = template.map { $0 as any ChatFormat } ?? tokenizer.chatFormat
        self.options = options
        self.limits = limits
    }

    /// Creates a row tokenizer for `model`'s limits.
    public init(tokenizer: any Tokenizer, template: ChatTemplate? = nil, options: TokenizationOptions = .init(),
                model: any CausalLanguageModel) {
        self.init(tokenizer: tokenizer, template: template, options: options, limits: TokenLimits(model: model))
    }

    /// `transform` of each row, an error naming the first failing row (from 1).
    public func each<T>(_ rows: [DatasetRow], _ transform: (DatasetRow) throws -> T) throws -> [T] {
        try RowError.map(rows, transform)
    }

    // MARK: Rows to examples

    /// The SFT example of a conversation, prompt/completion, verifiable (answer as completion)
    /// or pre-tokenized language-modeling row.
    public func sft(_ row: DatasetRow) throws -> SFTExample {
        let example = try sftUnchecked(row)
        try limits?.check(example.inputIDs)
        return example
    }

    private func sftUnchecked(_ row: DatasetRow) throws -> SFTExample {
        switch row {
        case .conversation(let messages):
            let template = try requireTemplate()
            let encoding = try template.tokenize(messages: messages, addGenerationPrompt: false, tokenizer: tokenizer)
            let mask = options.completionOnlyLoss ? encoding.assistantMask : Array(repeating: 1, count: encoding.ids.count)
            return clip(SFTExample(inputIDs: encoding.ids, completionMask: mask))
        case .promptCompletion(let prompt, let completion):
            let (promptIDs, completionIDs) = try encodePair(prompt: prompt, completion: completion)
            return sftExample(promptIDs: promptIDs, completionIDs: completionIDs)
        case .verifiable(let prompt, let answer):
            let completion: Content = prompt.isConversational ? .messages([.assistant(answer)]) : .text(answer)
            let (promptIDs, completionIDs) = try encodePair(prompt: prompt, completion: completion)
            return sftExample(promptIDs: promptIDs, completionIDs: completionIDs)
        case .tokenizedLanguageModeling(let ids, let mask):
            let mask = options.completionOnlyLoss ? mask : Array(repeating: 1, count: ids.count)
            return clip(SFTExample(inputIDs: ids, completionMask: mask))
        default:
            throw TokenizationError.unsupportedShape(row.shape, expected: "SFT")
        }
    }

    /// The preference example of a preference or pre-tokenized preference row.
    public func preference(_ row: DatasetRow) throws -> PreferenceExample {
        let example = try preferenceUnchecked(row)
        if example.promptIDs.isEmpty { throw TokenLimitError.emptyPrompt }
        try limits?.check(example.promptIDs + example.chosenIDs)
        try limits?.check(example.promptIDs + example.rejectedIDs)
        return example
    }

    private func preferenceUnchecked(_ row: DatasetRow) throws -> PreferenceExample {
        switch row {
        case .preference(let prompt, let chosen, let rejected):
            let (promptIDs, chosenIDs) = try encodePair(prompt: prompt, completion: chosen)
            let (_, rejectedIDs) = try encodePair(prompt: prompt, completion: rejected)
            return truncated(promptIDs: promptIDs, chosenIDs: chosenIDs, rejectedIDs: rejectedIDs)
        case .tokenizedPreference(let promptIDs, let chosenIDs, let rejectedIDs):
            return truncated(promptIDs: promptIDs, chosenIDs: chosenIDs, rejectedIDs: rejectedIDs)
        default:
            throw TokenizationError.unsupportedShape(row.shape, expected: "a preference pair")
        }
    }

    /// The unpaired example of an unpaired-preference row.
    public func unpaired(_ row: DatasetRow) throws -> UnpairedExample {
        guard case .unpairedPreference(let prompt, let completion, let label) = row else {
            throw TokenizationError.unsupportedShape(row.shape, expected: "an unpaired preference")
        }
        let (promptIDs, completionIDs) = try encodePair(prompt: prompt, completion: completion)
        let (p, c) = truncatePair(promptIDs, completionIDs)
        if p.isEmpty { throw TokenLimitError.emptyPrompt }
        try limits?.check(p + c)
        return UnpairedExample(promptIDs: p, completionIDs: c, label: label)
    }

    /// The prompt of any row with a text prompt (conversations: all but the last assistant turn),
    /// truncated to `maxPromptLength`.
    public func prompt(_ row: DatasetRow) throws -> PromptExample {
        let example = try promptUnchecked(row)
        if example.promptIDs.isEmpty { throw TokenLimitError.emptyPrompt }
        try limits?.check(example.promptIDs)
        return example
    }

    private func promptUnchecked(_ row: DatasetRow) throws -> PromptExample {
        var answer: String?
        let prompt: Content
        switch row {
        case .promptOnly(let p), .promptCompletion(let p, _), .preference(let p, _, _), .unpairedPreference(let p, _, _):
            prompt = p
        case .verifiable(let p, let a):
            prompt = p
            answer = a
        case .conversation(let messages):
            let end = messages.lastIndex(where: \.isAssistant) ?? messages.endIndex
            prompt = .messages(Array(messages[..<end]))
        case .tokenizedPreference(let ids, _, _):
            return PromptExample(promptIDs: truncate(ids, to: options.maxPromptLength, keeping: options.promptTruncation))
        case .stepwiseSupervision(let p, _, _):
            prompt = .text(p)
        case .tokenizedLanguageModeling:
            throw TokenizationError.unsupportedShape(row.shape, expected: "a prompt")
        }
        let ids = try encodePrompt(prompt)
        return PromptExample(
            promptIDs: truncate(ids, to: options.maxPromptLength, keeping: options.promptTruncation), answer: answer)
    }

    // MARK: Encoding

    /// The ids of a prompt: plain text with the sequence specials, or the templated messages with
    /// the generation prompt.
    public func encodePrompt(_ prompt: Content) throws -> [Int] {
        switch prompt {
        case .text(let text):
            return tokenizer.encode(text, addSpecialTokens: options.addSpecialTokens)
        case .messages(let messages):
            return try requireTemplate().tokenize(messages: messages, addGenerationPrompt: true, tokenizer: tokenizer).ids
        }
    }

    /// The untruncated prompt and completion ids.
    func encodePair(prompt: Content, completion: Content) throws -> (prompt: [Int], completion: [Int]) {
        let promptIDs = try encodePrompt(prompt)
        switch (prompt, completion) {
        case (.messages(let promptMessages), .messages(let completionMessages)):
            let full = try requireTemplate().tokenize(
                messages: promptMessages + completionMessages, addGenerationPrompt: false, tokenizer: tokenizer
            ).ids
            guard full.starts(with: promptIDs) else { throw TokenizationError.promptNotPrefix }
            return (promptIDs, Array(full[promptIDs.count...]))
        default:
            var completionIDs = tokenizer.encode(completion.plainText, addSpecialTokens: false)
            if options.appendEOS, let eos = tokenizer.eosTokenID { completionIDs.append(eos) }
            return (promptIDs, completionIDs)
        }
    }

    func requireTemplate() throws -> any ChatFormat {
        guard let template else { throw TokenizationError.missingChatTemplate }
        return template
    }

    // MARK: Truncation

    /// Prompt to `maxPromptLength` (chosen side), completion to `maxCompletionLength` (start), then
    /// the pair to `maxLength`.
    func truncatePair(_ prompt: [Int], _ completion: [Int]) -> ([Int], [Int]) {
        var prompt = truncate(prompt, to: options.maxPromptLength, keeping: options.promptTruncation)
        var completion = truncate(completion, to: options.maxCompletionLength, keeping: .keepStart)
        if let maxLength = options.maxLength {
            prompt = truncate(prompt, to: maxLength, keeping: options.promptTruncation)
            completion = truncate(completion, to: maxLength - prompt.count, keeping: .keepStart)
        }
        return (prompt, completion)
    }

    func truncated(promptIDs: [Int], chosenIDs: [Int], rejectedIDs: [Int]) -> PreferenceExample {
        let (prompt, chosen) = truncatePair(promptIDs, chosenIDs)
        let (_, rejected) = truncatePair(promptIDs, rejectedIDs)
        return PreferenceExample(promptIDs: prompt, chosenIDs: chosen, rejectedIDs: rejected)
    }

    func sftExample(promptIDs: [Int], completionIDs: [Int]) -> SFTExample {
        let (prompt, completion) = truncatePair(promptIDs, completionIDs)
        let promptMask = options.completionOnlyLoss ? 0 : 1
        return SFTExample(
            inputIDs: prompt + completion,
            completionMask: Array(repeating: promptMask, count: prompt.count) + Array(repeating: 1, count: completion.count))
    }

    /// A whole sequence cut to `maxLength`, keeping its start.
    func clip(_ example: SFTExample) -> SFTExample {
        SFTExample(
            inputIDs: truncate(example.inputIDs, to: options.maxLength, keeping: .keepStart),
            completionMask: truncate(example.completionMask, to: options.maxLength, keeping: .keepStart))
    }
}
