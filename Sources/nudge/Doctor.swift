// `nudge doctor` (NudgeBenchmarks' SystemReport: what Nudge runs on, and how to make it faster) and `nudge bench`.

import ArgumentParser
import Foundation
import Nudge
import NudgeBenchmarks

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show versions, CPU features, the BLAS backend with its measured speed, the small-row kernel, and threads.")

    func run() throws { print(SystemReport.text()) }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the engine benchmarks (sgemm, per-op floor, MLP step, throughput).",
        discussion: "Peer numbers are read from Benchmarks/peers/results/engine_torch.json when present.")

    @Flag(help: "Print the full report as JSON.") var json = false
    @Flag(help: "Skip the largest matrix sizes.") var quick = false
    @Option(help: "Also write the JSON report to this file.") var output: String?

    func run() throws {
        let report = EngineBenchmarks.runAll(quick: quick) { note("· \($0)") }
        let text = EngineBenchmarks.json(report)
        if let output { try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) }
        if json { print(text); return }
        print(EngineBenchmarks.summary(report))
    }
}
