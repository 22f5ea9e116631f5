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
        case .stepwiseSupervision(let p, let steps, let labels): ["prompt": p, "completions": steps, "labels": labels]
        }
    }

    /// The row as one line of JSON (keys sorted).
    public var jsonLine: String {
        let data = (try? JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// What a dataset holds: rows, shapes, format, and its source columns with their null counts.
/// Built row by row (`add`), so a dataset can be summarized while it streams.
public struct DatasetSummary: Sendable, CustomStringConvertible {
    public private(set) var rows = 0
    public private(set) var conversational = 0
    private var shapeCounts: [DatasetShape: Int] = [:]
    /// Source column names (before mapping), in order of first appearance (a row's new names sorted).
    public private(set) var columnNames: [String] = []
    private var present: [String: Int] = [:]
    private var sourceRows = 0

    /// An empty summary, to `add` rows to.
    public init() {}

    /// The summary of `rows` (without source columns).
    public init(_ rows: [DatasetRow]) {
        for row in rows { add(row) }
    }

    /// Streams the rows of `url` (a JSONL or Parquet file, or a Hub dataset directory) into a
    /// summary with their source columns, handing each row to `body` first; reading stops when
    /// `body` returns false. No more than a page of Parquet rows is held at a time.
    public static func scan(_ url: URL, options: DatasetOptions, _ body: (DatasetRow) throws -> Bool) throws -> DatasetSummary {
        var summary = DatasetSummary()
        try JSONLDataset.forEachRow(url, options: options) { source, row in
            let more = try body(row)
            summary.add(row, source: source)
            return more
        }
        return summary
    }

    /// Counts `row`, and the columns of its source object (before mapping) when given.
    public mutating func add(_ row: DatasetRow, source: [String: JSONValue]? = nil) {
        rows += 1
        shapeCounts[row.shape, default: 0] += 1
        if row.isConversational == true { conversational += 1 }
        guard let source else { return }
        sourceRows += 1
        // New names in sorted order: a source object's keys come in no fixed order.
        for name in source.keys.sorted() where present[name] == nil {
            present[name] = 0
            columnNames.append(name)
        }
        for (name, value) in source where value != .null { present[name, default: 0] += 1 }
    }

    /// Rows per shape, in `DatasetShape` order.
    public var shapes: [(DatasetShape, Int)] {
        DatasetShape.allCases.compactMap { shape in shapeCounts[shape].map { (shape, $0) } }
    }

    /// Source columns with the number of rows in which each is null or absent.
    public var columns: [(name: String, nulls: Int)] {
        columnNames.map { ($0, sourceRows - (present[$0] ?? 0)) }
    }

    public var description: String {
        let kinds = shapes.map { "\($0.0.rawValue) (\($0.1))" }.joined(separator: ", ")
        return "\(rows) rows; shape \(kinds); \(conversational == 0 ? "plain text" : conversational == rows ? "conversational" : "\(conversational) conversational")"
    }

    /// `columns: question (0 null), answer (0 null), score (12 null)`, or empty without source columns.
    public var columnsDescription: String {
        columns.isEmpty ? "" : "columns: " + columns.map { "\($0.name) (\($0.nulls) null)" }.joined(separator: ", ")
    }
}
