// ChatTemplateRenderer.swift
//
// Renders conversations with a model's own Jinja chat template, as transformers'
// `apply_chat_template(..., tokenize=False)` does: message keys whose value is null are
// dropped, reasoning under any of its names is also passed as `reasoning_content` and
// `thinking`, the model's special tokens are variables (`bos_token`, `eos_token`, ...),
// extra variables override them, and `messages`, `tools`, `documents` and
// `add_generation_prompt` are always defined (`tools` and `documents` are none when absent).

/// A conversation rendered with a chat template.
public struct ChatRendering: Sendable, Equatable {
    /// The rendered text.
    public var text: String
    /// The ranges of assistant-generated text the template marks with `{% generation %}`, in
    /// Unicode scalar offsets into `text` (as transformers reports them); empty when the template has none.
    public var assistantRanges: [Range<Int>]

    /// The assistant ranges as ranges of `text`'s indices.
    public var assistantStringRanges: [Range<String.Index>] {
        let scalars = text.unicodeScalars
        return assistantRanges.compactMap { range in
            guard range.lowerBound >= 0, range.upperBound <= scalars.count else { return nil }
            let lower = scalars.index(scalars.startIndex, offsetBy: range.lowerBound)
            let upper = scalars.index(lower, offsetBy: range.count)
            return lower..<upper
        }
    }
}

/// A model's chat template with the special tokens it refers to.
public struct ChatTemplateRenderer: Sendable {
    /// The parsed template.
    public let template: JinjaTemplate
    /// Special token strings passed as variables, e.g. `["bos_token": "<s>", "eos_token": "</s>"]`.
    public var specialTokens: [String: String]

    /// A renderer for a parsed template.
    public init(template: JinjaTemplate, specialTokens: [String: String] = [:]) {
        self.template = template
        self.specialTokens = specialTokens
    }

    /// Parses a template's source (from a file, `tokenizer_config.json` or GGUF metadata).
    public init(source: String, name: String, specialTokens: [String: String] = [:]) throws(JinjaError) {
        self.init(template: try JinjaTemplate(source: source, name: name), specialTokens: specialTokens)
    }

    /// Whether the template marks assistant output with `{% generation %}` blocks.
    public var hasGenerationBlocks: Bool { template.hasGenerationBlocks }

    /// Renders a conversation.
    ///
    /// - Parameters:
    ///   - messages: message objects with `role` and `content` (a string or a list of content parts)
    ///     and any extra keys the template reads (`tool_calls`, `reasoning_content`, `name`, ...).
    ///   - addGenerationPrompt: whether to end with the header of a new assistant turn.
    ///   - tools: tool JSON schemas, or nil.
    ///   - documents: retrieval documents (objects with `title` and `text`), or nil.
    ///   - variables: extra template variables, e.g. `enable_thinking`; they override special tokens.
    /// - Throws: `JinjaError`; when the template raises, `.raised` with exactly its message.
    public func render(
        messages: [JinjaValue], addGenerationPrompt: Bool = false, tools: [JinjaValue]? = nil, documents: [JinjaValue]? = nil,
        variables: [String: JinjaValue] = [:], options: JinjaRenderOptions = JinjaRenderOptions()
    ) throws(JinjaError) -> ChatRendering {
        var context: [String: JinjaValue] = [:]
        for (name, token) in specialTokens { context[name] = .string(token) }
        for (name, value) in variables { context[name] = value }
        context["messages"] = .array(messages.map(Self.normalized))
        context["tools"] = tools.map(JinjaValue.array) ?? JinjaValue.none
        context["documents"] = documents.map(JinjaValue.array) ?? JinjaValue.none
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        let rendering = try template.render(context, options: options)
        return ChatRendering(text: rendering.text, assistantRanges: rendering.generationRanges)
    }

    /// Renders plain text messages.
    public func render(
        _ messages: [ChatMessage], addGenerationPrompt: Bool = false, variables: [String: JinjaValue] = [:],
        options: JinjaRenderOptions = JinjaRenderOptions()
    ) throws(JinjaError) -> ChatRendering {
        try render(
            messages: messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) },
            addGenerationPrompt: addGenerationPrompt, variables: variables, options: options)
    }

    /// The names reasoning goes by; the first is the one templates read.
    static let reasoningFields = ["reasoning_content", "thinking", "reasoning"]

    /// A message as transformers hands it to the template: null-valued keys removed, and the first
    /// non-null reasoning field copied to `thinking` (if absent) and `reasoning_content`.
    static func normalized(_ message: JinjaValue) -> JinjaValue {
        guard case .object(let object) = message else { return message }
        var kept = JinjaObject(object.entries.filter { $0.value != .none })
        guard let reasoning = reasoningFields.lazy.compactMap({ kept[$0] }).first else { return .object(kept) }
        // transformers builds {"thinking": reasoning, **message, "reasoning_content": reasoning}.
        var aliased = JinjaObject()
        aliased["thinking"] = reasoning
        for (key, value) in kept.entries { aliased[key] = value }
        aliased["reasoning_content"] = reasoning
        kept = aliased
        return .object(kept)
    }
}
