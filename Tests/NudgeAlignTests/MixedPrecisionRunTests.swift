// `bf16` through the runs (TRL's name): training's products on bf16 operands with Float32 sums.
// On a CPU with AVX512_BF16 a step's loss and gradient norm differ from Float32's by bf16's rounding
// and no more, and two bf16 runs train the same bits; elsewhere the key changes nothing.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeConfig
import NudgeNN
import NudgeTensor

@Suite("Mixed precision in runs") struct MixedPrecisionRunTests {
    func output(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("nudge-bf16-\(name)-\(getpid())")
    }

    func weights(_ dir: URL) throws -> [String: [Float]] {
        let file = try SafeTensorsFile(url: dir.appendingPathComponent("checkpoints/model/model.safetensors"))
        return try Dictionary(uniqueKeysWithValues: file.entries.map { ($0.name, try file.floats($0.name)) })
    }

    @Test func sftTrainsCloseToFloat32AndReproducibly() throws {
        let runs = ["plain", "bf16", "bf16-again"].map { output("sft-\($0)") }
        defer { for u in runs { try? FileManager.default.removeItem(at: u) } }
        for (i, out) in runs.enumerated() {
            // Rows of about 20 tokens, so the batch's products have more than 32 rows.
            try SFTRun.train(config: try SFTRun.schema.resolve(overrides: ["output=\(out.path)", "rows=16", "sft.batch_size=8", "sft.epochs=1",
                                                                           "sft.eval_rows=0", "sft.bf16=\(i > 0)"]))
        }
        let (plain, mixed, again) = (try weights(runs[0]), try weights(runs[1]), try weights(runs[2]))
        #expect(mixed.keys.sorted() == plain.keys.sorted())
        for name in plain.keys.sorted() {
            #expect(mixed[name]! == again[name]!, "\(name): two bf16 runs differ")
        }
        // Step 1's loss and gradient norm come before any update, so they show the products' error
        // alone: bf16's (operands with 8-bit mantissas), well under a percent, and not zero.
        let (first, firstMixed) = (try firstStep(runs[0]), try firstStep(runs[1]))
        for key in ["loss", "grad_norm"] {
            let relative = abs(first[key]! - firstMixed[key]!) / abs(first[key]!)
            if MixedPrecision.isSupported {
                #expect(relative > 0 && relative < 1e-2, "\(key): \(first[key]!) Float32, \(firstMixed[key]!) bf16")
            } else {
                #expect(relative == 0, "\(key): the key must change nothing without AVX512_BF16")
            }
        }
    }

    /// The metrics of step 1 in a run's metrics.jsonl.
    func firstStep(_ dir: URL) throws -> [String: Double] {
        let line = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")[0]
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    @Test func everyTrainerDeclaresTheKey() throws {
        let schemas = [("sft", SFTRun.schema), ("rm", RMRun.schema), ("dpo", DPORun.schema), ("kto", KTORun.schema), ("grpo", GroupRun.grpo.schema),
                       ("rloo", GroupRun.rloo.schema), ("ppo", PPORun.schema), ("online_dpo", OnlineDPORun.schema), ("prm", PRMRun.schema)]
        for (section, schema) in schemas {
            let config = try schema.resolve(overrides: ["\(section).bf16=true"])
            #expect(config.bool("\(section).bf16"), "\(section)")
        }
    }
}
