// Rows as Nudge reads them, back as JSON objects in TRL's field names (what `nudge data show`
// prints), and a summary of a dataset: its shape, row count and format.

import Foundation
import NudgeLM

extension Content {
    /// The content as JSON: a string, or a list of {role, content} messages.
    var jsonObject: Any {
        switch self {
        case .text(let text): text
        case .messages(let messages): messages.map { ["role": $0.role, "content": $0.content] }
        }
    }
}

extension DatasetRow {
    /// The row as a JSON object with TRL's field names.
    public var jsonObject: [String: Any] {
        switch self {
        case .conversation(let messages): ["messages": Content.messages(messages).jsonObject]
        case .promptCompletion(let p, let c): ["prompt": p.jsonObject, "completion": c.jsonObject]
        case .promptOnly(let p): ["prompt": p.jsonObject]
        case .preference(let p, let chosen, let rejected): ["prompt": p.jsonObject, "chosen": chosen.jsonObject, "rejected": rejected.jsonObject]
        case .unpairedPreference(let p, let c, let label): ["prompt": p.jsonObject, "completion": c.jsonObject, "label": label]
        case .verifiable(let p, let answer): ["prompt": p.jsonObject, "answer": answer]
        case .tokenizedPreference(let p, let c, let r): ["prompt_input_ids": p, "chosen_input_ids": c, "rejected_input_ids": r]
        case .tokenizedLanguageModeling(let ids, let mask): ["input_ids": ids, "completion_mask": mask]
        }
    }

    /// The row as one line of JSON (keys sorted).
    public var jsonLine: String {
        let data = (try? JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// What a dataset holds.
public struct DatasetSummary: Sendable, CustomStringConvertible {
    public var rows: Int
    /// Rows per shape, in `DatasetShape` order.
    public var shapes: [(DatasetShape, Int)]
    public var conversational: Int

    public init(_ rows: [DatasetRow]) {
        self.rows = rows.count
        var counts: [DatasetShape: Int] = [:]
        for row in rows { counts[row.shape, default: 0] += 1 }
        shapes = DatasetShape.allCases.compactMap { shape in counts[shape].map { (shape, $0) } }
        conversational = rows.filter { $0.isConversational == true }.count
    }

    public var description: String {
        let kinds = shapes.map { "\($0.0.rawValue) (\($0.1))" }.joined(separator: ", ")
        return "\(rows) rows; shape \(kinds); \(conversational == 0 ? "plain text" : conversational == rows ? "conversational" : "\(conversational) conversational")"
    }
}
