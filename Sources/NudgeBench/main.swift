// NudgeBench: runs the engine benchmarks and prints the JSON report (same as `nudge bench --json`).

import Foundation
import NudgeBenchmarks
import NudgeLM
import NudgeNN
import NudgeTensor
import NudgeRL

let quick = CommandLine.arguments.contains("--quick")

/// The value after `name` on the command line, if any.
func arg(_ name: String) -> String? {
    let a = CommandLine.arguments
    return a.firstIndex(of: name).flatMap { $0 + 1 < a.count ? a[$0 + 1] : nil }
}
if let i = CommandLine.arguments.firstIndex(of: "--only"), i + 1 < CommandLine.arguments.count {
    // A single benchmark, for profiling: mlp, floor.
    switch CommandLine.arguments[i + 1] {
    case "mlp": print(EngineBenchmarks.mlpStep())
    case "sgemm":
        // Built-in C kernels, the Swift kernel and BLAS side by side:
        // --only sgemm [--threads 1,2] [--rounds 5] [--shapes 0,2,5 | --dims m,n,k,m,n,k…] [--no-portable]
        let args = CommandLine.arguments
        func list(_ name: String) -> [Int]? { arg(name).map { $0.split(separator: ",").compactMap { Int($0) } } }
        var shapes = list("--shapes").map { $0.map { EngineBenchmarks.gemmShapes[$0] } } ?? EngineBenchmarks.gemmShapes
        if let d = list("--dims"), d.count % 3 == 0 {
            shapes = stride(from: 0, to: d.count, by: 3).map { EngineBenchmarks.GemmShape("", d[$0], d[$0 + 1], d[$0 + 2]) }
        }
        EngineBenchmarks.gemmTable(shapes: shapes, threadCounts: list("--threads") ?? [1, 2], portable: !args.contains("--no-portable"),
                                   rounds: list("--rounds")?.first ?? 5) { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
    case "fusedhead":
        // --only fusedhead --path fused|plain [--rows 2048] [--chunk 256] [--rounds 3]: one path per process, for peak RSS.
        let fused = arg("--path") != "plain", rows = arg("--rows").flatMap(Int.init) ?? 2048
        let chunk = arg("--chunk").flatMap(Int.init) ?? 256
        let seconds = EngineBenchmarks.fusedHeadSeconds(fused: fused, rows: rows, chunkRows: chunk, rounds: arg("--rounds").flatMap(Int.init) ?? 3)
        print(String(format: "LM head + log-softmax + gather, %@, %d rows × 576 → 49152, forward + backward: %.3f s (median)",
                     fused ? "fused (chunks of \(chunk) rows)" : "plain (full logits)", rows, seconds))
    case "qlora":
        // --only qlora --gguf path/to/model.gguf [--rounds 3]: Float32 vs Q8_0 frozen base under LoRA.
        guard let path = arg("--gguf") else { print("--only qlora needs --gguf path"); exit(2) }
        for line in try! EngineBenchmarks.qloraComparison(path: path, rounds: arg("--rounds").flatMap(Int.init) ?? 3) { print(line) }
    case "realgen":
        // --only realgen --model FILE --prompts generate.txt [--rows 16] [--new-tokens 32] [--rounds 4]
        guard let model = arg("--model"), let prompts = arg("--prompts") else { print("--only realgen needs --model and --prompts"); exit(2) }
        let r = try! EngineBenchmarks.realModelGeneration(model: model, prompts: prompts, rows: arg("--rows").flatMap(Int.init) ?? 16,
                                                          newTokens: arg("--new-tokens").flatMap(Int.init) ?? 32,
                                                          rounds: arg("--rounds").flatMap(Int.init) ?? 4,
                                                          weights: arg("--weights").flatMap(GenerationWeights.init(rawValue:)) ?? .float32)
        let fidelity = r.fidelity.map {
            ", \"weights\": \"bf16\", \"mean_abs_logprob_diff\": \($0.meanLogProbDifference), \"max_abs_logprob_diff\": \($0.maxLogProbDifference), \"greedy_tokens_agreeing\": \($0.greedyTokensAgreeing), \"greedy_tokens\": \($0.greedyTokens)"
        } ?? ""
        print("{\"mode\": \"generate\", \"s_per_call\": \(r.secondsPerCall.map { (($0 * 1000).rounded() / 1000) }), \"tokens_per_s\": \(r.tokensPerSecond), \"prompt_tokens\": \(r.promptTokens)\(fidelity)}")
    case "floor": print(EngineBenchmarks.opFloor())
    case "throughput": print(EngineBenchmarks.throughput())
    case "testbed": print(EngineBenchmarks.testbedSeconds())
    case "tanhcheck":
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.normal([128, 4], using: &rng)
        let model = MLP(sizes: [4, 64, 64, 2], activation: .tanh, using: &rng)
        let h = model.layers[0](x)
        print("max |pre-activation|", h.scalars.map { abs($0) }.max()!, "count ≥ 3:", h.scalars.filter { abs($0) >= 3 }.count)
        let v = SIMD8<Float>(repeating: 0.5)
        print(vtanh(v))
    case "sactry":
        for (hidden, steps, starts, lr) in [([32, 32], 3000, 300, Float(1e-3)), ([64, 64], 3000, 300, Float(1e-3)), ([32, 32], 4000, 300, Float(3e-3))] {
            var c = SACConfig()
            c.totalTimesteps = steps; c.learningStarts = starts; c.hiddenSizes = hidden; c.batchSize = 64; c.seed = 1
            c.policyLearningRate = lr; c.qLearningRate = lr
            let t0 = Date()
            let (_, r) = try! SAC.train(environmentID: "Pendulum-v1", config: c)
            print(hidden, steps, lr, r.episodes.map { Int($0.episodeReturn) }, Date().timeIntervalSince(t0))
        }
    case "ppo": print(EngineBenchmarks.json(try! EngineBenchmarks.ppoCartPole()))
    case "lmtrain": print(EngineBenchmarks.lmTrainStep(CommandLine.arguments.last == "M" ? "M" : "S"))
    case "lmsample": print(EngineBenchmarks.lmSampling(CommandLine.arguments.last == "M" ? "M" : "S"))
    case "decodekernels":
        // One thread; the weight cycled through 256 MB of copies (from memory) or one copy (from cache).
        for t in EngineBenchmarks.decodeKernels() {
            print("\(t.kernel) \(t.m)×\(t.n)×\(t.k): " + String(format: "%.1f µs from memory, %.1f µs from cache", t.fromMemory, t.fromCache))
        }
    case "forkjoin":
        // Two pieces of busy work per call with serial work between calls; overhead beyond the piece.
        if Engine.threads < 2 { print("--only forkjoin needs 2 threads or more") }
        for r in EngineBenchmarks.forkJoinOverhead() {
            print(String(format: "piece %4d µs, gap %4d µs: team %6.1f µs, GCD %6.1f µs", r.piece, r.gap, r.team, r.gcd))
        }
    case "smallgemm":
        for (m, n, k) in [(4, 128, 128), (4, 352, 128), (4, 128, 352), (4, 512, 128), (8, 352, 128), (8, 128, 352), (16, 352, 128), (1, 704, 256), (8, 4864, 896), (8, 151_936, 896), (1, 151_936, 896)] {
            let (unpacked, defaultPath, blas) = EngineBenchmarks.smallProductMicroseconds(m: m, n: n, k: k)
            print(String(format: "x·Wᵀ %d×%d×%d: unpacked AVX2 (1 thread) %.1f µs, default path %.1f µs, BLAS %.1f µs", m, n, k, unpacked, defaultPath, blas))
        }
    case "lm":
        for preset in ["S", "M"] {
            let train = EngineBenchmarks.lmTrainStep(preset)
            let sample = EngineBenchmarks.lmSampling(preset)
            print(String(format: "%@: train step %.1f ms median (%.1f best), %.0f tokens/s; sampling %.0f tokens/s (%.2f ms/step)",
                         preset, train.msMedian, train.msBest, train.tokensPerSecond, sample.tokensPerSecond, sample.msPerStep))
        }
    case "grpoadd":
        func number(_ name: String, _ d: Double) -> Double { arg(name).flatMap(Double.init) ?? d }
        try! EngineBenchmarks.grpoAdditionExperiment(sftEpochs: Int(number("--sft", 3)), grpoSteps: Int(number("--steps", 100)),
                                                     learningRate: Float(number("--lr", 1e-3)), beta: Float(number("--beta", 0)),
                                                     promptsPerStep: Int(number("--prompts", 8)), generations: Int(number("--g", 8)),
                                                     evalEvery: Int(number("--every", 10)))
    case "grpo":
        for beta in [Float(0), 0.04] {
            print(String(format: "GRPO step (S, 2 prompts × 4 × 32 tokens, β = %.2f): %.4f s", beta, try! EngineBenchmarks.grpoStepSeconds(beta: beta)))
        }
    case "dpo":
        let r = try! EngineBenchmarks.dpoStepSeconds()
        print(String(format: "DPO step (S, 8 pairs, ≤128 tokens): %.3f s median after the first; %.3f s mean with tokenization and the reference pass",
                     r.median, r.meanWithReference))
    case "sft":
        let r = try! EngineBenchmarks.sftStep()
        print(String(format: "SFT step (S, 8 rows, ≤128 tokens): %.4f s median, %.0f tokens/s", r.seconds, r.tokensPerSecond))
    case "rl": print(EngineBenchmarks.json(EngineBenchmarks.rlReport()))
    default: print("unknown benchmark")
    }
    exit(0)
}
let report = EngineBenchmarks.runAll(quick: quick) { FileHandle.standardError.write(Data("· \($0)\n".utf8)) }
print(EngineBenchmarks.json(report))
