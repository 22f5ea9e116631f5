// A configuration in layers, as a command resolves it: the schema's defaults, a config file (TOML
// or YAML), `key=value` overrides, then settings from elsewhere (a command's own flags), each
// named in messages; every problem of every layer is reported at once.

/// A value for a key from a named source (e.g. the command-line flag `--epochs`), applied after a
/// config file and its overrides.
public struct ConfigSetting: Sendable {
    /// The key set.
    public var key: String
    /// The source, as messages name it.
    public var name: String
    /// The value, or nil when the source did not give one (the setting is then skipped).
    public var value: ConfigValue?

    /// A setting of `key` to `value` from the source called `name`.
    public init(_ key: String, _ name: String, _ value: ConfigValue?) {
        self.key = key
        self.name = name
        self.value = value
    }
}

extension ConfigSchema {
    /// Resolves defaults ← the config file at `configFile` ← `overrides` (each `key=value`) ←
    /// `settings`. Throws a `ConfigError` with every problem found: the file's, the overrides' and
    /// the settings' alike.
    public func resolve(configFile: String?, overrides: [String] = [], settings: [ConfigSetting] = []) throws(ConfigError) -> ResolvedConfig {
        var problems: [ConfigProblem] = []
        var file: ConfigDocument?
        do throws(ConfigError) {
            file = try configFile.map { path throws(ConfigError) in try ConfigDocument.load(path: path) }
        } catch {
            problems += error.problems
        }
        var config = defaults
        do throws(ConfigError) {
            config = try resolve(file: file, overrides: overrides)
        } catch {
            problems += error.problems
        }
        for setting in settings {
            guard let value = setting.value else { continue }
            do throws(ConfigError) {
                try config.set(setting.key, value, source: .named(setting.name))
            } catch {
                problems += error.problems
            }
        }
        guard problems.isEmpty else { throw ConfigError(problems) }
        return config
    }
}

extension ConfigError {
    /// One message: the problem alone, or "invalid configuration:" followed by each problem on an indented line.
    public var message: String {
        problems.count == 1 ? problems[0].description : "invalid configuration:\n" + problems.map { "  \($0)" }.joined(separator: "\n")
    }
}
