// A small, strict JSON parser and string quoter for safetensors headers and sharded-checkpoint
// index files.
//
// Safetensors headers are UTF-8 JSON objects (RFC 8259), possibly followed by space padding.
// This parser is self-contained so that it never crashes on hostile input: nesting depth is
// capped, integers are parsed with overflow checks (integers that do not fit `Int` are kept as
// raw number text), duplicate object keys are rejected, and every byte access is bounds checked.

/// A parsed JSON value. Objects keep their key order.
enum SafeTensorsJSON: Sendable, Equatable {
    case object([Member])
    case array([SafeTensorsJSON])
    case string(String)
    /// An integer literal (no fraction or exponent) that fits in `Int`.
    case integer(Int)
    /// Any other number, as its source text.
    case number(String)
    case bool(Bool)
    case null

    /// One key/value pair of an object.
    struct Member: Sendable, Equatable {
        var key: String
        var value: SafeTensorsJSON
    }

    /// Human-readable JSON type name for error messages.
    var typeName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer, .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    /// Compact JSON text for this value.
    var serialized: String {
        switch self {
        case let .object(members):
            return "{" + members.map { SafeTensorsJSON.quote($0.key) + ":" + $0.value.serialized }.joined(separator: ",") + "}"
        case let .array(items):
            return "[" + items.map(\.serialized).joined(separator: ",") + "]"
        case let .string(s): return SafeTensorsJSON.quote(s)
        case let .integer(i): return String(i)
        case let .number(text): return text
        case let .bool(b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    /// Returns `s` as a JSON string literal (quotes, backslashes and control characters escaped).
    static func quote(_ s: String) -> String { jsonStringLiteral(s) }

    /// Parses a complete document: one value, surrounded only by JSON whitespace.
    static func parse(_ bytes: [UInt8]) throws(SafeTensorsJSONError) -> SafeTensorsJSON {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw SafeTensorsJSONError(reason: "not valid UTF-8")
        }
        var parser = SafeTensorsJSONParser(bytes: bytes)
        return try parser.parseDocument()
    }
}

/// `text` as a JSON string literal: quotes, backslashes and control characters escaped (\n, \r, \t,
/// with `shortEscapes` also \b and \f as Python's json writes them; the others as \u00xx), every
/// other character as it is. The one JSON string writer of safetensors headers, tokenizer messages
/// and chat templates' `tojson`.
public func jsonStringLiteral(_ text: String, shortEscapes: Bool = false) -> String {
    var out = "\""
    out.reserveCapacity(text.utf8.count + 2)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}" where shortEscapes: out += "\\b"
        case "\u{0C}" where shortEscapes: out += "\\f"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    out += "\""
    return out
}

/// The value of an ASCII hexadecimal digit (0-9, a-f, A-F), or nil.
public func hexDigitValue(_ byte: UInt8) -> UInt32? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
    default: nil
    }
}

/// The byte a one-character JSON string escape stands for (\" \\ \/ \b \f \n \r \t, given the
/// character after the backslash), or nil (\u and anything invalid).
public func jsonEscapedByte(_ escape: UInt8) -> UInt8? {
    switch escape {
    case UInt8(ascii: "\""): 0x22
    case UInt8(ascii: "\\"): 0x5C
    case UInt8(ascii: "/"): 0x2F
    case UInt8(ascii: "b"): 0x08
    case UInt8(ascii: "f"): 0x0C
    case UInt8(ascii: "n"): 0x0A
    case UInt8(ascii: "r"): 0x0D
    case UInt8(ascii: "t"): 0x09
    default: nil
    }
}

/// Why a JSON text was rejected.
struct SafeTensorsJSONError: Error, Sendable {
    var reason: String
}

/// Recursive-descent parser over UTF-8 bytes (already validated as UTF-8).
struct SafeTensorsJSONParser {
    static let maxDepth = 64

    let bytes: [UInt8]
    var pos = 0
    var depth = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws(SafeTensorsJSONError) -> SafeTensorsJSON {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        if pos < bytes.count {
            throw fail("unexpected data after the top-level value")
        }
        return value
    }

    private func fail(_ what: String) -> SafeTensorsJSONError {
        SafeTensorsJSONError(reason: "\(what) at byte \(pos)")
    }

    private var current: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(SafeTensorsJSONError) {
        guard current == byte else { throw fail("expected \(what)") }
        pos += 1
    }

    private mutating func parseValue() throws(SafeTensorsJSONError) -> SafeTensorsJSON {
        guard let c = current else { throw fail("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    private mutating func parseLiteral(_ word: StaticString) throws(SafeTensorsJSONError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - pos >= count else { throw fail("invalid literal") }
        let matches = word.withUTF8Buffer { buffer in
            buffer.elementsEqual(bytes[pos ..< pos + count])
        }
        guard matches else { throw fail("invalid literal") }
        pos += count
    }

    private mutating func enter() throws(SafeTensorsJSONError) {
        depth += 1
        if depth > SafeTensorsJSONParser.maxDepth { throw fail("nesting deeper than \(SafeTensorsJSONParser.maxDepth)") }
    }

    private mutating func parseObject() throws(SafeTensorsJSONError) -> SafeTensorsJSON {
        try enter()
        pos += 1  // "{"
        var members: [SafeTensorsJSON.Member] = []
        var seen = Set<String>()
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            pos += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try parseString()
            guard seen.insert(key).inserted else { throw fail("duplicate key \(SafeTensorsJSON.quote(key))") }
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':'")
            skipWhitespace()
            let value = try parseValue()
            members.append(.init(key: key, value: value))
            skipWhitespace()
            guard let c = current else { throw fail("unterminated object") }
            pos += 1
            if c == UInt8(ascii: "}") { break }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw fail("expected ',' or '}'") }
        }
        depth -= 1
        return .object(members)
    }

    private mutating func parseArray() throws(SafeTensorsJSONError) -> SafeTensorsJSON {
        try enter()
        pos += 1  // "["
        var items: [SafeTensorsJSON] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            pos += 1
            depth -= 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            guard let c = current else { throw fail("unterminated array") }
            pos += 1
            if c == UInt8(ascii: "]") { break }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw fail("expected ',' or ']'") }
        }
        depth -= 1
        return .array(items)
    }

    private mutating func parseHex4() throws(SafeTensorsJSONError) -> UInt32 {
        guard bytes.count - pos >= 4 else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0 ..< 4 {
            guard let digit = hexDigitValue(bytes[pos]) else { throw fail("invalid \\u escape") }
            value = value << 4 | digit
            pos += 1
        }
        return value
    }

    private mutating func parseString() throws(SafeTensorsJSONError) -> String {
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes.
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: bytes[start ..< pos], as: UTF8.self)
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in string") }
            pos += 1
        }
        var out = Array(bytes[start ..< pos])
        while true {
            guard let c = current else { throw fail("unterminated string") }
            pos += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { pos -= 1; throw fail("control character in string") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                continue
            }
            guard let e = current else { throw fail("unterminated escape") }
            pos += 1
            if let byte = jsonEscapedByte(e) {
                out.append(byte)
                continue
            }
            switch e {
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800 ... 0xDBFF).contains(code) {
                    guard bytes.count - pos >= 2, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try parseHex4()
                    guard (0xDC00 ... 0xDFFF).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00 ... 0xDFFF).contains(code) {
                    throw fail("unpaired surrogate in \\u escape")
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: String(Character(scalar)).utf8)
            default:
                pos -= 1
                throw fail("invalid escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func parseNumber() throws(SafeTensorsJSONError) -> SafeTensorsJSON {
        let start = pos
        var negative = false
        if current == UInt8(ascii: "-") {
            negative = true
            pos += 1
        }
        func isDigit(_ c: UInt8?) -> Bool {
            guard let c else { return false }
            return c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")
        }
        guard isDigit(current) else { throw fail("invalid number") }
        var magnitude: Int = 0
        var overflow = false
        if current == UInt8(ascii: "0") {
            pos += 1
            if isDigit(current) { throw fail("leading zero in number") }
        } else {
            while let c = current, isDigit(c) {
                let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(Int(c - UInt8(ascii: "0")))
                if o1 || o2 { overflow = true } else { magnitude = s }
                pos += 1
            }
        }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            guard isDigit(current) else { throw fail("invalid number") }
            while isDigit(current) { pos += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { pos += 1 }
            guard isDigit(current) else { throw fail("invalid number") }
            while isDigit(current) { pos += 1 }
        }
        if isInteger && !overflow {
            return .integer(negative ? -magnitude : magnitude)
        }
        return .number(String(decoding: bytes[start ..< pos], as: UTF8.self))
    }
}
