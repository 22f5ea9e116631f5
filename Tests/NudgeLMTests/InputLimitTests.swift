// Bad sizes and ids are errors that name the field, the file or the row, never a trap: config.json
// sizes, token ids against the vocabulary, GPT-2's positions, generation settings, and a model
// directory whose tokenizer cannot fit its model.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN

@Suite("Input limits") struct InputLimitTests {
    func configDirectory(_ json: [String: Any]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-limits-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: json).write(to: url.appendingPathComponent("config.json"))
        return url
    }

    var llama: [String: Any] { ["model_type": "llama", "vocab_size": 260, "hidden_size": 64, "intermediate_size": 176,
                                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5] }

    @Test(arguments: [("hidden_size", -64.0), ("vocab_size", 0), ("num_attention_heads", 0), ("num_key_value_heads", 3),
                      ("rms_norm_eps", -1e-5), ("hidden_size", 1e12), ("eos_token_id", 300), ("max_position_embeddings", -1)])
    func badSizesNameTheirField(field: String, value: Double) throws {
        var json = llama
        json[field] = value == value.rounded() ? Int(value) as Any : value as Any
        let dir = try configDirectory(json)
        let error = try #require(throws: ModelLoadError.self) { try TransformerConfiguration.load(dir.appendingPathComponent("config.json")) }
        let text = "\(error)"
        #expect(text.contains("config.json"))
        #expect(text.contains(field) || (field == "hidden_size" && text.contains("memory")), "\(text)")
    }

    @Test func validConfigurationsStillLoad() throws {
        let dir = try configDirectory(llama)
        #expect(try TransformerConfiguration.load(dir.appendingPathComponent("config.json")).hiddenSize == 64)
    }

    @Test func tokenLimitsCheckIdsAndLearnedPositions() throws {
        let limits = TokenLimits(vocabularySize: 10, maxPositions: 4)
        try limits.check([0, 9, 3])
        #expect(throws: TokenLimitError.outOfVocabulary(id: 10, vocabularySize: 10)) { try limits.check([1, 10]) }
        #expect(throws: TokenLimitError.outOfVocabulary(id: -1, vocabularySize: 10)) { try limits.check([-1]) }
        #expect(throws: TokenLimitError.tooLong(tokens: 5, maxPositions: 4)) { try limits.check([1, 2, 3], extra: 2) }
        var gpt2 = TransformerConfiguration(family: .gpt2, vocabularySize: 50, hiddenSize: 8, intermediateSize: 32, layerCount: 1, headCount: 2,
                                            maxPositions: 16, tieWordEmbeddings: true)
        #expect(TokenLimits(gpt2).maxPositions == 16)
        gpt2.family = .llama
        #expect(TokenLimits(gpt2).maxPositions == nil)  // RoPE: no learned table to run past
    }

    @Test func generationSettingsAndPromptsAreValidated() throws {
        let limits = TokenLimits(vocabularySize: 300)
        var config = GenerationConfig()
        try config.validate(prompts: [[1, 2]], limits: limits)
        #expect(throws: RowError.self) { try config.validate(prompts: [[1], []], limits: limits) }
        let row = try #require(throws: RowError.self) { try config.validate(prompts: [[1], [2, 400]], limits: limits) }
        #expect(row.row == 2 && "\(row)".contains("token id 400"))
        for change in [{ (c: inout GenerationConfig) in c.maxNewTokens = -1 }, { $0.temperature = .nan }, { $0.temperature = -1 },
                       { $0.topP = 2 }, { $0.topP = 0 }, { $0.minP = 5 }, { $0.topK = -3 }, { $0.eosTokenID = 300 }] {
            var bad = config
            change(&bad)
            #expect(throws: TokenLimitError.self) { try bad.validate(prompts: [[1]], limits: limits) }
        }
        config.temperature = 0  // greedy is a valid sampling setting
        try config.validate(prompts: [[1]], limits: limits)
    }

    @Test func aModelDirectoryWhoseTokenizerCannotFitIsRefused() throws {
        let bytes = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        var small = TransformerConfiguration.preset("tiny", vocabularySize: 256)!
        small.eosTokenID = nil
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-tok-\(UUID().uuidString)")
        try LanguageModelLoader.save(LlamaModel(small, seed: 1), configJSON: small.configJSON(), to: dir)
        let error = try #require(throws: ModelLoadError.self) { try LanguageModelLoader.loadWithTokenizer(directory: dir) }
        #expect("\(error)".contains("no tokenizer.json") && "\(error)".contains("\(bytes.vocabularySize)"))
        // A real-sized vocabulary without its tokenizer.json is refused, not trained on byte ids.
        let big = TransformerConfiguration.preset("tiny", vocabularySize: 49_152)!
        let bigDir = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-tok-\(UUID().uuidString)")
        try LanguageModelLoader.save(LlamaModel(big, seed: 1), configJSON: big.configJSON(), to: bigDir)
        #expect(throws: ModelLoadError.self) { try LanguageModelLoader.loadWithTokenizer(directory: bigDir) }
        let fits = TransformerConfiguration.preset("tiny", vocabularySize: bytes.vocabularySize)!
        let fitsDir = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-tok-\(UUID().uuidString)")
        try LanguageModelLoader.save(LlamaModel(fits, seed: 1), configJSON: fits.configJSON(), to: fitsDir)
        #expect(try LanguageModelLoader.loadWithTokenizer(directory: fitsDir).1.vocabularySize == bytes.vocabularySize)
    }
}
