// Loading of the Gymnasium trace fixtures in Fixtures/envs (written by Fixtures/envs/gym_traces.py,
// row-wise, and Fixtures/envs/make_traces.py, column-wise) and a replay helper that steps an
// environment through a trace and measures how far it strays.

import Foundation
import Testing
import NudgeRL

enum FixtureError: Error, CustomStringConvertible {
    case missing(String)
    case malformed(String)
    var description: String {
        switch self {
        case .missing(let s): "fixture \(s) not found in Fixtures/envs"
        case .malformed(let s): "malformed fixture: \(s)"
        }
    }
}

/// Decodes `Fixtures/envs/<name>.json` as `T` (snake_case keys).
func loadFixture<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
    guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/envs") else {
        throw FixtureError.missing(name)
    }
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return try decoder.decode(T.self, from: Data(contentsOf: url))
}

/// A number or a list of numbers (toy-text traces store ints, classic-control ones lists).
struct Numbers: Decodable {
    let values: [Double]
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let list = try? c.decode([Double].self) { values = list } else { values = [try c.decode(Double.self)] }
    }
    var int: Int { Int(values[0]) }
    var floats: [Float] { values.map { Float($0) } }
}

/// A keyword argument of `gymnasium.make`.
enum KeywordValue: Decodable, Equatable {
    case bool(Bool), number(Double)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) } else { self = .number(try c.decode(Double.self)) }
    }
}

/// One recorded step.
struct TraceStep {
    let obs: [Double]
    let reward: Double
    let terminated: Bool
    let truncated: Bool
    let state: [Double]
}

/// One recorded episode, in either layout.
struct Trace: Decodable {
    struct Row: Decodable {
        let obs: Numbers, reward: Double, terminated: Bool, truncated: Bool, state: Numbers
    }
    let envId: String
    let makeKwargs: [String: KeywordValue]
    let maxEpisodeSteps: Int?
    let resetSeed: Int
    let initialObs: Numbers
    let initialState: Numbers
    let policy: String
    let actions: [Numbers]
    // Row layout (gym_traces.py).
    let steps: [Row]?
    // Column layout (make_traces.py).
    let obs: [Numbers]?
    let rewards: [Double]?
    let terminated: [Bool]?
    let truncated: [Bool]?
    let states: [Numbers]?
    let initialActionMask: [Int]?
    let actionMasks: [[Int]]?

    func records() throws -> [TraceStep] {
        if let steps {
            return steps.map { TraceStep(obs: $0.obs.values, reward: $0.reward, terminated: $0.terminated,
                                         truncated: $0.truncated, state: $0.state.values) }
        }
        guard let obs, let rewards, let terminated, let truncated, let states,
              Set([obs.count, rewards.count, terminated.count, truncated.count, states.count, actions.count]).count == 1
        else { throw FixtureError.malformed("\(envId) trace '\(policy)' has ragged or missing columns") }
        return obs.indices.map { i in
            TraceStep(obs: obs[i].values, reward: rewards[i], terminated: terminated[i], truncated: truncated[i],
                      state: states[i].values)
        }
    }
}

/// A tabular fixture: transition tables, map, initial states and traces.
struct TabularFixture: Decodable {
    let map: [String]?
    let transitionTable: TransitionTable
    let transitionTableSlippery: TransitionTable?
    let initialStates: [Int]?
    let initialProbability: Double?
    let traces: [Trace]
}

/// Gymnasium's `P` as nested lists `[s][a] -> [[p, s', r, terminated]]`, the Taxi form
/// `[s][a] -> [s', r, terminated]`, or gym_traces.py's dictionaries keyed by strings.
struct TransitionTable: Decodable {
    struct Outcome: Decodable {
        let transition: Transition
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            let probability = c.count == 4 ? try c.decode(Double.self) : 1.0
            transition = Transition(probability: probability, nextState: try c.decode(Int.self),
                                    reward: try c.decode(Double.self), terminated: try c.decode(Bool.self))
        }
    }
    let table: [[[Transition]]]
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let lists = try? c.decode([[[Outcome]]].self) {
            table = lists.map { $0.map { $0.map(\.transition) } }
        } else if let single = try? c.decode([[Outcome]].self) {
            table = single.map { $0.map { [$0.transition] } }
        } else {
            let dict = try c.decode([String: [String: [Outcome]]].self)
            table = try (0..<dict.count).map { s in
                guard let actions = dict[String(s)] else { throw FixtureError.malformed("no state \(s) in P") }
                return try (0..<actions.count).map { a in
                    guard let outcomes = actions[String(a)] else { throw FixtureError.malformed("no P[\(s)][\(a)]") }
                    return outcomes.map(\.transition)
                }
            }
        }
    }
}

/// The largest deviations seen while replaying traces.
struct ParityErrors: CustomStringConvertible {
    var steps = 0
    var stateAbsolute = 0.0
    var stateRelative = 0.0
    var observationAbsolute = 0.0
    var rewardAbsolute = 0.0

    mutating func merge(_ other: ParityErrors) {
        steps += other.steps
        stateAbsolute = max(stateAbsolute, other.stateAbsolute)
        stateRelative = max(stateRelative, other.stateRelative)
        observationAbsolute = max(observationAbsolute, other.observationAbsolute)
        rewardAbsolute = max(rewardAbsolute, other.rewardAbsolute)
    }

    var description: String {
        "\(steps) steps, max |Δstate| \(stateAbsolute), max rel \(stateRelative), max |Δobs| \(observationAbsolute), max |Δreward| \(rewardAbsolute)"
    }
}

/// How closely a replay must follow its trace: a value passes when within `absolute` or within
/// `relative` of the reference.
struct Tolerance {
    var absolute: Double
    var relative: Double = 0
    func accepts(_ value: Double, _ reference: Double) -> Bool {
        abs(value - reference) <= absolute || abs(value - reference) <= relative * abs(reference)
    }
}

/// Sets `env` to the trace's initial state and replays its actions through
/// `TimeLimit(env, maxEpisodeSteps)` (elapsed steps from 0), checking every step's observation,
/// reward, terminated, truncated and state.
func replay<E: StatefulEnvironment>(
    _ env: E, _ trace: Trace, maxEpisodeSteps: Int,
    state stateTolerance: Tolerance, observation observationTolerance: Tolerance = Tolerance(absolute: 0),
    reward rewardTolerance: Tolerance = Tolerance(absolute: 0),
    action: (Numbers) -> E.Action, observe: (E.Observation) -> [Double],
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> ParityErrors {
    let limited = TimeLimit(env, maxEpisodeSteps: maxEpisodeSteps)
    _ = limited.reset(seed: 0)
    try limited.setState(trace.initialState.values)
    var errors = ParityErrors()
    let label = "\(trace.envId) '\(trace.policy)'"
    for (t, expected) in try trace.records().enumerated() {
        let step = try limited.step(action(trace.actions[t]))
        let obs = observe(step.observation)
        let state = limited.state
        errors.steps += 1
        #expect(obs.count == expected.obs.count && state.count == expected.state.count,
                "\(label) step \(t): sizes", sourceLocation: sourceLocation)
        // Observations are float32: the recorded decimals are read back as Float.
        for (x, y) in zip(obs, expected.obs.map { Double(Float($0)) }) {
            errors.observationAbsolute = max(errors.observationAbsolute, abs(x - y))
            #expect(observationTolerance.accepts(x, y), "\(label) step \(t): obs \(obs) vs \(expected.obs)",
                    sourceLocation: sourceLocation)
        }
        for (x, y) in zip(state, expected.state) {
            errors.stateAbsolute = max(errors.stateAbsolute, abs(x - y))
            if y != 0 { errors.stateRelative = max(errors.stateRelative, abs(x - y) / abs(y)) }
            #expect(stateTolerance.accepts(x, y), "\(label) step \(t): state \(state) vs \(expected.state)",
                    sourceLocation: sourceLocation)
        }
        errors.rewardAbsolute = max(errors.rewardAbsolute, abs(step.reward - expected.reward))
        #expect(rewardTolerance.accepts(step.reward, expected.reward),
                "\(label) step \(t): reward \(step.reward) vs \(expected.reward)", sourceLocation: sourceLocation)
        #expect(step.terminated == expected.terminated && step.truncated == expected.truncated,
                "\(label) step \(t): terminated/truncated \(step.terminated)/\(step.truncated) vs \(expected.terminated)/\(expected.truncated)",
                sourceLocation: sourceLocation)
        if step.terminated != expected.terminated || step.truncated != expected.truncated { break }
    }
    return errors
}

/// Compares two transition tables: same shape and outcomes, probabilities within 1e-12.
func expectSameTable(_ actual: [[[Transition]]], _ expected: [[[Transition]]], _ label: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(label): \(actual.count) states vs \(expected.count)",
            sourceLocation: sourceLocation)
    var mismatches: [String] = []
    for (s, (a1, a2)) in zip(actual, expected).enumerated() {
        if a1.count != a2.count { mismatches.append("P[\(s)]: \(a1.count) actions vs \(a2.count)"); continue }
        for (a, (o1, o2)) in zip(a1, a2).enumerated() {
            let same = o1.count == o2.count && zip(o1, o2).allSatisfy { x, y in
                abs(x.probability - y.probability) <= 1e-12 && x.nextState == y.nextState
                    && x.reward == y.reward && x.terminated == y.terminated
            }
            if !same { mismatches.append("P[\(s)][\(a)]: \(o1) vs \(o2)") }
        }
    }
    #expect(mismatches.isEmpty, "\(label): \(mismatches.prefix(5).joined(separator: "; "))",
            sourceLocation: sourceLocation)
}
