// `--config FILE` and `--set KEY=VALUE`, shared by the training commands: a command declares a
// `ConfigSchema`, and `ConfigOptions.resolve` layers the file, the overrides and the command's own
// explicit flags over the schema defaults, turning any problem into a usage error.

import ArgumentParser
import Foundation
import Nudge

/// The config-file and override options of a training command.
struct ConfigOptions: ParsableArguments {
    @Option(name: .customLong("config"),
            help: ArgumentHelp("A TOML (.toml) or YAML (.yaml, .yml) config file; see the keys below.", valueName: "file"))
    var configFile: String?

    @Option(name: .customLong("set"), parsing: .singleValue,
            help: ArgumentHelp("Override one config key, after the file; repeatable, e.g. --set sft.learning_rate=1e-3 --set sft.epochs=2.",
                               valueName: "key=value"))
    var overrides: [String] = []

    /// A command-line flag that sets a config key when given (`value` nil: not given).
    typealias Flag = ConfigSetting

    /// The keys that name files or directories, recorded absolute in config.toml.
    static let pathKeys = ["model", "data", "output", "eval.data", "sft.eval_data", "dpo.ref_model", "kto.ref_model",
                           "ppo.reward_model"]

    /// Resolves `schema`: defaults ← `--config` file ← `--set` overrides ← the explicit `flags`.
    /// Every problem (file, overrides and flags alike) is reported at once, as a `ValidationError`.
    func resolve(_ schema: ConfigSchema, flags: [Flag] = []) throws -> ResolvedConfig {
        var config: ResolvedConfig
        do throws(ConfigError) {
            config = try schema.resolve(configFile: configFile, overrides: overrides, settings: flags)
        } catch {
            throw ValidationError(error.message)
        }
        config.makePathsAbsolute(Self.pathKeys)
        return config
    }
}

extension ConfigOptions {
    /// A training command's configuration: with `--resume RUN_DIR`, the run's own, where only
    /// `extending` (the length of training) may change and any other given flag is refused; else
    /// the schema with `flags` and `extending` applied last.
    func resolve(_ schema: ConfigSchema, flags: [Flag], extending: Flag, resume: String?) throws -> ResolvedConfig {
        guard let resume else { return try resolve(schema, flags: flags + [extending]) }
        return try resolveResume(schema, runDirectory: resume, extendable: extending.key, extended: extending,
                                 otherFlags: flags.filter { $0.value != nil }.map(\.name))
    }

    /// The configuration for `--resume RUN_DIR`: the run's own config.toml, where only `extendable`
    /// (the length of training) may change, through `extension` or `--set`; `otherFlags` are the
    /// names of any other flags given, which are refused, as is `--config`. The output is the run
    /// directory as given now, wherever its config.toml says it was.
    func resolveResume(_ schema: ConfigSchema, runDirectory: String, extendable: String, extended: Flag,
                       otherFlags: [String], outputKey: String? = "output") throws -> ResolvedConfig {
        let file = URL(fileURLWithPath: runDirectory).appendingPathComponent("config.toml")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw ValidationError("--resume \(runDirectory): no config.toml there (not a run directory)")
        }
        guard configFile == nil else { throw ValidationError("--resume uses the run's own config.toml; drop --config") }
        let changed = overrides.filter { !$0.hasPrefix("\(extendable)=") } + otherFlags
        guard changed.isEmpty else {
            throw ValidationError("--resume continues the recorded configuration; only \(extended.name) or --set \(extendable)=N may change (got \(changed.joined(separator: ", ")))")
        }
        var options = self
        options.configFile = file.path
        return try options.resolve(schema, flags: [extended] + (outputKey.map { [.init($0, "--resume", .string(runDirectory))] } ?? []))
    }
}

extension ConfigSchema {
    /// A command's `--help` discussion: `examples`, then the precedence rule and every config key.
    func discussion(examples: [String]) -> String {
        """
        Examples:
        \(examples.map { "  " + $0 }.joined(separator: "\n"))

        Configuration: every key below has a default. A --config file (TOML or YAML; nested \
        tables or dotted keys) overrides the defaults, --set KEY=VALUE overrides the file, and \
        the command's own flags (--epochs, --learning-rate, ...) override --set. The resolved \
        configuration is written to the run directory's config.toml, which --config accepts \
        back.

        Config keys (key = default (type)):
        \(helpText)
        """
    }
}
