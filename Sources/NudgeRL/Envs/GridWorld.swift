// GridWorld: the seed lab's 4x4 deterministic grid world. The agent starts at (0, 0) and moves
// up, down, left or right; moves into a wall leave it in place. Reaching the goal (3, 3) pays +1
// and terminates; every other step costs 0.01. The goal is absorbing (reward 0, terminated), as
// Gymnasium's toy-text environments treat terminal cells. Not a Gymnasium environment; its time
// limit of 100 steps is this library's choice.

import Foundation
import NudgeTensor

/// A 4x4 grid world with a goal in the far corner.
///
/// States are `row * 4 + column`, starting at 0 with the goal at 15. Actions: 0 up, 1 down,
/// 2 left, 3 right.
public final class GridWorld: TabularCoreEnvironment {
    public typealias Observation = Int
    public typealias Action = Int

    /// The time limit of `make()` (a library choice; not a Gymnasium registration).
    public static let maxEpisodeSteps = 100

    /// A GridWorld inside `TimeLimit(maxEpisodeSteps)`.
    public static func make() -> TimeLimit<GridWorld> { TimeLimit(GridWorld(), maxEpisodeSteps: maxEpisodeSteps) }

    /// "GridWorld-v0".
    public let id = "GridWorld-v0"
    /// Rows and columns of the square grid.
    public let size = 4
    /// The start cell's state, (0, 0).
    public let startState = 0
    /// The goal cell's state, (3, 3).
    public let goalState = 15
    /// The reward for entering the goal.
    public let goalReward = 1.0
    /// The reward of every other step, wall bumps included.
    public let stepReward = -0.01

    /// Discrete(16).
    public let observationSpace: Space = .discrete(n: 16)
    /// Discrete(4): up, down, left, right.
    public let actionSpace: Space = .discrete(n: 4)
    /// 4.
    public let actionCount = 4
    var core: TabularCore

    /// The 4x4 grid with start (0, 0) and goal (3, 3).
    public init() {
        let size = 4, goal = 15
        let offsets = [(-1, 0), (1, 0), (0, -1), (0, 1)]  // up, down, left, right
        let table: [[[Transition]]] = (0..<size * size).map { s in
            (0..<4).map { a in
                if s == goal { return [Transition(probability: 1, nextState: s, reward: 0, terminated: true)] }
                let row = min(max(s / size + offsets[a].0, 0), size - 1)
                let column = min(max(s % size + offsets[a].1, 0), size - 1)
                let next = row * size + column
                return [Transition(probability: 1, nextState: next, reward: next == goal ? 1.0 : -0.01,
                                   terminated: next == goal)]
            }
        }
        var initial = [Double](repeating: 0, count: size * size)
        initial[0] = 1
        core = TabularCore(id: id, actionCount: 4, transitions: table, initialDistribution: initial)
    }

    /// Starts at (0, 0).
    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Int, info: Info) {
        (core.reset(seed: seed), ["prob": .double(1)])
    }

    /// Moves (or bumps into a wall); +1 and terminated on reaching the goal, else −0.01.
    public func step(_ action: Int) throws -> Step<Int> { try core.step(action) }
}
