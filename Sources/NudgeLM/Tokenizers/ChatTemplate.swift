// ChatTemplate.swift
//
// Built-in chat formats, without a Jinja engine: ChatML (Qwen2 and others) and
// Llama 3. `ChatTemplate.apply` renders a conversation as text;
// `ChatTemplate.encode` tokenizes it segment by segment (role headers, message
// contents, end-of-turn tokens) so that every token is known to belong to an
// assistant turn or not, which yields the assistant mask for training.
//
// The formats are rendered literally: no default system prompt is inserted and
// message contents are not trimmed.

/// A message of a conversation.
public struct ChatMessage: Sendable, Hashable {
    /// The author role: `"system"`, `"user"`, `"assistant"` or another role the template accepts.
    public var role: String
    /// The message text.
    public var content: String

    /// Creates a message.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// A system message.
    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    /// A user message.
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    /// An assistant message.
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: "assistant", content: content) }

    /// Whether the message is an assistant turn.
    public var isAssistant: Bool { role == "assistant" }
}

/// A tokenized conversation.
public struct ChatEncoding: Sendable, Equatable {
    /// The token ids.
    public var ids: [Int]
    /// For each id, 1 when it belongs to an assistant message content or its end-of-turn token, else 0.
    public var assistantMask: [Int]

    /// Creates an encoding.
    public init(ids: [Int], assistantMask: [Int]) {
        self.ids = ids
        self.assistantMask = assistantMask
    }
}

/// A built-in chat format.
public enum ChatTemplate: String, Sendable, CaseIterable {
    /// `<|im_start|>role\ncontent<|im_end|>\n`; generation prompt `<|im_start|>assistant\n`.
    case chatML
    /// `<|begin_of_text|>`, then `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`;
    /// generation prompt `<|start_header_id|>assistant<|end_header_id|>\n\n`.
    case llama3

    /// A run of text and whether its tokens count as assistant tokens.
    struct Segment: Equatable {
        var text: String
        var isAssistant: Bool
    }

    /// The conversation as ordered segments.
    func segments(messages: [ChatMessage], addGenerationPrompt: Bool) -> [Segment] {
        var segments: [Segment] = []
        switch self {
        case .chatML:
            for message in messages {
                segments.append(Segment(text: "<|im_start|>\(message.role)\n", isAssistant: false))
                segments.append(Segment(text: message.content, isAssistant: message.isAssistant))
                segments.append(Segment(text: "<|im_end|>", isAssistant: message.isAssistant))
                segments.append(Segment(text: "\n", isAssistant: false))
            }
            if addGenerationPrompt { segments.append(Segment(text: "<|im_start|>assistant\n", isAssistant: false)) }
        case .llama3:
            segments.append(Segment(text: "<|begin_of_text|>", isAssistant: false))
            for message in messages {
                segments.append(
                    Segment(text: "<|start_header_id|>\(message.role)<|end_header_id|>\n\n", isAssistant: false))
                segments.append(Segment(text: message.content, isAssistant: message.isAssistant))
                segments.append(Segment(text: "<|eot_id|>", isAssistant: message.isAssistant))
            }
            if addGenerationPrompt {
                segments.append(Segment(text: "<|start_header_id|>assistant<|end_header_id|>\n\n", isAssistant: false))
            }
        }
        return segments.filter { !$0.text.isEmpty }
    }

    /// The conversation rendered as text.
    public func apply(messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        segments(messages: messages, addGenerationPrompt: addGenerationPrompt).map(\.text).joined()
    }

    /// The conversation tokenized segment by segment, with its assistant mask.
    ///
    /// Each segment is encoded without added sequence tokens (the template writes its own),
    /// so the special tokens of the format must be special tokens of `tokenizer`.
    public func encode(
        messages: [ChatMessage], addGenerationPrompt: Bool, using tokenizer: some Tokenizer
    ) -> ChatEncoding {
        var encoding = ChatEncoding(ids: [], assistantMask: [])
        for segment in segments(messages: messages, addGenerationPrompt: addGenerationPrompt) {
            let ids = tokenizer.encode(segment.text, addSpecialTokens: false)
            encoding.ids += ids
            encoding.assistantMask += Array(repeating: segment.isAssistant ? 1 : 0, count: ids.count)
        }
        return encoding
    }
}
