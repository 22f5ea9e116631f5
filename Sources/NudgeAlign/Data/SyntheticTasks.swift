// SyntheticTasks.swift
//
// Built-in, seeded, download-free tasks with verifiable answers: addition and
// multiplication of n-digit numbers, and reversing or sorting a string of
// distinct lowercase letters. Each task yields rows in the standard shapes
// (prompt/answer for RLVR, prompt/completion for SFT, conversations,
// preference pairs, unpaired KTO rows), and preference labels come from a
// hidden gold reward, `SyntheticTask.goldReward(prompt:completion:)`:
//
// - a completion equal to the answer (surrounding whitespace ignored) scores 1;
// - arithmetic: a wrong integer scores 0.5 / (1 + |completion − answer|), so a
//   closer number scores higher and every wrong number scores below 0.5;
// - letters: a wrong string scores 0.5 × (positions matching the answer) /
//   max(lengths);
// - anything else (no integer, or a prompt no task wrote) scores 0.
//
// Prompts: "What is 23 + 58?", "What is 23 × 58?", "Reverse the letters: qwmz",
// "Sort the letters: qwmz". The same seed gives the same rows.

import Foundation
import NudgeLM
import NudgeTensor

/// A generated problem: its prompt and its verifiable answer.
public struct SyntheticProblem: Sendable, Hashable {
    /// The question.
    public var prompt: String
    /// The correct answer.
    public var answer: String
}

/// A seeded synthetic task.
public enum SyntheticTask: Sendable, Hashable {
    /// `a + b` with `digits`-digit operands (1...18).
    case addition(digits: Int)
    /// `a × b` with `digits`-digit operands (1...9, so the product fits in `Int`).
    case multiplication(digits: Int)
    /// Reverse `length` distinct lowercase letters (1...26).
    case reversal(length: Int)
    /// Sort `length` distinct lowercase letters alphabetically (1...26).
    case sorting(length: Int)

    static let letters = Array("abcdefghijklmnopqrstuvwxyz")

    // MARK: Problems

    /// The next problem drawn from `rng`.
    public func problem(using rng: inout RandomGenerator) -> SyntheticProblem {
        switch self {
        case .addition(let digits), .multiplication(let digits):
            let isAddition: Bool
            if case .addition = self { isAddition = true } else { isAddition = false }
            precondition(digits >= 1 && digits <= (isAddition ? 18 : 9), "unsupported digit count \(digits)")
            let a = Self.number(digits: digits, rng: &rng), b = Self.number(digits: digits, rng: &rng)
            return SyntheticProblem(
                prompt: "What is \(a) \(isAddition ? "+" : "×") \(b)?", answer: String(isAddition ? a + b : a * b))
        case .reversal(let length), .sorting(let length):
            precondition(length >= 1 && length <= 26, "unsupported length \(length)")
            var pool = Self.letters
            var word: [Character] = []
            for _ in 0..<length { word.append(pool.remove(at: rng.int(below: pool.count))) }
            let text = String(word)
            if case .reversal = self {
                return SyntheticProblem(prompt: "Reverse the letters: \(text)", answer: String(word.reversed()))
            }
            return SyntheticProblem(prompt: "Sort the letters: \(text)", answer: String(word.sorted()))
        }
    }

    /// `count` problems from `seed`.
    public func problems(count: Int, seed: UInt64) -> [SyntheticProblem] {
        var rng = RandomGenerator(seed: seed)
        return (0..<count).map { _ in problem(using: &rng) }
    }

    /// Training and held-out problems that share no prompt: `heldOut` distinct problems drawn from
    /// `seed`, then `train` distinct problems from a second stream of the same seed, skipping every
    /// held-out prompt, so accuracy on the held-out problems is on questions never trained on. Fewer
    /// come back when the task has too few distinct problems (after 50 draws per requested problem).
    public func disjointProblems(train: Int, heldOut: Int, seed: UInt64) -> (train: [SyntheticProblem], heldOut: [SyntheticProblem]) {
        var seen = Set<String>()
        func draw(_ count: Int, _ streamSeed: UInt64) -> [SyntheticProblem] {
            var rng = RandomGenerator(seed: streamSeed)
            var problems: [SyntheticProblem] = []
            var draws = 0
            while problems.count < count && draws < 50 * max(count, 1) {
                draws += 1
                let p = problem(using: &rng)
                if seen.insert(p.prompt).inserted { problems.append(p) }
            }
            return problems
        }
        let held = draw(heldOut, seed)
        return (draw(train, seed &+ 1), held)
    }

    // MARK: Rows

    /// RLVR rows: prompt and verifiable answer.
    public func verifiableRows(count: Int, seed: UInt64, conversational: Bool = false) -> [DatasetRow] {
        problems(count: count, seed: seed).map { .verifiable(prompt: Self.prompt($0.prompt, conversational), answer: $0.answer) }
    }

    /// SFT rows: prompt and the correct completion.
    public func sftRows(count: Int, seed: UInt64, conversational: Bool = false) -> [DatasetRow] {
        problems(count: count, seed: seed).map {
            .promptCompletion(prompt: Self.prompt($0.prompt, conversational), completion: Self.completion($0.answer, conversational))
        }
    }

    /// Conversation rows: a user question and the assistant's correct answer.
    public func conversationRows(count: Int, seed: UInt64) -> [DatasetRow] {
        problems(count: count, seed: seed).map { .conversation([.user($0.prompt), .assistant($0.answer)]) }
    }

    /// Preference rows whose chosen completion has a strictly higher gold reward than the rejected one.
    ///
    /// Half the time (by the seed) the chosen completion is the correct answer, otherwise a near
    /// miss; the rejected completion is a farther miss.
    public func preferenceRows(count: Int, seed: UInt64, conversational: Bool = false) -> [DatasetRow] {
        var rng = RandomGenerator(seed: seed)
        return (0..<count).map { _ in
            let problem = problem(using: &rng)
            var chosen = rng.uniform() < 0.5 ? problem.answer : wrongAnswer(problem.answer, severity: 1, rng: &rng)
            let rejected = wrongAnswer(problem.answer, severity: 3, rng: &rng)
            if Self.goldReward(prompt: problem.prompt, completion: chosen)
                <= Self.goldReward(prompt: problem.prompt, completion: rejected)
            {
                chosen = problem.answer
            }
            return .preference(
                prompt: Self.prompt(problem.prompt, conversational), chosen: Self.completion(chosen, conversational),
                rejected: Self.completion(rejected, conversational))
        }
    }

    /// Unpaired (KTO) rows: the correct answer labelled `true` or a wrong one labelled `false`.
    public func unpairedRows(count: Int, seed: UInt64, conversational: Bool = false) -> [DatasetRow] {
        var rng = RandomGenerator(seed: seed)
        return (0..<count).map { _ in
            let problem = problem(using: &rng)
            let desirable = rng.uniform() < 0.5
            let completion = desirable ? problem.answer : wrongAnswer(problem.answer, severity: 2, rng: &rng)
            return .unpairedPreference(
                prompt: Self.prompt(problem.prompt, conversational), completion: Self.completion(completion, conversational),
                label: desirable)
        }
    }

    // MARK: Gold reward

    /// The hidden gold reward of `completion` for a prompt written by a synthetic task (see the
    /// file's opening comment): 1 for the correct answer, below 0.5 for wrong ones (higher when
    /// closer), 0 when unparseable or when the prompt is not a synthetic task's.
    public static func goldReward(prompt: String, completion: String) -> Double {
        guard let answer = answer(for: prompt) else { return 0 }
        let given = completion.trimmingWhitespace
        if given == answer { return 1 }
        if isArithmetic(prompt) {
            guard let value = Int(given), let truth = Int(answer) else { return 0 }
            let distance = Double(value.subtractingReportingOverflow(truth).partialValue.magnitude)
            return 0.5 / (1 + distance)
        }
        let a = Array(given), b = Array(answer)
        let matches = zip(a, b).filter { $0 == $1 }.count
        return 0.5 * Double(matches) / Double(max(a.count, b.count, 1))
    }

    /// The correct answer to a prompt written by a synthetic task, or nil.
    public static func answer(for prompt: String) -> String? {
        if prompt.hasPrefix("What is "), prompt.hasSuffix("?") {
            let body = prompt.dropFirst("What is ".count).dropLast()
            for (symbol, operation) in [(" + ", { (a: Int, b: Int) in a.addingReportingOverflow(b) }),
                                        (" × ", { (a: Int, b: Int) in a.multipliedReportingOverflow(by: b) })] {
                let parts = body.components(separatedBy: symbol)
                if parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]) {
                    let result = operation(a, b)
                    return result.overflow ? nil : String(result.partialValue)
                }
            }
            return nil
        }
        if let word = suffix(of: prompt, after: "Reverse the letters: ") { return String(word.reversed()) }
        if let word = suffix(of: prompt, after: "Sort the letters: ") { return String(word.sorted()) }
        return nil
    }

    // MARK: Helpers

    static func isArithmetic(_ prompt: String) -> Bool { prompt.hasPrefix("What is ") }

    static func suffix(of prompt: String, after prefix: String) -> String? {
        guard prompt.hasPrefix(prefix) else { return nil }
        let word = String(prompt.dropFirst(prefix.count))
        return word.isEmpty ? nil : word
    }

    static func number(digits: Int, rng: inout RandomGenerator) -> Int {
        var low = 1
        for _ in 1..<digits { low *= 10 }
        let lowest = digits == 1 ? 0 : low
        return lowest + rng.int(below: low * 10 - lowest)
    }

    static func prompt(_ text: String, _ conversational: Bool) -> Content {
        conversational ? .messages([.user(text)]) : .text(text)
    }

    static func completion(_ text: String, _ conversational: Bool) -> Content {
        conversational ? .messages([.assistant(text)]) : .text(text)
    }

    /// A wrong answer; larger `severity` means farther from `answer` (in value or in letters).
    func wrongAnswer(_ answer: String, severity: Int, rng: inout RandomGenerator) -> String {
        switch self {
        case .addition, .multiplication:
            let truth = Int(answer) ?? 0
            let scale = severity == 1 ? 1 + rng.int(below: 3) : 10 * severity + rng.int(below: 10 * severity)
            let offset = rng.uniform() < 0.5 ? -scale : scale
            let wrong = truth + offset
            return String(wrong < 0 ? truth + scale : wrong)
        case .reversal, .sorting:
            var letters = Array(answer)
            guard letters.count > 1 else {
                return String(Self.letters.first { $0 != letters.first } ?? "a")
            }
            // `severity` random adjacent swaps, at least one effective (letters are distinct).
            for step in 0..<severity {
                let i = rng.int(below: letters.count - 1)
                if step == 0 || rng.uniform() < 0.8 { letters.swapAt(i, i + 1) }
            }
            if String(letters) == answer { letters.swapAt(0, 1) }
            return String(letters)
        }
    }
}

extension String {
    /// The string without leading and trailing whitespace and newlines.
    var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
