// TokenizerLoadErrorTests.swift
//
// Malformed tokenizer.json files must produce a TokenizerLoadError that names
// the offending field, never a crash.

import Foundation
import Testing

@testable import NudgeLM

@Suite("Tokenizer load errors")
struct TokenizerLoadErrorTests {
    /// A minimal valid byte-level BPE description with two merges; `edit` mutates it.
    static func document(_ edit: (inout [String: Any]) -> Void = { _ in }) -> Data {
        var vocab: [String: Int] = [:]
        for (index, scalar) in ByteLevelAlphabet.scalarForByte.enumerated() { vocab[String(Character(scalar))] = index }
        vocab["ab"] = 256
        vocab["abc"] = 257
        var root: [String: Any] = [
            "version": "1.0",
            "added_tokens": [["id": 258, "content": "<|endoftext|>", "special": true, "normalized": false]],
            "normalizer": NSNull(),
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "post_processor": NSNull(),
            "decoder": ["type": "ByteLevel"],
            "model": ["type": "BPE", "vocab": vocab, "merges": ["a b", ["ab", "c"]]],
        ]
        edit(&root)
        return (try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])) ?? Data()
    }

    static func model(_ root: inout [String: Any], _ edit: (inout [String: Any]) -> Void) {
        var model = root["model"] as? [String: Any] ?? [:]
        edit(&model)
        root["model"] = model
    }

    func loadError(_ data: Data) -> TokenizerLoadError? {
        do {
            _ = try BPETokenizer(data: data)
            return nil
        } catch {
            return error
        }
    }

    /// The error of the minimal document after `edit` changes its `model` object.
    func modelError(_ edit: (inout [String: Any]) -> Void) -> TokenizerLoadError? {
        loadError(Self.document { root in Self.model(&root, edit) })
    }

    /// The error of the minimal document after `edit` changes its root object.
    func rootError(_ edit: (inout [String: Any]) -> Void) -> TokenizerLoadError? {
        loadError(Self.document(edit))
    }

    @Test("the minimal document loads and merges in both forms")
    func minimalDocumentLoads() throws {
        let tokenizer = try BPETokenizer(data: Self.document())
        #expect(tokenizer.encode("abc abd", addSpecialTokens: false) == [257, 32, 256, 100])
        #expect(tokenizer.encode("abc<|endoftext|>") == [257, 258])
    }

    @Test("a merge that is neither \"a b\" nor [\"a\", \"b\"] is named")
    func badMerge() throws {
        for bad: Any in ["a b c", "ab", 7, ["a"], ["a", 1], ["a", "b", "c"]] {
            let data = Self.document { root in Self.model(&root) { $0["merges"] = ["a b", ["ab", "c"], bad] } }
            let error = try #require(loadError(data))
            #expect(error == .wrongType(field: "model.merges[2]", expected: #""a b" or ["a", "b"]"#))
            #expect(error.description == #"model.merges[2]: expected "a b" or ["a", "b"]"#)
        }
    }

    @Test("merges whose tokens are not in the vocabulary are named")
    func mergeOutOfVocabulary() throws {
        let missing = Self.document { root in Self.model(&root) { $0["merges"] = ["a b", "q ☃"] } }
        #expect(loadError(missing)?.field == "model.merges[1]")
        let unmerged = Self.document { root in Self.model(&root) { $0["merges"] = ["b c"] } }
        let error = try #require(loadError(unmerged))
        #expect(error.field == "model.merges[0]")
        #expect(error.description.contains("\"bc\""))
    }

    @Test("missing required fields are named")
    func missingFields() {
        #expect(modelError { $0["vocab"] = nil } == .missingField(field: "model.vocab"))
        #expect(modelError { $0["merges"] = nil } == .missingField(field: "model.merges"))
        #expect(rootError { $0["model"] = nil } == .missingField(field: "model"))
        #expect(rootError { $0["model"] = NSNull() } == .missingField(field: "model"))
        #expect(rootError { $0["pre_tokenizer"] = ["use_regex": true] } == .missingField(field: "pre_tokenizer.type"))
        #expect(
            rootError { $0["added_tokens"] = [["id": 3, "special": true]] }
                == .missingField(field: "added_tokens[0].content"))
    }

    @Test("unknown component types are named")
    func unsupportedTypes() {
        #expect(modelError { $0["type"] = "WordPiece" } == .unsupported(field: "model.type", value: "\"WordPiece\""))
        #expect(rootError { $0["normalizer"] = ["type": "BertNormalizer"] } == .unsupported(field: "normalizer.type", value: "\"BertNormalizer\""))
        // Metaspace became supported (SentencePiece tokenizers); CTC is a decoder Nudge does not read.
        #expect(rootError { $0["decoder"] = ["type": "CTC"] }?.field == "decoder.type")
        #expect(rootError { $0["decoder"] = ["type": "Strip", "content": "ab", "start": 1, "stop": 0] }?.field == "decoder.content")
        #expect(rootError { $0["pre_tokenizer"] = ["type": "Metaspace", "prepend_scheme": "sometimes"] } == .unsupported(field: "pre_tokenizer.prepend_scheme", value: "\"sometimes\""))
        #expect(rootError { $0["normalizer"] = ["type": "Replace", "pattern": ["Regex": "("], "content": "x"] }?.field == "normalizer.pattern.Regex")
        #expect(rootError { $0["post_processor"] = ["type": "Nope"] }?.field == "post_processor.type")
        let sequence: [String: Any] = [
            "type": "Sequence",
            "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": "\\s+"], "behavior": "Sideways", "invert": false]
            ],
        ]
        #expect(rootError { $0["pre_tokenizer"] = sequence } == .unsupported(field: "pre_tokenizer.pretokenizers[0].behavior", value: "\"Sideways\""))
    }

    @Test("wrong value types are named")
    func wrongTypes() {
        #expect(modelError { $0["vocab"] = ["a", "b"] } == .wrongType(field: "model.vocab", expected: "an object"))
        #expect(modelError { $0["vocab"] = ["a": "zero"] } == .wrongType(field: #"model.vocab["a"]"#, expected: "a non-negative integer token id"))
        #expect(modelError { $0["vocab"] = ["a": -4] }?.field == #"model.vocab["a"]"#)
        #expect(modelError { $0["vocab"] = ["a": 1 << 40] }?.field == #"model.vocab["a"]"#)
        #expect(modelError { $0["vocab"] = ["a": 50_000_000]; $0["merges"] = [] as [Any] }?.field == "model.vocab")
        #expect(modelError { $0["merges"] = "a b" } == .wrongType(field: "model.merges", expected: "an array"))
        #expect(modelError { $0["ignore_merges"] = "yes" } == .wrongType(field: "model.ignore_merges", expected: "a boolean"))
        #expect(rootError { $0["added_tokens"] = [["id": "x", "content": "<x>"]] }?.field == "added_tokens[0].id")
        #expect(rootError { $0["pre_tokenizer"] = ["type": "Split", "pattern": ["Glob": "*"], "behavior": "Isolated"] }?.field == "pre_tokenizer.pattern")
        #expect(rootError { $0["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "(unclosed"], "behavior": "Isolated"] }?.field == "pre_tokenizer.pattern.Regex")
    }

    @Test("template processing that names an unknown special token is reported")
    func badTemplate() {
        let processor: [String: Any] = [
            "type": "TemplateProcessing",
            "single": [["SpecialToken": ["id": "<bos>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
            "pair": [] as [Any],
            "special_tokens": [:] as [String: Any],
        ]
        #expect(rootError { $0["post_processor"] = processor }?.field == "post_processor.single[0].SpecialToken.id")
    }

    @Test("invalid JSON and unreadable files are reported")
    func invalidJSON() {
        for text in ["", "{", "[1, 2", "{\"model\": tru}", "{\"a\": \"\\ud800\"}", "{} x", "{\"a\": 01x}", String(repeating: "[", count: 2000)] {
            guard case .invalidJSON = loadError(Data(text.utf8)) else {
                Issue.record("expected invalidJSON for \(text.prefix(20))")
                continue
            }
        }
        #expect(loadError(Data("[1]".utf8)) == .wrongType(field: "(root)", expected: "an object"))
        #expect(loadError(Data([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D])).map { if case .invalidJSON = $0 { true } else { false } } == true)
        #expect(throws: TokenizerLoadError.self) {
            try BPETokenizer(contentsOf: URL(fileURLWithPath: "/nonexistent/tokenizer.json"))
        }
    }

    @Test("truncated fixture files never crash")
    func truncatedFiles() throws {
        let data = try TokenizerFixtures.data("llama3.json")
        for fraction in stride(from: 0.0, to: 1.0, by: 0.05) {
            let cut = data.prefix(Int(Double(data.count) * fraction))
            #expect(loadError(cut) != nil)
        }
    }

    @Test("load(directory:) reads role tokens from tokenizer_config.json")
    func loadDirectory() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try TokenizerFixtures.data("qwen2-style.json").write(to: directory.appendingPathComponent("tokenizer.json"))
        let config = #"{"bos_token": null, "eos_token": {"content": "<|endoftext|>"}, "pad_token": "<|im_start|>"}"#
        try Data(config.utf8).write(to: directory.appendingPathComponent("tokenizer_config.json"))
        let tokenizer = try BPETokenizer.load(directory: directory)
        #expect(tokenizer.eosTokenID == tokenizer.tokenID(for: "<|endoftext|>"))
        #expect(tokenizer.padTokenID == tokenizer.tokenID(for: "<|im_start|>"))
        try Data(#"{"eos_token": 5}"#.utf8).write(to: directory.appendingPathComponent("tokenizer_config.json"))
        #expect(throws: TokenizerLoadError.wrongType(field: "tokenizer_config.eos_token", expected: #"a string or {"content": ...}"#)) {
            try BPETokenizer.load(directory: directory)
        }
    }
}
