// ConfigValue.swift
//
// The resolved configuration of a run, as an ordered tree of TOML-compatible
// values (`ConfigValue`, `ConfigTable`), and `TOMLWriter`, which renders it as
// the TOML v1.0 document stored in a run directory's `config.toml`.

/// A configuration value that TOML can represent.
public enum ConfigValue: Sendable, Equatable {
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ConfigValue])
    case table(ConfigTable)
}

extension ConfigValue: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: ConfigValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, ConfigValue)...) {
        self = .table(ConfigTable(elements))
    }
}

/// A table of configuration keys that keeps keys in insertion order.
public struct ConfigTable: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The key/value pairs, in insertion order.
    public private(set) var entries: [(key: String, value: ConfigValue)] = []

    /// An empty table.
    public init() {}

    /// A table of `entries` in order; a repeated key replaces the earlier value in place.
    public init(_ entries: [(String, ConfigValue)]) {
        for (key, value) in entries { self[key] = value }
    }

    public init(dictionaryLiteral elements: (String, ConfigValue)...) { self.init(elements) }

    /// The value for `key`; assigning appends a new key, replaces an existing one in place,
    /// or removes it when `nil`.
    public subscript(key: String) -> ConfigValue? {
        get { entries.first { $0.key == key }?.value }
        set {
            let index = entries.firstIndex { $0.key == key }
            switch (index, newValue) {
            case let (i?, value?): entries[i].value = value
            case let (i?, nil): entries.remove(at: i)
            case let (nil, value?): entries.append((key, value))
            case (nil, nil): break
            }
        }
    }

    /// The keys, in insertion order.
    public var keys: [String] { entries.map(\.key) }

    public static func == (lhs: ConfigTable, rhs: ConfigTable) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

/// Renders configuration tables as TOML v1.0 documents.
public enum TOMLWriter {
    /// The TOML document for `table`. In every table the non-table keys come first (in
    /// order), then one `[dotted.section]` per nested table; tables inside arrays are
    /// written as inline tables.
    public static func render(_ table: ConfigTable) -> String {
        var out = ""
        func emit(_ table: ConfigTable, path: [String]) {
            if !path.isEmpty {
                if !out.isEmpty { out += "\n" }
                out += "[" + path.map(formatKey).joined(separator: ".") + "]\n"
            }
            var nested: [(String, ConfigTable)] = []
            for (key, value) in table.entries {
                if case .table(let sub) = value {
                    nested.append((key, sub))
                } else {
                    out += formatKey(key) + " = " + formatValue(value) + "\n"
                }
            }
            for (key, sub) in nested { emit(sub, path: path + [key]) }
        }
        emit(table, path: [])
        return out
    }

    /// `key` as a bare key when it only uses `A-Za-z0-9_-`, otherwise as a quoted key.
    public static func formatKey(_ key: String) -> String {
        let bare = !key.isEmpty && key.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || $0 == "_" || $0 == "-"
        }
        return bare ? key : quote(key)
    }

    /// `string` as a TOML basic string, quoted and escaped.
    public static func quote(_ string: String) -> String {
        "\"" + escapeBasicString(string) + "\""
    }

    /// One value in TOML's single-line form (nested tables become inline tables).
    public static func formatValue(_ value: ConfigValue) -> String {
        switch value {
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return formatDouble(d)
        case .string(let s): return quote(s)
        case .array(let items): return "[" + items.map(formatValue).joined(separator: ", ") + "]"
        case .table(let t):
            if t.entries.isEmpty { return "{}" }
            return "{ " + t.entries.map { formatKey($0.key) + " = " + formatValue($0.value) }
                .joined(separator: ", ") + " }"
        }
    }

    /// A TOML float: always with a decimal point or exponent; `inf`, `-inf`, `nan` when non-finite.
    public static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        return finiteNumber(d)
    }
}

/// Shortest round-tripping decimal for a finite double, always with `.` or an exponent.
/// Valid as both a TOML float and a JSON number. (`package`: NudgeReport's metrics log writes
/// its numbers with it.)
package func finiteNumber(_ d: Double) -> String {
    let s = d.description
    return s.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? s : s + ".0"
}

/// Escapes `string` for the inside of a TOML basic string; the result is also a valid
/// JSON string body (`\b \t \n \f \r \" \\` and `\uXXXX` for other control characters).
/// (`package`: NudgeReport's metrics log writes its JSON keys with it.)
package func escapeBasicString(_ string: String) -> String {
    var out = ""
    out.reserveCapacity(string.utf8.count)
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}
