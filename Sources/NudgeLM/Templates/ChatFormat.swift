// How conversations become text and tokens for training and sampling: a model's own Jinja chat
// template (read from its directory or GGUF file) when it has one, else a built-in format.
//
// Assistant masks from a Jinja template: the `{% generation %}` ranges when the template marks
// them; otherwise TRL's prefix rule — an assistant turn is the text that rendering the conversation
// through that turn adds to rendering it up to the turn with the generation prompt. A template
// whose renderings of prefixes are not prefixes of the whole (e.g. one that drops earlier turns'
// reasoning) gets a clear error instead of a guessed mask.

/// Renders and tokenizes conversations.
public protocol ChatFormat: Sendable {
    /// The conversation rendered as text.
    func render(messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String
    /// The conversation tokenized (no sequence specials added: the format writes its own), with a
    /// mask of 1 on the tokens of assistant turns.
    func tokenize(messages: [ChatMessage], addGenerationPrompt: Bool, tokenizer: any Tokenizer) throws -> ChatEncoding
}

extension ChatTemplate: ChatFormat {
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        apply(messages: messages, addGenerationPrompt: addGenerationPrompt)
    }

    public func tokenize(messages: [ChatMessage], addGenerationPrompt: Bool, tokenizer: any Tokenizer) -> ChatEncoding {
        encode(messages: messages, addGenerationPrompt: addGenerationPrompt, using: tokenizer)
    }
}

/// Errors locating assistant turns in a rendered conversation.
public struct ChatFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public var template: String
    public var reason: String
    public var description: String { "chat template \(template): \(reason)" }
}

/// A model's Jinja chat template as a chat format.
public struct JinjaChatFormat: ChatFormat {
    public let renderer: ChatTemplateRenderer

    public init(_ renderer: ChatTemplateRenderer) { self.renderer = renderer }

    public func render(messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        try renderer.render(messages, addGenerationPrompt: addGenerationPrompt).text
    }

    /// The rendered conversation as runs of text, each marked assistant or not.
    func segments(messages: [ChatMessage], addGenerationPrompt: Bool) throws -> [(text: String, isAssistant: Bool)] {
        if renderer.hasGenerationBlocks {
            let rendering = try renderer.render(messages, addGenerationPrompt: addGenerationPrompt)
            var out: [(String, Bool)] = []
            var cursor = rendering.text.startIndex
            for range in rendering.assistantStringRanges where range.lowerBound >= cursor {
                out.append((String(rendering.text[cursor..<range.lowerBound]), false))
                out.append((String(rendering.text[range]), true))
                cursor = range.upperBound
            }
            out.append((String(rendering.text[cursor...]), false))
            return out.filter { !$0.0.isEmpty }
        }
        var out: [(String, Bool)] = []
        var done = ""
        func suffix(_ text: String, after prefix: String, _ what: String) throws -> String {
            guard text.hasPrefix(prefix) else {
                throw ChatFormatError(template: renderer.template.name, reason: "\(what) does not begin with the rendering of the turns before it, so its assistant tokens cannot be located; give the template {% generation %} blocks")
            }
            return String(text.dropFirst(prefix.count))
        }
        for i in messages.indices where messages[i].isAssistant {
            let before = try render(messages: Array(messages[..<i]), addGenerationPrompt: true)
            let through = try render(messages: Array(messages[...i]), addGenerationPrompt: false)
            out.append((try suffix(before, after: done, "the conversation up to assistant turn \(i)"), false))
            out.append((try suffix(through, after: before, "the conversation through assistant turn \(i)"), true))
            done = through
        }
        let full = try render(messages: messages, addGenerationPrompt: addGenerationPrompt)
        out.append((try suffix(full, after: done, "the whole conversation"), false))
        return out.filter { !$0.0.isEmpty }
    }

    public func tokenize(messages: [ChatMessage], addGenerationPrompt: Bool, tokenizer: any Tokenizer) throws -> ChatEncoding {
        var encoding = ChatEncoding(ids: [], assistantMask: [])
        for (text, isAssistant) in try segments(messages: messages, addGenerationPrompt: addGenerationPrompt) {
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            encoding.ids += ids
            encoding.assistantMask += Array(repeating: isAssistant ? 1 : 0, count: ids.count)
        }
        return encoding
    }
}

/// A tokenizer paired with its model's chat template.
public struct TemplatedTokenizer: Tokenizer {
    public let base: any Tokenizer
    public let format: any ChatFormat

    public init(_ base: any Tokenizer, format: any ChatFormat) {
        self.base = base
        self.format = format
    }

    public var vocabularySize: Int { base.vocabularySize }
    public var specialTokens: [String: Int] { base.specialTokens }
    public var bosTokenID: Int? { base.bosTokenID }
    public var eosTokenID: Int? { base.eosTokenID }
    public var padTokenID: Int? { base.padTokenID }
    public var defaultChatTemplate: ChatTemplate? { base.defaultChatTemplate }
    public var chatFormat: (any ChatFormat)? { format }
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] { base.encode(text, addSpecialTokens: addSpecialTokens) }
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String { base.decode(ids, skipSpecialTokens: skipSpecialTokens) }
    public func tokenID(for token: String) -> Int? { base.tokenID(for: token) }
    public func token(for id: Int) -> String? { base.token(for: id) }
}
