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
        subcommands: [DemoCommand.self, Doctor.self, Bench.self, Env.self, BanditCommand.self, TabularCommand.self, RL.self, LM.self, Generate.self, SFTCommand.self, RMCommand.self, PRMCommand.self, DPOCommand.self, KTOCommand.self, GRPOCommand.self, RLOOCommand.self, PPOCommand.self, OnlineDPOCommand.self, RFTCommand.self, EvalCommand.self, DataCommand.self, LabCommand.self, ReportCommand.self]
    )

    /// Runs the command; a Foundation file error that reaches here is printed as one line with its
    /// path and reason, not as an NSError dump.
    static func main() {
        do {
            var command = try parseAsRoot(joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
            try Communicator.start(silencingOtherRanks: true)  // joins the MPI job when started by mpirun/srun (or NUDGE_DISTRIBUTED=mpi)
            try command.run()
            Communicator.finish()
        } catch let error as NSError where error.domain == NSCocoaErrorDomain || error.domain == NSPOSIXErrorDomain {
            note("Error: \(fileSystemMessage(error))")
            Foundation.exit(1)
        } catch let interrupted as TrainingInterrupted {
            // 128 + SIGINT, so a scheduler tells an interrupted run from a finished one.
            note("Interrupted: \(interrupted)")
            Foundation.exit(130)
        } catch {
            exit(withError: error)
        }
    }
}

/// `--state -0.1,0` → `--state=-0.1,0`: the argument parser reads a value that starts with `-` as
/// an option, so a negative number after an option is joined to it (nothing after a bare `--`).
func joiningNegativeValues(_ arguments: [String]) -> [String] {
    var out: [String] = []
    for argument in arguments {
        if let previous = out.last, previous.hasPrefix("--"), previous != "--", !previous.contains("="),
           !out.contains("--"), isNegativeNumber(argument) {
            out[out.count - 1] = previous + "=" + argument
        } else {
            out.append(argument)
        }
    }
    return out
}

/// `-1`, `-0.5`, `-.5`, `-1e-3,2`: starts like a negative number.
private func isNegativeNumber(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    guard bytes.count >= 2, bytes[0] == UInt8(ascii: "-") else { return false }
    let isDigit = { (b: UInt8) in b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
    return isDigit(bytes[1]) || (bytes[1] == UInt8(ascii: ".") && bytes.count >= 3 && isDigit(bytes[2]))
}

/// Writes a line to standard error.
func note(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Runs a library call that checks what the command line gave: its `E` errors become usage errors
/// (exit 64, with the usage line; the message after `prefix`), as when a command rejects its
/// arguments itself.
func usageErrors<T, E: Error>(_ type: E.Type = RunSetupError.self, prefix: String = "", _ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as E { throw ValidationError(prefix + "\(error)") }
}
