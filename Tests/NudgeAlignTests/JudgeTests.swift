import Testing
@testable import NudgeAlign

@Suite struct RewardJudgeTests {
    let gold = ClosureReward(name: "gold") { sample in
        sample.completion == "x" ? nil : (sample.completion == sample.answer ? 1 : 0)
    }

    func sample(_ completion: String) -> RewardSample {
        RewardSample(prompt: "2+2=", completion: completion, answer: "4")
    }

    @Test func pairwiseVerdictsFollowTheRewardAndTiesAreNotPreferences() {
        let verdicts = RewardJudge(gold).judge([
            JudgePair(first: sample("4"), second: sample("5")),
            JudgePair(first: sample("3"), second: sample("4")),
            JudgePair(first: sample("3"), second: sample("5")),
        ])
        #expect(verdicts == [.first, .second, .tie])
        #expect(verdicts.map(\.preferredIndex) == [0, 1, nil])
    }

    @Test func aSampleTheRewardCannotScoreIsAFailureNamingItsRow() {
        let judge = RewardJudge(gold)
        let points = judge.judge([sample("4"), sample("x")])
        #expect((try? points[0].get()) == 1)
        guard case .failure(let failure) = points[1] else { Issue.record("row 1 was scored"); return }
        #expect(failure.row == 1 && failure.judge == "gold")
        let verdicts = judge.judge([JudgePair(first: sample("4"), second: sample("5")), JudgePair(first: sample("x"), second: sample("4"))])
        #expect(verdicts[0] == .first)
        guard case .failed(let f) = verdicts[1] else { Issue.record("pair 1 got a verdict"); return }
        #expect(f.row == 1)
    }
}
