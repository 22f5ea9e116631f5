// TOMLParser.swift
//
// Our own TOML 1.0 reader for `--config` files and a run's config.toml. It replaced toml++
// (through TOMLKit), which aborted the process on malformed input instead of reporting it: a bad
// config must give an error with its line and column, never a crash.
//
// The reader works on the UTF-8 bytes with every index checked, nests at most
// `TOMLParser.maxDepth` levels (so deep input is an error, not a stack overflow), and checks
// integers for overflow. Tables live in an arena while the document is read, so that headers
// and dotted keys can reopen them in place and the redefinition rules can be checked per table;
// the finished tree is built once at the end.

/// Reads TOML 1.0 documents.
enum TOMLParser {
    /// The deepest nesting of tables, arrays and inline tables that a document may use.
    static let maxDepth = 128

    /// The root table of `text`; throws at the first error.
    static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var reader = Reader(Array(text.utf8))
        return try reader.document()
    }

    /// The root table of `bytes`, which must be UTF-8; throws at the first error.
    static func parse(bytes: [UInt8]) throws(TOMLError) -> TOMLTable {
        var reader = Reader(bytes)
        if let bad = firstInvalidUTF8(bytes) { throw reader.error("the file is not valid UTF-8", at: bad) }
        return try reader.document()
    }

    /// The offset of the first byte that does not belong to a well-formed UTF-8 sequence, or nil.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            let length: Int, low: UInt8, high: UInt8
            switch b {
            case 0xC2...0xDF: length = 2; low = 0x80; high = 0xBF
            case 0xE0: length = 3; low = 0xA0; high = 0xBF  // no overlong forms
            case 0xED: length = 3; low = 0x80; high = 0x9F  // no surrogates
            case 0xE1...0xEC, 0xEE...0xEF: length = 3; low = 0x80; high = 0xBF
            case 0xF0: length = 4; low = 0x90; high = 0xBF
            case 0xF1...0xF3: length = 4; low = 0x80; high = 0xBF
            case 0xF4: length = 4; low = 0x80; high = 0x8F  // nothing past U+10FFFF
            default: return i
            }
            guard bytes.count - i >= length, (low...high).contains(bytes[i + 1]) else { return i }
            for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }
}

// MARK: - Bytes

private extension UInt8 {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote = UInt8(ascii: "\"")
    static let apostrophe = UInt8(ascii: "'")
    static let hash = UInt8(ascii: "#")
    static let equals = UInt8(ascii: "=")
    static let dot = UInt8(ascii: ".")
    static let comma = UInt8(ascii: ",")
    static let backslash = UInt8(ascii: "\\")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let underscore = UInt8(ascii: "_")
    static let colon = UInt8(ascii: ":")
    static let plus = UInt8(ascii: "+")
    static let minus = UInt8(ascii: "-")

    var isDigit: Bool { self >= 0x30 && self <= 0x39 }
    var isBlank: Bool { self == .space || self == .tab }
    var isBareKey: Bool {
        (self >= 0x41 && self <= 0x5A) || (self >= 0x61 && self <= 0x7A) || isDigit || self == .underscore || self == .minus
    }
    /// A control character that TOML forbids unescaped (tab is allowed; line ends are handled apart).
    var isForbiddenControl: Bool { (self < 0x20 && self != .tab) || self == 0x7F }
    /// A byte of a bare value: number, boolean, date or time.
    var isTokenByte: Bool {
        isBareKey || self == .plus || self == .dot || self == .colon
    }

    func digit(radix: Int) -> Int? {
        let value: Int
        switch self {
        case 0x30...0x39: value = Int(self) - 0x30
        case 0x41...0x46: value = Int(self) - 0x41 + 10
        case 0x61...0x66: value = Int(self) - 0x61 + 10
        default: return nil
        }
        return value < radix ? value : nil
    }
}

// MARK: - Reader state

/// A value while the document is read: containers of tables point into the reader's arena.
private enum Slot {
    case scalar(TOMLValue)
    /// A static array; frozen once written.
    case array([Slot])
    case table(Int)
    /// An array of tables: an index into `Reader.tableArrays`.
    case tableArray(Int)
}

/// A table while the document is read.
private struct TableNode {
    /// How the table came to be, which decides what may add to it later.
    enum Kind {
        /// Made as the parent of a header's table (`a` for `[a.b]`); a header may still define it.
        case implicit
        /// Defined by a `[header]` or an `[[array]]` element: only its own section adds keys.
        case explicit
        /// Made by dotted keys (`a.b = 1`): no header may define it.
        case dotted
        /// An inline table: complete as written.
        case inline
    }

    var kind: Kind
    /// The dotted path, for messages.
    var path: [String]
    /// The line where it was defined, for messages.
    var line: Int
    var depth: Int
    var index: [String: Int] = [:]
    var entries: [(key: String, slot: Slot, line: Int, column: Int)] = []
}

/// One part of a dotted key and the offset where it starts.
private struct KeyPart {
    var name: String
    var offset: Int
}

private struct Reader {
    let bytes: [UInt8]
    var pos = 0
    /// Offsets where lines start, for line and column numbers.
    let lineStarts: [Int]
    /// The last position turned into a column, so that keys along one long line cost little.
    var columnCache: (line: Int, offset: Int, column: Int) = (0, 0, 1)
    var tables: [TableNode] = [TableNode(kind: .explicit, path: [], line: 1, depth: 0)]
    var tableArrays: [[Int]] = []
    /// The table that key/value lines go to: the root, then the last header's.
    var current = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var starts = [0]
        for (i, b) in bytes.enumerated() where b == .lf { starts.append(i + 1) }
        lineStarts = starts
    }

    func peek(_ ahead: Int = 0) -> UInt8? {
        let i = pos + ahead
        return i >= 0 && i < bytes.count ? bytes[i] : nil
    }

    var atEnd: Bool { pos >= bytes.count }

    // MARK: Positions and errors

    /// The 1-based line and column of `offset`.
    mutating func location(_ offset: Int) -> (line: Int, column: Int) {
        let offset = min(max(offset, 0), bytes.count)
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        var from = lineStarts[lo], column = 1
        if columnCache.line == lo && columnCache.offset >= from && columnCache.offset <= offset {
            from = columnCache.offset
            column = columnCache.column
        }
        // Columns count characters: every byte that does not continue a UTF-8 sequence.
        for i in from..<offset where bytes[i] & 0xC0 != 0x80 { column += 1 }
        columnCache = (lo, offset, column)
        return (lo + 1, column)
    }

    mutating func error(_ message: String, at offset: Int? = nil) -> TOMLError {
        let (line, column) = location(offset ?? pos)
        return TOMLError(line: line, column: column, message: message)
    }

    /// What is at `offset`, for "expected X, found Y" messages.
    func found(at offset: Int? = nil) -> String {
        let i = offset ?? pos
        guard i >= 0 && i < bytes.count else { return "the end of the file" }
        let b = bytes[i]
        if b == .lf || (b == .cr && i + 1 < bytes.count && bytes[i + 1] == .lf) { return "the end of the line" }
        if b.isForbiddenControl {
            let hex = String(b, radix: 16, uppercase: true)
            return "U+" + String(repeating: "0", count: 4 - hex.count) + hex
        }
        var end = i + 1
        while end < bytes.count && end < i + 4 && bytes[end] & 0xC0 == 0x80 { end += 1 }
        return "'" + String(decoding: bytes[i..<end], as: UTF8.self) + "'"
    }

    /// `path` as a dotted key for messages.
    static func display(_ path: [String]) -> String {
        path.map(TOMLWriter.formatKey).joined(separator: ".")
    }

    // MARK: Whitespace, comments, line ends

    mutating func skipBlanks() {
        while let b = peek(), b.isBlank { pos += 1 }
    }

    /// Steps over `\r\n` (a lone carriage return is an error).
    mutating func carriageReturn() throws(TOMLError) {
        guard peek(1) == .lf else { throw error("a carriage return (U+000D) must be followed by a line feed") }
        pos += 2
    }

    /// Steps over a comment up to (not over) its line end.
    mutating func comment() throws(TOMLError) {
        pos += 1
        while let b = peek(), b != .lf {
            if b == .cr && peek(1) == .lf { return }
            if b.isForbiddenControl { throw error("control character \(found()) is not allowed in a comment") }
            pos += 1
        }
    }

    /// Blanks, line ends and comments, as allowed inside arrays.
    mutating func skipBlanksLinesAndComments() throws(TOMLError) {
        while let b = peek() {
            switch b {
            case .space, .tab, .lf: pos += 1
            case .cr: try carriageReturn()
            case .hash: try comment()
            default: return
            }
        }
    }

    /// After a header or a key/value: blanks, an optional comment, then a line end or the end of the file.
    mutating func endOfLine(after what: String) throws(TOMLError) {
        skipBlanks()
        if peek() == .hash { try comment() }
        guard let b = peek() else { return }
        if b == .lf { pos += 1; return }
        if b == .cr { try carriageReturn(); return }
        throw error("expected the end of the line after \(what), found \(found())")
    }

    // MARK: Document

    mutating func document() throws(TOMLError) -> TOMLTable {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { pos = 3 }  // a byte-order mark
        while true {
            skipBlanks()
            guard let b = peek() else { break }
            switch b {
            case .lf: pos += 1
            case .cr: try carriageReturn()
            case .hash: try comment()
            case .openBracket:
                try header()
                try endOfLine(after: "the table header")
            default:
                try keyValue(into: current)
                try endOfLine(after: "the value")
            }
        }
        return build(table: 0)
    }

    // MARK: Keys

    /// A key, bare, quoted or dotted; leaves `pos` after the blanks that follow it.
    mutating func key() throws(TOMLError) -> [KeyPart] {
        var parts: [KeyPart] = []
        while true {
            skipBlanks()
            let start = pos
            guard let b = peek() else {
                throw error(parts.isEmpty ? "expected a key, found the end of the file" : "expected a key after '.', found the end of the file")
            }
            let name: String
            if b == .quote || b == .apostrophe {
                if peek(1) == b && peek(2) == b { throw error("a key cannot be a multi-line string") }
                name = b == .quote ? try basicString() : try literalString()
            } else if b.isBareKey {
                while let c = peek(), c.isBareKey { pos += 1 }
                name = String(decoding: bytes[start..<pos], as: UTF8.self)
                if let c = peek(), c >= 0x80 { throw badKeyCharacter() }
            } else if b >= 0x80 {
                throw badKeyCharacter()
            } else {
                throw error(parts.isEmpty ? "expected a key, found \(found())" : "expected a key after '.', found \(found())")
            }
            parts.append(KeyPart(name: name, offset: start))
            skipBlanks()
            guard peek() == .dot else { return parts }
            pos += 1
        }
    }

    mutating func badKeyCharacter() -> TOMLError {
        error("\(found()) cannot be part of a bare key (A-Z, a-z, 0-9, _ and - can); quote the key, e.g. \"café\"")
    }

    /// `key = value` into `table`.
    mutating func keyValue(into table: Int) throws(TOMLError) {
        let parts = try key()
        guard peek() == .equals else { throw error("expected '=' after the key, found \(found())") }
        pos += 1
        skipBlanks()
        guard let last = parts.last else { throw error("expected a key") }
        let parent = try descendDotted(from: table, through: parts.dropLast())
        if let i = tables[parent].index[last.name] {
            let path = Self.display(tables[parent].path + [last.name])
            throw error("duplicate key '\(path)' (first set on line \(definedLine(parent, i)))", at: last.offset)
        }
        let slot = try value(depth: tables[parent].depth + 1, path: tables[parent].path + [last.name])
        insert(last, slot, into: parent)
    }

    /// The table that the dotted key `parts` (all but the last part of a key) leads to from
    /// `table`, made where missing. Dotted keys may add to tables they made themselves and to
    /// the implicit parents of headers, never to a table a header defined, an inline table or a value.
    mutating func descendDotted(from table: Int, through parts: ArraySlice<KeyPart>) throws(TOMLError) -> Int {
        var t = table
        for part in parts {
            guard let i = tables[t].index[part.name] else {
                t = try addTable(part, to: t, kind: .dotted)
                continue
            }
            let path = Self.display(tables[t].path + [part.name])
            switch tables[t].entries[i].slot {
            case .table(let child):
                switch tables[child].kind {
                case .implicit:
                    tables[child].kind = .dotted
                    t = child
                case .dotted:
                    t = child
                case .explicit:
                    throw error("dotted keys cannot add to table [\(path)], defined on line \(tables[child].line); write the key under its header",
                                at: part.offset)
                case .inline:
                    throw error("'\(path)' is an inline table (line \(tables[child].line)), which cannot be extended", at: part.offset)
                }
            case .tableArray:
                throw error("'\(path)' is an array of tables (line \(definedLine(t, i))); dotted keys cannot add to it", at: part.offset)
            case .scalar, .array:
                throw error("'\(path)' is already a value (line \(definedLine(t, i))), not a table", at: part.offset)
            }
        }
        return t
    }

    /// A new empty table `part` in `parent`.
    mutating func addTable(_ part: KeyPart, to parent: Int, kind: TableNode.Kind) throws(TOMLError) -> Int {
        let id = try newTable(kind: kind, path: tables[parent].path + [part.name], depth: tables[parent].depth + 1, at: part.offset)
        insert(part, .table(id), into: parent)
        return id
    }

    mutating func newTable(kind: TableNode.Kind, path: [String], depth: Int, at offset: Int) throws(TOMLError) -> Int {
        guard depth <= TOMLParser.maxDepth else {
            throw error("tables and arrays nest more than \(TOMLParser.maxDepth) levels deep", at: offset)
        }
        tables.append(TableNode(kind: kind, path: path, line: location(offset).line, depth: depth))
        return tables.count - 1
    }

    mutating func insert(_ part: KeyPart, _ slot: Slot, into table: Int) {
        let (line, column) = location(part.offset)
        tables[table].index[part.name] = tables[table].entries.count
        tables[table].entries.append((part.name, slot, line, column))
    }

    /// The line where entry `i` of `table` was defined.
    func definedLine(_ table: Int, _ i: Int) -> Int {
        if case .table(let child) = tables[table].entries[i].slot { return tables[child].line }
        return tables[table].entries[i].line
    }

    // MARK: Headers

    /// `[a.b]` or `[[a.b]]`: makes its table the current one.
    mutating func header() throws(TOMLError) {
        let start = pos
        pos += 1
        let isArray = peek() == .openBracket
        if isArray { pos += 1 }
        skipBlanks()
        guard let b = peek(), b != .lf, b != .cr, b != .hash, b != .closeBracket else {
            throw error("a table header needs a name, e.g. [sft] or [[items]]", at: start)
        }
        let parts = try key()
        if isArray {
            guard peek() == .closeBracket else { throw error("expected ']]' to close the header, found \(found())") }
            guard peek(1) == .closeBracket else { throw error("expected ']]' to close the header, found \(found(at: pos + 1))", at: pos + 1) }
            pos += 2
        } else {
            guard peek() == .closeBracket else { throw error("expected ']' to close the table header, found \(found())") }
            pos += 1
        }
        guard let last = parts.last else { throw error("a table header needs a name, e.g. [sft] or [[items]]", at: start) }

        // Every part but the last: existing tables (the newest element of an array of tables),
        // or new implicit ones.
        var t = 0
        for part in parts.dropLast() {
            guard let i = tables[t].index[part.name] else {
                t = try addTable(part, to: t, kind: .implicit)
                continue
            }
            let path = Self.display(tables[t].path + [part.name])
            switch tables[t].entries[i].slot {
            case .table(let child):
                guard tables[child].kind != .inline else {
                    throw error("'\(path)' is an inline table (line \(tables[child].line)), which cannot be extended", at: part.offset)
                }
                t = child
            case .tableArray(let a):
                guard let newest = tableArrays[a].last else { throw error("'\(path)' is an empty array of tables", at: part.offset) }
                t = newest
            case .scalar, .array:
                throw error("'\(path)' is already a value (line \(definedLine(t, i))), not a table", at: part.offset)
            }
        }

        let path = tables[t].path + [last.name]
        let shown = Self.display(path)
        let line = location(last.offset).line
        guard let i = tables[t].index[last.name] else {
            if isArray {
                let element = try newTable(kind: .explicit, path: path, depth: tables[t].depth + 1, at: last.offset)
                tableArrays.append([element])
                insert(last, .tableArray(tableArrays.count - 1), into: t)
                current = element
            } else {
                current = try addTable(last, to: t, kind: .explicit)
            }
            return
        }
        switch tables[t].entries[i].slot {
        case .table(let child):
            let first = tables[child].line
            if isArray { throw error("'\(shown)' is already a table (line \(first)), not an array of tables", at: last.offset) }
            switch tables[child].kind {
            case .implicit:
                tables[child].kind = .explicit
                tables[child].line = line
                current = child
            case .explicit:
                throw error("table [\(shown)] is defined twice (first on line \(first))", at: last.offset)
            case .dotted:
                throw error("table [\(shown)] was already defined by dotted keys (line \(first))", at: last.offset)
            case .inline:
                throw error("'\(shown)' is an inline table (line \(first)), which cannot be extended", at: last.offset)
            }
        case .tableArray(let a):
            guard isArray else {
                throw error("[\(shown)] would redefine the array of tables '\(shown)' (line \(definedLine(t, i))); use [[\(shown)]] to add an element",
                            at: last.offset)
            }
            let element = try newTable(kind: .explicit, path: path, depth: tables[t].depth + 1, at: last.offset)
            tableArrays[a].append(element)
            current = element
        case .array where isArray:
            throw error("'\(shown)' is a static array (line \(definedLine(t, i))), which [[\(shown)]] cannot extend", at: last.offset)
        case .scalar, .array:
            throw error("'\(shown)' is already a value (line \(definedLine(t, i))), not a table", at: last.offset)
        }
    }

    // MARK: Values

    /// A value at nesting level `depth`; `path` is its key, for messages.
    mutating func value(depth: Int, path: [String]) throws(TOMLError) -> Slot {
        guard let b = peek() else { throw error("expected a value, found the end of the file") }
        switch b {
        case .quote:
            return .scalar(.string(peek(1) == .quote && peek(2) == .quote ? try multilineString(literal: false) : try basicString()))
        case .apostrophe:
            return .scalar(.string(peek(1) == .apostrophe && peek(2) == .apostrophe ? try multilineString(literal: true) : try literalString()))
        case .openBracket:
            return try array(depth: depth, path: path)
        case .openBrace:
            return try inlineTable(depth: depth, path: path)
        case let b where b.isTokenByte:
            return .scalar(try bareValue())
        default:
            throw error("expected a value, found \(found())")
        }
    }

    mutating func array(depth: Int, path: [String]) throws(TOMLError) -> Slot {
        guard depth <= TOMLParser.maxDepth else { throw error("tables and arrays nest more than \(TOMLParser.maxDepth) levels deep") }
        let line = location(pos).line
        pos += 1
        var items: [Slot] = []
        while true {
            try skipBlanksLinesAndComments()
            guard let b = peek() else { throw error("expected ']' to close the array opened on line \(line), found the end of the file") }
            if b == .closeBracket { pos += 1; return .array(items) }
            items.append(try value(depth: depth + 1, path: path))
            try skipBlanksLinesAndComments()
            switch peek() {
            case .comma?: pos += 1
            case .closeBracket?: pos += 1; return .array(items)
            case nil: throw error("expected ']' to close the array opened on line \(line), found the end of the file")
            default: throw error("expected ',' or ']' after an array element, found \(found())")
            }
        }
    }

    mutating func inlineTable(depth: Int, path: [String]) throws(TOMLError) -> Slot {
        // Its own keys may be dotted while it is read; once closed nothing may add to it.
        let id = try newTable(kind: .dotted, path: path, depth: depth, at: pos)
        pos += 1
        skipBlanks()
        if peek() == .closeBrace {
            pos += 1
            tables[id].kind = .inline
            return .table(id)
        }
        while true {
            skipBlanks()
            if peek() == .lf || peek() == .cr {
                throw error("an inline table must stay on one line; close it with '}' (or use a [table])")
            }
            let parts = try key()
            guard peek() == .equals else { throw error("expected '=' after the key, found \(found())") }
            pos += 1
            skipBlanks()
            guard let last = parts.last else { throw error("expected a key") }
            let parent = try descendDotted(from: id, through: parts.dropLast())
            if let i = tables[parent].index[last.name] {
                let shown = Self.display(tables[parent].path + [last.name])
                throw error("duplicate key '\(shown)' (first set on line \(definedLine(parent, i)))", at: last.offset)
            }
            let slot = try value(depth: tables[parent].depth + 1, path: tables[parent].path + [last.name])
            insert(last, slot, into: parent)
            skipBlanks()
            switch peek() {
            case .comma?:
                pos += 1
                skipBlanks()
                if peek() == .closeBrace { throw error("an inline table cannot end with ','") }
            case .closeBrace?:
                pos += 1
                tables[id].kind = .inline
                return .table(id)
            case .lf?, .cr?:
                throw error("an inline table must stay on one line; close it with '}' (or use a [table])")
            case nil:
                throw error("expected '}' to close the inline table, found the end of the file")
            default:
                throw error("expected ',' or '}' after a key/value in an inline table, found \(found())")
            }
        }
    }

    // MARK: Strings

    /// `"..."`, with escapes, on one line.
    mutating func basicString() throws(TOMLError) -> String {
        pos += 1
        var out: [UInt8] = []
        while true {
            guard let b = peek() else { throw error("expected '\"' to close the string, found the end of the file") }
            switch b {
            case .quote:
                pos += 1
                return String(decoding: out, as: UTF8.self)
            case .backslash:
                try escape(into: &out, multiline: false)
            case .lf, .cr:
                throw error("expected '\"' to close the string before the end of the line (use \"\"\" for a multi-line string)")
            case let b where b.isForbiddenControl:
                throw error("control character \(found()) must be escaped in a string")
            default:
                out.append(b)
                pos += 1
            }
        }
    }

    /// `"""..."""` (escapes and line-ending backslashes) or, `literal`, `'''...'''` (as written).
    mutating func multilineString(literal: Bool) throws(TOMLError) -> String {
        let start = pos
        let delimiter: UInt8 = literal ? .apostrophe : .quote
        pos += 3
        skipFirstNewline()
        var out: [UInt8] = []
        while true {
            guard let b = peek() else {
                let line = location(start).line
                let closing = literal ? "\"'''\"" : "'\"\"\"'"
                throw error("expected \(closing) to close the multi-line string opened on line \(line), found the end of the file")
            }
            switch b {
            case delimiter:
                if try closesMultiline(delimiter, into: &out) { return String(decoding: out, as: UTF8.self) }
            case .backslash where !literal:
                try escape(into: &out, multiline: true)
            case .lf:
                out.append(.lf)
                pos += 1
            case .cr:
                try carriageReturn()
                out.append(.lf)
            case let b where b.isForbiddenControl:
                throw error(literal ? "control character \(found()) is not allowed in a literal string"
                                    : "control character \(found()) must be escaped in a string")
            default:
                out.append(b)
                pos += 1
            }
        }
    }

    /// `'...'`, as written, on one line.
    mutating func literalString() throws(TOMLError) -> String {
        pos += 1
        let start = pos
        while true {
            guard let b = peek() else { throw error("expected \"'\" to close the string, found the end of the file") }
            switch b {
            case .apostrophe:
                pos += 1
                return String(decoding: bytes[start..<(pos - 1)], as: UTF8.self)
            case .lf, .cr:
                throw error("expected \"'\" to close the string before the end of the line (use ''' for a multi-line string)")
            case let b where b.isForbiddenControl:
                throw error("control character \(found()) is not allowed in a literal string")
            default:
                pos += 1
            }
        }
    }

    /// A line end right after a multi-line string's opening delimiter is not part of the string.
    mutating func skipFirstNewline() {
        if peek() == .lf {
            pos += 1
        } else if peek() == .cr && peek(1) == .lf {
            pos += 2
        }
    }

    /// At a run of `delimiter` quotes inside a multi-line string: true when it closes the string.
    /// One or two quotes are content; three or more close it, and up to two more before the
    /// closing three belong to the string (`""""` ends with a quote).
    mutating func closesMultiline(_ delimiter: UInt8, into out: inout [UInt8]) throws(TOMLError) -> Bool {
        var run = 0
        while peek(run) == delimiter { run += 1 }
        if run < 3 {
            out.append(contentsOf: repeatElement(delimiter, count: run))
            pos += run
            return false
        }
        guard run <= 5 else {
            throw error("a multi-line string cannot contain three quotes in a row; escape one of them", at: pos + 3)
        }
        out.append(contentsOf: repeatElement(delimiter, count: run - 3))
        pos += run
        return true
    }

    /// At a backslash in a basic string: the escaped character, or for a line-ending backslash
    /// (multi-line only) nothing, skipping the blanks and line ends that follow.
    mutating func escape(into out: inout [UInt8], multiline: Bool) throws(TOMLError) {
        guard let e = peek(1) else { throw error("expected an escaped character after '\\', found the end of the file") }
        let simple: UInt8?
        switch e {
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "t"): simple = .tab
        case UInt8(ascii: "n"): simple = .lf
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "r"): simple = .cr
        case .quote: simple = .quote
        case .backslash: simple = .backslash
        default: simple = nil
        }
        if let simple {
            out.append(simple)
            pos += 2
            return
        }
        switch e {
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = e == UInt8(ascii: "u") ? 4 : 8
            var value: UInt32 = 0
            for k in 0..<count {
                guard let d = peek(2 + k)?.digit(radix: 16) else {
                    throw error("\\\(e == UInt8(ascii: "u") ? "u" : "U") needs exactly \(count) hexadecimal digits", at: pos)
                }
                value = value << 4 | UInt32(d)
            }
            guard let scalar = Unicode.Scalar(value) else {
                let hex = String(value, radix: 16, uppercase: true)
                throw error("U+\(hex) is not a Unicode scalar value (surrogates and values past U+10FFFF are not allowed)", at: pos)
            }
            UTF8.encode(scalar) { out.append($0) }
            pos += 2 + count
        case .space, .tab, .lf, .cr:
            guard multiline else {
                throw error(e == .lf || e == .cr
                    ? "expected '\"' to close the string before the end of the line (use \"\"\" for a multi-line string)"
                    : "invalid escape sequence '\\ '; write \\\\ for a backslash")
            }
            // A line-ending backslash: only blanks may follow it on its line.
            var i = pos + 1
            while i < bytes.count && bytes[i].isBlank { i += 1 }
            let endsLine = i < bytes.count && (bytes[i] == .lf || (bytes[i] == .cr && i + 1 < bytes.count && bytes[i + 1] == .lf))
            guard endsLine else {
                throw error("a backslash followed by blanks must end the line (a line-ending backslash); write \\\\ for a backslash")
            }
            pos = i
            while let b = peek() {
                if b.isBlank || b == .lf {
                    pos += 1
                } else if b == .cr && peek(1) == .lf {
                    pos += 2
                } else {
                    break
                }
            }
        default:
            throw error("invalid escape sequence '\\\(found(at: pos + 1).trimmingQuotes)'; write \\\\ for a backslash")
        }
    }

    // MARK: Numbers, booleans, dates and times

    /// A bare value: boolean, integer, float, date or time.
    mutating func bareValue() throws(TOMLError) -> TOMLValue {
        let start = pos
        while let b = peek(), b.isTokenByte { pos += 1 }
        // A date and a time may be separated by a space: `1979-05-27 07:32:00`.
        if pos - start == 10, bytes[start + 4] == .minus, peek() == .space,
           peek(1)?.isDigit == true, peek(2)?.isDigit == true, peek(3) == .colon {
            pos += 1
            while let b = peek(), b.isTokenByte { pos += 1 }
        }
        let token = bytes[start..<pos]
        switch String(decoding: token, as: UTF8.self) {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan": return .float(.nan)
        case "-nan": return .float(-.nan)
        default: break
        }
        let digits = { (range: Range<Int>) in range.allSatisfy { token.startIndex + $0 < token.endIndex && token[token.startIndex + $0].isDigit } }
        if token.count >= 5 && digits(0..<4) && token[start + 4] == .minus {
            guard let value = Self.dateTime(token) else {
                throw error("invalid date or date-time \(Self.quoted(token)) (expected e.g. 1979-05-27, 1979-05-27T07:32:00 or 1979-05-27T07:32:00Z)",
                            at: start)
            }
            return .dateTime(value)
        }
        if token.count >= 3 && digits(0..<2) && token[start + 2] == .colon {
            var i = start
            guard let time = Self.time(token, &i), i == token.endIndex else {
                throw error("invalid time \(Self.quoted(token)) (expected e.g. 07:32:00 or 07:32:00.5)", at: start)
            }
            return .dateTime(TOMLDateTime(date: nil, time: time, offsetMinutes: nil))
        }
        return try number(token)
    }

    /// `token` in quotes for a message, shortened when long.
    static func quoted(_ token: ArraySlice<UInt8>) -> String {
        let text = String(decoding: token.prefix(40), as: UTF8.self)
        return "'" + text + (token.count > 40 ? "…" : "") + "'"
    }

    /// An integer (decimal, or 0x/0o/0b) or a float, as TOML spells them.
    mutating func number(_ token: ArraySlice<UInt8>) throws(TOMLError) -> TOMLValue {
        let start = token.startIndex, end = token.endIndex
        let shown = Self.quoted(token)
        func invalid(_ why: String) -> String { "invalid number \(shown)\(why.isEmpty ? "" : ": " + why)" }

        // Digits with single underscores between them, from `i`; false when there are none.
        func digitRun(_ i: inout Int, radix: Int) -> Bool {
            guard i < end, token[i].digit(radix: radix) != nil else { return false }
            i += 1
            while i < end {
                if token[i] == .underscore {
                    guard i + 1 < end, token[i + 1].digit(radix: radix) != nil else { return false }
                    i += 2
                } else if token[i].digit(radix: radix) != nil {
                    i += 1
                } else {
                    break
                }
            }
            return true
        }

        let underscores = "an underscore must sit between two digits"
        if token.count >= 2, token[start] == UInt8(ascii: "0") {
            let radix: Int? = switch token[start + 1] {
            case UInt8(ascii: "x"): 16
            case UInt8(ascii: "o"): 8
            case UInt8(ascii: "b"): 2
            default: nil
            }
            if let radix {
                var i = start + 2
                guard digitRun(&i, radix: radix), i == end else {
                    let why = i >= end ? "digits must follow the prefix"
                        : token[i] == .underscore ? underscores
                        : "\(found(at: i)) is not a base-\(radix) digit"
                    throw error(invalid(why), at: start)
                }
                var value = 0
                for b in token[(start + 2)...] {
                    guard let d = b.digit(radix: radix) else { continue }
                    let (times, o1) = value.multipliedReportingOverflow(by: radix)
                    let (sum, o2) = times.addingReportingOverflow(d)
                    if o1 || o2 { throw error(invalid("out of the 64-bit integer range"), at: start) }
                    value = sum
                }
                return .integer(value)
            }
        }

        var i = start
        let negative = token[i] == .minus
        if token[i] == .plus || token[i] == .minus { i += 1 }
        if end - i >= 2 && token[i] == UInt8(ascii: "0") {
            switch token[i + 1] {
            case UInt8(ascii: "x"), UInt8(ascii: "o"), UInt8(ascii: "b"):
                throw error(invalid("only decimal numbers take a sign"), at: start)
            case UInt8(ascii: "X"), UInt8(ascii: "O"), UInt8(ascii: "B"):
                throw error(invalid("the prefixes are lowercase: 0x, 0o, 0b"), at: start)
            default: break
            }
        }
        let intStart = i
        guard digitRun(&i, radix: 10) else {
            if i < end && !token[i].isDigit && token[i] != .dot && token[i] != .underscore {
                throw error("invalid value \(shown) (a string needs quotes)", at: start)
            }
            throw error(invalid(i < end && token[i] == .dot ? "a digit must come before '.'" : token.contains(.underscore) ? underscores : ""), at: start)
        }
        if token[intStart] == UInt8(ascii: "0") && i - intStart > 1 {
            throw error(invalid("leading zeros are not allowed"), at: start)
        }
        var isFloat = false
        if i < end && token[i] == .dot {
            i += 1
            guard digitRun(&i, radix: 10) else {
                throw error(invalid(i < end && token[i] == .underscore ? underscores : "a digit must follow '.'"), at: start)
            }
            isFloat = true
        }
        if i < end && (token[i] == UInt8(ascii: "e") || token[i] == UInt8(ascii: "E")) {
            i += 1
            if i < end && (token[i] == .plus || token[i] == .minus) { i += 1 }
            guard digitRun(&i, radix: 10) else { throw error(invalid("the exponent needs digits"), at: start) }
            isFloat = true
        }
        guard i == end else { throw error(invalid(token.contains(.underscore) ? underscores : ""), at: start) }

        let text = String(decoding: token.filter { $0 != .underscore }, as: UTF8.self)
        if isFloat {
            guard let value = Double(text) else { throw error(invalid(""), at: start) }
            return .float(value)
        }
        // The magnitude in 64 unsigned bits, so that -9223372036854775808 fits.
        var magnitude: UInt64 = 0
        for b in token[intStart...] where b.isDigit {
            let (times, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(b - 0x30))
            if o1 || o2 { throw error(invalid("out of the 64-bit integer range"), at: start) }
            magnitude = sum
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw error(invalid("out of the 64-bit integer range"), at: start) }
            return .integer(Int(truncatingIfNeeded: 0 &- magnitude))
        }
        guard magnitude <= UInt64(Int64.max) else { throw error(invalid("out of the 64-bit integer range"), at: start) }
        return .integer(Int(magnitude))
    }

    /// `n` decimal digits at `i` (advancing it), or nil.
    static func fixedDigits(_ token: ArraySlice<UInt8>, _ i: inout Int, _ n: Int) -> Int? {
        guard token.endIndex - i >= n else { return nil }
        var value = 0
        for k in 0..<n {
            guard token[i + k].isDigit else { return nil }
            value = value * 10 + Int(token[i + k] - 0x30)
        }
        i += n
        return value
    }

    /// `HH:MM:SS` with an optional fraction, at `i` (advancing it), or nil.
    static func time(_ token: ArraySlice<UInt8>, _ i: inout Int) -> TOMLDateTime.Time? {
        guard let hour = fixedDigits(token, &i, 2), i < token.endIndex, token[i] == .colon else { return nil }
        i += 1
        guard let minute = fixedDigits(token, &i, 2), i < token.endIndex, token[i] == .colon else { return nil }
        i += 1
        guard let second = fixedDigits(token, &i, 2) else { return nil }
        // Leap seconds (60) are refused, as Python's tomllib does.
        guard hour <= 23, minute <= 59, second <= 59 else { return nil }
        var nanosecond = 0
        if i < token.endIndex && token[i] == .dot {
            i += 1
            var count = 0
            while i < token.endIndex && token[i].isDigit {
                // Digits past nanoseconds are dropped (truncated, not rounded).
                if count < 9 { nanosecond = nanosecond * 10 + Int(token[i] - 0x30) }
                count += 1
                i += 1
            }
            guard count > 0 else { return nil }
            for _ in min(count, 9)..<9 { nanosecond *= 10 }
        }
        return TOMLDateTime.Time(hour: hour, minute: minute, second: second, nanosecond: nanosecond)
    }

    /// A date, local date-time or offset date-time filling all of `token`, or nil.
    static func dateTime(_ token: ArraySlice<UInt8>) -> TOMLDateTime? {
        var i = token.startIndex
        guard let year = fixedDigits(token, &i, 4), i < token.endIndex, token[i] == .minus else { return nil }
        i += 1
        guard let month = fixedDigits(token, &i, 2), i < token.endIndex, token[i] == .minus else { return nil }
        i += 1
        guard let day = fixedDigits(token, &i, 2), (1...12).contains(month) else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return nil }
        let date = TOMLDateTime.Date(year: year, month: month, day: day)
        guard i < token.endIndex else { return TOMLDateTime(date: date, time: nil, offsetMinutes: nil) }
        guard [UInt8(ascii: "T"), UInt8(ascii: "t"), .space].contains(token[i]) else { return nil }
        i += 1
        guard let time = time(token, &i) else { return nil }
        guard i < token.endIndex else { return TOMLDateTime(date: date, time: time, offsetMinutes: nil) }
        var offset = 0
        switch token[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case .plus, .minus:
            let sign = token[i] == .minus ? -1 : 1
            i += 1
            guard let hours = fixedDigits(token, &i, 2), i < token.endIndex, token[i] == .colon else { return nil }
            i += 1
            guard let minutes = fixedDigits(token, &i, 2), hours <= 23, minutes <= 59 else { return nil }
            offset = sign * (hours * 60 + minutes)
        default:
            return nil
        }
        guard i == token.endIndex else { return nil }
        return TOMLDateTime(date: date, time: time, offsetMinutes: offset)
    }

    // MARK: The finished tree

    func build(table: Int) -> TOMLTable {
        TOMLTable(entries: tables[table].entries.map {
            TOMLTable.Entry(key: $0.key, value: build($0.slot), line: $0.line, column: $0.column)
        })
    }

    func build(_ slot: Slot) -> TOMLValue {
        switch slot {
        case .scalar(let value): return value
        case .array(let items): return .array(items.map(build))
        case .table(let id): return .table(build(table: id))
        case .tableArray(let a): return .array(tableArrays[a].map { .table(build(table: $0)) })
        }
    }
}

private extension String {
    /// `'x'` as `x`, for quoting inside another message.
    var trimmingQuotes: String {
        hasPrefix("'") && hasSuffix("'") && count >= 2 ? String(dropFirst().dropLast()) : self
    }
}
