// NudgeBench: runs the engine benchmarks and prints the JSON report (same as `nudge bench --json`).

import Foundation
import NudgeBenchmarks

let quick = CommandLine.arguments.contains("--quick")
let report = EngineBenchmarks.runAll(quick: quick) { FileHandle.standardError.write(Data("· \($0)\n".utf8)) }
print(EngineBenchmarks.json(report))
