// Behaviour of the tabular environments checked by hand: GridWorld's moves and rewards, the cliff,
// Taxi's encoding, pickup and dropoff, FrozenLake's maps and slipping, seeding and errors.

import Foundation
import Testing
import NudgeRL

@Suite struct ToyTextEnvTests {
    @Test func gridWorldByHand() throws {
        let env = GridWorld()
        #expect(env.reset(seed: 0).observation == 0)
        let bump = try env.step(2)  // left at (0, 0)
        #expect(bump.observation == 0 && bump.reward == -0.01 && !bump.terminated)
        #expect(try env.step(0).observation == 0)  // up at (0, 0)
        #expect(try env.step(3).observation == 1)  // right
        #expect(try env.step(1).observation == 5)  // down
        try env.setState([14])  // (3, 2)
        let goal = try env.step(3)
        #expect(goal.observation == 15 && goal.reward == 1 && goal.terminated)
        try env.setState([11])  // (2, 3)
        let fromAbove = try env.step(1)
        #expect(fromAbove.observation == 15 && fromAbove.reward == 1 && fromAbove.terminated)
        try env.setState([15])
        #expect(try env.step(3).observation == 15)
        #expect(env.transitions[15][0] == [Transition(probability: 1, nextState: 15, reward: 0, terminated: true)])
        // Every probability row sums to 1 in every tabular environment.
        let tables = [env.transitions, FrozenLake().transitions, FrozenLake(mapName: .eightByEight).transitions,
                      CliffWalking().transitions, CliffWalking(isSlippery: true).transitions, Taxi().transitions]
        for table in tables {
            #expect(table.allSatisfy { $0.allSatisfy { abs($0.map(\.probability).reduce(0, +) - 1) < 1e-12 } })
        }
    }

    @Test func cliffSendsBackToStart() throws {
        let env = CliffWalking()
        #expect(env.reset(seed: 0).observation == 36)
        let fall = try env.step(1)  // right from (3, 0) onto the cliff
        #expect(fall.observation == 36 && fall.reward == -100 && !fall.terminated)
        #expect(try env.step(0).observation == 24)  // up
        try env.setState([35])  // (2, 11)
        let goal = try env.step(2)  // down to the goal
        #expect(goal.observation == 47 && goal.reward == -1 && goal.terminated)
        #expect(CliffWalking.make().maxEpisodeSteps == Int.max)
        #expect(CliffWalking(isSlippery: true).transitions[36][1].map(\.nextState) == [24, 36, 36])
    }

    @Test func taxiEncodingRoundTrips() {
        for s in 0..<500 {
            let (row, column, passenger, destination) = Taxi.decode(s)
            #expect(Taxi.encode(row: row, column: column, passenger: passenger, destination: destination) == s)
        }
        #expect(Taxi.encode(row: 3, column: 1, passenger: 2, destination: 0) == 328)
    }

    @Test func taxiPickupAndDropoff() throws {
        let env = Taxi()
        _ = env.reset(seed: 0)
        // Taxi at R (0, 0), passenger waiting at R, destination G (0, 4).
        try env.setState([Double(Taxi.encode(row: 0, column: 0, passenger: 0, destination: 1))])
        #expect(try env.step(5).reward == -10)  // dropoff without a passenger
        let pickup = try env.step(4)
        #expect(pickup.reward == -1 && Taxi.decode(pickup.observation).passenger == 4)
        #expect(pickup.info["action_mask"] == .floats(Taxi.actionMask(pickup.observation).map { $0 ? 1 : 0 }))
        #expect(try env.step(4).reward == -10)  // a second pickup is illegal
        // South, east, south, east, east, east, north, north: around the walls to G.
        var last = Step(observation: 0, reward: 0, terminated: false, truncated: false)
        for action in [0, 2, 0, 2, 2, 2, 1, 1] {
            last = try env.step(action)
            #expect(last.reward == -1 && !last.terminated)
        }
        #expect(Taxi.decode(last.observation) == (0, 4, 4, 1))
        let dropoff = try env.step(5)
        #expect(dropoff.reward == 20 && dropoff.terminated)
        #expect(Taxi.decode(dropoff.observation) == (0, 4, 1, 1))
        // Dropping the passenger at another stand leaves them there, at the cost of a step.
        try env.setState([Double(Taxi.encode(row: 4, column: 0, passenger: 4, destination: 1))])
        let elsewhere = try env.step(5)
        #expect(elsewhere.reward == -1 && !elsewhere.terminated && Taxi.decode(elsewhere.observation).passenger == 2)
        // A wall east of (0, 1) turns the move into a no-op, and the mask says so.
        let s = Taxi.encode(row: 0, column: 1, passenger: 0, destination: 1)
        #expect(Taxi.actionMask(s) == [true, false, false, true, false, false])
        #expect(env.transitions[s][2][0].nextState == s)
    }

    @Test func taxiInitialStates() {
        let env = Taxi()
        for seed in 0..<100 as Range<UInt64> {
            let (s, info) = env.reset(seed: seed)
            let parts = Taxi.decode(s)
            #expect(parts.passenger < 4 && parts.passenger != parts.destination)
            #expect(info["action_mask"] != nil)
        }
    }

    @Test func frozenLakeMapsAndSlipping() throws {
        let lake = FrozenLake()
        #expect(lake.stateCount == 16 && lake.id == "FrozenLake-v1")
        // Slippery LEFT from the start tries UP, LEFT, DOWN (Gymnasium's order).
        #expect(lake.transitions[0][0].map(\.nextState) == [0, 0, 4])
        #expect(lake.transitions[5][2] == [Transition(probability: 1, nextState: 5, reward: 0, terminated: true)])
        let custom = try FrozenLake(map: ["SH", "FG"], isSlippery: false)
        _ = custom.reset(seed: 0)
        #expect(try custom.step(2).terminated)  // into the hole
        #expect(throws: EnvironmentError.self) { try FrozenLake(map: ["SFX", "FFG"]) }
        #expect(throws: EnvironmentError.self) { try FrozenLake(map: ["SF", "F"]) }
        #expect(throws: EnvironmentError.self) { try FrozenLake(map: ["FF", "FG"]) }
        #expect(throws: EnvironmentError.self) { try FrozenLake(map: []) }
        #expect(FrozenLake.make().maxEpisodeSteps == 100 && FrozenLake.make(mapName: .eightByEight).maxEpisodeSteps == 200)
    }

    @Test func frozenLakeForcedOutcomes() throws {
        let lake = FrozenLake()
        _ = lake.reset(seed: 0)
        let slip = try lake.step(1, outcome: 2)  // DOWN slips RIGHT
        #expect(slip.observation == 1 && slip.info["prob"] == .double(lake.transitions[0][1][2].probability))
        #expect(throws: EnvironmentError.self) { try lake.step(1, outcome: 3) }
    }

    @Test func slipperyOutcomesFollowTheirProbabilities() throws {
        let lake = FrozenLake()
        _ = lake.reset(seed: 5)
        var counts: [Int: Int] = [:]
        for _ in 0..<3000 {
            try lake.setState([0])
            counts[try lake.step(1).observation, default: 0] += 1  // DOWN from the start: 0, 4 or 1
        }
        #expect(Set(counts.keys) == [0, 1, 4])
        #expect(counts.values.allSatisfy { abs(Double($0) / 3000 - 1.0 / 3.0) < 0.04 })
    }

    @Test func randomMapsHaveAPath() {
        for seed in 0..<20 as Range<UInt64> {
            let map = FrozenLake.generateRandomMap(size: 6, p: 0.6, seed: seed)
            #expect(map.count == 6 && map.allSatisfy { $0.count == 6 })
            #expect(map[0].first == "S" && map[5].last == "G")
            // Check the path independently: flood fill through non-hole cells.
            let grid = map.map { Array($0) }
            var seen: Set<Int> = [0], frontier = [0]
            while let cell = frontier.popLast() {
                let (r, c) = (cell / 6, cell % 6)
                for (nr, nc) in [(r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)]
                where nr >= 0 && nr < 6 && nc >= 0 && nc < 6 && grid[nr][nc] != "H" && !seen.contains(nr * 6 + nc) {
                    seen.insert(nr * 6 + nc)
                    frontier.append(nr * 6 + nc)
                }
            }
            #expect(seen.contains(35))
        }
        #expect(FrozenLake.generateRandomMap(seed: 3) == FrozenLake.generateRandomMap(seed: 3))
        #expect(FrozenLake.generateRandomMap(size: 8, p: 1.5).joined().allSatisfy { $0 != "H" })
    }

    @Test func slipperyRunsAreSeeded() throws {
        func run(_ seed: UInt64) throws -> [Int] {
            let lake = FrozenLake(mapName: .eightByEight)
            var states = [lake.reset(seed: seed).observation]
            for t in 0..<40 {
                let step = try lake.step(t % 4)
                states.append(step.observation)
                if step.terminated { break }
            }
            return states
        }
        #expect(try run(11) == run(11))
        #expect(try (0..<10).map { try run($0) }.contains { $0 != (try run(11)) })
    }

    @Test func errors() {
        #expect(throws: EnvironmentError.needsReset(env: "FrozenLake-v1")) { try FrozenLake().step(0) }
        #expect(throws: EnvironmentError.needsReset(env: "Taxi-v3")) { try Taxi().step(0) }
        #expect(throws: EnvironmentError.needsReset(env: "CliffWalking-v1")) { try CliffWalking().step(0) }
        #expect(throws: EnvironmentError.needsReset(env: "GridWorld-v0")) { try GridWorld().step(0) }
        let taxi = Taxi()
        _ = taxi.reset(seed: 0)
        #expect(throws: EnvironmentError.invalidAction(env: "Taxi-v3", action: "6", space: "Discrete(6)")) {
            try taxi.step(6)
        }
        #expect(throws: EnvironmentError.self) { try taxi.setState([500]) }
        #expect(throws: EnvironmentError.self) { try taxi.setState([1.5]) }
        #expect(throws: EnvironmentError.self) { try taxi.setState([1, 2]) }
    }
}
