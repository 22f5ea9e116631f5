// ConfigFile.swift
//
// Reading `--config` files: a TOML (TOMLKit) or YAML (Yams) document becomes a flat list of
// dotted keys with their values and source lines, ready for `ConfigSchema.resolve`.
//
// Line numbers: Yams gives every node's position. TOMLKit 0.6 only reports positions for parse
// errors, so `TOMLKeyLocator` finds a key's line by scanning the text for `[table]` headers and
// `key =` lines; a key it cannot place (e.g. inside a multi-line inline table) gets the line of
// its closest placed parent, or none.

import Foundation
internal import TOMLKit
internal import Yams

/// A value as written in a config file or on the command line, before the schema gives it a type.
public indirect enum ConfigInput: Sendable, Equatable {
    /// A value whose type the source fixed: TOML values, quoted YAML strings.
    case typed(ConfigValue)
    /// Untyped text (`--set` values, plain YAML scalars), parsed according to the field's type.
    case text(String)
    /// A YAML sequence; its items may be untyped.
    case list([ConfigInput])
    /// YAML's `null`, `~` or an empty value.
    case null

    /// The value as quoted in error messages: strings in quotes, numbers and booleans bare.
    public var display: String {
        switch self {
        case .typed(.table): return "a table"
        case .typed(let value): return TOMLWriter.formatValue(value)
        case .text(let text):
            let looksLiteral = Int(text) != nil || Double(text) != nil || ["true", "false"].contains(text)
            return looksLiteral ? text : TOMLWriter.quote(text)
        case .list(let items): return "[" + items.map(\.display).joined(separator: ", ") + "]"
        case .null: return "null"
        }
    }
}

/// A parsed config file: its dotted keys in file order.
public struct ConfigDocument: Sendable, Equatable {
    /// One key of the file.
    public struct Entry: Sendable, Equatable {
        /// The dotted key, e.g. `sft.learning_rate` for `learning_rate` under `[sft]`.
        public var key: String
        public var value: ConfigInput
        /// The 1-based line of the key, when known.
        public var line: Int?

        public init(key: String, value: ConfigInput, line: Int?) {
            self.key = key
            self.value = value
            self.line = line
        }
    }

    /// The file's name as given by the user (used in messages).
    public var name: String
    public var entries: [Entry]

    public init(name: String, entries: [Entry]) {
        self.name = name
        self.entries = entries
    }

    /// Reads and parses `path`: `.toml` as TOML, `.yaml`/`.yml` as YAML.
    public static func load(path: String) throws(ConfigError) -> ConfigDocument {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        guard ["toml", "yaml", "yml"].contains(ext) else {
            throw ConfigError([.invalidFile(path, line: nil, column: nil,
                                            message: "unknown config format '.\(ext)' (expected .toml, .yaml or .yml)")])
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read the file as UTF-8 text" : "no such file"
            throw ConfigError([.invalidFile(path, line: nil, column: nil, message: reason)])
        }
        return ext == "toml" ? try parseTOML(text, name: path) : try parseYAML(text, name: path)
    }

    /// The position (1-based line and column) of a table header with no name (`[` or `[[` followed
    /// only by blanks before the line ends), or nil. toml++ aborts the process on such a header
    /// instead of reporting it, so it is found first. A lexer just good enough to tell a header from
    /// an array value: strings (basic, literal, multi-line) and comments are skipped, and brackets
    /// after `=` are counted, so a `[` opening a line inside a multi-line array is not a header.
    static func emptyTableHeader(in text: String) -> (line: Int, column: Int)? {
        let bytes = Array(text.utf8)
        var i = 0, line = 1, lineStart = 0, depth = 0
        var atLineStart = true
        func skipString(_ quote: UInt8) {
            let multi = i + 2 < bytes.count && bytes[i + 1] == quote && bytes[i + 2] == quote
            i += multi ? 3 : 1
            while i < bytes.count {
                let c = bytes[i]
                if c == 0x0A {
                    line += 1
                    lineStart = i + 1
                    if !multi { return }
                }
                if quote == UInt8(ascii: "\""), c == UInt8(ascii: "\\") { i += 2; continue }
                if c == quote {
                    if !multi { i += 1; return }
                    if i + 2 < bytes.count && bytes[i + 1] == quote && bytes[i + 2] == quote { i += 3; return }
                }
                i += 1
            }
        }
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case 0x0A:
                line += 1
                lineStart = i + 1
                atLineStart = true
                i += 1
                continue
            case 0x20, 0x09, 0x0D:
                i += 1
                continue
            case UInt8(ascii: "#"):
                while i < bytes.count && bytes[i] != 0x0A { i += 1 }
                continue
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                skipString(c)
            case UInt8(ascii: "[") where atLineStart && depth == 0:
                let column = i - lineStart + 1
                var j = i + 1
                if j < bytes.count && bytes[j] == UInt8(ascii: "[") { j += 1 }
                while j < bytes.count && (bytes[j] == 0x20 || bytes[j] == 0x09 || bytes[j] == 0x0D) { j += 1 }
                if j == bytes.count || bytes[j] == 0x0A || bytes[j] == UInt8(ascii: "#") { return (line, column) }
                // The rest of a header line holds no value brackets.
                while i < bytes.count && bytes[i] != 0x0A && bytes[i] != UInt8(ascii: "#") {
                    if bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") { skipString(bytes[i]) } else { i += 1 }
                }
            case UInt8(ascii: "["):
                depth += 1
                i += 1
            case UInt8(ascii: "]"):
                depth = max(0, depth - 1)
                i += 1
            default:
                i += 1
            }
            atLineStart = false
        }
        return nil
    }

    /// Parses a TOML document; nested tables become dotted keys.
    public static func parseTOML(_ text: String, name: String) throws(ConfigError) -> ConfigDocument {
        if let (line, column) = emptyTableHeader(in: text) {
            throw ConfigError([.invalidFile(name, line: line, column: column,
                                            message: "invalid TOML: a table header needs a name, e.g. [sft] or [[items]]")])
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError([.invalidFile(name, line: error.source.begin.line, column: error.source.begin.column,
                                            message: "invalid TOML: \(error.description)")])
        } catch {
            throw ConfigError([.invalidFile(name, line: nil, column: nil, message: "invalid TOML: \(error)")])
        }
        let locator = TOMLKeyLocator(text)
        var entries: [Entry] = []
        var problems: [ConfigProblem] = []
        func flatten(_ table: TOMLTable, prefix: String) {
            for (key, value) in table {
                let path = prefix.isEmpty ? key : prefix + "." + key
                if let sub = value.table {
                    flatten(sub, prefix: path)
                } else {
                    do throws(ConfigProblem) {
                        entries.append(Entry(key: path, value: .typed(try tomlValue(value, key: path, name: name, locator: locator)),
                                             line: locator.line(of: path)))
                    } catch {
                        problems.append(error)
                    }
                }
            }
        }
        flatten(table, prefix: "")
        if !problems.isEmpty { throw ConfigError(problems) }
        // toml++ keeps keys sorted; file order reads better in messages and is what a user expects.
        let ordered = entries.enumerated().sorted { ($0.element.line ?? .max, $0.offset) < ($1.element.line ?? .max, $1.offset) }
        return ConfigDocument(name: name, entries: ordered.map(\.element))
    }

    private static func tomlValue(_ value: any TOMLValueConvertible, key: String, name: String,
                                  locator: TOMLKeyLocator) throws(ConfigProblem) -> ConfigValue {
        switch value.type {
        case .bool: return .bool(value.bool!)
        case .int: return .int(value.int!)
        case .double: return .double(value.double!)
        case .string: return .string(value.string!)
        case .array:
            var items: [ConfigValue] = []
            for item in value.array! { items.append(try tomlValue(item, key: key, name: name, locator: locator)) }
            return .array(items)
        case .table:
            var sub = ConfigTable()
            for (k, v) in value.table! { sub[k] = try tomlValue(v, key: key + "." + k, name: name, locator: locator) }
            return .table(sub)
        case .date, .time, .dateTime:
            throw .invalidFile(name, line: locator.line(of: key), column: nil,
                               message: "\(key): dates and times are not supported in a config")
        }
    }

    /// Parses a YAML document (a mapping at the top level, or empty); nested mappings become
    /// dotted keys.
    public static func parseYAML(_ text: String, name: String) throws(ConfigError) -> ConfigDocument {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError([yamlProblem(error, name: name)])
        } catch {
            throw ConfigError([.invalidFile(name, line: nil, column: nil, message: "invalid YAML: \(error)")])
        }
        guard let root else { return ConfigDocument(name: name, entries: []) }
        guard case .mapping(let top) = root else {
            throw ConfigError([.invalidFile(name, line: root.mark?.line, column: nil,
                                            message: "expected a mapping of keys at the top level")])
        }
        var entries: [Entry] = []
        var problems: [ConfigProblem] = []
        func flatten(_ mapping: Node.Mapping, prefix: String) {
            for (keyNode, valueNode) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    problems.append(.invalidFile(name, line: keyNode.mark?.line, column: nil, message: "keys must be strings"))
                    continue
                }
                let path = prefix.isEmpty ? keyScalar.string : prefix + "." + keyScalar.string
                if case .mapping(let sub) = valueNode {
                    flatten(sub, prefix: path)
                } else {
                    entries.append(Entry(key: path, value: yamlInput(valueNode), line: keyNode.mark?.line ?? valueNode.mark?.line))
                }
            }
        }
        flatten(top, prefix: "")
        if !problems.isEmpty { throw ConfigError(problems) }
        return ConfigDocument(name: name, entries: entries)
    }

    private static func yamlInput(_ node: Node) -> ConfigInput {
        switch node {
        case .scalar(let scalar):
            // Read the tag before `node.tag`, which resolves (and caches) the implicit one.
            let explicitTag = scalar.tag.description
            if scalar.style == .plain || scalar.style == .any {
                if explicitTag.isEmpty || explicitTag == Tag.Name.null.rawValue {
                    let nulls: Set<String> = ["", "~", "null", "Null", "NULL"]
                    if nulls.contains(scalar.string) || explicitTag == Tag.Name.null.rawValue { return .null }
                    return .text(scalar.string)
                }
                return explicitTag == Tag.Name.str.rawValue ? .typed(.string(scalar.string)) : .text(scalar.string)
            }
            // Quoted and block scalars are strings, as in YAML itself.
            return .typed(.string(scalar.string))
        case .sequence(let sequence):
            return .list(sequence.map(yamlInput))
        case .mapping:
            // Only reached for a mapping inside a list: no schema type takes one, so it only
            // needs to read well in the error message.
            return .typed(yamlTableValue(node))
        }
    }

    /// A YAML node as a plain value, for messages.
    private static func yamlTableValue(_ node: Node) -> ConfigValue {
        switch node {
        case .scalar(let scalar): return .string(scalar.string)
        case .sequence(let sequence): return .array(sequence.map(yamlTableValue))
        case .mapping(let mapping):
            var table = ConfigTable()
            for (k, v) in mapping { table[k.string ?? "?"] = yamlTableValue(v) }
            return .table(table)
        }
    }

    private static func yamlProblem(_ error: YamlError, name: String) -> ConfigProblem {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text) " } ?? ""
            return .invalidFile(name, line: mark.line, column: mark.column, message: "invalid YAML: \(detail)\(problem)")
        case .reader(let problem, _, _, _):
            return .invalidFile(name, line: nil, column: nil, message: "invalid YAML: \(problem)")
        default:
            return .invalidFile(name, line: nil, column: nil, message: "invalid YAML: \(error)")
        }
    }
}

/// Finds the line of a dotted key in a TOML text by scanning `[table]` headers and `key = value`
/// lines (see the file comment for why).
struct TOMLKeyLocator {
    private var lines: [String: Int] = [:]

    init(_ text: String) {
        var table: [String]? = []
        var inMultilineString: String? = nil
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if let delimiter = inMultilineString {
                if line.components(separatedBy: delimiter).count % 2 == 0 { inMultilineString = nil }
                continue
            }
            if line.hasPrefix("[[") {
                table = nil  // array of tables: its keys are not config keys
            } else if line.hasPrefix("["), let keys = Self.keyPath(line.dropFirst(), terminator: "]") {
                table = keys.path
                record(keys.path, line: n + 1)
            } else if let table, let keys = Self.keyPath(Substring(line), terminator: "=") {
                record(table + keys.path, line: n + 1)
                let value = keys.rest
                for delimiter in ["\"\"\"", "'''"] where value.components(separatedBy: delimiter).count == 2 {
                    inMultilineString = delimiter
                }
            }
        }
    }

    /// The line of `key`, or of its closest located parent.
    func line(of key: String) -> Int? {
        var path = key
        while true {
            if let line = lines[path] { return line }
            guard let dot = path.lastIndex(of: ".") else { return nil }
            path = String(path[..<dot])
        }
    }

    private mutating func record(_ path: [String], line: Int) {
        let key = path.joined(separator: ".")
        if lines[key] == nil { lines[key] = line }
    }

    /// The dotted key at the start of `text` up to `terminator` (`a.b."c d" =`), and what follows.
    private static func keyPath(_ text: Substring, terminator: Character) -> (path: [String], rest: String)? {
        var path: [String] = []
        var rest = text
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard let first = rest.first else { return nil }
            if first == "\"" || first == "'" {
                guard let close = rest.dropFirst().firstIndex(of: first) else { return nil }
                path.append(String(rest[rest.index(after: rest.startIndex)..<close]))
                rest = rest[rest.index(after: close)...]
            } else {
                let bare = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
                guard !bare.isEmpty else { return nil }
                path.append(String(bare))
                rest = rest.dropFirst(bare.count)
            }
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard let next = rest.first else { return nil }
            if next == "." { rest = rest.dropFirst(); continue }
            return next == terminator ? (path, String(rest.dropFirst())) : nil
        }
    }
}
