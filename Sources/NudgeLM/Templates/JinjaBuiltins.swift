// JinjaBuiltins.swift
//
// jinja2's filters and tests, the Python methods templates call on strings, dicts and
// lists, and the globals transformers provides (`raise_exception`, `strftime_now`,
// `namespace`, `dict`, `range`). Each behaves as its Python counterpart, including the
// quirks chat templates rely on (`selectattr` returns an iterator that is always true,
// `default` ignores defined-but-false values unless asked, `tojson` is
// `json.dumps(..., ensure_ascii=False)`).

import Foundation

enum JinjaBuiltins {
    /// The filters the engine provides; a template using another one is rejected at parse time.
    static let filterNames: Set<String> = [
        "abs", "attr", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
        "format", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
        "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title",
        "tojson", "trim", "unique", "upper", "wordcount",
    ]

    /// The tests the engine provides.
    static let testNames: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float",
        "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none",
        "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper", "==", "!=", "<", "<=", ">",
        ">=",
    ]
}

/// Python-style binding of call arguments to named parameters.
struct BoundArguments {
    private var values: [String: Value] = [:]

    /// Binds `positional` and `keyword` to `names` (in order); unknown keywords and extra positionals are errors.
    init(_ function: String, _ positional: [Value], _ keyword: [(String, Value)], names: [String]) throws(JinjaError) {
        if positional.count > names.count {
            throw JinjaError(.type, "\(function)() takes at most \(names.count) argument(s) (\(positional.count) given)")
        }
        for (name, value) in zip(names, positional) { values[name] = value }
        for (name, value) in keyword {
            guard names.contains(name) else { throw JinjaError(.type, "\(function)() got an unexpected keyword argument '\(name)'") }
            guard values[name] == nil else { throw JinjaError(.type, "\(function)() got multiple values for argument '\(name)'") }
            values[name] = value
        }
    }

    subscript(_ name: String) -> Value? { values[name] }

    func bool(_ name: String, _ fallback: Bool) -> Bool { values[name]?.isTruthy ?? fallback }

    func int(_ name: String, _ fallback: Int) throws(JinjaError) -> Int {
        guard let value = values[name], !value.isNone else { return fallback }
        guard let integer = value.integerValue else {
            throw JinjaError(.type, "'\(value.typeName)' object cannot be interpreted as an integer")
        }
        return integer
    }

    func string(_ name: String) throws(JinjaError) -> String? {
        guard let value = values[name], !value.isNone else { return nil }
        if case .undefined(let undefined) = value { throw undefined.error }
        guard case .string(let text) = value else {
            throw JinjaError(.type, "\(name) must be a string, not '\(value.typeName)'")
        }
        return text
    }
}

extension JinjaInterpreter {
    // MARK: Filters

    func applyFilter(_ name: String, to value: Value, _ positional: [Value], _ keyword: [(String, Value)]) throws(JinjaError) -> Value {
        func bind(_ names: [String]) throws(JinjaError) -> BoundArguments {
            try BoundArguments(name, positional, keyword, names: names)
        }
        // These jinja2 filters are generators: whatever goes wrong surfaces when the result is iterated.
        func lazily(_ body: () throws(JinjaError) -> Value) -> Value {
            do {
                return try body()
            } catch {
                return .failedIterator(error)
            }
        }
        switch name {
        case "abs":
            _ = try bind([])
            switch value {
            case .int(let number):
                if number == Int.min { throw integerOverflow() }
                return .int(abs(number))
            case .bool(let flag): return .int(flag ? 1 : 0)
            case .float(let number): return .float(abs(number))
            default: throw JinjaError(.type, "bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            let arguments = try bind(["name"])
            guard let attributeName = try arguments.string("name") else { throw JinjaError(.type, "attr() missing argument 'name'") }
            if case .undefined(let undefined) = value { throw undefined.error }
            if let method = try method(of: value, attributeName) { return method }
            if case .namespace(let namespace) = value, let found = namespace.attributes.get(attributeName) { return found }
            return .undefined(Undefined(name: attributeName, owner: value.objectTypeDescription))
        case "capitalize":
            _ = try bind([])
            return .string(PythonString.capitalize(try str(value)))
        case "center":
            let arguments = try bind(["width"])
            let width = try arguments.int("width", 80)
            try checkLength(width)
            return .string(PythonString.pad(try str(value), width: width, fill: " ", alignment: "center"))
        case "count", "length":
            _ = try bind([])
            return .int(try length(of: value))
        case "d", "default":
            let arguments = try bind(["default_value", "boolean"])
            if value.isUndefined || (arguments.bool("boolean", false) && !value.isTruthy) {
                return arguments["default_value"] ?? .string("")
            }
            return value
        case "dictsort":
            let arguments = try bind(["case_sensitive", "by", "reverse"])
            guard case .dict(let dict) = value else {
                if case .undefined(let undefined) = value { throw undefined.error }
                throw JinjaError(.type, "'\(value.typeName)' object has no attribute 'items'")
            }
            let byValue: Bool
            switch try arguments.string("by") ?? "key" {
            case "key": byValue = false
            case "value": byValue = true
            default: throw JinjaError(.value, "You can only sort by either 'key' or 'value'")
            }
            let caseSensitive = arguments.bool("case_sensitive", false)
            let pairs = try stableSorted(dict.items, reverse: arguments.bool("reverse", false)) { pair in
                Self.ignoringCase(byValue ? pair.1 : pair.0, caseSensitive: caseSensitive)
            }
            return .list(pairs.map { .tuple([$0.0, $0.1]) })
        case "e", "escape":
            _ = try bind([])
            return .string(PythonString.htmlEscape(try str(value)))
        case "first":
            _ = try bind([])
            return try iterate(value).first ?? .undefined(Undefined(hint: "No first item, sequence was empty."))
        case "float":
            let arguments = try bind(["default"])
            return try toFloat(value) ?? arguments["default"] ?? .float(0)
        case "format":
            if case .undefined(let undefined) = value { throw undefined.error }
            var dict = PyDict()
            for (key, item) in keyword { dict.set(.string(key), item) }
            return .string(try percentFormat(try str(value), keyword.isEmpty ? .tuple(positional) : .dict(dict)))
        case "indent":
            let arguments = try bind(["width", "first", "blank"])
            let indentation: String
            if case .string(let text) = arguments["width"] ?? .none {
                indentation = text
            } else {
                let width = try arguments.int("width", 4)
                try checkLength(width)
                indentation = String(repeating: " ", count: max(0, width))
            }
            guard case .string(let text) = value else {
                if case .undefined(let undefined) = value { throw undefined.error }
                throw JinjaError(.type, "unsupported operand type(s) for +=: '\(value.typeName)' and 'str'")
            }
            var lines = PythonString.splitLines(text + "\n")
            let (added, overflow) = indentation.unicodeScalars.count.multipliedReportingOverflow(by: lines.count + 1)
            if overflow { throw integerOverflow() }
            try checkLength(text.unicodeScalars.count + added)
            var result: String
            if arguments.bool("blank", false) {
                result = lines.joined(separator: "\n" + indentation)
            } else {
                result = lines.isEmpty ? "" : lines.removeFirst()
                if !lines.isEmpty { result += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n") }
            }
            if arguments.bool("first", false) { result = indentation + result }
            return .string(result)
        case "int":
            let arguments = try bind(["default", "base"])
            return try toInt(value, base: try arguments.int("base", 10)) ?? arguments["default"] ?? .int(0)
        case "items":
            return lazily { () throws(JinjaError) -> Value in
                _ = try bind([])
                switch value {
                case .undefined: return .iterator([])
                case .dict(let dict): return .iterator(dict.items.map { .tuple([$0.0, $0.1]) })
                default: throw JinjaError(.type, "Can only get item pairs from a mapping.")
                }
            }
        case "join":
            let arguments = try bind(["d", "attribute"])
            var items = try iterate(value)
            if let attribute = arguments["attribute"], !attribute.isNone {
                items = try items.map { (item) throws(JinjaError) in try lookupAttributePath(item, attribute, default: nil) }
            }
            let separator = try arguments["d"].map { (item) throws(JinjaError) in try str(item) } ?? ""
            var pieces: [String] = []
            for item in items { pieces.append(try str(item)) }
            try checkJoinedLength(pieces, separator: separator)
            return .string(pieces.joined(separator: separator))
        case "last":
            _ = try bind([])
            switch value {
            case .string, .list, .tuple, .dict, .view, .undefined: break
            default: throw JinjaError(.type, "'\(value.typeName)' object is not reversible")
            }
            return try iterate(value).last ?? .undefined(Undefined(hint: "No last item, sequence was empty."))
        case "list":
            _ = try bind([])
            return .list(try iterate(value))
        case "lower":
            _ = try bind([])
            return .string(PythonString.lower(try str(value)))
        case "upper":
            _ = try bind([])
            return .string(PythonString.upper(try str(value)))
        case "map":
            return lazily { () throws(JinjaError) -> Value in try mapFilter(value, positional, keyword) }
        case "max", "min":
            let arguments = try bind(["case_sensitive", "attribute"])
            let items = try iterate(value)
            guard !items.isEmpty else { return .undefined(Undefined(hint: "No aggregated item, sequence was empty.")) }
            let caseSensitive = arguments.bool("case_sensitive", false)
            let attribute = arguments["attribute"]
            var best = items[0]
            var bestKey = Self.ignoringCase(try lookupAttributePath(best, attribute, default: nil), caseSensitive: caseSensitive)
            for item in items.dropFirst() {
                let key = Self.ignoringCase(try lookupAttributePath(item, attribute, default: nil), caseSensitive: caseSensitive)
                // Python's max compares `item > best`, min `item < best`.
                let better =
                    name == "max"
                    ? try bestKey.pythonLessThan(key, operatorName: ">", swapped: true) : try key.pythonLessThan(bestKey)
                if better {
                    best = item
                    bestKey = key
                }
            }
            return best
        case "select", "reject", "selectattr", "rejectattr":
            return lazily { () throws(JinjaError) -> Value in try selectFilter(name, value, positional, keyword) }
        case "replace":
            let arguments = try bind(["old", "new", "count"])
            guard let old = arguments["old"], let new = arguments["new"] else { throw JinjaError(.type, "replace() missing arguments") }
            return .string(try checkedReplace(try str(value), try str(old), try str(new), count: try arguments.int("count", -1)))
        case "reverse":
            _ = try bind([])
            switch value {
            case .string(let text): return .string(String(scalars: text.unicodeScalars.reversed()))
            default:
                do {
                    return .iterator(try iterate(value).reversed())
                } catch {
                    if case .undefined = value { throw error }
                    throw JinjaError(.type, "argument must be iterable")
                }
            }
        case "round":
            let arguments = try bind(["precision", "method"])
            let precision = try arguments.int("precision", 0)
            let method = try arguments.string("method") ?? "common"
            guard ["common", "ceil", "floor"].contains(method) else {
                throw JinjaError(.value, "method must be common, ceil or floor")
            }
            guard let number = value.numericValue else {
                if case .undefined(let undefined) = value { throw undefined.error }
                throw JinjaError(.type, "type \(value.typeName) doesn't define __round__ method")
            }
            if method == "common", case .int = number { return number.value }
            let scale = pow(10.0, Double(precision))
            let scaled = number.double * scale
            let rounded: Double
            switch method {
            case "ceil": rounded = scaled.rounded(.up)
            case "floor": rounded = scaled.rounded(.down)
            default: rounded = scaled.rounded(.toNearestOrEven)
            }
            return .float(rounded / scale)
        case "safe":
            _ = try bind([])
            return .string(try str(value))
        case "sort":
            let arguments = try bind(["reverse", "case_sensitive", "attribute"])
            let caseSensitive = arguments.bool("case_sensitive", false)
            let attribute = arguments["attribute"]
            let sorted = try stableSorted(try iterate(value), reverse: arguments.bool("reverse", false)) { (item) throws(JinjaError) in
                Self.ignoringCase(try lookupAttributePath(item, attribute, default: nil), caseSensitive: caseSensitive)
            }
            return .list(sorted)
        case "string":
            _ = try bind([])
            return .string(try str(value))
        case "sum":
            let arguments = try bind(["attribute", "start"])
            var total = arguments["start"] ?? .int(0)
            for item in try iterate(value) {
                total = try binary(.add, total, try lookupAttributePath(item, arguments["attribute"], default: nil))
            }
            return total
        case "title":
            _ = try bind([])
            return .string(PythonString.jinjaTitle(try str(value)))
        case "tojson":
            // transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
            let arguments = try bind(["ensure_ascii", "indent", "separators", "sort_keys"])
            var indent: String?
            switch arguments["indent"] ?? .none {
            case .none: indent = nil
            case .string(let text): indent = text
            case let other:
                guard let width = other.integerValue else { throw JinjaError(.type, "indent must be an integer or a string") }
                indent = String(repeating: " ", count: max(0, width))
            }
            var separators: (String, String)?
            if let given = arguments["separators"], !given.isNone {
                let parts = try iterate(given)
                guard parts.count == 2, case .string(let item) = parts[0], case .string(let key) = parts[1] else {
                    throw JinjaError(.value, "separators must be a pair of strings")
                }
                separators = (item, key)
            }
            var encoder = PythonJSONEncoder(indent: indent, separators: separators, sortKeys: arguments.bool("sort_keys", false))
            encoder.maximumLength = options.maximumOutputLength
            var json = try encoder.encode(value)
            if arguments.bool("ensure_ascii", false) { json = Self.asciiEscaped(json) }
            return .string(json)
        case "trim":
            let arguments = try bind(["chars"])
            return .string(PythonString.strip(try str(value), try arguments.string("chars"), leading: true, trailing: true))
        case "unique":
            return lazily { () throws(JinjaError) -> Value in
                let arguments = try bind(["case_sensitive", "attribute"])
                let caseSensitive = arguments.bool("case_sensitive", false)
                var seen = Set<DictKey>()
                var kept: [Value] = []
                for item in try iterate(value) {
                    let attribute = try lookupAttributePath(item, arguments["attribute"], default: nil)
                    if seen.insert(try DictKey(Self.ignoringCase(attribute, caseSensitive: caseSensitive))).inserted { kept.append(item) }
                }
                return .iterator(kept)
            }
        case "wordcount":
            _ = try bind([])
            var count = 0
            var inWord = false
            for scalar in try str(value).unicodeScalars {
                let isWord = PythonString.isWordCharacter(scalar)
                if isWord && !inWord { count += 1 }
                inWord = isWord
            }
            return .int(count)
        default:
            throw JinjaError(.syntax, "No filter named '\(name)'.")
        }
    }

    /// Checks that joining `pieces` with `separator` stays within the output limit, before joining.
    func checkJoinedLength(_ pieces: [String], separator: String) throws(JinjaError) {
        var total = separator.unicodeScalars.count * max(0, pieces.count - 1)
        if pieces.count > 1 && total / (pieces.count - 1) != separator.unicodeScalars.count { throw integerOverflow() }
        try checkLength(total)
        for piece in pieces {
            total += piece.unicodeScalars.count
            try checkLength(total)
        }
    }

    /// `str.replace`, refused before building a result beyond the output limit.
    func checkedReplace(_ text: String, _ old: String, _ new: String, count: Int) throws(JinjaError) -> String {
        let occurrences = min(count < 0 ? Int.max : count, PythonString.count(old, in: text))
        let growth = new.unicodeScalars.count - old.unicodeScalars.count
        if growth > 0 {
            let (added, overflow) = occurrences.multipliedReportingOverflow(by: growth)
            if overflow { throw integerOverflow() }
            try checkLength(text.unicodeScalars.count + added)
        }
        return PythonString.replace(text, old, new, count: count)
    }

    /// `len(value)`.
    func length(of value: Value) throws(JinjaError) -> Int {
        switch value {
        case .string(let text): return text.unicodeScalars.count
        case .list(let items), .tuple(let items), .view(_, let items): return items.count
        case .dict(let dict): return dict.count
        case .undefined: return 0
        case .namespace(let namespace): return namespace.attributes.count
        case .loop(let loop): return loop.items.count
        default: throw JinjaError(.type, "object of type '\(value.typeName)' has no len()")
        }
    }

    /// Lowercases strings for case-insensitive sorting and deduplication.
    static func ignoringCase(_ value: Value, caseSensitive: Bool) -> Value {
        if !caseSensitive, case .string(let text) = value { return .string(text.lowercased()) }
        return value
    }

    /// A stable merge sort with a throwing key (Python's `sorted` is stable, and comparisons can fail).
    func stableSorted<T>(_ items: [T], reverse: Bool, key: (T) throws(JinjaError) -> Value) throws(JinjaError) -> [T] {
        var keyed: [(key: Value, item: T)] = []
        for item in items { keyed.append((try key(item), item)) }
        func before(_ a: Value, _ b: Value) throws(JinjaError) -> Bool {
            reverse ? try b.pythonLessThan(a) : try a.pythonLessThan(b)
        }
        var width = 1
        while width < keyed.count {
            var merged: [(key: Value, item: T)] = []
            merged.reserveCapacity(keyed.count)
            var start = 0
            while start < keyed.count {
                let middle = min(start + width, keyed.count)
                let end = min(start + 2 * width, keyed.count)
                var left = start
                var right = middle
                while left < middle && right < end {
                    // Take from the right only when strictly before, to keep equal items in order.
                    if try before(keyed[right].key, keyed[left].key) {
                        merged.append(keyed[right])
                        right += 1
                    } else {
                        merged.append(keyed[left])
                        left += 1
                    }
                }
                merged += keyed[left..<middle]
                merged += keyed[right..<end]
                start = end
            }
            keyed = merged
            width *= 2
        }
        return keyed.map(\.item)
    }

    /// jinja2's `make_attrgetter`: `"a.b.0"` looks up `a`, then `b`, then item 0; a missing
    /// value becomes `default` when one is given.
    func lookupAttributePath(_ item: Value, _ attribute: Value?, default fallback: Value?) throws(JinjaError) -> Value {
        guard let attribute, !attribute.isNone else { return item }
        var parts: [Value]
        if case .string(let path) = attribute {
            parts = path.split(separator: ".", omittingEmptySubsequences: false).map { part in
                Int(part).map(Value.int) ?? .string(String(part))
            }
        } else {
            parts = [attribute]
        }
        var current = item
        for part in parts {
            current = try self.item(of: current, part)
            if let fallback, current.isUndefined { current = fallback }
        }
        return current
    }

    private func mapFilter(_ value: Value, _ positional: [Value], _ keyword: [(String, Value)]) throws(JinjaError) -> Value {
        guard value.isTruthy else { return .iterator([]) }
        let items = try iterate(value)
        if positional.isEmpty, let attribute = keyword.first(where: { $0.0 == "attribute" })?.1 {
            let fallback = keyword.first { $0.0 == "default" }?.1
            if let extra = keyword.first(where: { $0.0 != "attribute" && $0.0 != "default" }) {
                throw JinjaError(.type, "Unexpected keyword argument '\(extra.0)'")
            }
            var mapped: [Value] = []
            for item in items { mapped.append(try lookupAttributePath(item, attribute, default: fallback.flatMap { $0.isNone ? nil : $0 })) }
            return .iterator(mapped)
        }
        guard case .string(let filterName) = positional.first ?? .none else {
            throw JinjaError(.type, "map requires a filter argument")
        }
        guard JinjaBuiltins.filterNames.contains(filterName) else { throw JinjaError(.type, "No filter named '\(filterName)'.") }
        var mapped: [Value] = []
        for item in items { mapped.append(try applyFilter(filterName, to: item, Array(positional.dropFirst()), keyword)) }
        return .iterator(mapped)
    }

    private func selectFilter(_ name: String, _ value: Value, _ positional: [Value], _ keyword: [(String, Value)]) throws(JinjaError) -> Value {
        let usesAttribute = name.hasSuffix("attr")
        let keep = name.hasPrefix("select")
        var arguments = positional
        var attribute: Value?
        if usesAttribute {
            guard !arguments.isEmpty else { throw JinjaError(.type, "Missing parameter for attribute name") }
            attribute = arguments.removeFirst()
        }
        var testName: String?
        if !arguments.isEmpty {
            guard case .string(let given) = arguments.removeFirst() else { throw JinjaError(.type, "test name must be a string") }
            guard JinjaBuiltins.testNames.contains(given) else { throw JinjaError(.type, "No test named '\(given)'.") }
            testName = given
        }
        guard value.isTruthy else { return .iterator([]) }
        var kept: [Value] = []
        for item in try iterate(value) {
            let subject = try lookupAttributePath(item, attribute, default: nil)
            let passes = try testName.map { (test) throws(JinjaError) in try applyTest(test, to: subject, arguments, keyword) } ?? subject.isTruthy
            if passes == keep { kept.append(item) }
        }
        return .iterator(kept)
    }

    private func toFloat(_ value: Value) throws(JinjaError) -> Value? {
        switch value {
        case .float: return value
        case .int(let number): return .float(Double(number))
        case .bool(let flag): return .float(flag ? 1 : 0)
        case .string(let text): return Self.parsePythonFloat(text).map(Value.float)
        case .undefined(let undefined): throw undefined.error
        default: return nil
        }
    }

    static func parsePythonFloat(_ text: String) -> Double? {
        let trimmed = PythonString.strip(text, nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
        switch trimmed.lowercased() {
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        case "nan", "+nan", "-nan": return .nan
        default: break
        }
        guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }) else { return nil }
        return Double(trimmed)
    }

    private func toInt(_ value: Value, base: Int) throws(JinjaError) -> Value? {
        switch value {
        case .int: return value
        case .bool(let flag): return .int(flag ? 1 : 0)
        case .float(let number):
            guard number.isFinite else { return nil }
            guard let integer = Int(exactly: number.rounded(.towardZero)) else { throw integerOverflow() }
            return .int(integer)
        case .string(let text):
            if let integer = Self.parsePythonInt(text, base: base) { return .int(integer) }
            if let number = Self.parsePythonFloat(text), number.isFinite, let integer = Int(exactly: number.rounded(.towardZero)) {
                return .int(integer)
            }
            return nil
        case .undefined(let undefined): throw undefined.error
        default: return nil
        }
    }

    /// Python's `int(text, base)`: surrounding whitespace, a sign, underscores between digits and,
    /// for bases 2, 8 and 16 (or base 0, which infers the base), a `0b`/`0o`/`0x` prefix.
    static func parsePythonInt(_ text: String, base: Int) -> Int? {
        var digits = Substring(PythonString.strip(text, nil, leading: true, trailing: true))
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix = base
        let prefixes: [(String, Int)] = [("0x", 16), ("0o", 8), ("0b", 2)]
        for (prefix, prefixBase) in prefixes where digits.lowercased().hasPrefix(prefix) && (base == 0 || base == prefixBase) {
            digits = digits.dropFirst(2)
            if digits.first == "_" { digits = digits.dropFirst() }
            radix = prefixBase
        }
        if radix == 0 {
            radix = 10
            if digits.count > 1 && digits.allSatisfy({ $0 == "0" || $0 == "_" }) == false && digits.first == "0" { return nil }
        }
        guard (2...36).contains(radix), !digits.isEmpty, digits.first != "_", digits.last != "_", !digits.contains("__") else { return nil }
        guard let magnitude = Int(String(digits.filter { $0 != "_" }), radix: radix) else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// `\uXXXX` escapes for non-ASCII characters (json.dumps with ensure_ascii=True).
    static func asciiEscaped(_ json: String) -> String {
        var result = ""
        for scalar in json.unicodeScalars {
            if scalar.isASCII {
                result.unicodeScalars.append(scalar)
            } else if scalar.value > 0xFFFF {
                let value = scalar.value - 0x10000
                result += "\\u" + PythonFormat.hex(0xD800 + (value >> 10), width: 4) + "\\u" + PythonFormat.hex(0xDC00 + (value & 0x3FF), width: 4)
            } else {
                result += "\\u" + PythonFormat.hex(scalar.value, width: 4)
            }
        }
        return result
    }

    // MARK: Tests

    func applyTest(_ name: String, to value: Value, _ positional: [Value], _ keyword: [(String, Value)]) throws(JinjaError) -> Bool {
        func argument() throws(JinjaError) -> Value {
            let bound = try BoundArguments(name, positional, keyword, names: ["other"])
            guard let other = bound["other"] else { throw JinjaError(.type, "test '\(name)' takes an argument") }
            return other
        }
        switch name {
        case "boolean":
            if case .bool = value { return true }
            return false
        case "callable":
            if case .callable = value { return true }
            return false
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "divisibleby":
            return try binary(.modulo, value, try argument()).pythonEquals(.int(0))
        case "eq", "equalto", "==": return value.pythonEquals(try argument())
        case "ne", "!=": return !value.pythonEquals(try argument())
        case "lt", "lessthan", "<": return try compare(.less, value, try argument())
        case "le", "<=": return try compare(.lessEqual, value, try argument())
        case "gt", "greaterthan", ">": return try compare(.greater, value, try argument())
        case "ge", ">=": return try compare(.greaterEqual, value, try argument())
        case "escaped": return false
        case "even", "odd":
            // jinja2: value % 2 == 1 (or == 0), with Python's `%` (string formatting for strings).
            return try binary(.modulo, value, .int(2)).pythonEquals(.int(name == "odd" ? 1 : 0))
        case "false":
            if case .bool(false) = value { return true }
            return false
        case "true":
            if case .bool(true) = value { return true }
            return false
        case "filter":
            if case .string(let text) = value { return JinjaBuiltins.filterNames.contains(text) }
            return false
        case "test":
            if case .string(let text) = value { return JinjaBuiltins.testNames.contains(text) }
            return false
        case "float":
            if case .float = value { return true }
            return false
        case "integer":
            if case .int = value { return true }
            return false
        case "number": return value.numericValue != nil
        case "in": return try contains(try argument(), value)
        case "iterable":
            switch value {
            case .string, .list, .tuple, .dict, .iterator, .view, .undefined, .loop: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .string, .list, .tuple, .dict, .undefined: return true
            default: return false
            }
        case "mapping":
            if case .dict = value { return true }
            return false
        case "none": return value.isNone
        case "string":
            if case .string = value { return true }
            return false
        case "lower":
            let text = try str(value)
            return text.unicodeScalars.contains(where: PythonString.isCased) && text == text.lowercased()
        case "upper":
            let text = try str(value)
            return text.unicodeScalars.contains(where: PythonString.isCased) && text == text.uppercased()
        case "sameas":
            let other = try argument()
            switch (value, other) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.int(let a), .int(let b)): return a == b
            case (.string(let a), .string(let b)): return a.pythonEquals(b)
            case (.namespace(let a), .namespace(let b)): return a === b
            case (.callable(let a), .callable(let b)): return a === b
            default: return false
            }
        default:
            throw JinjaError(.syntax, "No test named '\(name)'.")
        }
    }

    // MARK: Methods

    /// The Python method `name` of `object` as a callable, an undefined value for methods the
    /// sandbox forbids (they would modify data), or nil when the object has no such method.
    func method(of object: Value, _ name: String) throws(JinjaError) -> Value? {
        func bound(_ body: @escaping (BoundArgumentsList) throws(JinjaError) -> Value) -> Value {
            .callable(
                Callable(name: name) { positional, keyword, _ throws(JinjaError) in
                    try body(BoundArgumentsList(function: name, positional: positional, keyword: keyword))
                })
        }
        func unsafe(_ typeName: String) -> Value {
            .undefined(
                Undefined(name: name, hint: "access to attribute '\(name)' of '\(typeName)' object is unsafe.", errorKind: .limit))
        }
        switch object {
        case .string(let text):
            return stringMethod(text, name, bound)
        case .dict(let dict):
            switch name {
            case "items": return bound { _ in .view(.items, dict.items.map { .tuple([$0.0, $0.1]) }) }
            case "keys": return bound { _ in .view(.keys, dict.keys) }
            case "values": return bound { _ in .view(.values, dict.values) }
            case "get":
                return bound { (arguments) throws(JinjaError) in
                    let bound = try arguments.bind(["key", "default"])
                    guard let key = bound["key"] else { throw JinjaError(.type, "get expected at least 1 argument, got 0") }
                    if case .undefined(let undefined) = key { throw undefined.error }
                    _ = try DictKey(key)
                    return dict.get(key) ?? bound["default"] ?? .none
                }
            case "copy": return bound { _ in .dict(dict) }
            case "pop", "popitem", "setdefault", "update", "clear": return unsafe("dict")
            default: return nil
            }
        case .list(let items), .tuple(let items):
            let typeName = object.typeName
            switch name {
            case "count": return bound { (arguments) throws(JinjaError) in
                    let bound = try arguments.bind(["value"])
                    return .int(items.filter { $0.pythonEquals(bound["value"] ?? .none) }.count)
                }
            case "index":
                return bound { (arguments) throws(JinjaError) in
                    let bound = try arguments.bind(["value"])
                    let target = bound["value"] ?? .none
                    guard let found = items.firstIndex(where: { $0.pythonEquals(target) }) else {
                        throw JinjaError(.value, "\(target.pythonRepr) is not in \(typeName)")
                    }
                    return .int(found)
                }
            case "copy" where typeName == "list": return bound { _ in .list(items) }
            case "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear": return typeName == "list" ? unsafe("list") : nil
            default: return nil
            }
        default:
            return nil
        }
    }

    private func stringMethod(_ text: String, _ name: String, _ bound: (@escaping (BoundArgumentsList) throws(JinjaError) -> Value) -> Value) -> Value? {
        func strip(leading: Bool, trailing: Bool) -> Value {
            bound { (arguments) throws(JinjaError) in
                let chars = try arguments.bind(["chars"]).string("chars")
                return .string(PythonString.strip(text, chars, leading: leading, trailing: trailing))
            }
        }
        func affix(prefix: Bool) -> Value {
            bound { (arguments) throws(JinjaError) in
                let bound = try arguments.bind([prefix ? "prefix" : "suffix", "start", "end"])
                let scalars = text.scalars
                let window = try Self.window(scalars.count, bound["start"], bound["end"])
                let subject = Array(scalars[window])
                let candidates: [Value]
                switch bound[prefix ? "prefix" : "suffix"] ?? .none {
                case .tuple(let items): candidates = items
                case .string(let affix): candidates = [.string(affix)]
                case let other:
                    if case .undefined(let undefined) = other { throw undefined.error }
                    throw JinjaError(
                        .type, "\(prefix ? "startswith" : "endswith") first arg must be str or a tuple of str, not \(other.typeName)")
                }
                for candidate in candidates {
                    guard case .string(let affix) = candidate else {
                        throw JinjaError(.type, "tuple for \(prefix ? "startswith" : "endswith") must only contain str, not \(candidate.typeName)")
                    }
                    let pattern = affix.scalars
                    if pattern.count <= subject.count
                        && (prefix ? subject.prefix(pattern.count).elementsEqual(pattern) : subject.suffix(pattern.count).elementsEqual(pattern))
                    {
                        return .bool(true)
                    }
                }
                return .bool(false)
            }
        }
        func search(reverse: Bool, raising: Bool) -> Value {
            bound { (arguments) throws(JinjaError) in
                let bound = try arguments.bind(["sub", "start", "end"])
                guard case .string(let needle) = bound["sub"] ?? .none else {
                    throw JinjaError(.type, "must be str, not \((bound["sub"] ?? .none).typeName)")
                }
                let scalars = text.scalars
                let window = try Self.window(scalars.count, bound["start"], bound["end"])
                let found =
                    reverse
                    ? PythonString.findLast(needle.scalars, in: scalars, before: window.upperBound, from: window.lowerBound)
                    : PythonString.find(needle.scalars, in: scalars, from: window.lowerBound, to: window.upperBound)
                if found == nil && raising { throw JinjaError(.value, "substring not found") }
                return .int(found ?? -1)
            }
        }
        func predicate(_ check: @escaping (String) -> Bool) -> Value {
            bound { (arguments) throws(JinjaError) in
                _ = try arguments.bind([])
                return .bool(!text.isEmpty && check(text))
            }
        }
        func pad(_ alignment: String) -> Value {
            bound { (arguments) throws(JinjaError) in
                let bound = try arguments.bind(["width", "fillchar"])
                let fill = try bound.string("fillchar") ?? " "
                guard fill.unicodeScalars.count == 1, let scalar = fill.unicodeScalars.first else {
                    throw JinjaError(.type, "The fill character must be exactly one character long")
                }
                let width = try bound.int("width", 0)
                try self.checkLength(width)
                return .string(PythonString.pad(text, width: width, fill: scalar, alignment: alignment))
            }
        }
        switch name {
        case "strip": return strip(leading: true, trailing: true)
        case "lstrip": return strip(leading: true, trailing: false)
        case "rstrip": return strip(leading: false, trailing: true)
        case "split", "rsplit":
            return bound { (arguments) throws(JinjaError) in
                let bound = try arguments.bind(["sep", "maxsplit"])
                let separator = try bound.string("sep")
                let maxSplit = try bound.int("maxsplit", -1)
                let pieces =
                    name == "split"
                    ? try PythonString.split(text, separator, maxSplit: maxSplit)
                    : try PythonString.rsplit(text, separator, maxSplit: maxSplit)
                return .list(pieces.map(Value.string))
            }
        case "splitlines":
            return bound { (arguments) throws(JinjaError) in
                let keepEnds = try arguments.bind(["keepends"]).bool("keepends", false)
                return .list(PythonString.splitLines(text, keepEnds: keepEnds).map(Value.string))
            }
        case "startswith": return affix(prefix: true)
        case "endswith": return affix(prefix: false)
        case "upper", "lower", "title", "capitalize", "swapcase", "casefold":
            return bound { (arguments) throws(JinjaError) in
                _ = try arguments.bind([])
                switch name {
                case "upper": return .string(PythonString.upper(text))
                case "lower", "casefold": return .string(PythonString.lower(text))
                case "title": return .string(PythonString.title(text))
                case "capitalize": return .string(PythonString.capitalize(text))
                default: return .string(PythonString.swapcase(text))
                }
            }
        case "replace":
            return bound { (arguments) throws(JinjaError) in
                let bound = try arguments.bind(["old", "new", "count"])
                guard let old = try bound.string("old"), let new = try bound.string("new") else {
                    throw JinjaError(.type, "replace expected at least 2 arguments")
                }
                return .string(try self.checkedReplace(text, old, new, count: try bound.int("count", -1)))
            }
        case "find": return search(reverse: false, raising: false)
        case "rfind": return search(reverse: true, raising: false)
        case "index": return search(reverse: false, raising: true)
        case "rindex": return search(reverse: true, raising: true)
        case "count":
            return bound { (arguments) throws(JinjaError) in
                guard let needle = try arguments.bind(["sub"]).string("sub") else { throw JinjaError(.type, "count() takes a string") }
                return .int(PythonString.count(needle, in: text))
            }
        case "join":
            return bound { (arguments) throws(JinjaError) in
                let items = try self.iterate(try arguments.bind(["iterable"])["iterable"] ?? .none)
                var pieces: [String] = []
                for (position, item) in items.enumerated() {
                    guard case .string(let piece) = item else {
                        throw JinjaError(.type, "sequence item \(position): expected str instance, \(item.typeName) found")
                    }
                    pieces.append(piece)
                }
                try self.checkJoinedLength(pieces, separator: text)
                return .string(pieces.joined(separator: text))
            }
        case "format":
            return bound { (arguments) throws(JinjaError) in .string(try Self.braceFormat(text, arguments.positional, arguments.keyword, limit: self.options.maximumOutputLength)) }
        case "isdigit", "isdecimal", "isnumeric":
            return predicate { $0.unicodeScalars.allSatisfy { $0.properties.numericType != nil } }
        case "isalpha": return predicate { $0.unicodeScalars.allSatisfy { $0.properties.isAlphabetic } }
        case "isalnum": return predicate { $0.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil } }
        case "isspace": return predicate { $0.unicodeScalars.allSatisfy(PythonString.isWhitespace) }
        case "isupper": return predicate { $0.unicodeScalars.contains(where: PythonString.isCased) && $0 == $0.uppercased() }
        case "islower": return predicate { $0.unicodeScalars.contains(where: PythonString.isCased) && $0 == $0.lowercased() }
        case "center": return pad("center")
        case "ljust": return pad("left")
        case "rjust": return pad("right")
        case "zfill":
            return bound { (arguments) throws(JinjaError) in
                let width = try arguments.bind(["width"]).int("width", 0)
                try self.checkLength(width)
                var scalars = text.scalars
                guard width > scalars.count else { return .string(text) }
                let sign = scalars.first == "+" || scalars.first == "-" ? scalars.removeFirst() : nil
                let zeros = [Unicode.Scalar](repeating: "0", count: width - scalars.count - (sign == nil ? 0 : 1))
                return .string(String(scalars: (sign.map { [$0] } ?? []) + zeros + scalars))
            }
        case "partition", "rpartition":
            return bound { (arguments) throws(JinjaError) in
                guard let separator = try arguments.bind(["sep"]).string("sep"), !separator.isEmpty else {
                    throw JinjaError(.value, "empty separator")
                }
                let scalars = text.scalars
                let pattern = separator.scalars
                let found =
                    name == "partition"
                    ? PythonString.find(pattern, in: scalars, from: 0) : PythonString.findLast(pattern, in: scalars, before: scalars.count)
                guard let found else {
                    return name == "partition" ? .tuple([.string(text), .string(""), .string("")]) : .tuple([.string(""), .string(""), .string(text)])
                }
                return .tuple([
                    .string(String(scalars: scalars[..<found])), .string(separator),
                    .string(String(scalars: scalars[(found + pattern.count)...])),
                ])
            }
        case "removeprefix", "removesuffix":
            return bound { (arguments) throws(JinjaError) in
                guard let affix = try arguments.bind(["affix"]).string("affix") else { throw JinjaError(.type, "\(name) takes a string") }
                let scalars = text.scalars
                let pattern = affix.scalars
                if name == "removeprefix", !pattern.isEmpty, scalars.starts(with: pattern) {
                    return .string(String(scalars: scalars.dropFirst(pattern.count)))
                }
                if name == "removesuffix", !pattern.isEmpty, scalars.count >= pattern.count, scalars.suffix(pattern.count).elementsEqual(pattern) {
                    return .string(String(scalars: scalars.dropLast(pattern.count)))
                }
                return .string(text)
            }
        default:
            return nil
        }
    }

    /// The range `text[start:end]` selects, for `startswith`, `find` and friends.
    static func window(_ count: Int, _ start: Value?, _ end: Value?) throws(JinjaError) -> Range<Int> {
        func clamp(_ value: Value?, _ fallback: Int) throws(JinjaError) -> Int {
            guard let value, !value.isNone else { return fallback }
            guard let integer = value.integerValue else { throw JinjaError(.type, "slice indices must be integers or None") }
            let position = integer < 0 ? integer + count : integer
            return min(max(position, 0), count)
        }
        let lower = try clamp(start, 0)
        let upper = try clamp(end, count)
        return lower..<max(lower, upper)
    }

    // MARK: Formatting

    /// `str.format` with positional (`{}`, `{0}`) and named (`{name}`) fields, `!r`/`!s` conversions
    /// and `{{`/`}}` escapes; format specifications are not supported.
    static func braceFormat(_ format: String, _ positional: [Value], _ keyword: [(String, Value)], limit: Int) throws(JinjaError) -> String {
        let scalars = format.scalars
        var result = ""
        var index = 0
        var automatic = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "}" {
                guard index + 1 < scalars.count, scalars[index + 1] == "}" else {
                    throw JinjaError(.value, "Single '}' encountered in format string")
                }
                result += "}"
                index += 2
                continue
            }
            guard scalar == "{" else {
                result.unicodeScalars.append(scalar)
                index += 1
                continue
            }
            if index + 1 < scalars.count, scalars[index + 1] == "{" {
                result += "{"
                index += 2
                continue
            }
            guard let close = scalars[index...].firstIndex(of: "}") else {
                throw JinjaError(.value, "Single '{' encountered in format string")
            }
            var field = String(scalars: scalars[(index + 1)..<close])
            index = close + 1
            var conversion: String?
            if let bang = field.firstIndex(of: "!") {
                conversion = String(field[field.index(after: bang)...])
                field = String(field[..<bang])
            }
            if field.contains(":") { throw JinjaError(.value, "format specifications are not supported in str.format") }
            let value: Value
            if field.isEmpty {
                guard automatic < positional.count else { throw JinjaError(.value, "Replacement index \(automatic) out of range for positional args tuple") }
                value = positional[automatic]
                automatic += 1
            } else if let number = Int(field) {
                guard number >= 0 && number < positional.count else {
                    throw JinjaError(.value, "Replacement index \(number) out of range for positional args tuple")
                }
                value = positional[number]
            } else {
                guard let found = keyword.first(where: { $0.0 == field }) else { throw JinjaError(.value, "KeyError: '\(field)'") }
                value = found.1
            }
            result += conversion == "r" ? try value.repr(limit: limit) : try value.str(limit: limit)
            if result.unicodeScalars.count > limit { throw JinjaError(.limit, "a formatted string exceeds the limit of \(limit) characters") }
        }
        return result
    }

    /// Python's `format % values` for the common conversions (`%s %r %d %i %f %x %%`).
    func percentFormat(_ format: String, _ values: Value) throws(JinjaError) -> String {
        let scalars = format.scalars
        var arguments: [Value]
        var mapping: PyDict?
        switch values {
        case .tuple(let items): arguments = items
        case .dict(let dict):
            mapping = dict
            arguments = [values]
        default: arguments = [values]
        }
        var result = ""
        var index = 0
        var next = 0
        while index < scalars.count {
            let scalar = scalars[index]
            guard scalar == "%" else {
                result.unicodeScalars.append(scalar)
                index += 1
                continue
            }
            index += 1
            guard index < scalars.count else { throw JinjaError(.value, "incomplete format") }
            var key: String?
            if scalars[index] == "(" {
                guard let close = scalars[index...].firstIndex(of: ")") else { throw JinjaError(.value, "incomplete format key") }
                key = String(scalars: scalars[(index + 1)..<close])
                index = close + 1
            }
            var precision: Int?
            var flags = ""
            while index < scalars.count, "-+ 0#".unicodeScalars.contains(scalars[index]) {
                flags.unicodeScalars.append(scalars[index])
                index += 1
            }
            var widthText = ""
            while index < scalars.count, ("0"..."9").contains(scalars[index]) {
                widthText.unicodeScalars.append(scalars[index])
                index += 1
            }
            if index < scalars.count, scalars[index] == "." {
                index += 1
                var digits = ""
                while index < scalars.count, ("0"..."9").contains(scalars[index]) {
                    digits.unicodeScalars.append(scalars[index])
                    index += 1
                }
                guard let given = digits.isEmpty ? 0 : Int(digits) else { throw integerOverflow() }
                precision = given
            }
            guard index < scalars.count else { throw JinjaError(.value, "incomplete format") }
            if let width = Int(widthText) { try checkLength(width) } else if !widthText.isEmpty { throw integerOverflow() }
            if let precision { try checkLength(precision) }
            let conversion = scalars[index]
            index += 1
            if conversion == "%" {
                result += "%"
                continue
            }
            let value: Value
            if let key {
                guard let mapping, let found = mapping.get(key) else { throw JinjaError(.type, "format requires a mapping") }
                value = found
            } else {
                guard next < arguments.count else { throw JinjaError(.type, "not enough arguments for format string") }
                value = arguments[next]
                next += 1
            }
            var piece: String
            switch conversion {
            case "s": piece = try str(value)
            case "r", "a": piece = try value.repr(limit: options.maximumOutputLength)
            case "d", "i", "u":
                guard let number = value.numericValue else { throw JinjaError(.type, "%\(conversion) format: a real number is required, not \(value.typeName)") }
                switch number {
                case .int(let integer): piece = String(integer)
                case .float(let double):
                    guard let integer = Int(exactly: double.rounded(.towardZero)) else { throw integerOverflow() }
                    piece = String(integer)
                }
            case "f", "F":
                guard let number = value.numericValue else { throw JinjaError(.type, "must be real number, not \(value.typeName)") }
                piece = String(format: "%.\(precision ?? 6)f", number.double)
            case "x", "X":
                guard let integer = value.integerValue else { throw JinjaError(.type, "%x format: an integer is required, not \(value.typeName)") }
                piece = String(integer, radix: 16, uppercase: conversion == "X")
            default:
                throw JinjaError(.value, "unsupported format character '\(conversion)'")
            }
            if let width = Int(widthText), width > piece.unicodeScalars.count {
                let padding = String(repeating: flags.contains("0") && !flags.contains("-") ? "0" : " ", count: width - piece.unicodeScalars.count)
                piece = flags.contains("-") ? piece + padding : padding + piece
            }
            result += piece
        }
        if mapping == nil && next < arguments.count {
            throw JinjaError(.type, "not all arguments converted during string formatting")
        }
        return result
    }
}

/// The arguments of a method call, bound on demand.
struct BoundArgumentsList {
    var function: String
    var positional: [Value]
    var keyword: [(String, Value)]

    func bind(_ names: [String]) throws(JinjaError) -> BoundArguments {
        try BoundArguments(function, positional, keyword, names: names)
    }
}
