// The `nudge` command line: maps flags onto the library's types and renders its results.

import ArgumentParser
import Foundation
import Nudge
import NudgeBenchmarks

@main
struct NudgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nudge",
        abstract: "Reinforcement learning and language-model post-training in Swift.",
        discussion: """
        Examples:
          nudge demo                 train a small model end to end and write runs/demo
          nudge doctor               show the BLAS backend, its speed and thread settings
          nudge bench --json         run the engine benchmarks
          nudge lab overoptimization --quick   proxy vs gold reward under best-of-n, GRPO and PPO
        """,
        version: NudgeVersion.string,
        subcommands: [Demo.self, Doctor.self, Bench.self, Env.self, BanditCommand.self, TabularCommand.self, RL.self, LM.self, Generate.self, SFTCommand.self, RMCommand.self, DPOCommand.self, KTOCommand.self, GRPOCommand.self, RLOOCommand.self, PPOCommand.self, EvalCommand.self, LabCommand.self, ReportCommand.self]
    )
}

/// Writes a line to standard error.
func note(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
