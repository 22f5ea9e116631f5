// `nudge env`: list, check and replay environments.

import ArgumentParser
import Foundation
import Nudge

struct Env: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, check and replay environments.",
        subcommands: [List.self, Replay.self, Check.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the registered environment ids with their spaces.")
        func run() throws { print(try Registry.listing()) }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay actions from a given internal state and print each step.",
            discussion: """
            Sets the environment's internal state (e.g. CartPole's x, x_dot, theta, theta_dot), then
            steps through the actions (a continuous action's components are separated by ';').
            Example:
              nudge env replay --env CartPole-v1 --state 0.01,0,0.02,0 --actions 1,0,1 --json
            """)

        @Option(help: "Environment id (see `nudge env list`).") var env: String
        @Option(help: "Comma-separated internal state.") var state: String
        @Option(help: "Comma-separated actions.") var actions: String
        @Flag(help: "Print JSON lines.") var json = false

        func run() throws {
            let environment = try Registry.make(env)
            try environment.reset(toState: try parseNumbers(state, field: "--state"))
            let parsedActions = try actions.split(separator: ",").map { token -> ActionValue in
                let text = token.trimmingCharacters(in: .whitespaces)
                if case .discrete = environment.actionSpace {
                    guard let a = Int(text) else { throw ValidationError("--actions: '\(text)' is not an integer action") }
                    return .discrete(a)
                }
                return .continuous(try parseNumbers(text, separator: ";", field: "--actions").map(Float.init))
            }
            let taken = try environment.replay(parsedActions) { step in print(json ? try step.json() : step.description) }
            if taken < parsedActions.count { note("episode ended at step \(taken); remaining actions ignored") }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check registered environments against the reset/step contract.")
        @Argument(help: "Environment ids (default: all).") var ids: [String] = []
        func run() throws {
            let passed = try EnvironmentChecker.checkRegistered(ids.isEmpty ? Registry.ids : ids) { print($0) }
            if !passed { throw ExitCode(1) }
        }
    }
}

/// Numbers from a separated list; an unparsable item is an error naming the option.
func parseNumbers(_ text: String, separator: Character = ",", field: String) throws -> [Double] {
    try text.split(separator: separator).map {
        let item = $0.trimmingCharacters(in: .whitespaces)
        guard let v = Double(item) else { throw ValidationError("\(field): '\(item)' is not a number") }
        return v
    }
}
