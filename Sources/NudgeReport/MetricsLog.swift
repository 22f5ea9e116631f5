// MetricsLog.swift
//
// The on-disk metric formats of a run. `metrics.jsonl` holds one JSON object per
// logged step, `{"step": N, "wall_time": seconds, "<name>": value, ...}`;
// `metrics.csv` is the same table with one column per metric. Non-finite values
// are written as JSON `null` (read back as `.nan`) and as `nan` in the CSV.
// `MetricsLog` encodes lines, renders the CSV, and reads the JSONL back,
// tolerating a truncated last line left by a crash.

import Foundation
import NudgeConfig

/// One logged step read back from `metrics.jsonl`.
public struct MetricRow: Sendable, Equatable {
    /// The training step the metrics belong to.
    public var step: Int
    /// Seconds since the run started when the step was logged.
    public var wallTime: Double
    /// Metric values by name; `null` in the file reads as `.nan`.
    public var values: [String: Double]

    /// A row with the given fields.
    public init(step: Int, wallTime: Double, values: [String: Double]) {
        self.step = step
        self.wallTime = wallTime
        self.values = values
    }
}

/// A malformed line in a metrics file.
public struct MetricsLogError: Error, CustomStringConvertible, Sendable {
    /// The file that was read.
    public var file: String
    /// The 1-based line number.
    public var line: Int
    /// What was wrong with the line.
    public var reason: String

    /// `file:line: reason`.
    public var description: String { "\(file):\(line): \(reason)" }
}

/// Reading and writing the metric formats of a run directory.
public enum MetricsLog {
    /// Parses the `metrics.jsonl` file at `url`. Blank lines are ignored and an
    /// unterminated last line that does not parse (a crash mid-write) is skipped;
    /// any other malformed line throws a `MetricsLogError` naming file and line.
    public static func read(_ url: URL) throws -> [MetricRow] {
        try records(in: Data(contentsOf: url), file: url.path).map(\.row)
    }

    /// The CSV text for `rows`: a header `step,wall_time,<columns...>` and one line per
    /// row, with an empty cell where a row lacks a metric. `columns` defaults to the
    /// sorted union of the rows' metric names.
    public static func csv(_ rows: [MetricRow], columns: [String]? = nil) -> String {
        let columns = columns ?? sortedColumns(rows)
        var out = csvHeader(columns)
        for row in rows {
            out += csvLine(step: row.step, wallTime: row.wallTime, values: row.values, columns: columns)
        }
        return out
    }

    /// One JSONL line (with its trailing newline); metrics keep their given order.
    static func jsonLine(step: Int, wallTime: Double, metrics: [(String, Double)]) -> String {
        var line = "{\"step\":\(step),\"wall_time\":\(jsonNumber(wallTime))"
        for (name, value) in metrics {
            line += ",\"" + escapeBasicString(name) + "\":" + jsonNumber(value)
        }
        return line + "}\n"
    }

    static func sortedColumns(_ rows: [MetricRow]) -> [String] {
        Set(rows.flatMap(\.values.keys)).sorted()
    }

    static func csvHeader(_ columns: [String]) -> String {
        (["step", "wall_time"] + columns).map(csvField).joined(separator: ",") + "\n"
    }

    static func csvLine(step: Int, wallTime: Double, values: [String: Double], columns: [String]) -> String {
        var cells = [String(step), csvNumber(wallTime)]
        for column in columns { cells.append(values[column].map(csvNumber) ?? "") }
        return cells.joined(separator: ",") + "\n"
    }

    /// Each parsed row together with its exact line bytes (without the newline).
    static func records(in data: Data, file: String) throws -> [(row: MetricRow, line: Data)] {
        var result: [(row: MetricRow, line: Data)] = []
        var start = data.startIndex
        var lineNumber = 0
        while start < data.endIndex {
            lineNumber += 1
            let newline = data[start...].firstIndex(of: UInt8(ascii: "\n"))
            let line = Data(data[start..<(newline ?? data.endIndex)])
            start = newline.map { $0 + 1 } ?? data.endIndex
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            switch parseRow(line) {
            case .success(let row): result.append((row, line))
            case .failure(let problem):
                if newline == nil { return result }  // truncated final line: crash mid-write
                throw MetricsLogError(file: file, line: lineNumber, reason: problem.reason)
            }
        }
        return result
    }

    private struct Problem: Error { var reason: String }

    private static func parseRow(_ line: Data) -> Result<MetricRow, Problem> {
        guard let object = try? JSONSerialization.jsonObject(with: line),
            let dict = object as? [String: Any]
        else { return .failure(Problem(reason: "not a JSON object")) }
        guard let step = (dict["step"] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }) else {
            return .failure(Problem(reason: "missing or non-integer \"step\""))
        }
        guard let wallTime = (dict["wall_time"] as? NSNumber)?.doubleValue else {
            return .failure(Problem(reason: "missing or non-numeric \"wall_time\""))
        }
        var values: [String: Double] = [:]
        for (name, value) in dict where name != "step" && name != "wall_time" {
            if value is NSNull {
                values[name] = .nan
            } else if let number = value as? NSNumber {
                values[name] = number.doubleValue
            } else {
                return .failure(Problem(reason: "metric \"\(name)\" is not a number"))
            }
        }
        return .success(MetricRow(step: step, wallTime: wallTime, values: values))
    }

    private static func jsonNumber(_ d: Double) -> String { d.isFinite ? finiteNumber(d) : "null" }

    private static func csvNumber(_ d: Double) -> String { d.isFinite ? finiteNumber(d) : "nan" }

    /// `field`, quoted (with doubled quotes) when it contains a comma, quote or line break.
    static func csvField(_ field: String) -> String {
        guard field.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
        else {
            return field
        }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
