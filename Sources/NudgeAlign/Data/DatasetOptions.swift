// Datasets in their own column names: a mapping onto TRL's fields (GSM8K's `question` is the
// `prompt`) and a named extractor for the verifiable answer (GSM8K's `answer` ends in `#### 72`;
// MATH's solutions put it in the last `\boxed{…}`), applied to each row before its shape is read,
// so `nudge grpo --data gsm8k.jsonl --set dataset.columns=question=prompt --set dataset.answer=gsm8k`
// needs no conversion.

import Foundation

/// Extracts the final answer from a reference solution.
public enum AnswerExtractor: String, Sendable, CaseIterable {
    /// The text after the last `####` (GSM8K), commas removed from the number.
    case gsm8k
    /// The contents of the last `\boxed{…}` (MATH), nested braces kept.
    case boxed
    /// The last number in the text, commas removed.
    case lastNumber = "last_number"

    /// The answer in `text`, or nil when the text has none.
    public func extract(_ text: String) -> String? {
        switch self {
        case .gsm8k:
            guard let marker = text.range(of: "####", options: .backwards) else { return nil }
            let answer = text[marker.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: ",", with: "")
            return answer.isEmpty ? nil : answer
        case .boxed:
            guard let start = text.range(of: "\\boxed{", options: .backwards) else { return nil }
            var depth = 1
            var index = start.upperBound
            while index < text.endIndex {
                switch text[index] {
                case "{": depth += 1
                case "}":
                    depth -= 1
                    if depth == 0 { return String(text[start.upperBound..<index]).trimmingCharacters(in: .whitespaces) }
                default: break
                }
                index = text.index(after: index)
            }
            return nil  // unbalanced braces
        case .lastNumber:
            // The last run of digits (with its sign, thousands commas and decimals).
            let scalars = Array(text.unicodeScalars)
            var end = scalars.count
            while end > 0 && !CharacterSet.decimalDigits.contains(scalars[end - 1]) { end -= 1 }
            guard end > 0 else { return nil }
            var start = end
            while start > 0 {
                let s = scalars[start - 1]
                if CharacterSet.decimalDigits.contains(s) {
                    start -= 1
                } else if (s == "," || s == "."), start >= 2, CharacterSet.decimalDigits.contains(scalars[start - 2]) {
                    start -= 1
                } else {
                    break
                }
            }
            if start > 0 && scalars[start - 1] == "-" { start -= 1 }
            var number = String(String.UnicodeScalarView(scalars[start..<end])).replacingOccurrences(of: ",", with: "")
            if number.hasSuffix(".") { number.removeLast() }
            return number
        }
    }
}

/// How a dataset's columns map onto TRL's fields and how its answers are extracted.
public struct DatasetOptions: Sendable, Equatable {
    /// Source column → TRL field, e.g. `["question": "prompt"]`; other columns keep their names.
    public var columns: [String: String]
    /// Applied to the `answer` field (after renaming), when set.
    public var answer: AnswerExtractor?
    /// The split read from a directory in the Hub's layout (`data/<split>-*.parquet`).
    public var split: String

    public init(columns: [String: String] = [:], answer: AnswerExtractor? = nil, split: String = "train") {
        self.columns = columns
        self.answer = answer
        self.split = split
    }

    /// Parses `question=prompt,answer=answer` (spaces around names allowed); throws a message naming
    /// the bad pair.
    public static func parseColumns(_ text: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw DatasetOptionsError(message: "'\(pair)' is not SOURCE=FIELD (e.g. question=prompt)")
            }
            guard out.updateValue(parts[1], forKey: parts[0]) == nil else {
                throw DatasetOptionsError(message: "column '\(parts[0])' is mapped twice")
            }
        }
        let targets = Array(out.values)
        if let twice = targets.first(where: { t in targets.filter { $0 == t }.count > 1 }) {
            throw DatasetOptionsError(message: "two columns map to '\(twice)'")
        }
        return out
    }

    /// The row object with columns renamed and the answer extracted.
    func apply(to object: [String: JSONValue], parser: LineParser) throws -> [String: JSONValue] {
        guard !columns.isEmpty || answer != nil else { return object }
        var out = object
        for (source, target) in columns {
            guard let value = object[source] else { continue }
            out.removeValue(forKey: source)
            out[target] = value
        }
        if let answer, let value = out["answer"] {
            let text: String
            switch value {
            case .string(let s): text = s
            case .int(let i): text = String(i)
            case .double(let d): text = String(d)
            default: throw parser.error("answer", .wrongType(expected: "a string or a number", found: value.typeName))
            }
            guard let extracted = answer.extract(text) else {
                throw parser.error("answer", .inconsistent("dataset.answer=\(answer.rawValue) finds no answer in \(text.prefix(80).debugDescription)"))
            }
            out["answer"] = .string(extracted)
        }
        return out
    }
}

/// A malformed `dataset.columns` value.
public struct DatasetOptionsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { "dataset.columns: \(message)" }
}
