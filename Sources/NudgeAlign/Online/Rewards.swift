// Rewards for online RL (GRPO, RLOO, REINFORCE++, PPO-RLHF): a reward function scores a batch of
// sampled completions; nil means "does not apply to this sample" (TRL's None), so a weighted sum of
// several functions skips it instead of counting it as zero. Built-ins: a verifiable exact answer, a
// format check, a length penalty (the seeds' rm − 0.01·max(0, tokens − 150), generalized), DAPO's soft
// overlong punishment, a trained reward model, and an external command (ExternalCommandReward.swift).

import Foundation
import NudgeLM
import NudgeTensor

/// One sampled completion, as reward functions see it.
public struct RewardSample: Sendable {
    /// The prompt text (templated prompts: the rendered text).
    public var prompt: String
    /// The completion text with special tokens removed.
    public var completion: String
    /// The dataset's reference answer, if any (verifiable rows).
    public var answer: String?
    public var promptIDs: [Int]
    /// The completion's tokens (ending with EOS when the model stopped).
    public var completionIDs: [Int]
    public var finishReason: FinishReason

    public init(prompt: String, completion: String, answer: String? = nil, promptIDs: [Int] = [], completionIDs: [Int] = [],
                finishReason: FinishReason = .eos) {
        self.prompt = prompt
        self.completion = completion
        self.answer = answer
        self.promptIDs = promptIDs
        self.completionIDs = completionIDs
        self.finishReason = finishReason
    }
}

/// Scores completions.
public protocol RewardFunction {
    /// The name used in metrics (`rewards/<name>/mean`).
    var name: String { get }
    /// One score per sample; nil where the function does not apply.
    func scores(_ samples: [RewardSample]) throws -> [Double?]
}

/// Reward functions with weights, summed as TRL does (skipping nil scores).
public struct WeightedRewards {
    public var functions: [(function: any RewardFunction, weight: Double)]

    public init(_ functions: [(any RewardFunction, Double)]) {
        self.functions = functions.map { (function: $0.0, weight: $0.1) }
    }

    /// Each function's scores (one column per function) and the weighted totals. A sample that no
    /// function scores gets nil: it is excluded from baselines and gets no advantage.
    public func evaluate(_ samples: [RewardSample]) throws -> (perFunction: [[Double?]], totals: [Double?]) {
        let columns = try functions.map { f -> [Double?] in
            let s = try f.function.scores(samples)
            guard s.count == samples.count else {
                throw RewardError.wrongCount(function: f.function.name, expected: samples.count, got: s.count)
            }
            return s
        }
        let totals: [Double?] = samples.indices.map { i in
            var total = 0.0, any = false
            for (k, f) in functions.enumerated() {
                if let v = columns[k][i] { total += f.weight * v; any = true }
            }
            return any ? total : nil
        }
        return (columns, totals)
    }
}

/// A reward function failed.
public enum RewardError: Error, CustomStringConvertible, Equatable {
    case wrongCount(function: String, expected: Int, got: Int)
    case invalidPattern(String)
    case command(String)
    /// A stop (Ctrl-C) was requested while a reward command ran; it was killed.
    case interrupted

    public var description: String {
        switch self {
        case .wrongCount(let f, let e, let g): "reward function '\(f)' returned \(g) scores for \(e) samples"
        case .invalidPattern(let p): "invalid regular expression for the format reward: \(p)"
        case .command(let message): message
        case .interrupted: "interrupted while waiting for the reward command (it was killed)"
        }
    }
}

// MARK: - Verifiable answers

/// 1 when the extracted answer equals the reference, else 0 (nil without a reference answer).
///
/// The answer is the text inside the last `<answer>…</answer>` pair when there is one, else the last
/// number in the completion (commas removed), else the whole trimmed completion. Numbers compare by
/// value (so "4.0" matches "4"), anything else as trimmed text.
public struct ExactAnswerReward: RewardFunction {
    public var name = "accuracy"

    public init() {}

    public func scores(_ samples: [RewardSample]) throws -> [Double?] {
        samples.map { s in s.answer.map { Self.matches(Self.extract(s.completion), $0) ? 1 : 0 } }
    }

    /// The answer a completion gives (see the type's documentation).
    public static func extract(_ completion: String) -> String {
        if let close = completion.range(of: "</answer>", options: .backwards),
           let open = completion.range(of: "<answer>", options: .backwards, range: completion.startIndex..<close.lowerBound) {
            return String(completion[open.upperBound..<close.lowerBound]).trimmingWhitespace
        }
        if let number = lastNumber(in: completion) { return number }
        return completion.trimmingWhitespace
    }

    /// The last number (optional sign, digits with optional commas, optional fraction) in `text`.
    static func lastNumber(in text: String) -> String? {
        let chars = Array(text)
        var i = chars.count - 1
        while i >= 0 && !chars[i].isASCIIDigit { i -= 1 }
        guard i >= 0 else { return nil }
        let end = i + 1
        while i >= 0 && (chars[i].isASCIIDigit || chars[i] == "," || chars[i] == ".") { i -= 1 }
        var start = i + 1
        if i >= 0 && chars[i] == "-" { start = i }
        var number = String(chars[start..<end]).replacingOccurrences(of: ",", with: "")
        while number.hasPrefix(".") { number.removeFirst() }
        return number.isEmpty ? nil : number
    }

    static func matches(_ given: String, _ reference: String) -> Bool {
        let g = given.trimmingWhitespace, r = reference.trimmingWhitespace
        if let a = Double(g), let b = Double(r) { return abs(a - b) <= 1e-9 * max(1, abs(b)) }
        return g == r
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// 1 when the whole completion matches a regular expression, else 0. The default is TRL's reasoning
/// format, `<think>…</think>` followed by `<answer>…</answer>`.
public struct FormatReward: RewardFunction {
    public var name = "format"
    let regex: NSRegularExpression

    public init(pattern: String = #"^<think>.*?</think>\s*<answer>.*?</answer>$"#) throws {
        do {
            regex = try NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
        } catch {
            throw RewardError.invalidPattern(pattern)
        }
    }

    public func scores(_ samples: [RewardSample]) throws -> [Double?] {
        samples.map { s in
            let range = NSRange(s.completion.startIndex..., in: s.completion)
            guard let m = regex.firstMatch(in: s.completion, options: [.anchored], range: range) else { return 0 }
            return m.range.length == range.length ? 1 : 0
        }
    }
}

/// −coefficient · max(0, length − threshold): the seeds' length penalty as its own term, added to a
/// reward model's score with weight 1 (rm − 0.01·max(0, tokens − 150) by default). Length counts
/// completion tokens (EOS excluded) or characters.
public struct LengthPenalty: RewardFunction {
    public var name = "length_penalty"
    public var coefficient: Double
    public var threshold: Int
    public var countCharacters: Bool
    public var eosTokenID: Int?

    public init(coefficient: Double = 0.01, threshold: Int = 150, countCharacters: Bool = false, eosTokenID: Int? = nil) {
        self.coefficient = coefficient
        self.threshold = threshold
        self.countCharacters = countCharacters
        self.eosTokenID = eosTokenID
    }

    public func scores(_ samples: [RewardSample]) throws -> [Double?] {
        samples.map { s in
            let length = countCharacters ? s.completion.count : s.completionIDs.filter { $0 != eosTokenID }.count
            return -coefficient * Double(max(0, length - threshold))
        }
    }
}

/// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): 0 up to L_max − L_cache tokens, then a
/// linear ramp to −1 at L_max, and −1 beyond.
public struct SoftOverlongPunishment: RewardFunction {
    public var name = "overlong"
    public var maxLength: Int
    public var cacheLength: Int

    public init(maxLength: Int, cacheLength: Int) {
        precondition(cacheLength > 0 && cacheLength <= maxLength, "SoftOverlongPunishment: need 0 < cache length ≤ max length")
        self.maxLength = maxLength
        self.cacheLength = cacheLength
    }

    /// The punishment for a completion of `length` tokens.
    public func punishment(length: Int) -> Double {
        let free = maxLength - cacheLength
        if length <= free { return 0 }
        if length <= maxLength { return Double(free - length) / Double(cacheLength) }
        return -1
    }

    public func scores(_ samples: [RewardSample]) throws -> [Double?] {
        samples.map { punishment(length: $0.completionIDs.count) }
    }
}

/// The score of a trained reward model (a scalar head read at the completion's last token).
public final class RewardModelReward: RewardFunction {
    public var name = "reward_model"
    public let model: ScalarHeadModel
    public var batchSize: Int
    public var padTokenID: Int

    public init(model: ScalarHeadModel, padTokenID: Int, batchSize: Int = 16) {
        self.model = model
        self.padTokenID = padTokenID
        self.batchSize = batchSize
    }

    public func scores(_ samples: [RewardSample]) throws -> [Double?] {
        let sequences = samples.map { $0.promptIDs + $0.completionIDs }
        return scoreSequences(sequences).map { Double($0) }
    }

    /// Scales the model's head so that its scores of `sequences` (prompt + completion, e.g. the
    /// initial policy's samples) have standard deviation 1, as Ziegler et al. normalize their reward
    /// model before RL, so a KL coefficient means the same whatever scale Bradley–Terry training
    /// reached. Rankings are unchanged; the head has no bias, and a constant offset would not change
    /// PPO's whitened advantages. Returns the scores' mean and standard deviation before scaling, or
    /// nil (the head left as it was) when fewer than two scores or when they do not vary.
    @discardableResult
    public func normalizeScale(on sequences: [[Int]]) -> (mean: Double, std: Double)? {
        let scores = scoreSequences(sequences).map { Optional(Double($0)) }
        guard scores.count > 1 else { return nil }
        let (mean, std) = meanAndStd(scores)
        guard std.isFinite, std > 1e-6 else { return nil }
        model.score.weight = model.score.weight * Float(1 / std)
        return (mean, std)
    }

    /// Scores of whole token sequences (prompt + completion), right-padded in batches.
    public func scoreSequences(_ sequences: [[Int]]) -> [Float] {
        withoutGradients {
            var out: [Float] = []
            for start in stride(from: 0, to: sequences.count, by: batchSize) {
                let chunk = Array(sequences[start..<min(start + batchSize, sequences.count)])
                let length = chunk.map(\.count).max() ?? 0
                let ids = chunk.map { $0 + Array(repeating: padTokenID, count: length - $0.count) }
                let mask = chunk.map { Array(repeating: true, count: $0.count) + Array(repeating: false, count: length - $0.count) }
                out += model(TokenBatch(ids: ids, attentionMask: mask)).scalars
            }
            return out
        }
    }
}

/// A reward computed by a Swift closure (a gold reward, a rule), for tests, labs and library users.
public struct ClosureReward: RewardFunction {
    public var name: String
    let body: (RewardSample) -> Double?

    public init(name: String, _ body: @escaping (RewardSample) -> Double?) {
        self.name = name
        self.body = body
    }

    public func scores(_ samples: [RewardSample]) throws -> [Double?] { samples.map(body) }
}

/// Weighted rewards are themselves a reward: the weighted total (nil where no function applies).
extension WeightedRewards: RewardFunction {
    public var name: String { functions.map(\.function.name).joined(separator: "+") }
    public func scores(_ samples: [RewardSample]) throws -> [Double?] { try evaluate(samples).totals }
}
