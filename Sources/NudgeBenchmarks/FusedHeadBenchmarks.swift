// The language-model head with log-softmax and gather, fused and chunked (`linearSelectedLogProbabilities`)
// against the plain path (x·Wᵀ logits, then `selectedLogProbabilities`), forward and backward, at
// SmolLM2-135M's head (d = 576, vocabulary 49152) on the scored positions of a GRPO batch. Run each
// path in its own process under `/usr/bin/time -v` to compare peak memory:
//
//     NudgeBench --only fusedhead --path fused|plain [--rows 2048] [--chunk 256] [--rounds 3]

import Foundation
import NudgeTensor

extension EngineBenchmarks {
    /// Median seconds of one forward + backward of the head on `rows` positions.
    public static func fusedHeadSeconds(fused: Bool, rows: Int = 2048, hidden: Int = 576, vocabulary: Int = 49_152, chunkRows: Int = 256, rounds: Int = 3) -> Double {
        var rng = RandomGenerator(seed: 7)
        let h = Tensor.normal([rows, hidden], std: 1, using: &rng)
        let w = Tensor.normal([vocabulary, hidden], std: 0.05, using: &rng)
        let targets = (0..<rows).map { _ in rng.int(below: vocabulary) }
        var times: [Double] = []
        for _ in 0..<rounds {
            let start = Date()
            let (_, grads) = valueAndGrad([h, w]) { xs -> Tensor in
                if fused { return linearSelectedLogProbabilities(hidden: xs[0], weight: xs[1], targets: targets, chunkRows: chunkRows).logProbs.sum() }
                return selectedLogProbabilities(logits: matmul(xs[0], xs[1], transposeB: true), targets: targets).sum()
            }
            precondition(grads.count == 2)
            times.append(Date().timeIntervalSince(start))
        }
        return times.sorted()[times.count / 2]
    }
}
