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
        @Option(help: "A Hugging Face model directory (config.json + model.safetensors).") var model: String
        @Option(help: "Comma-separated token ids.") var ids: String
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let lm = try LanguageModelLoader.load(directory: URL(fileURLWithPath: model))
            let tokens = try parseNumbers(ids, field: "--ids").map { Int($0) }
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
        @Option(name: .customLong("vocab-size")) var vocabularySize: Int?
        @Option var seed: UInt64 = 0
        @Option var output: String
        func run() throws {
            guard let config = TransformerConfiguration.preset(preset, vocabularySize: vocabularySize) else {
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
        let dir = URL(fileURLWithPath: model)
        let lm = try LanguageModelLoader.load(directory: dir)
        let tokenizer: any Tokenizer = FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path)
            ? try BPETokenizer.load(directory: dir) : ByteTokenizer()
        var config = GenerationConfig()
        config.maxNewTokens = maxNewTokens
        config.temperature = temperature
        config.topK = topK
        config.topP = topP
        config.minP = minP
        config.seed = seed
        config.eosTokenID = tokenizer.eosTokenID ?? lm.configuration.eosTokenID
        let ids = tokenizer.encode(prompt, addSpecialTokens: true)
        let vocabulary = lm.configuration.vocabularySize
        guard let bad = ids.first(where: { $0 >= vocabulary }) else {
            let result = generate(model: lm, prompts: [ids], config: config)
            print(prompt + tokenizer.decode(result.tokens[0], skipSpecialTokens: true))
            note("finish: \(result.finishReasons[0].rawValue), \(result.tokens[0].count) tokens, mean log-prob \(String(format: "%.3f", result.logProbs[0].reduce(0, +) / Float(max(result.logProbs[0].count, 1))))")
            return
        }
        throw ValidationError("token id \(bad) from the tokenizer is outside the model's vocabulary (\(vocabulary))")
    }
}
