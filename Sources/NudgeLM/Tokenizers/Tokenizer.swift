// Tokenizer.swift
//
// The `Tokenizer` protocol shared by `ByteTokenizer` and `BPETokenizer`: text ↔
// token ids, special tokens and their roles (BOS, EOS, padding), and chat
// template application (`ChatTemplate`), including the assistant mask used to
// train only on the assistant's turns.

/// Converts text to token ids and back.
public protocol Tokenizer: Sendable {
    /// One more than the largest token id: every id the tokenizer emits is below it.
    var vocabularySize: Int { get }
    /// Special tokens by text, e.g. `"<|endoftext|>": 50256`.
    var specialTokens: [String: Int] { get }
    /// The beginning-of-sequence token, if the tokenizer has one.
    var bosTokenID: Int? { get }
    /// The end-of-sequence (or end-of-turn) token that stops generation, if any.
    var eosTokenID: Int? { get }
    /// The padding token, if any.
    var padTokenID: Int? { get }
    /// The chat template the tokenizer's special tokens suggest, if any.
    var defaultChatTemplate: ChatTemplate? { get }
    /// How conversations are rendered: the model's own template when it came with one, else
    /// `defaultChatTemplate`.
    var chatFormat: (any ChatFormat)? { get }

    /// The token ids of `text`. Special tokens written in the text are always recognized;
    /// `addSpecialTokens` adds the ones the tokenizer puts around a sequence (e.g. Llama 3's BOS).
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int]
    /// The text of `ids`; unknown ids are ignored, special tokens are dropped when `skipSpecialTokens`.
    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String
    /// The id of a token given its vocabulary spelling, or nil.
    func tokenID(for token: String) -> Int?
    /// The vocabulary spelling of a token id, or nil.
    func token(for id: Int) -> String?
}

extension Tokenizer {
    public var chatFormat: (any ChatFormat)? { defaultChatTemplate }

    /// The token ids of `text`, with the tokenizer's sequence special tokens added.
    public func encode(_ text: String) -> [Int] { encode(text, addSpecialTokens: true) }

    /// The text of `ids`, special tokens included.
    public func decode(_ ids: [Int]) -> String { decode(ids, skipSpecialTokens: false) }

    /// Renders `messages` with `template` as text.
    public func renderChat(
        _ messages: [ChatMessage], template: ChatTemplate, addGenerationPrompt: Bool
    ) -> String {
        template.apply(messages: messages, addGenerationPrompt: addGenerationPrompt)
    }

    /// Tokenizes `messages` with `template` and marks the assistant tokens.
    ///
    /// The mask is 1 for tokens of assistant message contents and their end-of-turn token,
    /// 0 for everything else (headers, other roles, the generation prompt).
    public func applyChatTemplate(
        _ messages: [ChatMessage], template: ChatTemplate, addGenerationPrompt: Bool
    ) -> ChatEncoding {
        template.encode(messages: messages, addGenerationPrompt: addGenerationPrompt, using: self)
    }
}
