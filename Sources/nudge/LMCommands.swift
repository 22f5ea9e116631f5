// `nudge lm logits` (parity checks against transformers) and `nudge generate`.

import ArgumentParser
import Foundation
import Nudge

struct LM: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Language-model tools.", subcommands: [Logits.self, Init.self])

    struct Logits: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the last position's logits for token ids (compare with transformers).",
            discussion: "Example: nudge lm logits --model path/to/hf-dir --ids 1,2,3 --json")
        @Option(help: "A Hugging Face model directory (config.json + model.safetensors) or a .gguf file.") var model: String
        @Option(help: "Comma-separated token ids.") var ids: String
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let lm = try LanguageModelLoader.load(path: URL(fileURLWithPath: model))
            let tokens = try ids.split(separator: ",").map { item in
                let text = item.trimmingCharacters(in: .whitespaces)
                guard let id = Int(text) else { throw ValidationError("--ids: '\(text)' is not a token id (a non-negative integer)") }
                return id
            }
            guard !tokens.isEmpty else { throw ValidationError("--ids: expected at least one token id, e.g. --ids 1,2,3") }
            do { try TokenLimits(model: lm).check(tokens) } catch { throw ValidationError("--ids: \(error)") }
            let logits = withoutGradients { lm(TokenBatch(ids: [tokens])) }
            let v = logits.shape[2]
            let last = Array(logits.scalars[((tokens.count - 1) * v)...])
            if json {
                let data = try JSONSerialization.data(withJSONObject: ["ids": tokens, "logits": last.map(Double.init)])
                print(String(decoding: data, as: UTF8.self))
            } else {
                let top = last.indices.sorted { last[$0] > last[$1] }.prefix(10)
                print("vocabulary \(v); top-10 next tokens: " + top.map { "\($0) (\(String(format: "%.4f", last[$0])))" }.joined(separator: ", "))
            }
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a freshly initialized model (preset tiny, S or M) as a Hugging Face directory.")
        @Option var preset = "tiny"
        @Option(name: .customLong("vocab-size"), help: "Vocabulary size (default: the byte tokenizer's \(byteVocabulary), so the model trains without a tokenizer.json).")
        var vocabularySize: Int?
        static var byteVocabulary: Int { ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>").vocabularySize }
        @Option var seed: UInt64 = 0
        @Option var output: String
        func run() throws {
            if let vocabularySize, vocabularySize < 1 || vocabularySize > LanguageModelLoader.byteModelVocabularyLimit * 32 {
                throw ValidationError("--vocab-size: expected an integer between 1 and \(LanguageModelLoader.byteModelVocabularyLimit * 32), got \(vocabularySize)")
            }
            guard let config = TransformerConfiguration.preset(preset, vocabularySize: vocabularySize ?? Self.byteVocabulary) else {
                throw ValidationError("--preset: expected tiny, S or M, got '\(preset)'")
            }
            let model = LlamaModel(config, seed: seed)
            try LanguageModelLoader.save(model, configJSON: config.configJSON(), to: URL(fileURLWithPath: output))
            print("\(preset): \(model.parameterCount) parameters written to \(output)")
        }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample a continuation from a model.",
        discussion: """
        The prompt is tokenized with the directory's tokenizer.json when present, else as UTF-8 bytes.
        Example: nudge generate --model path/to/hf-dir --prompt "Once upon" --max-new-tokens 32 --temperature 0.8
        """)
    @Option var model: String
    @Option var prompt: String
    @Option(name: .customLong("max-new-tokens")) var maxNewTokens = 64
    @Option var temperature: Float = 1
    @Option(name: .customLong("top-k")) var topK = 0
    @Option(name: .customLong("top-p")) var topP: Float = 1
    @Option(name: .customLong("min-p")) var minP: Float = 0
    @Option var seed: UInt64 = 0
    func run() throws {
        let (lm, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: URL(fileURLWithPath: model))
        var config = GenerationConfig()
        config.maxNewTokens = maxNewTokens
        config.temperature = temperature
        config.topK = topK
        config.topP = topP
        config.minP = minP
        config.seed = seed
        config.eosTokenID = tokenizer.eosTokenID ?? lm.configuration.eosTokenID
        let ids = tokenizer.encode(prompt, addSpecialTokens: true)
        do {
            try config.validate(prompts: [ids], limits: TokenLimits(model: lm))
        } catch let error as RowError {
            throw ValidationError("--prompt: \(error.underlying)")
        } catch TokenLimitError.invalidSetting(let name, let value, let expected) {
            throw ValidationError("--\(name.replacingOccurrences(of: "_", with: "-")): expected \(expected), got \(value)")
        }
        let result = generate(model: lm, prompts: [ids], config: config)
        print(prompt + tokenizer.decode(result.tokens[0], skipSpecialTokens: true))
        note("finish: \(result.finishReasons[0].rawValue), \(result.tokens[0].count) tokens, mean log-prob \(String(format: "%.3f", result.logProbs[0].reduce(0, +) / Float(max(result.logProbs[0].count, 1))))")
    }
}
