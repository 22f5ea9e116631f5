// Judges: AI feedback in place of human labels (RLAIF). A pointwise judge scores each completion; a
// pairwise judge says which of two completions to the same prompt is better. TRL's BaseJudge and
// BasePairwiseJudge have the same split. A judge that cannot give a verdict for a row (a timeout, a
// reply it cannot parse, a server error after its retries) says so for that row: the caller reports
// it with the row and never counts it as a score or a preference.

import Foundation

/// Why a judge gave no verdict for one row.
public struct JudgeFailure: Error, CustomStringConvertible, Equatable, Sendable {
    /// The judge's name.
    public var judge: String
    /// The row's index in the batch the judge was given.
    public var row: Int
    public var reason: String

    public init(judge: String, row: Int, reason: String) {
        self.judge = judge
        self.row = row
        self.reason = reason
    }

    public var description: String { "judge \(judge), row \(row): \(reason)" }
}

/// Which of two completions a pairwise judge prefers.
public enum PairwiseVerdict: Equatable, Sendable {
    case first
    case second
    /// Equally good (e.g. equal gold rewards): no preference to learn from.
    case tie
    /// No verdict (see `JudgeFailure`).
    case failed(JudgeFailure)

    /// 0 for the first, 1 for the second, nil for a tie or a failure (TRL's index of the preferred completion).
    public var preferredIndex: Int? {
        switch self {
        case .first: 0
        case .second: 1
        case .tie, .failed: nil
        }
    }
}

/// Two completions of one prompt, for a pairwise judge.
public struct JudgePair: Sendable {
    public var first: RewardSample
    public var second: RewardSample

    public init(first: RewardSample, second: RewardSample) {
        self.first = first
        self.second = second
    }

    /// The prompt both completions answer.
    public var prompt: String { first.prompt }
}

/// Scores completions one at a time (e.g. 1–10, or a reward model's scalar).
public protocol PointwiseJudge {
    /// The name used in metrics and failure reports.
    var name: String { get }
    /// One result per sample: a score, or why there is none.
    func judge(_ samples: [RewardSample]) -> [Result<Double, JudgeFailure>]
}

/// Says which of two completions to the same prompt is better.
public protocol PairwiseJudge {
    /// The name used in metrics and failure reports.
    var name: String { get }
    /// One verdict per pair.
    func judge(_ pairs: [JudgePair]) -> [PairwiseVerdict]
}

/// A reward (the gold verifiable reward, a trained reward model, a weighted sum) used as a judge:
/// pointwise it is the score, pairwise the higher score wins and equal scores tie.
public struct RewardJudge: PointwiseJudge, PairwiseJudge {
    public let reward: any RewardFunction
    public var name: String { reward.name }

    public init(_ reward: any RewardFunction) { self.reward = reward }

    public func judge(_ samples: [RewardSample]) -> [Result<Double, JudgeFailure>] {
        let scores: [Double?]
        do { scores = try reward.scores(samples) } catch {
            return samples.indices.map { .failure(JudgeFailure(judge: name, row: $0, reason: "\(error)")) }
        }
        return scores.enumerated().map { row, score in
            guard let score else { return .failure(JudgeFailure(judge: name, row: row, reason: "the reward does not apply to this sample")) }
            guard score.isFinite else { return .failure(JudgeFailure(judge: name, row: row, reason: "non-finite score \(score)")) }
            return .success(score)
        }
    }

    public func judge(_ pairs: [JudgePair]) -> [PairwiseVerdict] {
        let scores = judge(pairs.flatMap { [$0.first, $0.second] })
        return pairs.indices.map { row in
            switch (scores[2 * row], scores[2 * row + 1]) {
            case (.failure(let f), _), (_, .failure(let f)):
                return .failed(JudgeFailure(judge: name, row: row, reason: f.reason))
            case (.success(let a), .success(let b)):
                return a > b ? .first : (b > a ? .second : .tie)
            }
        }
    }
}
