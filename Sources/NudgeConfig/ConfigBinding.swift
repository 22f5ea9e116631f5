// A config key bound to a stored property of a configuration struct: one line declares the key,
// its type, bounds and help, takes the default from a default instance and writes the resolved
// value back. A trainer's config struct stays a plain value type; its config-file keys are a list
// of bindings.

/// A config key bound to a property of `Root`.
public struct ConfigBinding<Root> {
    /// The config key.
    public let key: String
    let makeField: (Root) -> ConfigField
    let write: (inout Root, ResolvedConfig) -> Void

    /// The schema field, with `defaults`' value as its default.
    public func field(defaults: Root) -> ConfigField { makeField(defaults) }

    /// An integer property.
    public static func int(_ key: String, _ path: WritableKeyPath<Root, Int>, min: Int? = nil, max: Int? = nil, help: String) -> Self {
        Self(key: key, makeField: { .int(key, $0[keyPath: path], min: min, max: max, help: help) },
             write: { $0[keyPath: path] = $1.int(key) })
    }

    /// A seed (a non-negative integer).
    public static func seed(_ key: String, _ path: WritableKeyPath<Root, UInt64>, help: String) -> Self {
        Self(key: key, makeField: { .int(key, Int(clamping: $0[keyPath: path]), min: 0, help: help) },
             write: { $0[keyPath: path] = UInt64($1.int(key)) })
    }

    /// A Float property.
    public static func float(_ key: String, _ path: WritableKeyPath<Root, Float>, min: Double? = nil, max: Double? = nil,
                             help: String) -> Self {
        Self(key: key, makeField: { .double(key, decimal($0[keyPath: path]), min: min, max: max, help: help) },
             write: { $0[keyPath: path] = $1.float(key) })
    }

    /// A Double property.
    public static func double(_ key: String, _ path: WritableKeyPath<Root, Double>, min: Double? = nil, max: Double? = nil,
                              help: String) -> Self {
        Self(key: key, makeField: { .double(key, $0[keyPath: path], min: min, max: max, help: help) },
             write: { $0[keyPath: path] = $1.double(key) })
    }

    /// An optional positive Float property; 0 in the file means nil (off).
    public static func optionalFloat(_ key: String, _ path: WritableKeyPath<Root, Float?>, help: String) -> Self {
        Self(key: key, makeField: { .double(key, decimal($0[keyPath: path] ?? 0), min: 0, help: help + " (0: off)") },
             write: { let v = $1.float(key); $0[keyPath: path] = v == 0 ? nil : v })
    }

    /// A Bool property.
    public static func bool(_ key: String, _ path: WritableKeyPath<Root, Bool>, help: String) -> Self {
        Self(key: key, makeField: { .bool(key, $0[keyPath: path], help: help) }, write: { $0[keyPath: path] = $1.bool(key) })
    }

    /// A list-of-integers property (e.g. hidden layer sizes).
    public static func ints(_ key: String, _ path: WritableKeyPath<Root, [Int]>, help: String) -> Self {
        Self(key: key, makeField: { .array(key, of: .int, $0[keyPath: path].map { .int($0) }, help: help) },
             write: { $0[keyPath: path] = $1.array(key).compactMap { if case .int(let v) = $0 { v } else { nil } } })
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

    /// `defaults` with every bound key's resolved value written in.
    public func apply<Root>(_ config: ResolvedConfig, to defaults: Root) -> Root where Element == ConfigBinding<Root> {
        var out = defaults
        for binding in self { binding.write(&out, config) }
        return out
    }
}
