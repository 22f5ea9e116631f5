// sgemm side by side: Nudge's packed C kernels (AVX-512, AVX2+FMA), its portable Swift kernel and
// the loaded BLAS (OpenBLAS), at square sizes and at SmolLM2-135M's training shapes (T = 8·68 =
// 544 tokens, d = 576, FFN 1536, vocabulary 49152): forward x·Wᵀ, input gradients g·W and weight
// gradients gᵀ·x. Implementations are timed in interleaved rounds so drifting machine load hits
// all of them alike; the table reports medians over rounds.

import Foundation
import NudgeTensor

extension EngineBenchmarks {
    /// One product to time: C (m×n) = op(A)·op(B) with inner size k.
    public struct GemmShape: Sendable {
        public var label: String
        public var m: Int, n: Int, k: Int
        public var transA: Bool, transB: Bool
        public init(_ label: String, _ m: Int, _ n: Int, _ k: Int, transA: Bool = false, transB: Bool = false) {
            (self.label, self.m, self.n, self.k, self.transA, self.transB) = (label, m, n, k, transA, transB)
        }
    }

    /// 512³, 1024³ and the matrix products of one SmolLM2-135M training step at 544 tokens.
    public static let gemmShapes: [GemmShape] = [
        GemmShape("512³", 512, 512, 512),
        GemmShape("1024³", 1024, 1024, 1024),
        GemmShape("q/o x·Wᵀ", 544, 576, 576, transB: true),
        GemmShape("gate/up x·Wᵀ", 544, 1536, 576, transB: true),
        GemmShape("down x·Wᵀ", 544, 576, 1536, transB: true),
        GemmShape("lm head x·Wᵀ", 544, 49152, 576, transB: true),
        GemmShape("q/o g·W", 544, 576, 576),
        GemmShape("gate/up g·W", 544, 576, 1536),
        GemmShape("down g·W", 544, 1536, 576),
        GemmShape("lm head g·W", 544, 576, 49152),
        GemmShape("q/o gᵀ·x", 576, 576, 544, transA: true),
        GemmShape("gate/up gᵀ·x", 1536, 576, 544, transA: true),
        GemmShape("down gᵀ·x", 576, 1536, 544, transA: true),
        GemmShape("lm head gᵀ·x", 49152, 576, 544, transA: true),
    ]

    /// An implementation in the table.
    public enum GemmContender: Hashable, Sendable {
        case kernel(BuiltinGemm.Kernel)
        /// The mixed-precision kernel: operands rounded to bf16, sums in Float32 (AVX512_BF16).
        case bf16
        case blas

        public var name: String {
            switch self {
            case .kernel(let kernel): kernel.rawValue
            case .bf16: "bf16 operands"
            case .blas: "BLAS"
            }
        }
    }

    /// GFLOP/s (median over `rounds`) of each contender at `shape` on `threads` threads. Sets
    /// `Engine.threads` and the BLAS thread count for the measurement and restores them after.
    public static func gemmRates(_ shape: GemmShape, threads: Int, contenders: [GemmContender], rounds: Int = 5) -> [GemmContender: Double] {
        let savedThreads = Engine.threads
        Engine.threads = threads
        BLAS.setThreads(threads)
        defer {
            Engine.threads = savedThreads
            BLAS.setThreads(savedThreads)
        }
        let (m, n, k) = (shape.m, shape.n, shape.k)
        var rng = RandomGenerator(seed: 1)
        let a = Tensor.normal(shape.transA ? [k, m] : [m, k], using: &rng)
        let b = Tensor.normal(shape.transB ? [n, k] : [k, n], using: &rng)
        let c = Tensor(uninitializedShape: [m, n])
        func call(_ contender: GemmContender) {
            let (lda, ldb) = (shape.transA ? m : k, shape.transB ? k : n)
            switch contender {
            case .kernel(let kernel):
                BuiltinGemm.sgemm(kernel: kernel, transA: shape.transA, transB: shape.transB, m: m, n: n, k: k,
                                  a: a.data, lda: lda, b: b.data, ldb: ldb, c: c.data, ldc: n)
            case .bf16:
                BuiltinGemm.sgemm(kernel: .avx512, transA: shape.transA, transB: shape.transB, m: m, n: n, k: k,
                                  a: a.data, lda: lda, b: b.data, ldb: ldb, c: c.data, ldc: n, bf16Operands: true)
            case .blas:
                sgemm(transA: shape.transA, transB: shape.transB, m: m, n: n, k: k, a: a.data, lda: lda,
                      b: b.data, ldb: ldb, c: c.data, ldc: n, backend: BLAS.backend)
            }
        }
        func seconds(_ calls: Int, _ contender: GemmContender) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<calls { call(contender) }
            return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 / Double(calls)
        }
        // Calls per round: about 50 ms each, at least one.
        var calls: [GemmContender: Int] = [:]
        for contender in contenders {
            call(contender)
            calls[contender] = max(1, Int(0.05 / max(seconds(1, contender), 1e-7)))
        }
        var times: [GemmContender: [Double]] = [:]
        for round in 0..<rounds {
            // Alternate the order too, so no contender always runs right after another.
            for contender in round % 2 == 0 ? contenders : contenders.reversed() {
                times[contender, default: []].append(seconds(calls[contender]!, contender))
            }
        }
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        return times.mapValues { flops / $0.sorted()[$0.count / 2] * 1e-9 }
    }

    /// The sgemm table: one line per shape and thread count, GFLOP/s of every contender this
    /// machine has (C kernels it runs, the portable Swift kernel unless `portable` is false, the bf16
    /// kernel where the CPU has it, BLAS when a library is loaded), and the best Float32 C kernel's
    /// ratio to BLAS. `log` receives each line.
    public static func gemmTable(shapes: [GemmShape] = gemmShapes, threadCounts: [Int] = [1, 2], portable: Bool = true,
                                 rounds: Int = 5, log: (String) -> Void) {
        var contenders: [GemmContender] = BuiltinGemm.Kernel.allCases
            .filter { $0 != .portable && $0.isSupported }.map { .kernel($0) }
        if portable { contenders.append(.kernel(.portable)) }
        if MixedPrecision.isSupported { contenders.append(.bf16) }
        let hasBLAS = BLAS.backend != .builtin && BLAS.backend != .portable
        if hasBLAS { contenders.append(.blas) }
        log("sgemm GFLOP/s, median of \(rounds) interleaved rounds; BLAS: \(BLAS.note)")
        let header = contenders.map { $0.name.padding(toLength: 16, withPad: " ", startingAt: 0) }.joined()
        log("shape (m×n×k op)                      threads  " + header + (hasBLAS ? "C/BLAS" : ""))
        for shape in shapes {
            for threads in threadCounts {
                let rates = gemmRates(shape, threads: threads, contenders: contenders, rounds: rounds)
                let op = (shape.transA ? "T" : "N") + (shape.transB ? "T" : "N")
                let name = "\(shape.label) \(shape.m)×\(shape.n)×\(shape.k) \(op)"
                var line = name.padding(toLength: 38, withPad: " ", startingAt: 0) + String(format: "%7d  ", threads)
                line += contenders.map { String(format: "%-16.1f", rates[$0] ?? 0) }.joined()
                if hasBLAS, let blas = rates[.blas] {
                    let best = contenders.filter { $0 != .blas && $0 != .bf16 && $0 != .kernel(.portable) }.compactMap { rates[$0] }.max() ?? 0
                    line += String(format: "%.2f", best / blas)
                }
                log(line)
            }
        }
    }
}
