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
        func run() throws {
            for id in Registry.ids {
                let env = try Registry.make(id)
                print("\(id.padding(toLength: 26, withPad: " ", startingAt: 0)) obs \(env.observationSpace)  action \(env.actionSpace)")
            }
        }
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
            let values = try parseNumbers(state, field: "--state")
            _ = environment.reset(seed: 0, options: nil)
            try environment.setState(values)
            let parsedActions = try actions.split(separator: ",").map { token -> ActionValue in
                let text = token.trimmingCharacters(in: .whitespaces)
                if case .discrete = environment.actionSpace {
                    guard let a = Int(text) else { throw ValidationError("--actions: '\(text)' is not an integer action") }
                    return .discrete(a)
                }
                return .continuous(try parseNumbers(text, separator: ";", field: "--actions").map(Float.init))
            }
            for (i, action) in parsedActions.enumerated() {
                let s = try environment.step(action)
                if json {
                    let object: [String: Any] = [
                        "step": i + 1, "action": action.description, "observation": s.observation.map(Double.init),
                        "reward": s.reward, "terminated": s.terminated, "truncated": s.truncated, "state": environment.state,
                    ]
                    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                    print(String(decoding: data, as: UTF8.self))
                } else {
                    print("step \(i + 1): action \(action) → obs \(s.observation) reward \(s.reward) terminated \(s.terminated) truncated \(s.truncated)")
                }
                if s.done && i < parsedActions.count - 1 {
                    note("episode ended at step \(i + 1); remaining actions ignored")
                    break
                }
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check registered environments against the reset/step contract.")
        @Argument(help: "Environment ids (default: all).") var ids: [String] = []
        func run() throws {
            var failed = false
            for id in ids.isEmpty ? Registry.ids : ids {
                let problems = EnvironmentChecker.check(try Registry.make(id))
                print(problems.isEmpty ? "✓ \(id)" : "✗ \(id)\n" + problems.map { "    \($0)" }.joined(separator: "\n"))
                failed = failed || !problems.isEmpty
            }
            if failed { throw ExitCode(1) }
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
