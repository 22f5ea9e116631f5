// ConfigSchemaTests.swift
//
// Tests of config resolution: TOML/YAML files and `--set` overrides over schema defaults, the
// exact error messages for bad input, and the round trip through config.toml.

import Foundation
import Testing
@testable import NudgeConfig

private let schema = ConfigSchema([
    .string("model", "", help: "Model directory (empty: a fresh preset)."),
    .int("seed", 0, min: 0, help: "Random seed."),
    .double("sft.learning_rate", 2e-5, min: 0, help: "AdamW learning rate."),
    .int("sft.epochs", 1, min: 1, help: "Passes over the data."),
    .bool("sft.packing", false, help: "Pack rows into full sequences."),
    .choice("dpo.loss", ["sigmoid", "hinge", "ipo"], default: "sigmoid", help: "Preference loss."),
    .double("dpo.label_smoothing", 0, min: 0, max: 0.5, help: "Label smoothing ε."),
    .array("net.hidden", of: .int, [64, 64], help: "Hidden layer sizes."),
])

private let toml = """
    # A comment.
    model = "models/tiny"
    seed = 7

    [sft]
    learning_rate = 1e-3
    epochs = 3
    packing = true

    [dpo]
    loss = "ipo"

    [net]
    hidden = [32, 16]
    """

private let yaml = """
    # A comment.
    model: models/tiny
    seed: 7
    sft:
      learning_rate: 1e-3
      epochs: 3
      packing: true
    dpo:
      loss: ipo
    net:
      hidden: [32, 16]
    """

/// Writes `text` to a fresh temporary file named `name` and returns its path.
private func temporaryFile(_ name: String, _ text: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-config-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

/// The message of the `ConfigError` thrown by `body`, or nil if it did not throw one.
private func configErrorMessage<T>(_ body: () throws -> T) -> String? {
    do {
        _ = try body()
        return nil
    } catch let error as ConfigError {
        return error.description
    } catch {
        return "unexpected error: \(error)"
    }
}

@Test func defaultsWhenNothingIsGiven() throws {
    let config = try schema.resolve()
    #expect(config == schema.defaults)
    #expect(config.string("model") == "")
    #expect(config.int("seed") == 0)
    #expect(config.double("sft.learning_rate") == 2e-5)
    #expect(config.float("sft.learning_rate") == Float(2e-5))
    #expect(config.int("sft.epochs") == 1)
    #expect(config.bool("sft.packing") == false)
    #expect(config.string("dpo.loss") == "sigmoid")
    #expect(config.array("net.hidden") == [64, 64])
    #expect(config.isDefault("sft.epochs"))
    #expect(config.source(of: "seed") == .defaultValue)
}

@Test func tomlAndYAMLFilesResolveToTheSameValues() throws {
    let fromTOML = try schema.resolve(file: ConfigDocument.load(path: temporaryFile("run.toml", toml)))
    let fromYAML = try schema.resolve(file: ConfigDocument.load(path: temporaryFile("run.yaml", yaml)))
    #expect(fromTOML == fromYAML)
    #expect(fromTOML.string("model") == "models/tiny")
    #expect(fromTOML.int("seed") == 7)
    #expect(fromTOML.double("sft.learning_rate") == 1e-3)
    #expect(fromTOML.int("sft.epochs") == 3)
    #expect(fromTOML.bool("sft.packing"))
    #expect(fromTOML.string("dpo.loss") == "ipo")
    #expect(fromTOML.array("net.hidden") == [32, 16])
    #expect(fromTOML.double("dpo.label_smoothing") == 0)  // not in the files: default

    // Both parsers place keys on their lines.
    let tomlDoc = try ConfigDocument.parseTOML(toml, name: "run.toml")
    let yamlDoc = try ConfigDocument.parseYAML(yaml, name: "run.yaml")
    #expect(tomlDoc.entries.map(\.key) == ["model", "seed", "sft.learning_rate", "sft.epochs", "sft.packing", "dpo.loss", "net.hidden"])
    #expect(tomlDoc.entries.map(\.line) == [2, 3, 6, 7, 8, 11, 14])
    #expect(yamlDoc.entries.map(\.key) == tomlDoc.entries.map(\.key))
    #expect(yamlDoc.entries.map(\.line) == [2, 3, 5, 6, 7, 9, 11])
    #expect(try schema.resolve(file: tomlDoc).source(of: "sft.epochs") == .file("run.toml", line: 7))
}

@Test func dottedKeysAndInlineTablesFlatten() throws {
    let doc = try ConfigDocument.parseTOML("sft.epochs = 2\ndpo = { loss = \"hinge\" }\n", name: "c.toml")
    let config = try schema.resolve(file: doc)
    #expect(config.int("sft.epochs") == 2)
    #expect(config.string("dpo.loss") == "hinge")
    #expect(doc.entries.map(\.line) == [1, 2])
    let yamlConfig = try schema.resolve(file: ConfigDocument.parseYAML("sft.epochs: 2\n", name: "c.yaml"))
    #expect(yamlConfig.int("sft.epochs") == 2)
}

@Test func setOverridesTheFileInOrder() throws {
    let doc = try ConfigDocument.parseTOML(toml, name: "run.toml")
    let config = try schema.resolve(file: doc, overrides: [
        "sft.epochs=5", "sft.learning_rate=1e-4", "seed=9", "seed=11", "model=", "net.hidden=[1, 2, 3]", "sft.packing=false",
    ])
    #expect(config.int("sft.epochs") == 5)
    #expect(config.double("sft.learning_rate") == 1e-4)
    #expect(config.int("seed") == 11)  // the later --set wins
    #expect(config.string("model") == "")
    #expect(config.array("net.hidden") == [1, 2, 3])
    #expect(config.bool("sft.packing") == false)
    #expect(config.string("dpo.loss") == "ipo")  // from the file, untouched
    #expect(config.source(of: "sft.epochs") == .override)
    #expect(config.source(of: "dpo.loss") == .file("run.toml", line: 11))

    // Text forms: comma-separated lists, quoted strings, bool spellings, underscores.
    let more = try schema.resolve(overrides: ["net.hidden=8,4", "model=\" spaced \"", "sft.packing=yes", "seed=1_000"])
    #expect(more.array("net.hidden") == [8, 4])
    #expect(more.string("model") == " spaced ")
    #expect(more.bool("sft.packing"))
    #expect(more.int("seed") == 1000)
}

@Test func explicitSetOutranksOverridesAndSetDefaultOnlyFillsDefaults() throws {
    var config = try schema.resolve(overrides: ["sft.epochs=5"])
    try config.set("sft.epochs", .int(2), source: .named("--epochs"))
    try config.set("sft.learning_rate", .int(1), source: .named("--learning-rate"))  // int for a number
    #expect(config.int("sft.epochs") == 2)
    #expect(config.double("sft.learning_rate") == 1)
    #expect(config.source(of: "sft.epochs") == .named("--epochs"))
    #expect(configErrorMessage { try config.set("sft.epochs", .double(2.5), source: .named("--epochs")) }
        == "sft.epochs: expected an integer ≥ 1, got 2.5 (from --epochs)")

    config.setDefault("dpo.label_smoothing", .double(0.1))  // still the default: replaced
    config.setDefault("sft.epochs", .int(9))                // set by a flag: kept
    #expect(config.double("dpo.label_smoothing") == 0.1)
    #expect(config.isDefault("dpo.label_smoothing"))
    #expect(config.int("sft.epochs") == 2)
}

@Test func unknownKeyNamesTheKeyAndSuggests() {
    #expect(configErrorMessage { try schema.resolve(overrides: ["sft.lerning_rate=1"]) }
        == "sft.lerning_rate: unknown key (from --set); did you mean sft.learning_rate?")
    // A key without its section.
    #expect(configErrorMessage { try schema.resolve(overrides: ["epochs=2"]) }
        == "epochs: unknown key (from --set); did you mean sft.epochs?")
    // Nothing close: the section's keys are listed.
    #expect(configErrorMessage { try schema.resolve(overrides: ["dpo.gamma_ratio=2"]) }
        == "dpo.gamma_ratio: unknown key (from --set); keys under dpo: dpo.loss, dpo.label_smoothing")
    #expect(configErrorMessage { try schema.resolve(overrides: ["zzzzzz=2"]) } == "zzzzzz: unknown key (from --set)")
    let doc = try! ConfigDocument.parseYAML("seed: 1\nsft:\n  epoch: 2\n", name: "config.yaml")
    #expect(configErrorMessage { try schema.resolve(file: doc) }
        == "sft.epoch: unknown key (from config.yaml line 3); did you mean sft.epochs?")
    // A value where a section of keys belongs.
    #expect(configErrorMessage { try schema.resolve(overrides: ["sft=3"]) }
        == "sft: expected a table of sft.* keys, got 3 (from --set)")
}

@Test func wrongTypeNamesKeyExpectedTypeAndLine() throws {
    let doc = try ConfigDocument.parseYAML("seed: 1\nsft:\n  learning_rate: abc\n", name: "config.yaml")
    #expect(configErrorMessage { try schema.resolve(file: doc) }
        == "sft.learning_rate: expected a number ≥ 0, got \"abc\" (from config.yaml line 3)")
    let tomlDoc = try ConfigDocument.parseTOML("[sft]\npacking = \"yes\"\n", name: "config.toml")
    #expect(configErrorMessage { try schema.resolve(file: tomlDoc) }
        == "sft.packing: expected a boolean (true or false), got \"yes\" (from config.toml line 2)")
    #expect(configErrorMessage { try schema.resolve(overrides: ["seed=-1"]) }
        == "seed: expected an integer ≥ 0, got -1 (from --set)")
    #expect(configErrorMessage { try schema.resolve(overrides: ["dpo.label_smoothing=0.7"]) }
        == "dpo.label_smoothing: expected a number between 0 and 0.5, got 0.7 (from --set)")
    #expect(configErrorMessage { try schema.resolve(overrides: ["net.hidden=[1, x]"]) }
        == "net.hidden: expected a list of integers, got \"[1, x]\" (from --set)")
    // A quoted YAML string is a string even when it looks like a number; null is no value.
    #expect(configErrorMessage { try schema.resolve(file: ConfigDocument.parseYAML("seed: \"3\"\nmodel:\n", name: "c.yaml")) }
        == "seed: expected an integer ≥ 0, got \"3\" (from c.yaml line 1)\nmodel: expected a string, got null (from c.yaml line 2)")
    // TOML numbers are not strings.
    #expect(configErrorMessage { try schema.resolve(file: ConfigDocument.parseTOML("model = 3", name: "c.toml")) }
        == "model: expected a string, got 3 (from c.toml line 1)")
}

@Test func integerIsAcceptedWhereANumberIsExpected() throws {
    let fromTOML = try schema.resolve(file: ConfigDocument.parseTOML("[sft]\nlearning_rate = 1\n", name: "c.toml"))
    let fromYAML = try schema.resolve(file: ConfigDocument.parseYAML("sft:\n  learning_rate: 1\n", name: "c.yaml"))
    let fromSet = try schema.resolve(overrides: ["sft.learning_rate=1"])
    for config in [fromTOML, fromYAML, fromSet] {
        #expect(config.value("sft.learning_rate") == .double(1))
    }
}

@Test func fractionIsRejectedWhereAnIntegerIsExpected() throws {
    #expect(configErrorMessage { try schema.resolve(file: ConfigDocument.parseTOML("[sft]\nepochs = 1.5\n", name: "c.toml")) }
        == "sft.epochs: expected an integer ≥ 1, got 1.5 (from c.toml line 2)")
    #expect(configErrorMessage { try schema.resolve(file: ConfigDocument.parseYAML("sft:\n  epochs: 2.0\n", name: "c.yaml")) }
        == "sft.epochs: expected an integer ≥ 1, got 2.0 (from c.yaml line 2)")
    #expect(configErrorMessage { try schema.resolve(overrides: ["sft.epochs=1e2"]) }
        == "sft.epochs: expected an integer ≥ 1, got 1e2 (from --set)")
}

@Test func enumValueOutsideTheListIsRejectedWithTheAllowedValues() throws {
    #expect(configErrorMessage { try schema.resolve(overrides: ["dpo.loss=kto"]) }
        == "dpo.loss: expected one of sigmoid, hinge, ipo, got \"kto\" (from --set)")
    #expect(configErrorMessage { try schema.resolve(file: ConfigDocument.parseTOML("[dpo]\nloss = \"IPO\"\n", name: "c.toml")) }
        == "dpo.loss: expected one of sigmoid, hinge, ipo, got \"IPO\" (from c.toml line 2)")
}

@Test func everyProblemIsReportedAtOnce() throws {
    let doc = try ConfigDocument.parseYAML("seed: x\nseed: 2\nsft:\n  epochs: 0\n", name: "c.yaml")
    let message = configErrorMessage { try schema.resolve(file: doc, overrides: ["oops", "dpo.loss=x"]) }
    #expect(message == """
        seed: expected an integer ≥ 0, got "x" (from c.yaml line 1)
        seed: set twice (again at c.yaml line 2)
        sft.epochs: expected an integer ≥ 1, got 0 (from c.yaml line 4)
        --set oops: expected KEY=VALUE, e.g. --set sft.learning_rate=1e-3
        dpo.loss: expected one of sigmoid, hinge, ipo, got "x" (from --set)
        """)
}

@Test func unreadableAndMalformedFilesNameTheFileAndLine() throws {
    #expect(configErrorMessage { try ConfigDocument.parseTOML("seed = 1\n[sft\nepochs = 2\n", name: "bad.toml") }?
        .hasPrefix("bad.toml line 2, column ") == true)
    #expect(configErrorMessage { try ConfigDocument.parseYAML("seed: 1\nsft:\n  epochs: [1, 2\n", name: "bad.yaml") }?
        .hasPrefix("bad.yaml line 4, column ") == true)
    #expect(configErrorMessage { try ConfigDocument.parseYAML("- 1\n- 2\n", name: "list.yaml") }
        == "list.yaml line 1: expected a mapping of keys at the top level")
    #expect(configErrorMessage { try ConfigDocument.parseTOML("when = 2024-01-02\n", name: "d.toml") }
        == "d.toml line 1: when: dates and times are not supported in a config")
    #expect(configErrorMessage { try ConfigDocument.load(path: "/nonexistent/run.toml") }
        == "/nonexistent/run.toml: no such file")
    #expect(configErrorMessage { try ConfigDocument.load(path: "run.json") }
        == "run.json: unknown config format '.json' (expected .toml, .yaml or .yml)")
    #expect(try ConfigDocument.parseYAML("", name: "empty.yaml").entries.isEmpty)
}

@Test func yamlPlainScalarsFollowTheSchemaType() throws {
    // YAML 1.1 would read `no` as false and PyYAML `1e-3` as a string; the schema decides.
    let doc = try ConfigDocument.parseYAML("model: no\nsft:\n  learning_rate: 1e-3\n  packing: on\n", name: "c.yaml")
    let config = try schema.resolve(file: doc)
    #expect(config.string("model") == "no")
    #expect(config.double("sft.learning_rate") == 1e-3)
    #expect(config.bool("sft.packing"))
}

@Test func roundTripsThroughConfigTOML() throws {
    var config = try schema.resolve(file: ConfigDocument.parseYAML(yaml, name: "run.yaml"), overrides: ["dpo.label_smoothing=0.25"])
    try config.set("model", "say \"hi\"", source: .named("--model"))
    let rendered = TOMLWriter.render(config.asConfigTable())
    #expect(rendered == """
        model = "say \\"hi\\""
        seed = 7

        [sft]
        learning_rate = 0.001
        epochs = 3
        packing = true

        [dpo]
        loss = "ipo"
        label_smoothing = 0.25

        [net]
        hidden = [32, 16]

        """)
    let reread = try schema.resolve(file: ConfigDocument.parseTOML(rendered, name: "config.toml"))
    #expect(reread == config)
    #expect(try schema.resolve(file: ConfigDocument.parseTOML(TOMLWriter.render(schema.defaults.asConfigTable()), name: "d.toml"))
        == schema.defaults)
    // The same round trip through a real run directory's config.toml is in NudgeReportTests
    // (RunDirectoryConfigTests.swift): run directories live in NudgeReport, above this module.
}

@Test func helpTextListsEveryKey() {
    let lines = schema.helpText.split(separator: "\n")
    #expect(lines.count == 2 * schema.fields.count)
    #expect(lines[4] == "  sft.learning_rate = 2e-05 (float)")
    #expect(lines[5] == "      AdamW learning rate.")
    #expect(lines[10] == "  dpo.loss = \"sigmoid\" (sigmoid|hinge|ipo)")
    #expect(lines[14] == "  net.hidden = [64, 64] ([int])")
}

@Test func layersAFileOverridesAndNamedSettingsAndReportsEveryProblem() throws {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-layers-\(UUID().uuidString).toml")
    defer { try? FileManager.default.removeItem(at: file) }
    try "seed = 7\n[sft]\nepochs = 3\n".write(to: file, atomically: true, encoding: .utf8)
    let config = try schema.resolve(configFile: file.path, overrides: ["sft.epochs=4", "seed=8"],
                                    settings: [.init("sft.epochs", "--epochs", .int(5)), .init("seed", "--seed", nil)])
    #expect(config.int("sft.epochs") == 5 && config.source(of: "sft.epochs") == .named("--epochs"))
    #expect(config.int("seed") == 8 && config.int("sft.epochs") == 5)
    let error = try #require(throws: ConfigError.self) {
        try schema.resolve(configFile: file.path + ".missing", overrides: ["bogus=1"], settings: [.init("sft.epochs", "--epochs", .int(0))])
    }
    #expect(error.problems.count == 3)
    #expect(error.message.hasPrefix("invalid configuration:\n  ") && error.message.split(separator: "\n").count == 4)
    #expect(ConfigError([error.problems[1]]).message == error.problems[1].description)
}
