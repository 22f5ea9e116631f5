// DPO step time at the TRL peer's setting (../shared/peers/bench_trl.py): Llama "S" (vocab 512),
// 8 pairs per step, 32-character prompts and 64–95-character completions of random lowercase words
// with a byte tokenizer, β = 0.1, sigmoid loss. The reference log-probs are computed once per
// dataset pass (TRL runs a frozen copy every step); that pass is included in the per-step time.

import Foundation
import NudgeAlign
import NudgeLM
import NudgeTensor

extension EngineBenchmarks {
    /// Seconds per DPO optimizer step over `steps` steps (reference pass included).
    public static func dpoStepSeconds(steps: Int = 12) throws -> Double {
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        let config = TransformerConfiguration.preset("S", vocabularySize: 512)!
        let model = LlamaModel(config, seed: 1)
        var rng = RandomGenerator(seed: 2)
        func words(_ length: Int) -> String {
            var s = ""
            while s.count < length {
                let w = String((0..<(2 + rng.int(below: 6))).map { _ in Character(UnicodeScalar(97 + rng.int(below: 26))!) })
                s += (s.isEmpty ? "" : " ") + w
            }
            return String(s.prefix(length))
        }
        let rows = (0..<(8 * steps)).map { _ in
            DatasetRow.preference(prompt: .text(words(32)), chosen: .text(" " + words(64 + rng.int(below: 32))),
                                  rejected: .text(" " + words(64 + rng.int(below: 32))))
        }
        var dpo = DPOConfig()
        dpo.batchSize = 8
        let start = Date()
        _ = try DPOTrainer.train(policy: model, tokenizer: tokenizer, rows: rows, config: dpo)
        return Date().timeIntervalSince(start) / Double(steps)
    }
}
