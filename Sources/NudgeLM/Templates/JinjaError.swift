// JinjaError.swift
//
// The one error type of the template engine. Every error names the template and the
// line and column of the construct at fault, so a broken chat template is reported
// precisely instead of crashing. Errors raised by the template itself
// (`raise_exception('...')`) carry exactly the template's message.

/// Why a template could not be parsed or rendered.
public struct JinjaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure, mirroring the exception jinja2 raises in the same situation.
    public enum Kind: String, Sendable, Equatable {
        /// The template text is not valid Jinja (jinja2's `TemplateSyntaxError`), or uses a tag,
        /// filter or test this engine does not provide.
        case syntax
        /// An undefined value was used in a way that needs a value (jinja2's `UndefinedError`).
        case undefined
        /// An operation got a value of the wrong type (Python's `TypeError`).
        case type
        /// An operation got a value it cannot handle (Python's `ValueError`, `ZeroDivisionError`,
        /// `IndexError`, integer overflow).
        case value
        /// The template called `raise_exception(message)`; `message` is the template's text.
        case raised
        /// The template exceeded a resource limit (output size, loop iterations, recursion depth)
        /// or used an operation the sandbox forbids.
        case limit
    }

    /// The kind of failure.
    public var kind: Kind
    /// What went wrong; for `.raised`, exactly the template's message.
    public var message: String
    /// The name of the template (usually its file).
    public var templateName: String
    /// The 1-based line of the construct at fault (0 when unknown).
    public var line: Int
    /// The 1-based column of the construct at fault (0 when unknown).
    public var column: Int

    /// Creates an error.
    public init(_ kind: Kind, _ message: String, templateName: String = "", line: Int = 0, column: Int = 0) {
        self.kind = kind
        self.message = message
        self.templateName = templateName
        self.line = line
        self.column = column
    }

    /// `name:line:column: message`, e.g. `chat_template.jinja:3:14: unexpected '}'`.
    public var description: String {
        var location = templateName.isEmpty ? "<template>" : templateName
        if line > 0 { location += ":\(line):\(column)" }
        return "\(location): \(message)"
    }

    /// Whether the error already knows where it happened.
    var isPositioned: Bool { line > 0 }

    /// The error with the position filled in, unless it already has one.
    func positioned(_ position: SourcePosition, templateName: String) -> JinjaError {
        var error = self
        if !error.isPositioned {
            error.line = position.line
            error.column = position.column
        }
        if error.templateName.isEmpty { error.templateName = templateName }
        return error
    }
}

/// A 1-based line and column in a template's source.
struct SourcePosition: Sendable, Equatable {
    var line: Int
    var column: Int

    static let unknown = SourcePosition(line: 0, column: 0)
}
