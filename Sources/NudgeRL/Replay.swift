// Replaying actions from a given internal state (`nudge env replay`): the environment is reset and
// put in the state (e.g. CartPole's x, x_dot, theta, theta_dot), then stepped through the actions
// until the episode ends, each step reported with the state after it, to compare an environment's
// dynamics with another implementation step by step.

import Foundation

/// One replayed step: the action, what the environment returned, and its internal state after it.
public struct ReplayStep: CustomStringConvertible {
    /// The step's number, from 1.
    public var number: Int
    /// The action taken.
    public var action: ActionValue
    /// What the environment returned.
    public var result: Step<[Float]>
    /// The internal state after the step.
    public var state: [Double]

    /// The step as one JSON object with sorted keys: step, action, observation, reward, terminated, truncated, state.
    public func json() throws -> String {
        let object: [String: Any] = [
            "step": number, "action": action.description, "observation": result.observation.map(Double.init),
            "reward": result.reward, "terminated": result.terminated, "truncated": result.truncated, "state": state,
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// `step N: action A → obs O reward R terminated T truncated U`.
    public var description: String {
        "step \(number): action \(action) → obs \(result.observation) reward \(result.reward) terminated \(result.terminated) truncated \(result.truncated)"
    }
}

extension AnyEnvironment {
    /// Resets the environment (seed 0) and sets its internal state.
    public func reset(toState state: [Double]) throws {
        _ = reset(seed: 0, options: nil)
        try setState(state)
    }

    /// Steps through `actions`, handing each step to `body`, until they run out or the episode
    /// ends; returns the number of steps taken.
    @discardableResult
    public func replay(_ actions: [ActionValue], _ body: (ReplayStep) throws -> Void) throws -> Int {
        for (i, action) in actions.enumerated() {
            let result = try step(action)
            try body(ReplayStep(number: i + 1, action: action, result: result, state: state))
            if result.done { return i + 1 }
        }
        return actions.count
    }
}
