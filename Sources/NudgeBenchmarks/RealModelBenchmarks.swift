// Generation on a real model (a GGUF file or a Hugging Face directory): `rows` plain-text prompts
// sampled at temperature 1 for exactly `newTokens` tokens each (no end-of-sequence stop), the same
// work as Benchmarks/peers/real/bench_trl_real.py's `generate` mode asks of transformers. Run with
// `NudgeBench --only realgen --model FILE --prompts generate.txt [--rows 16] [--new-tokens 32] [--rounds 4]`.

import Foundation
import NudgeLM

extension EngineBenchmarks {
    /// Seconds per `generate` call (median after the first) and tokens per second.
    public static func realModelGeneration(model path: String, prompts promptFile: String, rows: Int = 16, newTokens: Int = 32,
                                           rounds: Int = 4) throws -> (secondsPerCall: [Double], tokensPerSecond: Double, promptTokens: Int) {
        let (model, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: URL(fileURLWithPath: path))
        model.eval()
        let text = try String(contentsOfFile: promptFile, encoding: .utf8)
        let prompts = text.components(separatedBy: "\nAnswer:\n").prefix(rows)
            .map { tokenizer.encode($0.trimmingCharacters(in: .whitespacesAndNewlines) + "\nAnswer:", addSpecialTokens: false) }
        var config = GenerationConfig()
        config.maxNewTokens = newTokens
        var seconds: [Double] = []
        for round in 0..<max(rounds, 2) {
            config.seed = UInt64(round)
            let start = DispatchTime.now().uptimeNanoseconds
            let result = generate(model: model, prompts: prompts, config: config)
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            precondition(result.tokens.allSatisfy { $0.count == newTokens }, "a row stopped early")
        }
        let rest = seconds.dropFirst().sorted()
        let median = rest.count % 2 == 1 ? rest[rest.count / 2] : (rest[rest.count / 2 - 1] + rest[rest.count / 2]) / 2
        return (seconds, Double(prompts.count * newTokens) / median, prompts.map(\.count).reduce(0, +))
    }
}
