// Taxi-v3: pick a passenger up at one of four stands and drop them at another (Dietterich 2000).
// Mirrors Gymnasium 1.x `gymnasium/envs/toy_text/taxi.py` (TaxiEnv with its defaults, is_rainy and
// fickle_passenger off): the fixed 5x5 map with its walls, the encoding
// ((row·5 + column)·5 + passenger)·4 + destination, actions south/north/east/west/pickup/dropoff,
// −1 per step, +20 for delivering (terminal), −10 for an illegal pickup or dropoff, dropping the
// passenger at another stand leaves them there, the initial state uniform over the 300 states
// with the passenger waiting at a stand other than the destination, and `action_mask`.
// Gymnasium 1.3+ registers these default dynamics as Taxi-v4 (v4 changed only the rainy and
// fickle options); the id here stays Taxi-v3.

import Foundation
import NudgeTensor

/// The taxi task (Gymnasium's Taxi-v3/v4 with default options).
///
/// Actions: 0 south, 1 north, 2 east, 3 west, 4 pickup, 5 dropoff. Passenger locations 0–3 are
/// the stands R(0,0), G(0,4), Y(4,0), B(4,3); 4 means in the taxi.
public final class Taxi: TabularCoreEnvironment {
    public typealias Observation = Int
    public typealias Action = Int

    /// Taxi's registered time limit.
    public static let maxEpisodeSteps = 200

    /// A Taxi inside `TimeLimit(maxEpisodeSteps)`, as `gymnasium.make("Taxi-v3")`.
    public static func make() -> TimeLimit<Taxi> { TimeLimit(Taxi(), maxEpisodeSteps: maxEpisodeSteps) }

    /// Gymnasium's `MAP`: ':' is an opening between cells, '|' a wall.
    public static let map = [
        "+---------+",
        "|R: | : :G|",
        "| : | : : |",
        "| : : : : |",
        "| | : | : |",
        "|Y| : |B: |",
        "+---------+",
    ]
    /// The stands R, G, Y, B as (row, column) (Gymnasium's `locs`).
    public static let stands: [(row: Int, column: Int)] = [(0, 0), (0, 4), (4, 0), (4, 3)]

    /// The state index of a taxi position, passenger location (0–3 a stand, 4 in the taxi) and
    /// destination stand (Gymnasium's `encode`).
    public static func encode(row: Int, column: Int, passenger: Int, destination: Int) -> Int {
        ((row * 5 + column) * 5 + passenger) * 4 + destination
    }

    /// The parts of a state in `0..<500` (Gymnasium's `decode`).
    public static func decode(_ state: Int) -> (row: Int, column: Int, passenger: Int, destination: Int) {
        precondition((0..<500).contains(state), "Taxi.decode: state \(state) is not in 0..<500")
        return (state / 100, state / 20 % 5, state / 4 % 5, state % 4)
    }

    /// Which actions change the state (1) or do nothing but cost a step (0) (Gymnasium's
    /// `action_mask`, also in every info as `action_mask`).
    public static func actionMask(_ state: Int) -> [Bool] {
        let (row, column, passenger, destination) = decode(state)
        let here = stands.firstIndex { $0 == (row, column) }
        return [
            row < 4,
            row > 0,
            column < 4 && opening(row: row, eastOf: column),
            column > 0 && opening(row: row, eastOf: column - 1),
            passenger < 4 && here == passenger,
            passenger == 4 && (here == destination || here != nil),
        ]
    }

    /// Whether the map has an opening between (row, column) and (row, column + 1).
    private static func opening(row: Int, eastOf column: Int) -> Bool {
        let line = Array(map[row + 1])
        return line[2 * column + 2] == ":"
    }

    /// "Taxi-v3".
    public let id = "Taxi-v3"
    /// Discrete(500).
    public let observationSpace: Space = .discrete(n: 500)
    /// Discrete(6): south, north, east, west, pickup, dropoff.
    public let actionSpace: Space = .discrete(n: 6)
    /// 6.
    public let actionCount = 6
    var core: TabularCore

    /// Builds the transition table and initial distribution of the default Taxi.
    public init() {
        var table: [[[Transition]]] = []
        var initial = [Double](repeating: 0, count: 500)
        for state in 0..<500 {
            let (row, column, passenger, destination) = Self.decode(state)
            if passenger < 4 && passenger != destination { initial[state] = 1.0 / 300.0 }
            let here = Self.stands.firstIndex { $0 == (row, column) }
            table.append((0..<6).map { action in
                var (newRow, newColumn, newPassenger) = (row, column, passenger)
                var reward = -1.0, terminated = false
                switch action {
                case 0: newRow = min(row + 1, 4)
                case 1: newRow = max(row - 1, 0)
                case 2: if Self.opening(row: row, eastOf: column) { newColumn = min(column + 1, 4) }
                case 3: if column > 0 && Self.opening(row: row, eastOf: column - 1) { newColumn = max(column - 1, 0) }
                case 4:
                    if passenger < 4 && here == passenger { newPassenger = 4 } else { reward = -10 }
                default:
                    if passenger == 4, here == destination {
                        newPassenger = destination
                        reward = 20
                        terminated = true
                    } else if passenger == 4, let stand = here {
                        newPassenger = stand
                    } else {
                        reward = -10
                    }
                }
                let next = Self.encode(row: newRow, column: newColumn, passenger: newPassenger, destination: destination)
                return [Transition(probability: 1, nextState: next, reward: reward, terminated: terminated)]
            })
        }
        core = TabularCore(id: id, actionCount: 6, transitions: table, initialDistribution: initial)
    }

    /// Starts uniformly among the 300 states with the passenger at a stand other than the
    /// destination; info carries `prob` and `action_mask`.
    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Int, info: Info) {
        let s = core.reset(seed: seed)
        return (s, ["prob": .double(1), "action_mask": Self.maskInfo(s)])
    }

    /// One step; info carries `prob` and the next state's `action_mask`.
    public func step(_ action: Int) throws -> Step<Int> { withMask(try core.step(action)) }

    /// Steps with the `outcome`-th entry of `transitions[s][action]` (always 0 here).
    public func step(_ action: Int, outcome: Int) throws -> Step<Int> { withMask(try core.step(action, outcome: outcome)) }

    private func withMask(_ step: Step<Int>) -> Step<Int> {
        var step = step
        step.info["action_mask"] = Self.maskInfo(step.observation)
        return step
    }

    private static func maskInfo(_ state: Int) -> InfoValue { .floats(actionMask(state).map { $0 ? 1 : 0 }) }
}
