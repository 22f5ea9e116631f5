// A config key bound to a stored property of a configuration struct: one line declares the key,
// its type, bounds and help, takes the default from a default instance and writes the resolved
// value back. A trainer's config struct stays a plain value type; its config-file keys are a list
// of bindings.

/// A config key bound to a property of `Root`.
public struct ConfigBinding<Root> {
    /// The config key.
    public let key: String
    /// The field for a key, with a default instance's value as its default (the key is a parameter
    /// so that `prefixed` can move the binding under a section).
    let makeField: (_ key: String, Root) -> ConfigField
    /// Writes the resolved value at a key into the struct.
    let write: (_ key: String, inout Root, ResolvedConfig) -> Void

    init(key: String, makeField: @escaping (String, Root) -> ConfigField, write: @escaping (String, inout Root, ResolvedConfig) -> Void) {
        self.key = key
        self.makeField = makeField
        self.write = write
    }

    /// The schema field, with `defaults`' value as its default.
    public func field(defaults: Root) -> ConfigField { makeField(key, defaults) }

    /// An integer property.
    public static func int(_ key: String, _ path: WritableKeyPath<Root, Int>, min: Int? = nil, max: Int? = nil, help: String) -> Self {
        Self(key: key, makeField: { key, root in .int(key, root[keyPath: path], min: min, max: max, help: help) },
             write: { key, root, config in root[keyPath: path] = config.int(key) })
    }

    /// A seed (a non-negative integer).
    public static func seed(_ key: String, _ path: WritableKeyPath<Root, UInt64>, help: String) -> Self {
        Self(key: key, makeField: { key, root in .int(key, Int(clamping: root[keyPath: path]), min: 0, help: help) },
             write: { key, root, config in root[keyPath: path] = UInt64(config.int(key)) })
    }

    /// A Float property.
    public static func float(_ key: String, _ path: WritableKeyPath<Root, Float>, min: Double? = nil, max: Double? = nil,
                             help: String) -> Self {
        Self(key: key, makeField: { key, root in .double(key, decimal(root[keyPath: path]), min: min, max: max, help: help) },
             write: { key, root, config in root[keyPath: path] = config.float(key) })
    }

    /// A positive Float property (e.g. a temperature), at most `max` when given.
    public static func positive(_ key: String, _ path: WritableKeyPath<Root, Float>, max: Double? = nil, help: String) -> Self {
        Self(key: key, makeField: { key, root in .double(key, decimal(root[keyPath: path]), above: 0, max: max, help: help) },
             write: { key, root, config in root[keyPath: path] = config.float(key) })
    }

    /// A Double property.
    public static func double(_ key: String, _ path: WritableKeyPath<Root, Double>, min: Double? = nil, max: Double? = nil,
                              help: String) -> Self {
        Self(key: key, makeField: { key, root in .double(key, root[keyPath: path], min: min, max: max, help: help) },
             write: { key, root, config in root[keyPath: path] = config.double(key) })
    }

    /// An optional positive Float property; 0 in the file means nil (off).
    public static func optionalFloat(_ key: String, _ path: WritableKeyPath<Root, Float?>, help: String) -> Self {
        Self(key: key, makeField: { key, root in .double(key, decimal(root[keyPath: path] ?? 0), min: 0, help: help + " (0: off)") },
             write: { key, root, config in let v = config.float(key); root[keyPath: path] = v == 0 ? nil : v })
    }

    /// A Bool property.
    public static func bool(_ key: String, _ path: WritableKeyPath<Root, Bool>, help: String) -> Self {
        Self(key: key, makeField: { key, root in .bool(key, root[keyPath: path], help: help) }, write: { key, root, config in root[keyPath: path] = config.bool(key) })
    }

    /// An optional positive Double property; 0 in the file means nil (off).
    public static func optionalDouble(_ key: String, _ path: WritableKeyPath<Root, Double?>, help: String) -> Self {
        Self(key: key, makeField: { key, root in .double(key, root[keyPath: path] ?? 0, min: 0, help: help + " (0: off)") },
             write: { key, root, config in let v = config.double(key); root[keyPath: path] = v == 0 ? nil : v })
    }

    /// An optional length limit; 0 in the file means nil (no limit).
    public static func limit(_ key: String, _ path: WritableKeyPath<Root, Int?>, help: String) -> Self {
        Self(key: key, makeField: { key, root in .int(key, root[keyPath: path] ?? 0, min: 0, help: help + " (0: no limit)") },
             write: { key, root, config in let v = config.int(key); root[keyPath: path] = v == 0 ? nil : v })
    }

    /// A gradient-norm clip; 0 in the file means no clipping (.infinity), as in Hugging Face's Trainer.
    public static func clipNorm(_ key: String, _ path: WritableKeyPath<Root, Float>, help: String) -> Self {
        Self(key: key, makeField: { key, root in let v = root[keyPath: path]; return .double(key, v.isFinite ? decimal(v) : 0, min: 0, help: help + " (0: no clipping)") },
             write: { key, root, config in let v = config.float(key); root[keyPath: path] = v == 0 ? .infinity : v })
    }

    /// A property whose values are a string enumeration's raw values.
    public static func choice<E: RawRepresentable & CaseIterable>(_ key: String, _ path: WritableKeyPath<Root, E>, help: String) -> Self
    where E.RawValue == String {
        Self(key: key, makeField: { key, root in .choice(key, E.allCases.map(\.rawValue), default: root[keyPath: path].rawValue, help: help) },
             write: { key, root, config in if let v = E(rawValue: config.string(key)) { root[keyPath: path] = v } })
    }

    /// A key read and written by hand: for a value that is not one property (an enumeration with
    /// parameters, two keys of one optional struct). Both closures get the prefix the binding sits
    /// under ("" or "section."), so they can name sibling keys.
    public static func custom(_ key: String, field: @escaping (_ prefix: String, Root) -> ConfigField,
                              write: @escaping (_ prefix: String, inout Root, ResolvedConfig) -> Void) -> Self {
        Self(key: key, makeField: { full, root in field(String(full.dropLast(key.count)), root) },
             write: { full, root, config in write(String(full.dropLast(key.count)), &root, config) })
    }

    /// The same binding under `section` (key `section.key`), for a trainer's keys in a command's file.
    public func prefixed(_ section: String) -> Self {
        Self(key: section + "." + key, makeField: makeField, write: write)
    }

    /// A list-of-integers property (e.g. hidden layer sizes).
    public static func ints(_ key: String, _ path: WritableKeyPath<Root, [Int]>, help: String) -> Self {
        Self(key: key, makeField: { key, root in .array(key, of: .int, root[keyPath: path].map { .int($0) }, help: help) },
             write: { key, root, config in root[keyPath: path] = config.array(key).compactMap { if case .int(let v) = $0 { v } else { nil } } })
    }
}

/// A Float as the Double with the same shortest decimal form (0.99, not 0.9900000095367432), so
/// config files show the value as written.
func decimal(_ value: Float) -> Double { Double("\(value)") ?? Double(value) }

extension Array {
    /// The schema fields of these bindings, defaults taken from `defaults`.
    public func fields<Root>(defaults: Root) -> [ConfigField] where Element == ConfigBinding<Root> {
        map { $0.field(defaults: defaults) }
    }

    /// `value`'s settings as `key=value` overrides: a run built from code resolves them through the
    /// command's schema, so its config.toml is the one the command line would write.
    public func overrides<Root>(from value: Root) -> [String] where Element == ConfigBinding<Root> {
        map { "\($0.key)=" + TOMLWriter.formatValue($0.field(defaults: value).defaultValue) }
    }

    /// `defaults` with every bound key's resolved value written in.
    public func apply<Root>(_ config: ResolvedConfig, to defaults: Root) -> Root where Element == ConfigBinding<Root> {
        var out = defaults
        for binding in self { binding.write(binding.key, &out, config) }
        return out
    }
}
