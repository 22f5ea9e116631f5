// RunDirectoryConfigTests.swift
//
// A resolved config survives the round trip through a real run directory's config.toml
// (the part of NudgeConfigTests' `roundTripsThroughConfigTOML` that needs `RunDirectory`).

import Foundation
import NudgeConfig
import Testing
@testable import NudgeReport

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

@Test func aResolvedConfigRoundTripsThroughARunDirectory() throws {
    var config = try schema.resolve(file: ConfigDocument.parseYAML(yaml, name: "run.yaml"), overrides: ["dpo.label_smoothing=0.25"])
    try config.set("model", "say \"hi\"", source: .named("--model"))
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-config-run-\(UUID().uuidString)")
    let run = try RunDirectory.create(at: url, config: config.asConfigTable())
    run.close()
    #expect(try schema.resolve(file: ConfigDocument.load(path: run.configURL.path)) == config)
}
