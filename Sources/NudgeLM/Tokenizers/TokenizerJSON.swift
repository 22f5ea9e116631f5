// TokenizerJSON.swift
//
// A small, strict JSON reader for tokenizer descriptions. `JSONValue` is the
// parsed tree (objects keep their key order); `JSONField` pairs a value with
// its JSON path so every accessor can throw a `TokenizerLoadError` that names
// the field at fault. The parser works on UTF-8 bytes, has a nesting limit and
// never traps on malformed input.

import NudgeNN

/// A parsed JSON value.
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// Parses a complete JSON document.
    static func parse(_ bytes: [UInt8]) throws(TokenizerLoadError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.position != bytes.count {
            throw .invalidJSON(offset: parser.position, reason: "unexpected data after the top-level value")
        }
        return value
    }

    /// A short name of the value's JSON type, for error messages.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON value together with its path in the document.
struct JSONField: Sendable {
    let value: JSONValue
    let path: String

    /// Wraps the document root.
    init(root: JSONValue) {
        self.value = root
        self.path = ""
    }

    init(value: JSONValue, path: String) {
        self.value = value
        self.path = path
    }

    /// The path of a member `key` of this object.
    func memberPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Whether the value is JSON `null`.
    var isNull: Bool {
        if case .null = value { return true }
        return false
    }

    /// The member `key`, or nil when absent or `null`. Throws when this value is not an object.
    func optional(_ key: String) throws(TokenizerLoadError) -> JSONField? {
        guard case .object(let members) = value else {
            throw .wrongType(field: path.isEmpty ? "(root)" : path, expected: "an object")
        }
        guard let member = members.last(where: { $0.key == key }) else { return nil }
        if case .null = member.value { return nil }
        return JSONField(value: member.value, path: memberPath(key))
    }

    /// The member `key`; throws `missingField` when absent or `null`.
    func required(_ key: String) throws(TokenizerLoadError) -> JSONField {
        guard let field = try optional(key) else { throw .missingField(field: memberPath(key)) }
        return field
    }

    /// The value as a string.
    func string() throws(TokenizerLoadError) -> String {
        guard case .string(let string) = value else { throw .wrongType(field: path, expected: "a string") }
        return string
    }

    /// The value as a boolean.
    func bool() throws(TokenizerLoadError) -> Bool {
        guard case .bool(let flag) = value else { throw .wrongType(field: path, expected: "a boolean") }
        return flag
    }

    /// The value as an integer (a JSON number without fraction or exponent).
    func integer() throws(TokenizerLoadError) -> Int {
        switch value {
        case .integer(let number): return number
        case .double(let number) where number.rounded() == number && abs(number) < 9.0e15: return Int(number)
        default: throw .wrongType(field: path, expected: "an integer")
        }
    }

    /// The value as a token id: an integer in 0..<2^31.
    func tokenID() throws(TokenizerLoadError) -> Int {
        guard let number = try? integer(), number >= 0 else {
            throw .wrongType(field: path, expected: "a non-negative integer token id")
        }
        guard number < Int(Int32.max) else { throw .invalidValue(field: path, reason: "token id \(number) is too large") }
        return number
    }

    /// The value as an array of fields.
    func array() throws(TokenizerLoadError) -> [JSONField] {
        guard case .array(let elements) = value else { throw .wrongType(field: path, expected: "an array") }
        var fields: [JSONField] = []
        fields.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            fields.append(JSONField(value: element, path: "\(path)[\(index)]"))
        }
        return fields
    }

    /// The value's members in document order; member paths read `path["key"]`.
    func members() throws(TokenizerLoadError) -> [(key: String, field: JSONField)] {
        guard case .object(let members) = value else { throw .wrongType(field: path, expected: "an object") }
        return members.map { member in
            (member.key, JSONField(value: member.value, path: "\(path)[\(JSONField.quoted(member.key))]"))
        }
    }

    /// The optional boolean member `key`, or `defaultValue` when absent or `null`.
    func bool(_ key: String, default defaultValue: Bool) throws(TokenizerLoadError) -> Bool {
        guard let field = try optional(key) else { return defaultValue }
        return try field.bool()
    }

    /// The optional non-negative integer member `key`, or `defaultValue` when absent or `null`.
    func int(_ key: String, default defaultValue: Int) throws(TokenizerLoadError) -> Int {
        guard let field = try optional(key) else { return defaultValue }
        let number = try field.integer()
        guard number >= 0, number < 1 << 20 else { throw .invalidValue(field: field.path, reason: "must be in 0..<1048576") }
        return number
    }

    /// The optional string member `key`.
    func string(_ key: String) throws(TokenizerLoadError) -> String? {
        guard let field = try optional(key) else { return nil }
        return try field.string()
    }

    /// `text` as a JSON string literal, for paths and messages.
    static func quoted(_ text: String) -> String { jsonStringLiteral(text) }
}

/// Recursive-descent JSON parser over UTF-8 bytes.
private struct JSONParser {
    let bytes: [UInt8]
    var position = 0
    static let maximumDepth = 512

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    func failure(_ reason: String) -> TokenizerLoadError {
        .invalidJSON(offset: position, reason: reason)
    }

    mutating func parseValue(depth: Int) throws(TokenizerLoadError) -> JSONValue {
        guard depth < Self.maximumDepth else { throw failure("nesting deeper than \(Self.maximumDepth)") }
        guard position < bytes.count else { throw failure("unexpected end of input") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw failure("unexpected character")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(TokenizerLoadError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw failure("unexpected end of input") }
        let matches = literal.withUTF8Buffer { buffer in
            buffer.indices.allSatisfy { bytes[position + $0] == buffer[$0] }
        }
        guard matches else { throw failure("invalid literal") }
        position += count
    }

    mutating func parseObject(depth: Int) throws(TokenizerLoadError) -> JSONValue {
        position += 1
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw failure("expected a string key")
            }
            let key = try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw failure("expected ':'") }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            members.append((key, value))
            skipWhitespace()
            guard position < bytes.count else { throw failure("unexpected end of input in object") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            } else {
                throw failure("expected ',' or '}'")
            }
        }
    }

    mutating func parseArray(depth: Int) throws(TokenizerLoadError) -> JSONValue {
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard position < bytes.count else { throw failure("unexpected end of input in array") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            } else {
                throw failure("expected ',' or ']'")
            }
        }
    }

    mutating func parseString() throws(TokenizerLoadError) -> String {
        position += 1  // opening quote
        let start = position
        // Fast path: no escapes.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let string = try Self.validatedString(bytes[start..<position], offset: start)
                position += 1
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw failure("control character in string") }
            position += 1
        }
        var buffer = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return try Self.validatedString(buffer[...], offset: start)
            }
            if byte < 0x20 { throw failure("control character in string") }
            if byte != UInt8(ascii: "\\") {
                buffer.append(byte)
                position += 1
                continue
            }
            position += 1
            guard position < bytes.count else { break }
            let escape = bytes[position]
            position += 1
            if let byte = jsonEscapedByte(escape) {
                buffer.append(byte)
                continue
            }
            switch escape {
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800...0xDBFF).contains(code) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                        bytes[position + 1] == UInt8(ascii: "u")
                    else { throw failure("unpaired surrogate in \\u escape") }
                    position += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw failure("unpaired surrogate in \\u escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw failure("unpaired surrogate in \\u escape")
                }
                guard let scalar = Unicode.Scalar(code) else { throw failure("invalid \\u escape") }
                buffer.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw failure("invalid escape sequence")
            }
        }
        throw failure("unterminated string")
    }

    mutating func parseHex4() throws(TokenizerLoadError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw failure("truncated \\u escape") }
        var code: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = hexDigitValue(bytes[position]) else { throw failure("invalid hex digit in \\u escape") }
            code = code * 16 + digit
            position += 1
        }
        return code
    }

    static func validatedString(_ slice: ArraySlice<UInt8>, offset: Int) throws(TokenizerLoadError) -> String {
        let string = String(decoding: slice, as: UTF8.self)
        guard string.utf8.elementsEqual(slice) else {
            throw .invalidJSON(offset: offset, reason: "invalid UTF-8 in string")
        }
        return string
    }

    mutating func parseNumber() throws(TokenizerLoadError) -> JSONValue {
        let start = position
        var isInteger = true
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        guard position < bytes.count, isDigit(bytes[position]) else { throw failure("invalid number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw failure("invalid number") }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard position < bytes.count, isDigit(bytes[position]) else { throw failure("invalid number") }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, let integer = Int(text) { return .integer(integer) }
        guard let double = Double(text) else { throw .invalidJSON(offset: start, reason: "invalid number") }
        return .double(double)
    }
}
