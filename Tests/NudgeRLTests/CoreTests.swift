// Wrappers, vector environments, the environment checker and the type-erased environment, on a
// small counting environment written here.

import Foundation
import Testing
@testable import NudgeRL
import NudgeTensor

/// Observation = [position]; action 1 moves right, 0 left; terminates at position 3; reward =
/// the new position.
final class Walk: StatefulEnvironment {
    let id = "Walk-v0"
    var position = 0.0
    var rng = RandomGenerator(seed: 0)
    var observationSpace: Space { .box(low: -100, high: 100, shape: [1]) }
    var actionSpace: Space { .discrete(n: 2) }

    func reset(seed: UInt64?, options: [String: Double]?) -> (observation: [Float], info: Info) {
        if let seed { rng = RandomGenerator(seed: seed) }
        position = Double(rng.int(below: 2))
        return ([Float(position)], [:])
    }

    func step(_ action: Int) throws -> Step<[Float]> {
        try validate(action, actionSpace, id)
        position += action == 1 ? 1 : -1
        return Step(observation: [Float(position)], reward: position, terminated: position >= 3, truncated: false)
    }

    var state: [Double] { [position] }
    func setState(_ state: [Double]) throws { position = state[0] }
}

@Suite("Environment core") struct CoreTests {
    @Test func timeLimitTruncatesOnTheLastStepEvenWhenTerminated() throws {
        let env = TimeLimit(Walk(), maxEpisodeSteps: 3)
        _ = env.reset(seed: 0)
        try env.setState([0])
        #expect(try !env.step(1).truncated)
        #expect(try !env.step(1).truncated)
        let last = try env.step(1)  // reaches 3 (terminated) on step 3 (truncated too)
        #expect(last.terminated && last.truncated)
        _ = env.reset()
        #expect(env.elapsedSteps == 0)
    }

    @Test func invalidActionIsAnErrorThatSaysSo() {
        let env = Walk()
        _ = env.reset(seed: 0)
        #expect(throws: EnvironmentError.invalidAction(env: "Walk-v0", action: "2", space: "Discrete(2)")) { try env.step(2) }
        let message = EnvironmentError.invalidAction(env: "Walk-v0", action: "2", space: "Discrete(2)").description
        #expect(message.contains("action 2 is not in the action space Discrete(2)"))
    }

    @Test func runningMeanStdMatchesHandValues() {
        // Gymnasium's RunningMeanStd: mean 0, var 1, count 1e-4, then batch [1, 3] (mean 2, var 1).
        var rms = RunningMeanStd(shape: 1)
        rms.update([[1], [3]])
        let total = 2.0001
        let mean = 2 * 2 / total
        let m2 = 1 * 1e-4 + 1 * 2 + 4 * 1e-4 * 2 / total
        #expect(abs(rms.mean[0] - mean) < 1e-12)
        #expect(abs(rms.variance[0] - m2 / total) < 1e-12)
        #expect(abs(rms.count - total) < 1e-12)
        // Many single updates converge to the sample statistics.
        var many = RunningMeanStd(shape: 2)
        for i in 0..<1000 { many.update([Double(i % 10), 5]) }
        #expect(abs(many.mean[0] - 4.5) < 1e-3 && abs(many.variance[0] - 8.25) < 1e-2)
        #expect(abs(many.mean[1] - 5) < 1e-3 && many.variance[1] < 1e-3)
    }

    @Test func normalizeRewardDividesByReturnStd() throws {
        let env = NormalizeReward(TimeLimit(Walk(), maxEpisodeSteps: 10), gamma: 0.5)
        _ = env.reset(seed: 0)
        try env.base.setState([0])
        let s = try env.step(1)
        // G = 1; statistics after one update of G = 1 from (0, 1, 1e-4).
        var rms = RunningMeanStd(shape: 1)
        rms.update([1.0])
        #expect(abs(s.reward - 1 / (rms.variance[0] + 1e-8).squareRoot()) < 1e-12)
    }

    @Test func recordEpisodeStatisticsReportsReturnAndLength() throws {
        let env = RecordEpisodeStatistics(Walk())
        _ = env.reset(seed: 0)
        try env.base.setState([1])
        _ = try env.step(1)
        let last = try env.step(1)
        #expect(last.terminated)
        #expect(last.info["episode_return"] == .double(5))
        #expect(last.info["episode_length"] == .int(2))
        #expect(env.returnQueue == [5])
    }

    @Test func nextStepAutoresetIgnoresTheActionAfterTheEnd() throws {
        let vec = SyncVectorEnvironment(count: 2) { _ in Walk() }
        _ = vec.reset(seed: 1)
        try vec.environments[0].setState([2])
        try vec.environments[1].setState([0])
        let s1 = try vec.step([1, 1])
        #expect(s1.terminated == [true, false] && s1.observations[0] == [3])
        let s2 = try vec.step([1, 0])  // env 0 resets instead of stepping
        #expect(s2.rewards[0] == 0 && !s2.terminated[0] && !s2.truncated[0])
        #expect(s2.observations[0][0] <= 1)
        #expect(s2.observations[1] == [0])
    }

    @Test func sameStepAutoresetReturnsFinalObservationInInfo() throws {
        let vec = SyncVectorEnvironment(count: 1, autoresetMode: .sameStep) { _ in Walk() }
        _ = vec.reset(seed: 1)
        try vec.environments[0].setState([2])
        let s = try vec.step([1])
        #expect(s.terminated == [true])
        #expect(s.finalObservations[0] == [3])
        #expect(s.observations[0][0] <= 1)
    }

    @Test func vectorResetSeedsEachEnvironmentWithSeedPlusIndex() {
        let a = SyncVectorEnvironment(count: 3) { _ in Walk() }
        let obs = a.reset(seed: 10).observations
        let single = (0..<3).map { Walk().reset(seed: UInt64(10 + $0)).observation }
        #expect(obs == single)
    }

    @Test func checkerAcceptsAGoodEnvironmentAndFindsFaults() {
        #expect(EnvironmentChecker.check(AnyEnvironment(TimeLimit(Walk(), maxEpisodeSteps: 20))) == [])
        final class Leaky: Environment {
            let id = "Leaky-v0"
            var observationSpace: Space { .box(low: 0, high: 1, shape: [1]) }
            var actionSpace: Space { .discrete(n: 2) }
            func reset(seed: UInt64?, options: [String: Double]?) -> (observation: [Float], info: Info) { ([Float.random(in: 0..<1)], [:]) }
            func step(_ action: Int) throws -> Step<[Float]> { Step(observation: [5], reward: .nan, terminated: false, truncated: false) }
        }
        let problems = EnvironmentChecker.check(AnyEnvironment(Leaky()))
        #expect(problems.contains { $0.contains("not reproducible") })
        #expect(problems.contains { $0.contains("outside") })
        #expect(problems.contains { $0.contains("did not throw") })
    }

    @Test func anyEnvironmentRoundTripsStateAndActions() throws {
        let env = AnyEnvironment(Walk())
        _ = env.reset(seed: 0)
        try env.setState([1])
        #expect(env.state == [1])
        #expect(try env.step(.discrete(1)).observation == [2])
        #expect(throws: EnvironmentError.self) { try env.step(.continuous([0.5])) }
    }

    @Test func spacesSampleInsideAndContain() {
        var rng = RandomGenerator(seed: 3)
        let box = Space.box(low: [-1, 0, -Float.infinity], high: [1, Float.infinity, Float.infinity], shape: [3])
        for _ in 0..<100 { #expect(box.contains(box.sample(using: &rng))) }
        #expect(!box.contains([2, 0, 0]) && !box.contains([0, 0]) && !box.contains([Float.nan, 0, 0]))
        let md = Space.multiDiscrete(nvec: [2, 3])
        for _ in 0..<50 { #expect(md.contains(md.sample(using: &rng))) }
        #expect(Space.discrete(n: 3, start: -1).contains(-1) && !Space.discrete(n: 3, start: -1).contains(2))
    }
}

/// `nudge env replay|list|check` through the library: a replay from a set state stops where the
/// episode ends, and the registry lists and checks its environments.
@Suite("Environment tools") struct EnvironmentToolTests {
    @Test func replayFromAStateStopsAtTheEpisodesEnd() throws {
        let env = try Registry.make("CartPole-v1")
        try env.reset(toState: [0.01, 0, 0.02, 0])
        var steps: [ReplayStep] = []
        #expect(try env.replay([.discrete(1), .discrete(0)]) { steps.append($0) } == 2)
        #expect(steps.map(\.number) == [1, 2] && steps[1].state == env.state)
        #expect(try steps[0].json().hasPrefix("{\"action\":\"1\",") && steps[0].description.hasPrefix("step 1: action 1 → obs "))
        try env.reset(toState: [0, 0, 0.25, 0])  // past the 12° limit
        #expect(try env.replay([.discrete(1), .discrete(1), .discrete(1)]) { _ in } == 1)
        #expect(throws: EnvironmentError.self) { try env.reset(toState: [0, 0]) }
    }

    @Test func registryListsAndChecksItsEnvironments() throws {
        let listing = try Registry.listing().split(separator: "\n")
        #expect(listing.count == Registry.ids.count && listing[0].hasPrefix(Registry.ids[0]))
        var reports: [String] = []
        #expect(try EnvironmentChecker.checkRegistered(["CartPole-v1"]) { reports.append($0) })
        #expect(reports == ["✓ CartPole-v1"])
        #expect(throws: EnvironmentError.self) { try EnvironmentChecker.checkRegistered(["Nope-v0"]) { _ in } }
    }
}
