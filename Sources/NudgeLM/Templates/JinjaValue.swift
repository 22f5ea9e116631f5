// JinjaValue.swift
//
// The data a caller passes into a template: JSON-like values whose objects keep their
// key order (templates that print `tools | tojson` or `tools | string` must see the keys
// in the order they were given, as Python dicts do), and whose numbers keep the
// integer/float distinction (Python prints 1 and 1.0 differently).

import NudgeNN

/// A value passed into a template: none, a boolean, an integer, a float, a string, an array or an ordered object.
public enum JinjaValue: Sendable, Equatable {
    /// Python's `None` (JSON `null`).
    case none
    /// A boolean.
    case bool(Bool)
    /// An integer.
    case int(Int)
    /// A float.
    case float(Double)
    /// A string.
    case string(String)
    /// A list.
    case array([JinjaValue])
    /// A dictionary with string keys, in insertion order.
    case object(JinjaObject)

    /// The string, when the value is one.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The object, when the value is one.
    public var objectValue: JinjaObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// The elements, when the value is an array.
    public var arrayValue: [JinjaValue]? {
        if case .array(let array) = self { return array }
        return nil
    }
}

/// A dictionary with string keys that keeps insertion order, like a Python dict.
public struct JinjaObject: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
    /// The entries in insertion order.
    public private(set) var entries: [(key: String, value: JinjaValue)] = []
    private var positions: [String: Int] = [:]

    /// An empty object.
    public init() {}

    /// An object with these entries; a repeated key keeps its first position and its last value.
    public init(_ entries: [(String, JinjaValue)]) {
        for (key, value) in entries { self[key] = value }
    }

    /// An object from a dictionary literal, in the literal's order.
    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        self.init(elements)
    }

    /// The number of entries.
    public var count: Int { entries.count }
    /// The keys in insertion order.
    public var keys: [String] { entries.map(\.key) }

    /// The value for a key; setting `nil` removes the key.
    public subscript(key: String) -> JinjaValue? {
        get { positions[key].map { entries[$0].value } }
        set {
            if let index = positions[key] {
                if let newValue {
                    entries[index].value = newValue
                } else {
                    entries.remove(at: index)
                    positions = [:]
                    for (position, entry) in entries.enumerated() { positions[entry.key] = position }
                }
            } else if let newValue {
                positions[key] = entries.count
                entries.append((key, newValue))
            }
        }
    }

    /// Iterates the entries in insertion order.
    public func makeIterator() -> IndexingIterator<[(key: String, value: JinjaValue)]> { entries.makeIterator() }

    /// Equal when both have the same keys with equal values (order does not matter, as for Python dicts).
    public static func == (left: JinjaObject, right: JinjaObject) -> Bool {
        guard left.count == right.count else { return false }
        for (key, value) in left.entries where right[key] != value { return false }
        return true
    }
}

extension JinjaValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .none }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .float(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .object(JinjaObject(elements)) }
}

// MARK: - JSON

/// Why a JSON text could not be read as a `JinjaValue`.
public struct JinjaJSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The byte offset of the problem.
    public var offset: Int
    /// What is wrong there.
    public var reason: String
    /// `invalid JSON at byte N: reason`.
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JinjaValue {
    /// Parses JSON, keeping object key order and the integer/float distinction (`1` is an
    /// integer, `1.0` a float, as Python's `json.loads` reads them).
    public init(json text: String) throws(JinjaJSONError) {
        var parser = JSONReader(bytes: Array(text.utf8))
        self = try parser.readDocument()
    }
}

/// A small recursive-descent JSON reader over UTF-8 bytes, with a nesting limit so that hostile
/// input cannot exhaust the stack.
private struct JSONReader {
    let bytes: [UInt8]
    var offset = 0
    var depth = 0
    static let maximumDepth = 512

    init(bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ reason: String) -> JinjaJSONError { JinjaJSONError(offset: offset, reason: reason) }

    mutating func skipWhitespace() {
        while offset < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[offset]) { offset += 1 }
    }

    mutating func readDocument() throws(JinjaJSONError) -> JinjaValue {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { offset = 3 }
        let value = try readValue()
        skipWhitespace()
        guard offset == bytes.count else { throw fail("unexpected text after the JSON value") }
        return value
    }

    mutating func readValue() throws(JinjaJSONError) -> JinjaValue {
        skipWhitespace()
        guard offset < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return try readObject()
        case UInt8(ascii: "["): return try readArray()
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .none
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try readNumber()
        default: throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[offset])))'")
        }
    }

    mutating func expectWord(_ word: String) throws(JinjaJSONError) {
        let utf8 = Array(word.utf8)
        guard offset + utf8.count <= bytes.count, Array(bytes[offset..<offset + utf8.count]) == utf8 else {
            throw fail("expected \(word)")
        }
        offset += utf8.count
    }

    mutating func enter() throws(JinjaJSONError) {
        depth += 1
        if depth > Self.maximumDepth { throw fail("nesting deeper than \(Self.maximumDepth)") }
    }

    mutating func readObject() throws(JinjaJSONError) -> JinjaValue {
        try enter()
        defer { depth -= 1 }
        offset += 1
        var object = JinjaObject()
        skipWhitespace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try readString()
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            offset += 1
            object[key] = try readValue()
            skipWhitespace()
            guard offset < bytes.count else { throw fail("unexpected end of input in an object") }
            if bytes[offset] == UInt8(ascii: ",") {
                offset += 1
            } else if bytes[offset] == UInt8(ascii: "}") {
                offset += 1
                return .object(object)
            } else {
                throw fail("expected ',' or '}'")
            }
        }
    }

    mutating func readArray() throws(JinjaJSONError) -> JinjaValue {
        try enter()
        defer { depth -= 1 }
        offset += 1
        var array: [JinjaValue] = []
        skipWhitespace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            return .array(array)
        }
        while true {
            array.append(try readValue())
            skipWhitespace()
            guard offset < bytes.count else { throw fail("unexpected end of input in an array") }
            if bytes[offset] == UInt8(ascii: ",") {
                offset += 1
            } else if bytes[offset] == UInt8(ascii: "]") {
                offset += 1
                return .array(array)
            } else {
                throw fail("expected ',' or ']'")
            }
        }
    }

    mutating func readHex4() throws(JinjaJSONError) -> UInt32 {
        guard offset + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = hexDigitValue(bytes[offset]) else { throw fail("invalid \\u escape") }
            value = value * 16 + digit
            offset += 1
        }
        return value
    }

    mutating func readString() throws(JinjaJSONError) -> String {
        offset += 1
        var utf8: [UInt8] = []
        while true {
            guard offset < bytes.count else { throw fail("unterminated string") }
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                offset += 1
                break
            }
            if byte < 0x20 { throw fail("control character in a string") }
            if byte != UInt8(ascii: "\\") {
                utf8.append(byte)
                offset += 1
                continue
            }
            offset += 1
            guard offset < bytes.count else { throw fail("unterminated escape") }
            let escape = bytes[offset]
            offset += 1
            if let byte = jsonEscapedByte(escape) {
                utf8.append(byte)
                continue
            }
            switch escape {
            case UInt8(ascii: "u"):
                var code = try readHex4()
                if (0xD800..<0xDC00).contains(code), offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"),
                    bytes[offset + 1] == UInt8(ascii: "u")
                {
                    let save = offset
                    offset += 2
                    let low = try readHex4()
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        offset = save
                    }
                }
                // A lone surrogate cannot be represented in a Swift string; it becomes U+FFFD.
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                utf8.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw fail("invalid escape '\\\(Character(Unicode.Scalar(escape)))'")
            }
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    mutating func readNumber() throws(JinjaJSONError) -> JinjaValue {
        let start = offset
        var isFloat = false
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        func digits(_ reader: inout JSONReader) -> Int {
            let begin = reader.offset
            while reader.offset < reader.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(reader.bytes[reader.offset]) {
                reader.offset += 1
            }
            return reader.offset - begin
        }
        guard digits(&self) > 0 else { throw fail("invalid number") }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            isFloat = true
            offset += 1
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            isFloat = true
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        let text = String(decoding: bytes[start..<offset], as: UTF8.self)
        if !isFloat, let integer = Int(text) { return .int(integer) }
        // Integers beyond 64 bits become floats (Python would keep a big integer).
        guard let double = Double(text) else { throw fail("invalid number") }
        return .float(double)
    }
}

extension JinjaValue {
    /// Template variables from `NAME=VALUE` assignments (a command line's `--var`): VALUE as JSON when
    /// it parses (true, 3, [1], {"a": 1}), else the string; `malformed` is the first assignment with no
    /// name or no `=`.
    public static func variables(assignments: [String]) -> (values: [String: JinjaValue], malformed: String?) {
        var values: [String: JinjaValue] = [:]
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else { return (values, assignment) }
            let text = String(assignment[assignment.index(after: equals)...])
            values[String(assignment[..<equals])] = (try? JinjaValue(json: text)) ?? .string(text)
        }
        return (values, nil)
    }
}
