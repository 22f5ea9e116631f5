// CliffWalking-v1: walk along a cliff from the bottom-left corner to the bottom-right one (Sutton &
// Barto 2018, Example 6.6). Mirrors Gymnasium 1.x `gymnasium/envs/toy_text/cliffwalking.py`
// (CliffWalkingEnv): a 4x12 grid, start (3, 0), goal (3, 11), cliff (3, 1...10), actions
// UP/RIGHT/DOWN/LEFT, −1 per step, −100 and back to the start for stepping onto the cliff (not
// terminal), termination on reaching the goal. `is_slippery` (default false, CliffWalking-v1;
// true is CliffWalkingSlippery-v1) moves in (a − 1) mod 4, a, (a + 1) mod 4 with 1/3 each.
// Gymnasium registers no time limit for either.

import Foundation
import NudgeTensor

/// The cliff-walking grid world (Gymnasium's CliffWalking-v1 / CliffWalkingSlippery-v1).
///
/// States are `row * 12 + column`. Actions: 0 up, 1 right, 2 down, 3 left.
public final class CliffWalking: TabularCoreEnvironment {
    public typealias Observation = Int
    public typealias Action = Int

    /// Gymnasium registers CliffWalking-v1 without a time limit.
    public static let maxEpisodeSteps: Int? = nil

    /// A CliffWalking inside `TimeLimit`; with no limit given (Gymnasium's registration), the
    /// limit is `Int.max`, i.e. never reached.
    public static func make(isSlippery: Bool = false, maxEpisodeSteps: Int? = maxEpisodeSteps) -> TimeLimit<CliffWalking> {
        TimeLimit(CliffWalking(isSlippery: isSlippery), maxEpisodeSteps: maxEpisodeSteps ?? Int.max)
    }

    /// "CliffWalking-v1", or "CliffWalkingSlippery-v1" when slippery.
    public let id: String
    /// Grid rows (`shape[0]`).
    public let rowCount = 4
    /// Grid columns (`shape[1]`).
    public let columnCount = 12
    /// `start_state_index`: (3, 0).
    public let startState = 36
    /// The goal (3, 11).
    public let goalState = 47
    /// Whether moves slip to a perpendicular direction (Gymnasium's `is_slippery`).
    public let isSlippery: Bool

    /// Discrete(48).
    public let observationSpace: Space = .discrete(n: 48)
    /// Discrete(4): up, right, down, left.
    public let actionSpace: Space = .discrete(n: 4)
    /// 4.
    public let actionCount = 4
    var core: TabularCore

    /// - Parameter isSlippery: Gymnasium's `is_slippery` (default false).
    public init(isSlippery: Bool = false) {
        self.isSlippery = isSlippery
        id = isSlippery ? "CliffWalkingSlippery-v1" : "CliffWalking-v1"
        let rows = 4, columns = 12, start = 36
        let offsets = [(-1, 0), (0, 1), (1, 0), (0, -1)]  // UP, RIGHT, DOWN, LEFT
        func isCliff(_ r: Int, _ c: Int) -> Bool { r == rows - 1 && c >= 1 && c <= columns - 2 }
        var table: [[[Transition]]] = []
        for s in 0..<rows * columns {
            let (row, column) = (s / columns, s % columns)
            table.append((0..<4).map { move in
                let directions = isSlippery ? [(move + 3) % 4, move, (move + 1) % 4] : [move]
                let probability = 1 / Double(directions.count)
                return directions.map { d in
                    let r = min(max(row + offsets[d].0, 0), rows - 1)
                    let c = min(max(column + offsets[d].1, 0), columns - 1)
                    if isCliff(r, c) {
                        return Transition(probability: probability, nextState: start, reward: -100, terminated: false)
                    }
                    return Transition(probability: probability, nextState: r * columns + c, reward: -1,
                                      terminated: r == rows - 1 && c == columns - 1)
                }
            })
        }
        var initial = [Double](repeating: 0, count: rows * columns)
        initial[start] = 1
        core = TabularCore(id: id, actionCount: 4, transitions: table, initialDistribution: initial)
    }

    /// Starts at (3, 0).
    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Int, info: Info) {
        (core.reset(seed: seed), ["prob": .double(1)])
    }

    /// Samples an outcome of `transitions[s][action]`; info carries its `prob`.
    public func step(_ action: Int) throws -> Step<Int> { try core.step(action) }

    /// Steps with the `outcome`-th entry of `transitions[s][action]` instead of a sampled one.
    public func step(_ action: Int, outcome: Int) throws -> Step<Int> { try core.step(action, outcome: outcome) }
}
