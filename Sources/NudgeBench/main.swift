// NudgeBench: runs the engine benchmarks and prints the JSON report (same as `nudge bench --json`).

import Foundation
import NudgeBenchmarks

let quick = CommandLine.arguments.contains("--quick")
if let i = CommandLine.arguments.firstIndex(of: "--only"), i + 1 < CommandLine.arguments.count {
    // A single benchmark, for profiling: mlp, floor.
    switch CommandLine.arguments[i + 1] {
    case "mlp": print(EngineBenchmarks.mlpStep())
    case "floor": print(EngineBenchmarks.opFloor())
    case "throughput": print(EngineBenchmarks.throughput())
    case "testbed": print(EngineBenchmarks.testbedSeconds())
    case "rl": print(EngineBenchmarks.json(EngineBenchmarks.rlReport()))
    default: print("unknown benchmark")
    }
    exit(0)
}
let report = EngineBenchmarks.runAll(quick: quick) { FileHandle.standardError.write(Data("· \($0)\n".utf8)) }
print(EngineBenchmarks.json(report))
