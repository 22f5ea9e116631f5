// JinjaRuntimeValue.swift
//
// The values a template computes with, and their Python semantics: how they print
// (`str` and `repr`), compare, hash as dict keys and count as true or false. Templates
// are rendered by jinja2 on top of Python, so chat templates depend on these details
// (None prints "None", 1.0 prints "1.0", a list prints as ['a', 'b'], a generator
// returned by `map` or `selectattr` is always true).

import NudgeNN

/// A runtime value.
enum Value {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([Value])
    case tuple([Value])
    case dict(PyDict)
    /// A one-shot Python iterator (what `map`, `select`, `selectattr`, `items` and `reverse` return):
    /// iterable and always true, but with no length and no indexing.
    case iterator([Value])
    /// A Python iterator whose production failed: Python reports the error when it is iterated, not before.
    case failedIterator(JinjaError)
    /// A dict view (`d.keys()`, `d.values()`, `d.items()`): sized and iterable, printed as `dict_keys([...])`.
    case view(DictView, [Value])
    case undefined(Undefined)
    case namespace(Namespace)
    case callable(Callable)
    case loop(LoopContext)

    init(_ value: JinjaValue) {
        switch value {
        case .none: self = .none
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(number)
        case .float(let number): self = .float(number)
        case .string(let text): self = .string(text)
        case .array(let items): self = .list(items.map(Value.init))
        case .object(let object):
            var dict = PyDict()
            for (key, item) in object.entries { dict.set(.string(key), Value(item)) }
            self = .dict(dict)
        }
    }

    init(_ constant: JinjaConstant) {
        switch constant {
        case .none: self = .none
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(number)
        case .float(let number): self = .float(number)
        case .string(let text): self = .string(text)
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python's type name, for error messages (`'NoneType' object is not iterable`).
    var typeName: String {
        switch self {
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .iterator, .failedIterator: return "generator"
        case .view(let kind, _): return kind.rawValue
        case .undefined: return "Undefined"
        case .namespace: return "Namespace"
        case .callable(let callable): return callable.isMacro ? "Macro" : "function"
        case .loop: return "LoopContext"
        }
    }

    /// jinja2's `object_type_repr`, used in undefined messages (`'dict object' has no attribute 'x'`).
    var objectTypeDescription: String {
        if case .none = self { return "None" }
        return "\(typeName) object"
    }

    /// Python truthiness.
    var isTruthy: Bool {
        switch self {
        case .none: return false
        case .bool(let flag): return flag
        case .int(let number): return number != 0
        case .float(let number): return number != 0
        case .string(let text): return !text.isEmpty
        case .list(let items), .tuple(let items), .view(_, let items): return !items.isEmpty
        case .dict(let dict): return dict.count > 0
        case .undefined: return false
        case .iterator, .failedIterator, .namespace, .callable, .loop: return true
        }
    }
}

/// The kinds of dict views.
enum DictView: String {
    case keys = "dict_keys", values = "dict_values", items = "dict_items"
}

// MARK: - Undefined

/// jinja2's default `Undefined`: prints as "", iterates as empty, is false, and fails with
/// its message when used as a value (arithmetic, attribute access, calls).
struct Undefined {
    var name: String?
    /// The description of the object that lacked the attribute or item (`dict object`).
    var owner: String?
    /// Whether `name` was an item key (`has no element`) rather than an attribute.
    var isItem = false
    /// A message that replaces the default one.
    var hint: String?
    /// The kind of error using the value raises (`.limit` for attributes the sandbox forbids).
    var errorKind: JinjaError.Kind = .undefined

    var message: String {
        if let hint { return hint }
        guard let owner else { return "'\(name ?? "")' is undefined" }
        if isItem { return "\(owner) has no element \(name ?? "")" }
        return "'\(owner)' has no attribute '\(name ?? "")'"
    }

    var error: JinjaError { JinjaError(errorKind, message) }
}

// MARK: - Reference types

/// The object `namespace(...)` returns: the only value whose attributes a template can assign.
final class Namespace {
    var attributes = PyDict()
}

/// The state of a `for` loop, exposed as `loop`.
final class LoopContext {
    let items: [Value]
    var index0 = 0
    let depth0: Int
    /// The last value passed to `loop.changed(...)`.
    var lastChanged: [Value]?

    init(items: [Value], depth0: Int) {
        self.items = items
        self.depth0 = depth0
    }
}

/// A function a template can call: a global (`range`, `namespace`), a bound method (`'a'.upper`),
/// a macro or a `caller`.
final class Callable {
    typealias Body = (_ positional: [Value], _ keyword: [(String, Value)], _ interpreter: JinjaInterpreter) throws(JinjaError) -> Value
    let name: String
    let isMacro: Bool
    let body: Body

    init(name: String, isMacro: Bool = false, body: @escaping Body) {
        self.name = name
        self.isMacro = isMacro
        self.body = body
    }
}

// MARK: - Dictionaries

/// A hashable form of a dict key with Python's equality: `1`, `1.0` and `True` are the same key,
/// and strings compare by code points.
enum DictKey: Hashable {
    case none
    case int(Int)
    case float(UInt64)
    case string([UInt8])
    case tuple([DictKey])

    init(_ value: Value, depth: Int = 0) throws(JinjaError) {
        guard depth < Value.maximumNesting else { throw Value.nestingError }
        switch value {
        case .none: self = .none
        case .bool(let flag): self = .int(flag ? 1 : 0)
        case .int(let number): self = .int(number)
        case .float(let number):
            if number.rounded() == number, let integer = Int(exactly: number) {
                self = .int(integer)
            } else {
                self = .float(number.isNaN ? Double.nan.bitPattern : (number == 0 ? 0 : number.bitPattern))
            }
        case .string(let text): self = .string(Array(text.utf8))
        case .tuple(let items):
            var keys: [DictKey] = []
            for item in items { keys.append(try DictKey(item, depth: depth + 1)) }
            self = .tuple(keys)
        default:
            throw JinjaError(.type, "unhashable type: '\(value.typeName)'")
        }
    }
}

/// A Python dict: insertion-ordered, keyed by Python equality.
struct PyDict {
    private(set) var keys: [Value] = []
    private(set) var values: [Value] = []
    private var positions: [DictKey: Int] = [:]

    var count: Int { keys.count }

    func get(_ key: Value) -> Value? {
        guard let hashed = try? DictKey(key), let position = positions[hashed] else { return nil }
        return values[position]
    }

    func get(_ key: String) -> Value? {
        guard let position = positions[.string(Array(key.utf8))] else { return nil }
        return values[position]
    }

    mutating func set(_ key: Value, _ value: Value) {
        guard let hashed = try? DictKey(key) else { return }
        if let position = positions[hashed] {
            values[position] = value
        } else {
            positions[hashed] = keys.count
            keys.append(key)
            values.append(value)
        }
    }

    /// Sets a key after checking that it is hashable.
    mutating func setChecked(_ key: Value, _ value: Value) throws(JinjaError) {
        _ = try DictKey(key)
        set(key, value)
    }

    var items: [(Value, Value)] { Array(zip(keys, values)) }
}

// MARK: - Strings

extension String {
    /// The Unicode scalars, which is what Python indexes and counts.
    var scalars: [Unicode.Scalar] { Array(unicodeScalars) }

    init(scalars: some Sequence<Unicode.Scalar>) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        self = String(view)
    }

    /// Python string equality (code point by code point, not canonical equivalence).
    func pythonEquals(_ other: String) -> Bool { utf8.elementsEqual(other.utf8) }
}

/// Python's ordering of strings: by code points.
func pythonLess(_ left: String, _ right: String) -> Bool {
    left.unicodeScalars.lexicographicallyPrecedes(right.unicodeScalars) { $0.value < $1.value }
}

// MARK: - Printing

enum PythonFormat {
    /// `repr(float)`: the shortest digits that round-trip, in fixed notation for exponents -4 to 15
    /// (`1.0`, `0.0001`, `1e-05`, `1e+16`, `inf`, `nan`).
    static func float(_ number: Double) -> String {
        if number.isNaN { return "nan" }
        if number.isInfinite { return number < 0 ? "-inf" : "inf" }
        // Swift's description also prints the shortest round-trip digits; only the layout differs.
        var text = number.description
        var negative = false
        if text.hasPrefix("-") {
            negative = true
            text.removeFirst()
        }
        var mantissa = text
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = String(text[..<e])
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var digits = mantissa
        var pointPosition = mantissa.count
        if let dot = mantissa.firstIndex(of: ".") {
            pointPosition = mantissa.distance(from: mantissa.startIndex, to: dot)
            digits.remove(at: dot)
        }
        // value = 0.d1d2d3... × 10^decimalPoint
        var decimalPoint = pointPosition + exponent
        while digits.count > 1, digits.first == "0" {
            digits.removeFirst()
            decimalPoint -= 1
        }
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        if digits == "0" { return (negative ? "-" : "") + "0.0" }
        var result = negative ? "-" : ""
        if decimalPoint > -4 && decimalPoint <= 16 {
            if decimalPoint <= 0 {
                result += "0." + String(repeating: "0", count: -decimalPoint) + digits
            } else if decimalPoint >= digits.count {
                result += digits + String(repeating: "0", count: decimalPoint - digits.count) + ".0"
            } else {
                let split = digits.index(digits.startIndex, offsetBy: decimalPoint)
                result += digits[..<split] + "." + digits[split...]
            }
        } else {
            let scientific = decimalPoint - 1
            result += String(digits.prefix(1))
            if digits.count > 1 { result += "." + digits.dropFirst() }
            result += "e" + (scientific < 0 ? "-" : "+") + (abs(scientific) < 10 ? "0" : "") + String(abs(scientific))
        }
        return result
    }

    /// `repr(str)`: single quotes unless the text has a single quote and no double quote.
    static func stringRepr(_ text: String) -> String {
        let quote: Unicode.Scalar = text.contains("'") && !text.contains("\"") ? "\"" : "'"
        var result = String.UnicodeScalarView()
        result.append(quote)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": result.append(contentsOf: "\\n".unicodeScalars)
            case "\r": result.append(contentsOf: "\\r".unicodeScalars)
            case "\t": result.append(contentsOf: "\\t".unicodeScalars)
            default:
                if scalar == quote {
                    result.append("\\")
                    result.append(scalar)
                } else if isPrintable(scalar) {
                    result.append(scalar)
                } else if scalar.value < 0x100 {
                    result.append(contentsOf: "\\x\(hex(scalar.value, width: 2))".unicodeScalars)
                } else if scalar.value < 0x10000 {
                    result.append(contentsOf: "\\u\(hex(scalar.value, width: 4))".unicodeScalars)
                } else {
                    result.append(contentsOf: "\\U\(hex(scalar.value, width: 8))".unicodeScalars)
                }
            }
        }
        result.append(quote)
        return String(result)
    }

    static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// Python's `str.isprintable` for one character: not a control, format, surrogate, private-use,
    /// unassigned or separator character (except the ASCII space).
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == " " { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default:
            return true
        }
    }
}

extension Value {
    /// How deeply values may nest before printing, comparing or hashing them fails (as Python's
    /// recursion limit makes them fail), so that a value nested in a loop cannot exhaust the stack.
    static let maximumNesting = 400

    static var nestingError: JinjaError { JinjaError(.limit, "maximum recursion depth exceeded (values nested deeper than \(maximumNesting))") }
}

/// Text built piece by piece under a length limit (in Unicode scalars), so that printing a huge
/// or deeply shared structure stops as soon as the result is too long instead of building it.
struct PrintBuffer {
    private(set) var text = ""
    private(set) var count = 0
    let limit: Int

    init(limit: Int) { self.limit = limit }

    mutating func append(_ piece: String) throws(JinjaError) {
        count += piece.unicodeScalars.count
        if count > limit { throw JinjaError(.limit, "a printed value exceeds the limit of \(limit) characters") }
        text += piece
    }
}

extension Value {
    /// Python's `str(value)`, failing with `.limit` past `limit` characters: what `{{ value }}` prints.
    func str(limit: Int) throws(JinjaError) -> String {
        switch self {
        case .string(let text): return text
        case .undefined: return ""
        default: return try repr(limit: limit)
        }
    }

    /// Python's `repr(value)`, failing with `.limit` past `limit` characters.
    func repr(limit: Int) throws(JinjaError) -> String {
        var buffer = PrintBuffer(limit: limit)
        try appendRepr(to: &buffer)
        return buffer.text
    }

    /// `str(value)` for messages: cut after 10,000 characters.
    var pythonString: String {
        if case .string(let text) = self { return text }
        return pythonRepr
    }

    /// `repr(value)` for messages: cut after 10,000 characters.
    var pythonRepr: String {
        var buffer = PrintBuffer(limit: 10_000)
        do {
            try appendRepr(to: &buffer)
            return buffer.text
        } catch {
            return buffer.text + "..."
        }
    }

    private func appendRepr(to output: inout PrintBuffer, depth: Int = 0) throws(JinjaError) {
        guard depth < Value.maximumNesting else { throw Value.nestingError }
        func appendItems(_ items: [Value], open: String, close: String, trailingComma: Bool = false) throws(JinjaError) {
            try output.append(open)
            for (position, item) in items.enumerated() {
                if position > 0 { try output.append(", ") }
                try item.appendRepr(to: &output, depth: depth + 1)
            }
            if trailingComma { try output.append(",") }
            try output.append(close)
        }
        switch self {
        case .none: try output.append("None")
        case .bool(let flag): try output.append(flag ? "True" : "False")
        case .int(let number): try output.append(String(number))
        case .float(let number): try output.append(PythonFormat.float(number))
        case .string(let text): try output.append(PythonFormat.stringRepr(text))
        case .list(let items): try appendItems(items, open: "[", close: "]")
        case .tuple(let items): try appendItems(items, open: "(", close: ")", trailingComma: items.count == 1)
        case .dict(let dict):
            try output.append("{")
            for (position, (key, item)) in dict.items.enumerated() {
                if position > 0 { try output.append(", ") }
                try key.appendRepr(to: &output, depth: depth + 1)
                try output.append(": ")
                try item.appendRepr(to: &output, depth: depth + 1)
            }
            try output.append("}")
        case .iterator, .failedIterator: try output.append("<generator object>")
        case .view(let kind, let items): try appendItems(items, open: kind.rawValue + "([", close: "])")
        case .undefined: try output.append("Undefined")
        case .namespace(let namespace):
            try output.append("<Namespace ")
            try Value.dict(namespace.attributes).appendRepr(to: &output, depth: depth + 1)
            try output.append(">")
        case .callable(let callable): try output.append(callable.isMacro ? "<Macro '\(callable.name)'>" : "<built-in method \(callable.name)>")
        case .loop: try output.append("<LoopContext>")
        }
    }
}

// MARK: - Equality and ordering

extension Value {
    /// Python's `==`.
    func pythonEquals(_ other: Value, depth: Int = 0) -> Bool {
        // Python raises RecursionError past its stack limit; values nested this deep compare unequal here.
        guard depth < Value.maximumNesting else { return false }
        switch (self, other) {
        case (.none, .none): return true
        case (.string(let left), .string(let right)): return left.pythonEquals(right)
        case (.list(let left), .list(let right)), (.tuple(let left), .tuple(let right)):
            guard left.count == right.count else { return false }
            // Python compares identical objects as equal without visiting them; shared storage is the
            // same here, and keeps self-similar structures (`[l, l]` nested 40 times) from taking 2^40 steps.
            let sameStorage = left.withUnsafeBufferPointer { a in right.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress } }
            return sameStorage || zip(left, right).allSatisfy { $0.pythonEquals($1, depth: depth + 1) }
        case (.dict(let left), .dict(let right)):
            guard left.count == right.count else { return false }
            for (key, value) in left.items {
                guard let match = right.get(key), match.pythonEquals(value, depth: depth + 1) else { return false }
            }
            return true
        case (.undefined, .undefined): return true
        case (.namespace(let left), .namespace(let right)): return left === right
        case (.callable(let left), .callable(let right)): return left === right
        case (.loop(let left), .loop(let right)): return left === right
        default:
            if let left = numericValue, let right = other.numericValue { return left.equals(right) }
            return false
        }
    }

    /// The value as a number, when it is a bool, int or float (Python treats booleans as integers).
    var numericValue: Number? {
        switch self {
        case .bool(let flag): return .int(flag ? 1 : 0)
        case .int(let number): return .int(number)
        case .float(let number): return .float(number)
        default: return nil
        }
    }

    /// Python's `<`, for the types Python orders: numbers, strings, lists and tuples.
    func pythonLessThan(_ other: Value, operatorName: String = "<", swapped: Bool = false, depth: Int = 0) throws(JinjaError) -> Bool {
        guard depth < Value.maximumNesting else { throw Value.nestingError }
        if case .undefined(let undefined) = self { throw undefined.error }
        if case .undefined(let undefined) = other { throw undefined.error }
        switch (self, other) {
        case (.string(let left), .string(let right)): return pythonLess(left, right)
        case (.list(let left), .list(let right)), (.tuple(let left), .tuple(let right)):
            for (a, b) in zip(left, right) where !a.pythonEquals(b, depth: depth + 1) {
                return try a.pythonLessThan(b, operatorName: operatorName, swapped: swapped, depth: depth + 1)
            }
            return left.count < right.count
        default:
            if let left = numericValue, let right = other.numericValue { return left.less(right) }
            let (first, second) = swapped ? (other.typeName, typeName) : (typeName, other.typeName)
            throw JinjaError(.type, "'\(operatorName)' not supported between instances of '\(first)' and '\(second)'")
        }
    }
}

/// A Python number: an integer or a float.
enum Number {
    case int(Int)
    case float(Double)

    var double: Double {
        switch self {
        case .int(let number): return Double(number)
        case .float(let number): return number
        }
    }

    func equals(_ other: Number) -> Bool {
        if case .int(let left) = self, case .int(let right) = other { return left == right }
        return double == other.double
    }

    func less(_ other: Number) -> Bool {
        if case .int(let left) = self, case .int(let right) = other { return left < right }
        return double < other.double
    }

    var value: Value {
        switch self {
        case .int(let number): return .int(number)
        case .float(let number): return .float(number)
        }
    }
}

// MARK: - JSON output

/// `json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)`,
/// the `tojson` filter transformers installs.
struct PythonJSONEncoder {
    var indent: String?
    var itemSeparator: String
    var keySeparator: String
    var sortKeys: Bool
    var maximumDepth = Value.maximumNesting
    /// The most characters the output may take.
    var maximumLength = Int.max

    init(indent: String?, separators: (String, String)?, sortKeys: Bool) {
        self.indent = indent
        self.itemSeparator = separators?.0 ?? (indent == nil ? ", " : ",")
        self.keySeparator = separators?.1 ?? ": "
        self.sortKeys = sortKeys
    }

    func encode(_ value: Value) throws(JinjaError) -> String {
        var output = PrintBuffer(limit: maximumLength)
        try write(value, level: 0, into: &output)
        return output.text
    }

    private func newline(_ level: Int, into output: inout PrintBuffer) throws(JinjaError) {
        guard let indent else { return }
        try output.append("\n")
        for _ in 0..<level { try output.append(indent) }
    }

    private func write(_ value: Value, level: Int, into output: inout PrintBuffer) throws(JinjaError) {
        guard level < maximumDepth else { throw Value.nestingError }
        switch value {
        case .none: try output.append("null")
        case .bool(let flag): try output.append(flag ? "true" : "false")
        case .int(let number): try output.append(String(number))
        case .float(let number):
            if number.isNaN {
                try output.append("NaN")
            } else if number.isInfinite {
                try output.append(number < 0 ? "-Infinity" : "Infinity")
            } else {
                try output.append(PythonFormat.float(number))
            }
        case .string(let text): try output.append(Self.quoted(text))
        case .list(let items), .tuple(let items):
            guard !items.isEmpty else {
                try output.append("[]")
                return
            }
            try output.append("[")
            for (position, item) in items.enumerated() {
                if position > 0 { try output.append(itemSeparator) }
                try newline(level + 1, into: &output)
                try write(item, level: level + 1, into: &output)
            }
            try newline(level, into: &output)
            try output.append("]")
        case .dict(let dict):
            guard dict.count > 0 else {
                try output.append("{}")
                return
            }
            var entries: [(String, Value)] = []
            for (key, item) in dict.items { entries.append((try Self.keyString(key), item)) }
            if sortKeys { entries.sort { pythonLess($0.0, $1.0) } }
            try output.append("{")
            for (position, entry) in entries.enumerated() {
                if position > 0 { try output.append(itemSeparator) }
                try newline(level + 1, into: &output)
                try output.append(Self.quoted(entry.0) + keySeparator)
                try write(entry.1, level: level + 1, into: &output)
            }
            try newline(level, into: &output)
            try output.append("}")
        case .undefined, .iterator, .failedIterator, .view, .namespace, .callable, .loop:
            let name: String
            switch value {
            case .undefined: name = "Undefined"
            case .namespace: name = "TemplateNamespace"
            default: name = value.typeName
            }
            throw JinjaError(.type, "Object of type \(name) is not JSON serializable")
        }
    }

    /// JSON object keys: strings as they are; numbers, booleans and None converted as Python does.
    private static func keyString(_ key: Value) throws(JinjaError) -> String {
        switch key {
        case .string(let text): return text
        case .bool(let flag): return flag ? "true" : "false"
        case .none: return "null"
        case .int(let number): return String(number)
        case .float(let number): return PythonFormat.float(number)
        default: throw JinjaError(.type, "keys must be str, int, float, bool or None, not \(key.typeName)")
        }
    }

    /// A JSON string with ensure_ascii=False: only quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String { jsonStringLiteral(text, shortEscapes: true) }
}
