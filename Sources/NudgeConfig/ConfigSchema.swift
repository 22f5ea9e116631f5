// ConfigSchema.swift
//
// Typed, validated run configuration: a `ConfigSchema` lists every key a command accepts (dotted
// path, type, default, help), and `resolve` layers a config file (`ConfigDocument`, TOML or YAML)
// and `--set key=value` overrides over the defaults:
//
//     defaults  ←  config file  ←  --set overrides  ←  (the caller's explicit flags, via `set`)
//
// Every problem names the dotted key, the expected type and where the value came from
// ("sft.learning_rate: expected a number, got \"abc\" (from sft.yaml line 3)"); unknown keys get
// the closest known key as a suggestion. All problems of one resolution are reported together,
// so a user fixes a config file in one pass instead of one error per run.
//
// Types are strict in the way TOML is: an integer is accepted where a number is expected, but a
// number with a fraction is not accepted where an integer is, and nothing is converted to a string.
// Untyped text (`--set` values, plain YAML scalars) is parsed according to the field's type, which
// also sidesteps YAML 1.1's surprises (`no` as false, `1e-3` as a string).

import Foundation

/// The type of a configuration field.
public indirect enum ConfigType: Sendable, Equatable {
    /// An integer; a number with a fraction is rejected.
    case int
    /// A floating-point number; integers are accepted and converted.
    case double
    /// `true`/`false` (on the command line also yes/no, on/off, 1/0).
    case bool
    case string
    /// A string from a fixed list.
    case choice([String])
    /// A list of values of one type. On the command line: `[1, 2]` or `1,2`.
    case array(ConfigType)

    /// "an integer", "a number", "one of a, b, c", …, as used in error messages.
    public var description: String {
        switch self {
        case .int: "an integer"
        case .double: "a number"
        case .bool: "a boolean (true or false)"
        case .string: "a string"
        case .choice(let allowed): "one of " + allowed.joined(separator: ", ")
        case .array(let element): "a list of " + element.pluralDescription
        }
    }

    /// A short name for help listings: `int`, `float`, `bool`, `string`, `a|b|c`, `[int]`.
    public var shortName: String {
        switch self {
        case .int: "int"
        case .double: "float"
        case .bool: "bool"
        case .string: "string"
        case .choice(let allowed): allowed.joined(separator: "|")
        case .array(let element): "[" + element.shortName + "]"
        }
    }

    private var pluralDescription: String {
        switch self {
        case .int: "integers"
        case .double: "numbers"
        case .bool: "booleans"
        case .string: "strings"
        case .choice(let allowed): "values from " + allowed.joined(separator: ", ")
        case .array(let element): "lists of " + element.pluralDescription
        }
    }
}

/// One key of a schema: its dotted path, type, default and help text.
public struct ConfigField: Sendable, Equatable {
    /// The dotted key, e.g. `sft.learning_rate`; each component uses `A-Za-z0-9_-`.
    public let key: String
    public let type: ConfigType
    /// The value used when neither the config file nor an override sets the key.
    public let defaultValue: ConfigValue
    /// One line for `--help`.
    public let help: String
    /// Bounds for `.int` and `.double` fields (inclusive, except `minimum` when `minimumExclusive`).
    public let minimum: Double?
    public let maximum: Double?
    /// Whether `minimum` itself is refused (e.g. a temperature or an ε must be > 0).
    public let minimumExclusive: Bool

    /// A field; `defaultValue` must have the field's type (checked by `ConfigSchema.init`).
    public init(_ key: String, _ type: ConfigType, default defaultValue: ConfigValue, minimum: Double? = nil,
                maximum: Double? = nil, minimumExclusive: Bool = false, help: String) {
        self.minimumExclusive = minimumExclusive
        self.key = key
        self.type = type
        self.defaultValue = defaultValue
        self.help = help
        self.minimum = minimum
        self.maximum = maximum
    }

    /// An integer field, optionally bounded.
    public static func int(_ key: String, _ defaultValue: Int, min: Int? = nil, max: Int? = nil, help: String) -> ConfigField {
        ConfigField(key, .int, default: .int(defaultValue), minimum: min.map(Double.init), maximum: max.map(Double.init), help: help)
    }

    /// A floating-point field, optionally bounded; NaN and infinities are always refused.
    public static func double(_ key: String, _ defaultValue: Double, min: Double? = nil, max: Double? = nil, help: String) -> ConfigField {
        ConfigField(key, .double, default: .double(defaultValue), minimum: min, maximum: max, help: help)
    }

    /// A floating-point field that must be greater than `above` (and at most `max`).
    public static func double(_ key: String, _ defaultValue: Double, above: Double, max: Double? = nil, help: String) -> ConfigField {
        ConfigField(key, .double, default: .double(defaultValue), minimum: above, maximum: max, minimumExclusive: true, help: help)
    }

    /// A boolean field.
    public static func bool(_ key: String, _ defaultValue: Bool, help: String) -> ConfigField {
        ConfigField(key, .bool, default: .bool(defaultValue), help: help)
    }

    /// A free-form string field.
    public static func string(_ key: String, _ defaultValue: String, help: String) -> ConfigField {
        ConfigField(key, .string, default: .string(defaultValue), help: help)
    }

    /// A string restricted to `allowed`.
    public static func choice(_ key: String, _ allowed: [String], default defaultValue: String, help: String) -> ConfigField {
        ConfigField(key, .choice(allowed), default: .string(defaultValue), help: help)
    }

    /// A list of `element` values.
    public static func array(_ key: String, of element: ConfigType, _ defaultValue: [ConfigValue], help: String) -> ConfigField {
        ConfigField(key, .array(element), default: .array(defaultValue), help: help)
    }

    /// The type description including bounds: "an integer ≥ 1", "a number between 0 and 1".
    var expectedDescription: String {
        let finite = type.description
        let atLeast = minimumExclusive ? " > " : " ≥ "
        switch (minimum, maximum) {
        case (nil, nil): return finite
        case (let lo?, nil): return finite + atLeast + formatBound(lo)
        case (nil, let hi?): return finite + " ≤ " + formatBound(hi)
        case (let lo?, let hi?) where minimumExclusive: return finite + " > " + formatBound(lo) + " and ≤ " + formatBound(hi)
        case (let lo?, let hi?): return finite + " between " + formatBound(lo) + " and " + formatBound(hi)
        }
    }

    private func formatBound(_ bound: Double) -> String {
        // "≥ 0" reads better than "≥ 0.0"; the type already says whether fractions are allowed.
        bound == bound.rounded() && abs(bound) < 1e15 ? String(Int(bound)) : TOMLWriter.formatDouble(bound)
    }
}

/// Where a resolved value came from.
public enum ConfigSource: Sendable, Equatable, CustomStringConvertible {
    /// The schema's default.
    case defaultValue
    /// A config file; `line` when the parser could place the key.
    case file(String, line: Int?)
    /// A `--set key=value` override.
    case override
    /// Anything else that sets a key, named for messages, e.g. a command-line flag `--epochs`.
    case named(String)

    public var description: String {
        switch self {
        case .defaultValue: "default"
        case .file(let name, let line?): "\(name) line \(line)"
        case .file(let name, nil): name
        case .override: "--set"
        case .named(let name): name
        }
    }
}

/// One problem found while loading or resolving a configuration.
public enum ConfigProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// The key is not in the schema; `suggestion` is the closest known key (or a list of the
    /// section's keys) when there is one.
    case unknownKey(String, source: ConfigSource, suggestion: String?)
    /// The value does not have the field's type (or bounds, or allowed values).
    case wrongType(key: String, expected: String, got: String, source: ConfigSource)
    /// A config file sets the same key twice.
    case duplicateKey(String, source: ConfigSource)
    /// A `--set` argument without `=`.
    case malformedOverride(String)
    /// A config file could not be read or parsed.
    case invalidFile(String, line: Int?, column: Int?, message: String)

    public var description: String {
        switch self {
        case .unknownKey(let key, let source, let suggestion):
            return "\(key): unknown key (from \(source))" + (suggestion.map { "; \($0)" } ?? "")
        case .wrongType(let key, let expected, let got, let source):
            return "\(key): expected \(expected), got \(got) (from \(source))"
        case .duplicateKey(let key, let source):
            return "\(key): set twice (again at \(source))"
        case .malformedOverride(let text):
            return "--set \(text): expected KEY=VALUE, e.g. --set sft.learning_rate=1e-3"
        case .invalidFile(let name, let line, let column, let message):
            let place = switch (line, column) {
            case (let l?, let c?): " line \(l), column \(c)"
            case (let l?, nil): " line \(l)"
            default: ""
            }
            return "\(name)\(place): \(message)"
        }
    }
}

/// The problems of one resolution (at least one), one per line in `description`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The problems, in the order found (file order, then overrides in order).
    public var problems: [ConfigProblem]

    public init(_ problems: [ConfigProblem]) { self.problems = problems }

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// The keys a command accepts, in display (and `config.toml`) order.
public struct ConfigSchema: Sendable {
    /// The fields, in the order given to `init`.
    public let fields: [ConfigField]
    private let index: [String: Int]

    /// A schema of `fields`. Duplicate keys, a key that is also a section (`sft` and
    /// `sft.epochs`), malformed keys and defaults of the wrong type are programming errors and trap.
    public init(_ fields: [ConfigField]) {
        var index: [String: Int] = [:]
        for (i, field) in fields.enumerated() {
            precondition(Self.isValidKey(field.key), "ConfigSchema: malformed key '\(field.key)'")
            precondition(index.updateValue(i, forKey: field.key) == nil, "ConfigSchema: duplicate key '\(field.key)'")
            precondition((try? Self.check(field.defaultValue, for: field)) != nil,
                         "ConfigSchema: default of '\(field.key)' is not \(field.expectedDescription)")
        }
        for field in fields {
            var prefix = field.key
            while let dot = prefix.lastIndex(of: ".") {
                prefix = String(prefix[..<dot])
                precondition(index[prefix] == nil, "ConfigSchema: '\(prefix)' is both a key and a section")
            }
        }
        self.fields = fields
        self.index = index
    }

    /// The field for `key`, if the schema has it.
    public func field(_ key: String) -> ConfigField? { index[key].map { fields[$0] } }

    /// The position of `key` in `fields`.
    func position(of key: String) -> Int? { index[key] }

    /// Every key at its default.
    public var defaults: ResolvedConfig {
        ResolvedConfig(schema: self, values: fields.map { ($0.defaultValue, .defaultValue) })
    }

    /// Resolves defaults ← `file` ← `overrides` (each `key=value`, applied in order, so a later
    /// one wins). Throws a `ConfigError` listing every problem found.
    public func resolve(file: ConfigDocument? = nil, overrides: [String] = []) throws(ConfigError) -> ResolvedConfig {
        var config = defaults
        var problems: [ConfigProblem] = []
        if let file {
            var seen = Set<String>()
            for entry in file.entries {
                let source = ConfigSource.file(file.name, line: entry.line)
                // YAML can repeat a key (TOML's parser already rejects that); a silent last-wins
                // would hide a mistake in the file.
                guard seen.insert(entry.key).inserted else {
                    problems.append(.duplicateKey(entry.key, source: source))
                    continue
                }
                do { try config.apply(entry.value, to: entry.key, source: source) } catch { problems.append(error) }
            }
        }
        for text in overrides {
            guard let eq = text.firstIndex(of: "="),
                  case let key = text[..<eq].trimmingCharacters(in: .whitespaces), !key.isEmpty
            else {
                problems.append(.malformedOverride(text))
                continue
            }
            do {
                try config.apply(.text(String(text[text.index(after: eq)...])), to: key, source: .override)
            } catch { problems.append(error) }
        }
        if !problems.isEmpty { throw ConfigError(problems) }
        return config
    }

    /// A listing for a command's `--help`: per key, `key = default (type)` in TOML syntax, then
    /// the help text indented on the next line (two short lines fit an 80-column terminal).
    public var helpText: String {
        fields.map { field in
            "  \(field.key) = \(TOMLWriter.formatValue(field.defaultValue)) (\(field.type.shortName))\n      \(field.help)"
        }.joined(separator: "\n")
    }

    /// The closest known key to an unknown `key`, phrased as a hint, or nil.
    func suggestion(for key: String) -> String? {
        let keys = fields.map(\.key)
        // A key given without its section (`learning_rate` for `sft.learning_rate`) is the most
        // common slip; an edit distance would not find it.
        let lastComponent = key.split(separator: ".").last.map(String.init) ?? key
        let sameName = keys.filter { $0.hasSuffix("." + lastComponent) || $0 == lastComponent }
        if sameName.count == 1 { return "did you mean \(sameName[0])?" }
        let scored = keys.map { (key: $0, distance: levenshtein(key.lowercased(), $0.lowercased())) }
        if let best = scored.min(by: { $0.distance < $1.distance }), best.distance <= max(2, key.count / 3) {
            return "did you mean \(best.key)?"
        }
        if let dot = key.lastIndex(of: ".") {
            let section = key[..<dot] + "."
            let siblings = keys.filter { $0.hasPrefix(section) }
            if !siblings.isEmpty { return "keys under \(key[..<dot]): " + siblings.joined(separator: ", ") }
        }
        return nil
    }

    /// Whether `key` names a section of the schema (a proper prefix of some key).
    func isSection(_ key: String) -> Bool { fields.contains { $0.key.hasPrefix(key + ".") } }

    private static func isValidKey(_ key: String) -> Bool {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        return parts.allSatisfy { part in
            !part.isEmpty && part.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
            }
        }
    }

    /// `input` converted to `field`'s type and checked against its bounds; the thrown problem's
    /// source is filled in by the caller.
    static func convert(_ input: ConfigInput, for field: ConfigField) throws(ConfigProblem) -> ConfigValue {
        // Messages quote the value as the user wrote it (`-1`, not the parsed `-1.0`).
        let problem = ConfigProblem.wrongType(key: field.key, expected: field.expectedDescription, got: input.display,
                                              source: .defaultValue)
        guard let value = convert(input, to: field.type), let checked = try? check(value, for: field) else { throw problem }
        return checked
    }

    /// `value` converted to `field`'s type (an `.int` for a number) and checked against its bounds.
    @discardableResult
    static func check(_ value: ConfigValue, for field: ConfigField) throws(ConfigProblem) -> ConfigValue {
        let problem = ConfigProblem.wrongType(key: field.key, expected: field.expectedDescription,
                                              got: ConfigInput.typed(value).display, source: .defaultValue)
        guard let converted = convertTyped(value, to: field.type) else { throw problem }
        let number: Double? = switch converted {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
        // A NaN or infinite number is never a setting: it only poisons the run later.
        if case .double(let d) = converted, !d.isFinite { throw problem }
        if let n = number, field.minimum != nil || field.maximum != nil {
            if n.isNaN || n < (field.minimum ?? -.infinity) || n > (field.maximum ?? .infinity) { throw problem }
            if field.minimumExclusive, let lo = field.minimum, n <= lo { throw problem }
        }
        return converted
    }

    /// `input` as a value of `type`, or nil when it is not one.
    static func convert(_ input: ConfigInput, to type: ConfigType) -> ConfigValue? {
        switch (input, type) {
        case (.null, _): return nil
        case (.typed(let value), _): return convertTyped(value, to: type)
        case (.list(let items), .array(let element)):
            var out: [ConfigValue] = []
            for item in items {
                guard let v = convert(item, to: element) else { return nil }
                out.append(v)
            }
            return .array(out)
        case (.list, _): return nil
        case (.text(let text), _): return parseText(text, as: type)
        }
    }

    private static func convertTyped(_ value: ConfigValue, to type: ConfigType) -> ConfigValue? {
        switch (value, type) {
        case (.int, .int), (.double, .double), (.bool, .bool), (.string, .string): return value
        // TOML and YAML write `1` for 1.0; rejecting it would be pedantry. The reverse (1.5 for
        // an integer) loses information, so it stays an error.
        case (.int(let i), .double): return .double(Double(i))
        case (.string(let s), .choice(let allowed)): return allowed.contains(s) ? value : nil
        case (.array(let items), .array(let element)):
            var out: [ConfigValue] = []
            for item in items {
                guard let v = convertTyped(item, to: element) else { return nil }
                out.append(v)
            }
            return .array(out)
        default: return nil
        }
    }

    /// Untyped text parsed as `type`: `3`, `1e-3`, `true`, `"quoted string"`, `[1, 2]` or `1,2`.
    static func parseText(_ raw: String, as type: ConfigType) -> ConfigValue? {
        let text = raw.trimmingCharacters(in: .whitespaces)
        switch type {
        case .int:
            return parseInt(text).map(ConfigValue.int)
        case .double:
            if let i = parseInt(text) { return .double(Double(i)) }
            return parseDouble(text).map(ConfigValue.double)
        case .bool:
            // HfArgumentParser's spellings, plus YAML 1.1's on/off.
            switch text.lowercased() {
            case "true", "yes", "on", "1": return .bool(true)
            case "false", "no", "off", "0": return .bool(false)
            default: return nil
            }
        case .string:
            return .string(unquote(text))
        case .choice(let allowed):
            let s = unquote(text)
            return allowed.contains(s) ? .string(s) : nil
        case .array(let element):
            var body = Substring(text)
            if body.hasPrefix("[") && body.hasSuffix("]") && body.count >= 2 { body = body.dropFirst().dropLast() }
            if body.trimmingCharacters(in: .whitespaces).isEmpty { return .array([]) }
            var out: [ConfigValue] = []
            for item in body.split(separator: ",", omittingEmptySubsequences: false) {
                guard let v = parseText(String(item), as: element) else { return nil }
                out.append(v)
            }
            return .array(out)
        }
    }

    private static func parseInt(_ text: String) -> Int? {
        // TOML allows `1_000`; `+3` is fine everywhere.
        let digits = text.replacingOccurrences(of: "_", with: "")
        guard !digits.isEmpty, !text.hasPrefix("_"), !text.hasSuffix("_") else { return nil }
        return Int(digits)
    }

    private static func parseDouble(_ text: String) -> Double? {
        switch text {
        case "inf", "+inf", ".inf", "+.inf", ".Inf", ".INF": return .infinity
        case "-inf", "-.inf", "-.Inf", "-.INF": return -.infinity
        case "nan", ".nan", ".NaN", ".NAN": return .nan
        default: break
        }
        // Swift's Double(String) also takes hex floats and "infinity"; only decimal notation is meant here.
        let allowed = Set("0123456789+-.eE_")
        guard !text.isEmpty, text.allSatisfy(allowed.contains), text.contains(where: \.isNumber) else { return nil }
        return Double(text.replacingOccurrences(of: "_", with: ""))
    }

    /// `"x"` or `'x'` → `x`, so `--set model='""'` can give an empty string and a value can keep
    /// leading spaces.
    private static func unquote(_ text: String) -> String {
        if text.count >= 2, let first = text.first, first == "\"" || first == "'", text.last == first {
            return String(text.dropFirst().dropLast())
        }
        return text
    }
}

/// A configuration resolved against its schema: every key has a value of the field's type.
public struct ResolvedConfig: Sendable {
    /// The schema the values were checked against.
    public let schema: ConfigSchema
    private var values: [ConfigValue]
    private var sources: [ConfigSource]

    init(schema: ConfigSchema, values: [(ConfigValue, ConfigSource)]) {
        self.schema = schema
        self.values = values.map(\.0)
        self.sources = values.map(\.1)
    }

    private func position(_ key: String) -> Int {
        guard let i = schema.position(of: key) else { preconditionFailure("ResolvedConfig: no key '\(key)' in the schema") }
        return i
    }

    /// The value of `key` (which must be in the schema).
    public func value(_ key: String) -> ConfigValue { values[position(key)] }

    /// Where the value of `key` came from.
    public func source(of key: String) -> ConfigSource { sources[position(key)] }

    /// Whether `key` still holds the schema default (no file, override or `set` touched it).
    public func isDefault(_ key: String) -> Bool { source(of: key) == .defaultValue }

    /// The integer at `key`; traps if the field is not an `.int` field.
    public func int(_ key: String) -> Int {
        guard case .int(let i) = value(key) else { preconditionFailure("ResolvedConfig: '\(key)' is not an int field") }
        return i
    }

    /// The number at `key`; traps if the field is not a `.double` field.
    public func double(_ key: String) -> Double {
        guard case .double(let d) = value(key) else { preconditionFailure("ResolvedConfig: '\(key)' is not a double field") }
        return d
    }

    /// The number at `key` as a `Float`, the precision the trainers use.
    public func float(_ key: String) -> Float { Float(double(key)) }

    /// The boolean at `key`; traps if the field is not a `.bool` field.
    public func bool(_ key: String) -> Bool {
        guard case .bool(let b) = value(key) else { preconditionFailure("ResolvedConfig: '\(key)' is not a bool field") }
        return b
    }

    /// The string at `key` (`.string` and `.choice` fields); traps otherwise.
    public func string(_ key: String) -> String {
        guard case .string(let s) = value(key) else { preconditionFailure("ResolvedConfig: '\(key)' is not a string field") }
        return s
    }

    /// The list at `key` (`.array` fields); traps otherwise.
    public func array(_ key: String) -> [ConfigValue] {
        guard case .array(let items) = value(key) else { preconditionFailure("ResolvedConfig: '\(key)' is not an array field") }
        return items
    }

    /// Sets `key` to `value` (validated like a file value; an `.int` is accepted for a number),
    /// recording `source`. For values that outrank `--set`, such as explicit command-line flags.
    public mutating func set(_ key: String, _ value: ConfigValue, source: ConfigSource) throws(ConfigError) {
        do { try apply(.typed(value), to: key, source: source) } catch { throw ConfigError([error]) }
    }

    /// Replaces `key`'s value only while it is still the schema default: a default that depends on
    /// other keys, e.g. a larger learning rate for a small from-scratch model. The source stays
    /// `.defaultValue`. Traps if `value` does not fit the field (a programming error).
    public mutating func setDefault(_ key: String, _ value: ConfigValue) {
        let i = position(key)
        guard sources[i] == .defaultValue else { return }
        guard let converted = try? ConfigSchema.check(value, for: schema.fields[i]) else {
            preconditionFailure("ResolvedConfig: default \(value) does not fit '\(key)'")
        }
        values[i] = converted
    }

    /// Turns the relative paths among `keys` (string fields of this schema; others are skipped)
    /// into absolute ones against the current directory, keeping their sources: config.toml then
    /// names the same files when a run is resumed from another directory.
    public mutating func makePathsAbsolute(_ keys: [String]) {
        for key in keys {
            guard let i = schema.position(of: key), case .string(let path) = values[i], !path.isEmpty, !path.hasPrefix("/") else { continue }
            values[i] = .string(URL(fileURLWithPath: path).standardizedFileURL.path)
        }
    }

    /// Parses `input` for `key` and stores it; the problem thrown carries `source`.
    mutating func apply(_ input: ConfigInput, to key: String, source: ConfigSource) throws(ConfigProblem) {
        guard let i = schema.position(of: key) else {
            if schema.isSection(key) {
                throw .wrongType(key: key, expected: "a table of \(key).* keys", got: input.display, source: source)
            }
            throw .unknownKey(key, source: source, suggestion: schema.suggestion(for: key))
        }
        do {
            values[i] = try ConfigSchema.convert(input, for: schema.fields[i])
            sources[i] = source
        } catch {
            guard case .wrongType(let key, let expected, let got, _) = error else { throw error }
            throw .wrongType(key: key, expected: expected, got: got, source: source)
        }
    }

    /// The values as nested tables (a table per dotted prefix, in schema order), for
    /// `RunDirectory.create(config:)` and `TOMLWriter`.
    public func asConfigTable() -> ConfigTable {
        var root = ConfigTable()
        for (field, value) in zip(schema.fields, values) {
            insert(value, at: field.key.split(separator: ".").map(String.init)[...], into: &root)
        }
        return root
    }

    private func insert(_ value: ConfigValue, at path: ArraySlice<String>, into table: inout ConfigTable) {
        guard let head = path.first else { return }
        if path.count == 1 {
            table[head] = value
            return
        }
        var sub: ConfigTable
        if case .table(let existing)? = table[head] { sub = existing } else { sub = ConfigTable() }
        insert(value, at: path.dropFirst(), into: &sub)
        table[head] = .table(sub)
    }
}

extension ResolvedConfig: Equatable {
    /// Equal when the schemas have the same keys and the values agree (sources are ignored).
    public static func == (lhs: ResolvedConfig, rhs: ResolvedConfig) -> Bool {
        lhs.schema.fields.map(\.key) == rhs.schema.fields.map(\.key) && lhs.values == rhs.values
    }
}

/// Levenshtein distance between `a` and `b` (on characters), for "did you mean" hints.
func levenshtein(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
