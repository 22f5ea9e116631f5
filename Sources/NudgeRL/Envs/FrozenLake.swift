// FrozenLake-v1: walk from S to G across a frozen lake without falling into a hole. Mirrors
// Gymnasium 1.x `gymnasium/envs/toy_text/frozen_lake.py` (FrozenLakeEnv): the 4x4 and 8x8 maps,
// custom maps, actions LEFT/DOWN/RIGHT/UP, the slippery rule (the intended direction with
// `success_rate`, each perpendicular one with (1 − success_rate)/2, listed in the order
// (a − 1) mod 4, a, (a + 1) mod 4), `reward_schedule` (goal, hole, frozen), termination on H or
// G, absorbing H and G, and `generate_random_map` (cells frozen with probability p until a
// depth-first search finds a path from S to G).

import Foundation
import NudgeTensor

/// The frozen-lake grid world (Gymnasium's FrozenLake-v1 and FrozenLake8x8-v1).
///
/// States are `row * columns + column`. Actions: 0 left, 1 down, 2 right, 3 up. Map letters:
/// S start, F frozen, H hole, G goal.
public final class FrozenLake: TabularCoreEnvironment {
    public typealias Observation = Int
    public typealias Action = Int

    /// The built-in maps (Gymnasium's `map_name`).
    public enum MapName: Sendable, Equatable {
        /// "4x4", FrozenLake-v1.
        case fourByFour
        /// "8x8", FrozenLake8x8-v1.
        case eightByEight
    }

    /// Gymnasium's `MAPS["4x4"]`.
    public static let map4x4 = ["SFFF", "FHFH", "FFFH", "HFFG"]
    /// Gymnasium's `MAPS["8x8"]`.
    public static let map8x8 = [
        "SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF",
        "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG",
    ]

    /// FrozenLake-v1's registered time limit (4x4 and custom maps).
    public static let maxEpisodeSteps = 100
    /// FrozenLake8x8-v1's registered time limit.
    public static let maxEpisodeSteps8x8 = 200

    /// A built-in lake inside `TimeLimit`, as `gymnasium.make("FrozenLake-v1")` (100 steps) or
    /// `gymnasium.make("FrozenLake8x8-v1")` (200 steps).
    public static func make(mapName: MapName = .fourByFour, isSlippery: Bool = true) -> TimeLimit<FrozenLake> {
        let env = FrozenLake(mapName: mapName, isSlippery: isSlippery)
        return TimeLimit(env, maxEpisodeSteps: mapName == .eightByEight ? maxEpisodeSteps8x8 : maxEpisodeSteps)
    }

    /// "FrozenLake8x8-v1" for the 8x8 map, else "FrozenLake-v1".
    public let id: String
    /// The map, one string per row (Gymnasium's `desc`).
    public let map: [String]
    /// Rows of the map.
    public let rowCount: Int
    /// Columns of the map.
    public let columnCount: Int
    /// Whether moves slip to a perpendicular direction.
    public let isSlippery: Bool
    /// Gymnasium's `success_rate`: the probability of moving as intended when slippery.
    public let successRate: Double
    /// Gymnasium's `reward_schedule`: rewards for entering G, H and F/S cells.
    public let rewardSchedule: (goal: Double, hole: Double, frozen: Double)

    /// Discrete(rows × columns).
    public let observationSpace: Space
    /// Discrete(4): left, down, right, up.
    public let actionSpace: Space = .discrete(n: 4)
    /// 4.
    public let actionCount = 4
    var core: TabularCore

    /// A built-in lake.
    /// - Parameters:
    ///   - mapName: 4x4 (FrozenLake-v1, the default) or 8x8 (FrozenLake8x8-v1).
    ///   - isSlippery: Gymnasium's `is_slippery` (default true).
    public convenience init(mapName: MapName = .fourByFour, isSlippery: Bool = true) {
        self.init(validMap: mapName == .eightByEight ? Self.map8x8 : Self.map4x4, isSlippery: isSlippery,
                  successRate: 1.0 / 3.0, rewardSchedule: (1, 0, 0))
    }

    /// A lake on a custom map (Gymnasium's `desc`).
    /// - Parameters:
    ///   - map: equal-length rows of S, F, H, G with at least one S.
    ///   - isSlippery: Gymnasium's `is_slippery` (default true).
    ///   - successRate: Gymnasium's `success_rate` (default 1/3).
    ///   - rewardSchedule: Gymnasium's `reward_schedule` (default (1, 0, 0)).
    /// - Throws: `EnvironmentError.invalidArgument` for a malformed map or success rate.
    public convenience init(map: [String], isSlippery: Bool = true, successRate: Double = 1.0 / 3.0,
                            rewardSchedule: (goal: Double, hole: Double, frozen: Double) = (1, 0, 0)) throws {
        let grid = map.map { Array($0) }
        guard let width = grid.first?.count, width > 0, grid.allSatisfy({ $0.count == width }) else {
            throw EnvironmentError.invalidArgument("FrozenLake: the map must be non-empty rows of equal length, got \(map)")
        }
        if let bad = grid.joined().first(where: { !"SFHG".contains($0) }) {
            throw EnvironmentError.invalidArgument("FrozenLake: map letter '\(bad)' is not one of S, F, H, G")
        }
        guard grid.joined().contains("S") else {
            throw EnvironmentError.invalidArgument("FrozenLake: the map has no start cell S")
        }
        guard (0...1).contains(successRate) else {
            throw EnvironmentError.invalidArgument("FrozenLake: success rate \(successRate) is not in [0, 1]")
        }
        self.init(validMap: map, isSlippery: isSlippery, successRate: successRate, rewardSchedule: rewardSchedule)
    }

    /// Builds the transition table of a checked map (Gymnasium's constructor).
    private init(validMap map: [String], isSlippery: Bool, successRate: Double,
                 rewardSchedule: (goal: Double, hole: Double, frozen: Double)) {
        let grid = map.map { Array($0) }
        let rows = grid.count, columns = grid[0].count
        let failRate = (1.0 - successRate) / 2.0
        func move(_ row: Int, _ column: Int, _ action: Int) -> (Int, Int) {
            switch action {
            case 0: (row, max(column - 1, 0))
            case 1: (min(row + 1, rows - 1), column)
            case 2: (row, min(column + 1, columns - 1))
            default: (max(row - 1, 0), column)
            }
        }
        func outcome(_ row: Int, _ column: Int, _ action: Int, probability: Double) -> Transition {
            let (r, c) = move(row, column, action)
            let letter = grid[r][c]
            let reward = letter == "G" ? rewardSchedule.goal : letter == "H" ? rewardSchedule.hole : rewardSchedule.frozen
            return Transition(probability: probability, nextState: r * columns + c, reward: reward,
                              terminated: letter == "G" || letter == "H")
        }
        var table: [[[Transition]]] = []
        for row in 0..<rows {
            for column in 0..<columns {
                let s = row * columns + column
                let absorbing = grid[row][column] == "G" || grid[row][column] == "H"
                table.append((0..<4).map { a in
                    if absorbing { return [Transition(probability: 1, nextState: s, reward: 0, terminated: true)] }
                    if !isSlippery { return [outcome(row, column, a, probability: 1)] }
                    return [(a + 3) % 4, a, (a + 1) % 4].map { b in
                        outcome(row, column, b, probability: b == a ? successRate : failRate)
                    }
                })
            }
        }
        let starts = grid.joined().map { $0 == "S" ? 1.0 : 0.0 }
        let startCount = starts.reduce(0, +)
        id = map == Self.map8x8 ? "FrozenLake8x8-v1" : "FrozenLake-v1"
        self.map = map
        rowCount = rows
        columnCount = columns
        self.isSlippery = isSlippery
        self.successRate = successRate
        self.rewardSchedule = rewardSchedule
        observationSpace = .discrete(n: rows * columns)
        core = TabularCore(id: id, actionCount: 4, transitions: table,
                           initialDistribution: starts.map { $0 / startCount })
    }

    /// Starts on an S cell (uniformly among several).
    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Int, info: Info) {
        (core.reset(seed: seed), ["prob": .double(1)])
    }

    /// Samples an outcome of `transitions[s][action]`; info carries its `prob`.
    public func step(_ action: Int) throws -> Step<Int> { try core.step(action) }

    /// Steps with the `outcome`-th entry of `transitions[s][action]` instead of a sampled one
    /// (to replay recorded stochastic trajectories).
    public func step(_ action: Int, outcome: Int) throws -> Step<Int> { try core.step(action, outcome: outcome) }

    /// A random `size`×`size` map with S at the top left, G at the bottom right, and every other
    /// cell frozen with probability `p` (else a hole), redrawn until a path joins S and G
    /// (Gymnasium's `generate_random_map`; numpy's draws are not reproduced, the distribution is).
    public static func generateRandomMap(size: Int = 8, p: Double = 0.8, seed: UInt64? = nil) -> [String] {
        precondition(size >= 2, "generateRandomMap: size must be at least 2, got \(size)")
        var rng = RandomGenerator(seed: seed ?? defaultEnvironmentSeed)
        let frozenProbability = min(1, p)
        while true {
            var board = (0..<size).map { _ in
                (0..<size).map { _ in rng.uniform() < frozenProbability ? Character("F") : Character("H") }
            }
            board[0][0] = "S"
            board[size - 1][size - 1] = "G"
            if hasPath(board) { return board.map { String($0) } }
        }
    }

    /// Gymnasium's `is_valid`: a depth-first search from (0, 0) through non-hole cells reaches G.
    static func hasPath(_ board: [[Character]]) -> Bool {
        let size = board.count
        var frontier = [(0, 0)]
        var discovered = Set<Int>()
        while let (r, c) = frontier.popLast() {
            guard discovered.insert(r * size + c).inserted else { continue }
            for (dr, dc) in [(1, 0), (0, 1), (-1, 0), (0, -1)] {
                let (nr, nc) = (r + dr, c + dc)
                guard nr >= 0, nr < size, nc >= 0, nc < size else { continue }
                if board[nr][nc] == "G" { return true }
                if board[nr][nc] != "H" { frontier.append((nr, nc)) }
            }
        }
        return false
    }
}
