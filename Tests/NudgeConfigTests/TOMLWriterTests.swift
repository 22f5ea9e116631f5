// TOMLWriterTests.swift
//
// Exact-output tests for `TOMLWriter` and the ordered `ConfigTable`.

import Testing
@testable import NudgeConfig

@Test func tomlScalarsEscapingAndNestedTables() {
    let config: ConfigTable = [
        "seed": 1,
        "env-id": "CartPole-v1",
        "total timesteps": 500_000,
        "anneal_lr": true,
        "gamma": 0.99,
        "clip": 1.0,
        "lr": 3e-4,
        "big": 1e20,
        "tiny": 1e-5,
        "pos_inf": .double(.infinity),
        "neg_inf": .double(-.infinity),
        "not_a_number": .double(.nan),
        "note": "say \"hi\" \\ \n\ttab\u{1}\u{7F} é",
        "optimizer": ["name": "adam", "betas": [0.9, 0.999], "schedule": ["kind": "cosine"]],
        "layers": [64, 64],
        "mixed": [1, "a", [true, false], []],
        "inline": .array([["a": 1, "b c": "x"], .table([:])]),
        "empty": .table([:]),
        "trailing": -7,
    ]
    let expected = """
        seed = 1
        env-id = "CartPole-v1"
        "total timesteps" = 500000
        anneal_lr = true
        gamma = 0.99
        clip = 1.0
        lr = 0.0003
        big = 1e+20
        tiny = 1e-05
        pos_inf = inf
        neg_inf = -inf
        not_a_number = nan
        note = "say \\"hi\\" \\\\ \\n\\ttab\\u0001\\u007F é"
        layers = [64, 64]
        mixed = [1, "a", [true, false], []]
        inline = [{ a = 1, "b c" = "x" }, {}]
        trailing = -7

        [optimizer]
        name = "adam"
        betas = [0.9, 0.999]

        [optimizer.schedule]
        kind = "cosine"

        [empty]

        """
    #expect(TOMLWriter.render(config) == expected)
}

@Test func tomlKeysAndDoubles() {
    #expect(TOMLWriter.formatKey("charts/episodic_return") == "\"charts/episodic_return\"")
    #expect(TOMLWriter.formatKey("") == "\"\"")
    #expect(TOMLWriter.formatKey("a-b_C9") == "a-b_C9")
    #expect(TOMLWriter.formatDouble(2) == "2.0")
    #expect(TOMLWriter.formatDouble(-0.0) == "-0.0")
    #expect(TOMLWriter.formatDouble(1e16) == "1e+16")
    #expect(TOMLWriter.quote("a\u{8}\u{C}\r") == "\"a\\b\\f\\r\"")
    let nested: ConfigTable = ["a": ["b": ["c": 1]]]
    #expect(TOMLWriter.render(nested) == "[a]\n\n[a.b]\nc = 1\n")
    #expect(TOMLWriter.render(ConfigTable()) == "")
}

@Test func configTableKeepsInsertionOrder() {
    var table = ConfigTable([("z", 1), ("a", 2), ("z", 3)])
    #expect(table.keys == ["z", "a"])
    #expect(table["z"] == .int(3))
    table["m"] = "x"
    table["a"] = nil
    #expect(table.keys == ["z", "m"])
    #expect(table == ConfigTable([("z", 3), ("m", "x")]))
    #expect(table != ConfigTable([("m", "x"), ("z", 3)]))
}
