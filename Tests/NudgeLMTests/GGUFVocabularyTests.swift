// Tokenizers rebuilt from GGUF vocabularies, checked against the ids the models' original Hugging
// Face tokenizers give (llama.cpp's vocabulary test files: Fixtures/gguf-vocab/NAME.inp/.out) and
// against transformers 5 on the same vocabulary (llama-spm.json, by
// scripts/make_gguf_vocab_fixtures.py). The SentencePiece vocabulary (Llama 2's, 724 KB) is in the
// repository; the byte-level ones and Phi-3's (0.7-4 MB each) are checked when NUDGE_GGUF_VOCAB_DIR names a folder
// holding llama.cpp's ggml-vocab-NAME.gguf files.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN

@Suite("GGUF vocabularies") struct GGUFVocabularyTests {
    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/gguf-vocab"))
    }

    /// llama.cpp's test texts and the original tokenizer's ids.
    static func cases(_ name: String) throws -> [(text: String, ids: [Int])] {
        let texts = try String(contentsOf: try fixture("\(name).inp"), encoding: .utf8).components(separatedBy: "\n__ggml_vocab_test__\n")
        let lines = try String(contentsOf: try fixture("\(name).out"), encoding: .utf8).components(separatedBy: "\n")
        #expect(lines.count >= texts.count)
        return zip(texts, lines).map { ($0, $1.split(separator: " ").map { Int($0)! }) }
    }

    struct Expectations: Decodable {
        let texts: [String]
        let legacy_ids: [[Int]], legacy_decoded: [String], legacy_ids_with_bos: [[Int]]
        let metaspace_ids: [[Int]], metaspace_decoded: [String]
        let gemma_ids: [[Int]], gemma_decoded: [String]
    }

    static func expectations() throws -> Expectations {
        try JSONDecoder().decode(Expectations.self, from: Data(contentsOf: try fixture("llama-spm.json")))
    }

    @Test func sentencePieceVocabularyMatchesTheOriginalTokenizer() throws {
        let file = try GGUFFile(url: try Self.fixture("llama-spm.gguf"))
        let tokenizer = try GGUFTokenizer.make(file)
        #expect(tokenizer.vocabularySize == 32000)
        #expect(tokenizer.bosTokenID == 1 && tokenizer.eosTokenID == 2)
        var mismatches = 0
        for (text, ids) in try Self.cases("llama-spm") where tokenizer.encode(text, addSpecialTokens: false) != ids {
            mismatches += 1
            Issue.record("\(JSONField.quoted(text)): \(tokenizer.encode(text, addSpecialTokens: false)) != \(ids)")
        }
        #expect(mismatches == 0)
        let expected = try Self.expectations()
        for (index, text) in expected.texts.enumerated() {
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            #expect(ids == expected.legacy_ids[index], "\(JSONField.quoted(text))")
            #expect(tokenizer.decode(expected.legacy_ids[index]) == expected.legacy_decoded[index], "\(JSONField.quoted(text))")
        }
        for (index, ids) in expected.legacy_ids_with_bos.enumerated() {
            #expect(tokenizer.encode(expected.texts[index]) == ids)
        }
    }

    /// transformers 5's own reading of a Llama GGUF (Metaspace with prepend_scheme "first" instead
    /// of the original Prepend normalizer): the same vocabulary and merges under that shape give its ids.
    @Test func metaspacePreTokenizerMatchesTransformers() throws {
        let file = try GGUFFile(url: try Self.fixture("llama-spm.gguf"))
        var json = try JSONSerialization.jsonObject(with: try GGUFTokenizer.tokenizerJSON(file).json) as! [String: Any]
        json["normalizer"] = NSNull()
        json["pre_tokenizer"] = ["type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false]
        let tokenizer = try BPETokenizer(data: try JSONSerialization.data(withJSONObject: json))
        let expected = try Self.expectations()
        for (index, text) in expected.texts.enumerated() {
            #expect(tokenizer.encode(text, addSpecialTokens: false) == expected.metaspace_ids[index], "\(JSONField.quoted(text))")
            #expect(tokenizer.decode(expected.metaspace_ids[index]) == expected.metaspace_decoded[index], "\(JSONField.quoted(text))")
        }
    }

    /// The same vocabulary stored as a Gemma file (arch gemma3, no space prefix): token order is the
    /// merge order, as transformers' Gemma builder reads it.
    @Test func gemmaFileUsesTokenOrderAndNoPrefix() throws {
        let source = try GGUFFile(url: try Self.fixture("llama-spm.gguf"))
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("gemma3"))
        for (key, value) in GGUFExport.tokenizerMetadata(from: source) { writer.set(key, value) }
        writer.set("tokenizer.ggml.add_space_prefix", .bool(false))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-gemma-vocab-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try writer.write(to: url)
        let tokenizer = try GGUFTokenizer.make(try GGUFFile(url: url))
        let expected = try Self.expectations()
        for (index, text) in expected.texts.enumerated() {
            #expect(tokenizer.encode(text, addSpecialTokens: false) == expected.gemma_ids[index], "\(JSONField.quoted(text))")
            #expect(tokenizer.decode(expected.gemma_ids[index]) == expected.gemma_decoded[index], "\(JSONField.quoted(text))")
        }
    }

    static let largerVocabularies = ["gpt-2", "starcoder", "refact", "mpt", "deepseek-coder", "deepseek-llm", "falcon", "phi-3"]

    /// Byte-level vocabularies with the pre-tokenizers `tokenizer.ggml.pre` names, and Phi-3's
    /// SentencePiece vocabulary (its test ids are Llama 2's).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["NUDGE_GGUF_VOCAB_DIR"] != nil, "set NUDGE_GGUF_VOCAB_DIR to llama.cpp's models/ folder"),
          arguments: largerVocabularies)
    func largerVocabularyMatchesTheOriginalTokenizer(_ name: String) throws {
        let folder = URL(fileURLWithPath: ProcessInfo.processInfo.environment["NUDGE_GGUF_VOCAB_DIR"]!)
        let tokenizer = try GGUFTokenizer.make(try GGUFFile(url: folder.appendingPathComponent("ggml-vocab-\(name).gguf")))
        for (text, ids) in try Self.cases(name == "phi-3" ? "llama-spm" : name) {
            #expect(tokenizer.encode(text, addSpecialTokens: false) == ids, "\(name): \(JSONField.quoted(text))")
        }
    }
}
