// ConfigFile.swift
//
// Reading `--config` files: a TOML (our `TOMLParser`) or YAML (Yams) document becomes a flat
// list of dotted keys with their values and source lines, ready for `ConfigSchema.resolve`.

import Foundation
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

    /// Parses a TOML document; nested tables become dotted keys.
    public static func parseTOML(_ text: String, name: String) throws(ConfigError) -> ConfigDocument {
        let table: TOMLTable
        do {
            table = try TOMLParser.parse(text)
        } catch {
            throw ConfigError([.invalidFile(name, line: error.line, column: error.column, message: "invalid TOML: \(error.message)")])
        }
        var entries: [(entry: Entry, line: Int, column: Int)] = []
        var problems: [ConfigProblem] = []
        func flatten(_ table: TOMLTable, prefix: String) {
            for item in table.entries {
                let path = prefix.isEmpty ? item.key : prefix + "." + item.key
                if case .table(let sub) = item.value {
                    flatten(sub, prefix: path)
                    continue
                }
                do throws(ConfigProblem) {
                    let value = try configValue(item.value, key: path, line: item.line, name: name)
                    entries.append((Entry(key: path, value: .typed(value), line: item.line), item.line, item.column))
                } catch {
                    problems.append(error)
                }
            }
        }
        flatten(table, prefix: "")
        if !problems.isEmpty { throw ConfigError(problems) }
        // A later header can add keys to a table opened earlier (`[a]`, `[b]`, `[a.c]`); listing
        // keys where they were written reads better in messages and is what a user expects.
        let ordered = entries.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }
        return ConfigDocument(name: name, entries: ordered.map(\.element.entry))
    }

    /// A TOML value as a config value; dates and times have no config type.
    private static func configValue(_ value: TOMLValue, key: String, line: Int, name: String) throws(ConfigProblem) -> ConfigValue {
        switch value {
        case .boolean(let b): return .bool(b)
        case .integer(let i): return .int(i)
        case .float(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array(let items):
            var out: [ConfigValue] = []
            for item in items { out.append(try configValue(item, key: key, line: line, name: name)) }
            return .array(out)
        case .table(let table):
            var sub = ConfigTable()
            for entry in table.entries {
                sub[entry.key] = try configValue(entry.value, key: key + "." + entry.key, line: entry.line, name: name)
            }
            return .table(sub)
        case .dateTime:
            throw .invalidFile(name, line: line, column: nil, message: "\(key): dates and times are not supported in a config")
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
