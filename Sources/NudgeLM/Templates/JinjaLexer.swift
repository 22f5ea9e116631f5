// JinjaLexer.swift
//
// Splits a template into tokens with jinja2's rules for the environment transformers
// uses for chat templates (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
//
// - newlines are normalized to "\n" and one trailing newline of the source is dropped;
// - `{%-`, `{{-`, `{#-` strip all whitespace before the tag, `-%}`, `-}}`, `-#}` all after it;
// - lstrip_blocks: spaces and tabs between a line start and `{%` or `{#` are removed
//   (not before `{{`, and not with `{%+`);
// - trim_blocks: the first "\n" right after `%}` or `#}` is removed (not after `}}`, and not after `+%}`);
// - inside a tag, an end delimiter only closes it when brackets are balanced, so
//   `{{ {'a': {'b': 1}} }}` works.

/// A token of a template.
struct JinjaToken: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// Literal template text.
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        /// An operator or punctuation: `+ - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { }`.
        case op(String)
        case end
    }

    var kind: Kind
    var position: SourcePosition

    /// The token as jinja2 describes it in error messages.
    var description: String {
        switch kind {
        case .data: return "template data"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name(let name): return name
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .op(let op): return op
        case .end: return "end of template"
        }
    }
}

/// Python's `str.isspace` for one scalar (the characters `str.strip()` and `str.split()` remove).
func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

struct JinjaLexer {
    private let source: [Unicode.Scalar]
    private let templateName: String
    private var offset = 0
    private var line = 1
    private var lineStart = 0
    private var tokens: [JinjaToken] = []

    /// Tokenizes `text`.
    static func tokenize(_ text: String, templateName: String) throws(JinjaError) -> [JinjaToken] {
        var lexer = JinjaLexer(source: normalized(text), templateName: templateName)
        try lexer.run()
        return lexer.tokens
    }

    private init(source: [Unicode.Scalar], templateName: String) {
        self.source = source
        self.templateName = templateName
    }

    /// "\r\n" and "\r" become "\n"; one trailing newline is removed (keep_trailing_newline=False).
    private static func normalized(_ text: String) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\r" {
                scalars.append("\n")
                previousWasCR = true
                continue
            }
            if scalar == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = false
            scalars.append(scalar)
        }
        if scalars.last == "\n" { scalars.removeLast() }
        return scalars
    }

    // MARK: Position bookkeeping

    private var position: SourcePosition { SourcePosition(line: line, column: offset - lineStart + 1) }

    /// Moves to `newOffset`, counting the newlines passed.
    private mutating func advance(to newOffset: Int) {
        var index = offset
        while index < newOffset {
            if source[index] == "\n" {
                line += 1
                lineStart = index + 1
            }
            index += 1
        }
        offset = newOffset
    }

    private func error(_ message: String, at position: SourcePosition? = nil) -> JinjaError {
        let where_ = position ?? self.position
        return JinjaError(.syntax, message, templateName: templateName, line: where_.line, column: where_.column)
    }

    private func matches(_ text: String, at index: Int) -> Bool {
        var cursor = index
        for scalar in text.unicodeScalars {
            guard cursor < source.count, source[cursor] == scalar else { return false }
            cursor += 1
        }
        return true
    }

    private func skipWhitespace(from index: Int) -> Int {
        var cursor = index
        while cursor < source.count, isPythonWhitespace(source[cursor]) { cursor += 1 }
        return cursor
    }

    // MARK: Root state

    private enum TagKind { case variable, block, comment }

    private mutating func run() throws(JinjaError) {
        // Whether the text before the next tag starts at the beginning of a line (for lstrip_blocks).
        var lineStarting = true
        while offset < source.count {
            guard let (tagStart, kind) = nextTag(from: offset) else {
                emitData(from: offset, to: source.count)
                advance(to: source.count)
                break
            }
            let signIndex = tagStart + 2
            let sign: Unicode.Scalar? =
                signIndex < source.count && (source[signIndex] == "-" || source[signIndex] == "+") ? source[signIndex] : nil
            var textEnd = tagStart
            if sign == "-" {
                while textEnd > offset, isPythonWhitespace(source[textEnd - 1]) { textEnd -= 1 }
            } else if sign != "+" && kind != .variable {
                var lineBegin = tagStart
                while lineBegin > offset, source[lineBegin - 1] != "\n" { lineBegin -= 1 }
                let atLineStart = lineBegin > offset || (lineBegin == offset && lineStarting)
                if atLineStart, source[lineBegin..<tagStart].allSatisfy({ $0 == " " || $0 == "\t" }) {
                    textEnd = lineBegin
                }
            }
            emitData(from: offset, to: textEnd)
            advance(to: tagStart)
            let tagPosition = position
            let bodyStart = sign == nil ? tagStart + 2 : tagStart + 3
            switch kind {
            case .comment:
                lineStarting = try lexComment(from: bodyStart, opening: tagPosition)
            case .block:
                if let rawEnd = rawBlockEnd(from: bodyStart) {
                    advance(to: rawEnd)
                    lineStarting = try lexRaw(opening: tagPosition)
                } else {
                    tokens.append(JinjaToken(kind: .blockBegin, position: tagPosition))
                    advance(to: bodyStart)
                    lineStarting = try lexInsideTag(block: true, opening: tagPosition)
                }
            case .variable:
                tokens.append(JinjaToken(kind: .variableBegin, position: tagPosition))
                advance(to: bodyStart)
                lineStarting = try lexInsideTag(block: false, opening: tagPosition)
            }
        }
        tokens.append(JinjaToken(kind: .end, position: position))
    }

    private func nextTag(from index: Int) -> (Int, TagKind)? {
        var cursor = index
        while cursor + 1 < source.count {
            if source[cursor] == "{" {
                switch source[cursor + 1] {
                case "{": return (cursor, .variable)
                case "%": return (cursor, .block)
                case "#": return (cursor, .comment)
                default: break
                }
            }
            cursor += 1
        }
        return nil
    }

    private mutating func emitData(from start: Int, to end: Int) {
        guard end > start else { return }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: source[start..<end])
        tokens.append(JinjaToken(kind: .data(String(text)), position: position))
    }

    /// After a `%}` or `#}`: "-" strips all following whitespace, "+" nothing, otherwise one "\n" (trim_blocks).
    /// Returns the offset after the suffix.
    private func afterBlockEnd(delimiterEnd: Int, sign: Unicode.Scalar?) -> Int {
        if sign == "-" { return skipWhitespace(from: delimiterEnd) }
        if sign == "+" { return delimiterEnd }
        return delimiterEnd < source.count && source[delimiterEnd] == "\n" ? delimiterEnd + 1 : delimiterEnd
    }

    /// Skips a comment; returns whether the consumed text ends with a newline.
    private mutating func lexComment(from start: Int, opening: SourcePosition) throws(JinjaError) -> Bool {
        var cursor = start
        while cursor + 1 < source.count {
            // The first `#}`, `-#}` or `+#}` closes the comment.
            if source[cursor] == "#" && source[cursor + 1] == "}" {
                let sign: Unicode.Scalar? = cursor > start && (source[cursor - 1] == "-" || source[cursor - 1] == "+") ? source[cursor - 1] : nil
                let end = afterBlockEnd(delimiterEnd: cursor + 2, sign: sign)
                advance(to: end)
                return end > 0 && source[end - 1] == "\n"
            }
            cursor += 1
        }
        throw error("Missing end of comment tag", at: opening)
    }

    /// If `{%` at this point opens `{% raw %}`, the offset after its closing delimiter.
    private func rawBlockEnd(from bodyStart: Int) -> Int? {
        var cursor = skipWhitespace(from: bodyStart)
        guard matches("raw", at: cursor) else { return nil }
        cursor += 3
        cursor = skipWhitespace(from: cursor)
        if matches("-%}", at: cursor) { return skipWhitespace(from: cursor + 3) }
        if matches("%}", at: cursor) { return cursor + 2 }
        return nil
    }

    /// Emits the text of a raw block up to `{% endraw %}`; returns whether the consumed text ends with a newline.
    private mutating func lexRaw(opening: SourcePosition) throws(JinjaError) -> Bool {
        var cursor = offset
        while cursor + 1 < source.count {
            if source[cursor] == "{" && source[cursor + 1] == "%" {
                let signIndex = cursor + 2
                let sign: Unicode.Scalar? =
                    signIndex < source.count && (source[signIndex] == "-" || source[signIndex] == "+") ? source[signIndex] : nil
                var inner = skipWhitespace(from: sign == nil ? cursor + 2 : cursor + 3)
                if matches("endraw", at: inner) {
                    inner = skipWhitespace(from: inner + 6)
                    var closeSign: Unicode.Scalar?
                    if inner < source.count, source[inner] == "-" || source[inner] == "+" {
                        closeSign = source[inner]
                        inner += 1
                    }
                    if matches("%}", at: inner) {
                        var textEnd = cursor
                        if sign == "-" {
                            while textEnd > offset, isPythonWhitespace(source[textEnd - 1]) { textEnd -= 1 }
                        } else if sign != "+" {
                            var lineBegin = cursor
                            while lineBegin > offset, source[lineBegin - 1] != "\n" { lineBegin -= 1 }
                            if lineBegin > offset, source[lineBegin..<cursor].allSatisfy({ $0 == " " || $0 == "\t" }) {
                                textEnd = lineBegin
                            }
                        }
                        emitData(from: offset, to: textEnd)
                        let end = afterBlockEnd(delimiterEnd: inner + 2, sign: closeSign)
                        advance(to: end)
                        return end > 0 && source[end - 1] == "\n"
                    }
                }
            }
            cursor += 1
        }
        throw error("Missing end of raw directive", at: opening)
    }

    // MARK: Inside `{{ }}` and `{% %}`

    private static let twoCharacterOperators: Set<String> = ["//", "**", "==", "!=", ">=", "<="]
    private static let oneCharacterOperators: Set<Unicode.Scalar> = [
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    /// Lexes expression tokens up to the closing delimiter; returns whether the consumed text ends with a newline.
    private mutating func lexInsideTag(block: Bool, opening: SourcePosition) throws(JinjaError) -> Bool {
        var brackets: [(Unicode.Scalar, SourcePosition)] = []
        while true {
            advance(to: skipWhitespace(from: offset))
            guard offset < source.count else {
                throw error("unexpected end of template, expected '\(block ? "end of statement block" : "end of print statement")'.")
            }
            if brackets.isEmpty, let end = closingDelimiter(block: block) {
                tokens.append(JinjaToken(kind: block ? .blockEnd : .variableEnd, position: position))
                advance(to: end)
                return end > 0 && source[end - 1] == "\n"
            }
            let start = position
            let scalar = source[offset]
            if scalar == "'" || scalar == "\"" {
                tokens.append(JinjaToken(kind: .string(try lexString(quote: scalar)), position: start))
            } else if ("0"..."9").contains(scalar) {
                tokens.append(JinjaToken(kind: try lexNumber(), position: start))
            } else if scalar == "_" || scalar.properties.isXIDStart {
                var end = offset + 1
                while end < source.count, source[end] == "_" || source[end].properties.isXIDContinue { end += 1 }
                var name = String.UnicodeScalarView()
                name.append(contentsOf: source[offset..<end])
                tokens.append(JinjaToken(kind: .name(String(name)), position: start))
                advance(to: end)
            } else {
                let op: String
                if offset + 1 < source.count, Self.twoCharacterOperators.contains(String(scalar) + String(source[offset + 1])) {
                    op = String(scalar) + String(source[offset + 1])
                } else if Self.oneCharacterOperators.contains(scalar) {
                    op = String(scalar)
                } else {
                    throw error("unexpected char '\(scalar)'")
                }
                switch op {
                case "(", "[", "{":
                    brackets.append((scalar, start))
                case ")", "]", "}":
                    let expected: Unicode.Scalar = op == ")" ? "(" : op == "]" ? "[" : "{"
                    guard let last = brackets.last else { throw error("unexpected '\(op)'") }
                    guard last.0 == expected else {
                        let closing = last.0 == "(" ? ")" : last.0 == "[" ? "]" : "}"
                        throw error("unexpected '\(op)', expected '\(closing)'")
                    }
                    brackets.removeLast()
                default:
                    break
                }
                tokens.append(JinjaToken(kind: .op(op), position: start))
                advance(to: offset + op.unicodeScalars.count)
            }
        }
    }

    /// If a closing delimiter starts here, the offset after it and its whitespace suffix.
    private func closingDelimiter(block: Bool) -> Int? {
        if block {
            if matches("-%}", at: offset) { return afterBlockEnd(delimiterEnd: offset + 3, sign: "-") }
            if matches("+%}", at: offset) { return offset + 3 }
            if matches("%}", at: offset) { return afterBlockEnd(delimiterEnd: offset + 2, sign: nil) }
        } else {
            if matches("-}}", at: offset) { return skipWhitespace(from: offset + 3) }
            if matches("}}", at: offset) { return offset + 2 }
        }
        return nil
    }

    /// A string literal with Python's escapes (jinja2 decodes them with `unicode-escape`).
    private mutating func lexString(quote: Unicode.Scalar) throws(JinjaError) -> String {
        let start = position
        var cursor = offset + 1
        var result = String.UnicodeScalarView()
        while true {
            guard cursor < source.count else { throw error("unexpected end of string literal", at: start) }
            let scalar = source[cursor]
            if scalar == quote {
                cursor += 1
                break
            }
            guard scalar == "\\", cursor + 1 < source.count else {
                result.append(scalar)
                cursor += 1
                continue
            }
            let next = source[cursor + 1]
            cursor += 2
            switch next {
            case "\n": break  // line continuation
            case "\\": result.append("\\")
            case "'": result.append("'")
            case "\"": result.append("\"")
            case "a": result.append("\u{07}")
            case "b": result.append("\u{08}")
            case "f": result.append("\u{0C}")
            case "n": result.append("\n")
            case "r": result.append("\r")
            case "t": result.append("\t")
            case "v": result.append("\u{0B}")
            case "0"..."7":
                var value = next.value - 0x30
                var digits = 1
                while digits < 3, cursor < source.count, ("0"..."7").contains(source[cursor]) {
                    value = value * 8 + source[cursor].value - 0x30
                    cursor += 1
                    digits += 1
                }
                result.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            case "x", "u", "U":
                let count = next == "x" ? 2 : next == "u" ? 4 : 8
                guard cursor + count <= source.count else { throw error("truncated \\\(next) escape in a string", at: start) }
                var value: UInt32 = 0
                for index in cursor..<cursor + count {
                    guard let digit = UInt32(String(source[index]), radix: 16) else {
                        throw error("truncated \\\(next) escape in a string", at: start)
                    }
                    value = value * 16 + digit
                }
                cursor += count
                guard let decoded = Unicode.Scalar(value) else { throw error("invalid escape \\\(next) in a string", at: start) }
                result.append(decoded)
            default:
                // Python keeps unknown escapes such as `\d` as they are.
                result.append("\\")
                result.append(next)
            }
        }
        advance(to: cursor)
        return String(result)
    }

    /// An integer or float literal (underscores allowed between digits, as in jinja2).
    private mutating func lexNumber() throws(JinjaError) -> JinjaToken.Kind {
        let start = offset
        func digitRun(_ from: Int) -> Int {
            var cursor = from
            while cursor < source.count, ("0"..."9").contains(source[cursor])
                || (source[cursor] == "_" && cursor + 1 < source.count && ("0"..."9").contains(source[cursor + 1]) && cursor > from)
            {
                cursor += 1
            }
            return cursor
        }
        var cursor = digitRun(start)
        var isFloat = false
        if cursor + 1 < source.count, source[cursor] == ".", ("0"..."9").contains(source[cursor + 1]) {
            isFloat = true
            cursor = digitRun(cursor + 1)
        }
        if cursor < source.count, source[cursor] == "e" || source[cursor] == "E" {
            var exponent = cursor + 1
            if exponent < source.count, source[exponent] == "+" || source[exponent] == "-" { exponent += 1 }
            if exponent < source.count, ("0"..."9").contains(source[exponent]) {
                isFloat = true
                cursor = digitRun(exponent)
            }
        }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: source[start..<cursor].filter { $0 != "_" })
        let literal = String(text)
        advance(to: cursor)
        if isFloat {
            guard let value = Double(literal) else { throw error("invalid float literal \(literal)") }
            return .float(value)
        }
        guard let value = Int(literal) else { throw error("integer literal \(literal) is too large") }
        return .integer(value)
    }
}
