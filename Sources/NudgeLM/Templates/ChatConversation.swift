// A conversation as chat files and datasets store it, handed to a chat template (`nudge lm template`).

extension ChatTemplateRenderer {
    /// The messages of a conversation given as JSON: a list of messages, or an object with a
    /// "messages" list; nil for anything else.
    public static func messages(in conversation: JinjaValue) -> [JinjaValue]? {
        switch conversation {
        case .array(let list): list
        case .object(let object): object["messages"]?.arrayValue
        default: nil
        }
    }
}

extension JinjaError {
    /// What to tell a user: a template's own raise_exception message as it is, any other error
    /// with its template, line and column.
    public var userMessage: String { kind == .raised ? message : description }
}
