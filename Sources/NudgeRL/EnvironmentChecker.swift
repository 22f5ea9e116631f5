// Validates a user's environment against the reset/step contract, in the spirit of Gymnasium's
// `check_env`: spaces well formed, observations inside the observation space, finite rewards,
// seeded resets reproducible, invalid actions rejected, episodes that end and restart.

import Foundation
import NudgeTensor

/// Checks environments against the contract.
public enum EnvironmentChecker {
    /// Checks the registered environments `ids` in turn, handing `report` each one's result ("✓ id",
    /// or "✗ id" and each problem on an indented line); returns whether all passed.
    public static func checkRegistered(_ ids: [String], report: (String) -> Void) throws -> Bool {
        var passed = true
        for id in ids {
            let problems = check(try Registry.make(id))
            report(problems.isEmpty ? "✓ \(id)" : "✗ \(id)\n" + problems.map { "    \($0)" }.joined(separator: "\n"))
            passed = passed && problems.isEmpty
        }
        return passed
    }

    /// Every problem found (empty when the environment passes), each a sentence naming the check.
    public static func check(_ env: AnyEnvironment, steps: Int = 200, seed: UInt64 = 0) -> [String] {
        var problems: [String] = []
        problems += checkSpace(env.observationSpace, name: "observation space")
        problems += checkSpace(env.actionSpace, name: "action space")

        let (first, _) = env.reset(seed: seed, options: nil)
        if !inSpace(first, env.observationSpace) {
            problems.append("reset(seed:) returned \(first), outside the observation space \(env.observationSpace)")
        }
        let (again, _) = env.reset(seed: seed, options: nil)
        if first != again {
            problems.append("reset(seed: \(seed)) is not reproducible: \(first) then \(again)")
        }

        var rng = RandomGenerator(seed: seed)
        var trajectory: [[Float]] = []
        var episodes = 0
        for t in 0..<steps {
            let action = sampleAction(env.actionSpace, &rng)
            do {
                let s = try env.step(action)
                trajectory.append(s.observation)
                if !inSpace(s.observation, env.observationSpace) {
                    problems.append("step \(t): observation \(s.observation) outside \(env.observationSpace)")
                    break
                }
                if !s.reward.isFinite { problems.append("step \(t): reward \(s.reward) is not finite"); break }
                if s.done {
                    episodes += 1
                    _ = env.reset(seed: nil, options: nil)
                }
            } catch {
                problems.append("step \(t) with valid action \(action) threw: \(error)")
                break
            }
        }
        // The same seed and actions must give the same trajectory.
        _ = env.reset(seed: seed, options: nil)
        var replayRNG = RandomGenerator(seed: seed)
        for (t, expected) in trajectory.enumerated() {
            guard let s = try? env.step(sampleAction(env.actionSpace, &replayRNG)) else { break }
            if s.observation != expected {
                problems.append("step \(t) differs between two runs with the same seed and actions")
                break
            }
            if s.done { _ = env.reset(seed: nil, options: nil) }
        }

        if case .discrete(let n, let start) = env.actionSpace {
            _ = env.reset(seed: seed, options: nil)
            for bad in [start - 1, start + n] {
                do {
                    _ = try env.step(.discrete(bad))
                    problems.append("step with action \(bad), outside \(env.actionSpace), did not throw")
                } catch {}
            }
        }
        return problems
    }

    static func checkSpace(_ space: Space, name: String) -> [String] {
        switch space {
        case .discrete(let n, _): return n > 0 ? [] : ["\(name): Discrete needs n > 0, got \(n)"]
        case .box(let low, let high, let shape):
            var p: [String] = []
            if low.count != shape.reduce(1, *) || high.count != low.count {
                p.append("\(name): bounds have \(low.count)/\(high.count) values for shape \(shape)")
            }
            if zip(low, high).contains(where: { !($0 <= $1) }) { p.append("\(name): a lower bound exceeds its upper bound") }
            return p
        case .multiDiscrete(let nvec):
            return nvec.allSatisfy { $0 > 0 } ? [] : ["\(name): MultiDiscrete needs positive sizes, got \(nvec)"]
        }
    }

    static func inSpace(_ obs: [Float], _ space: Space) -> Bool {
        if case .discrete = space { return obs.count == 1 && space.contains(Int(obs[0])) }
        return space.contains(obs)
    }

    static func sampleAction(_ space: Space, _ rng: inout RandomGenerator) -> ActionValue {
        if case .discrete = space { return .discrete(space.sampleDiscrete(using: &rng)) }
        return .continuous(space.sample(using: &rng))
    }
}
