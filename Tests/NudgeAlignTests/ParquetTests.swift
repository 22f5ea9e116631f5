// ParquetTests.swift
//
// Our Parquet reader against pyarrow: every fixture written by scripts/make_parquet_fixtures.py
// (compression none/snappy/gzip/zstd, dictionary on and off, data pages v1 and v2, DELTA
// encodings, several row groups, nulls, lists, structs and list<struct> messages) decodes to
// exactly the rows pyarrow's to_pylist() gave (Fixtures/parquet/expected.json). Truncated and
// corrupted files throw errors instead of trapping, and Parquet datasets load through the same
// row parser as JSON Lines.

import Foundation
import NudgeLM
import Testing

@testable import NudgeAlign

private func parquetURL(_ name: String) throws -> URL {
    try #require(Bundle.module.url(forResource: "parquet/\(name)", withExtension: nil, subdirectory: "Fixtures"))
}

private func parquetData(_ name: String) throws -> Data {
    try Data(contentsOf: try parquetURL(name))
}

/// pyarrow's rows, by file name.
private func expectedRows() throws -> [String: JSONValue] {
    try JSONDecoder().decode([String: JSONValue].self, from: try parquetData("expected.json"))
}

/// Equality where a JSON number written as `2.0` (decoded as an integer) matches the double 2.0.
private func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
    case (.object(let x), .object(let y)):
        return x.count == y.count && x.allSatisfy { key, value in y[key].map { same(value, $0) } ?? false }
    default: return a == b
    }
}

@Suite struct ParquetTests {
    @Test func everyFixtureMatchesPyarrow() throws {
        let expected = try expectedRows()
        #expect(expected.count == 32)
        var compared = 0
        for (name, rows) in expected.sorted(by: { $0.key < $1.key }) {
            guard case .array(let expectedRows) = rows else { Issue.record("\(name): expected rows"); continue }
            let file = try ParquetFile(data: try parquetData(name), fileName: name)
            let decoded: [[String: JSONValue]]
            do {
                decoded = try file.rows()
            } catch {
                Issue.record("\(name): \(error)")
                continue
            }
            #expect(decoded.count == expectedRows.count, "\(name)")
            compared += min(decoded.count, expectedRows.count)
            for (index, (row, truth)) in zip(decoded, expectedRows).enumerated() where !same(.object(row), truth) {
                Issue.record("\(name) row \(index): got \(row), pyarrow has \(truth)")
                break
            }
        }
        // 16 scalar files of 24 rows, 7 of 5 message rows, 2 of 40 GSM8K rows, 12 + 4 + 2 × 160 + 30 + 2 × 4.
        #expect(compared == 16 * 24 + 7 * 5 + 2 * 40 + 12 + 4 + 2 * 160 + 30 + 2 * 4)
    }

    @Test func columnNamesAndRowCount() throws {
        let file = try ParquetFile(data: try parquetData("messages_snappy_v1.parquet"), fileName: "m.parquet")
        #expect(file.columnNames == ["messages", "tags", "nested", "meta"])
        #expect(file.rowCount == 5)
    }

    @Test func notParquetIsAClearError() throws {
        let error = try #require(throws: ParquetError.self) { try ParquetFile(data: Data("{\"a\": 1}\n".utf8), fileName: "x.parquet") }
        #expect(error.description.hasPrefix("x.parquet: not a Parquet file"))
    }

    /// Every prefix of a small file, and of a larger one with its footer kept, is an error, not a trap.
    @Test func truncationsThrow() throws {
        for name in ["prompts.parquet", "messages_snappy_v2.parquet"] {
            let bytes = [UInt8](try parquetData(name))
            for length in 0..<bytes.count {
                #expect(throws: ParquetError.self) { try ParquetFile(data: Data(bytes[..<length]), fileName: name).rows() }
                // Cutting out the middle keeps a valid-looking footer whose offsets now point astray.
                if length >= 4 && length % 7 == 0 {
                    let spliced = Array(bytes[..<length]) + Array(bytes[min(bytes.count, length + 5)...])
                    _ = try? ParquetFile(data: Data(spliced), fileName: name).rows()
                }
            }
        }
    }

    /// Random byte flips anywhere give rows or an error, never a trap.
    @Test func byteFlipsNeverTrap() throws {
        var generator = SystemRandomNumberGenerator()
        var errors = 0
        for name in ["messages_snappy_v1.parquet", "scalars_gzip_dict_v2.parquet", "delta.parquet", "scalars_none_plain_v1.parquet"] {
            let original = [UInt8](try parquetData(name))
            for _ in 0..<400 {
                var bytes = original
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
                do { _ = try ParquetFile(data: Data(bytes), fileName: name).rows() } catch is ParquetError { errors += 1 }
            }
        }
        #expect(errors > 0)
    }

    @Test func corruptPageNamesTheColumn() throws {
        var bytes = [UInt8](try parquetData("prompts.parquet"))
        // Overwrite the first page header (right after PAR1) with a bad page type.
        for i in 4..<12 { bytes[i] = 0xFF }
        let error = try #require(throws: ParquetError.self) { try ParquetFile(data: Data(bytes), fileName: "p.parquet").rows() }
        #expect(error.description.hasPrefix("p.parquet: row group 0, column \"prompt\", page 0: "), "\(error)")
    }

    @Test func preferenceDatasetLoads() throws {
        let rows = try JSONLDataset.load(try parquetURL("preference.parquet"))
        #expect(rows.count == 12)
        guard case .preference(let prompt, let chosen, let rejected) = rows[3] else { Issue.record("not a preference row: \(rows[3])"); return }
        #expect(prompt == .messages([ChatMessage(role: "user", content: "Question 3?")]))
        #expect(chosen == .messages([ChatMessage(role: "assistant", content: "Good answer 3.")]))
        #expect(rejected == .messages([ChatMessage(role: "assistant", content: "Bad answer 3.")]))
    }

    @Test func promptDatasetLoads() throws {
        let rows = try JSONLDataset.load(try parquetURL("prompts.parquet"))
        #expect(rows == ["rain", "snow", "wind", "sun"].map { .promptOnly(.text("Write a haiku about \($0).")) })
    }

    @Test func rowErrorsNameTheRow() throws {
        let error = try #require(throws: DatasetError.self) { try JSONLDataset.load(try parquetURL("messages_none_v1.parquet")) }
        #expect(error.description == "messages_none_v1.parquet:row 3: field \"messages\": empty completion")
        let gsm8k = try #require(throws: DatasetError.self) { try JSONLDataset.load(try parquetURL("gsm8k.parquet")) }
        #expect(gsm8k.description == "gsm8k.parquet:row 1: field \"prompt\": missing")
    }

    @Test func gsm8kLoadsWithItsColumnsMapped() throws {
        // GSM8K as the Hub ships it: question/answer with "#### N" at the end of the answer.
        let rows = try JSONLDataset.load(try parquetURL("gsm8k.parquet"),
                                         options: DatasetOptions(columns: ["question": "prompt"], answer: .gsm8k))
        #expect(rows.first == .verifiable(prompt: .text("Natalia sold clips to 0 of her friends. How many clips did she sell?"), answer: "0"))
        #expect(rows.dropFirst().first == .verifiable(prompt: .text("Natalia sold clips to 1 of her friends. How many clips did she sell?"), answer: "2"))
    }

    @Test func corruptParquetThroughTheLoaderNamesTheFile() throws {
        let error = try #require(throws: DatasetError.self) {
            try JSONLDataset.parseParquet(Data("PAR1....PAR1".utf8), fileName: "bad.parquet")
        }
        #expect(error.description.hasPrefix("bad.parquet: cannot read the file: "), "\(error)")
    }

    /// A directory in the Hub's layout loads its train shards in order, and not the test split.
    @Test func hubDirectoryLoadsTheTrainSplit() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-hub-\(UUID().uuidString)")
        let data = root.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let prompts = try parquetData("prompts.parquet")
        try prompts.write(to: data.appendingPathComponent("train-00000-of-00002.parquet"))
        try prompts.write(to: data.appendingPathComponent("train-00001-of-00002.parquet"))
        try parquetData("preference.parquet").write(to: data.appendingPathComponent("test-00000-of-00001.parquet"))
        #expect(try JSONLDataset.load(root).count == 8)
        #expect(try JSONLDataset.load(root, split: "test").count == 12)
        let missing = try #require(throws: DatasetError.self) { try JSONLDataset.load(root, split: "validation") }
        #expect("\(missing)".contains("data/validation-*.parquet"))
    }
}

/// Files opened by path are read by ranges, a row group at a time, and give the same rows.
@Suite struct ParquetStreamingTests {
    @Test func byPathMatchesInMemory() throws {
        for name in ["messages_plain_rowgroups.parquet", "gsm8k.parquet", "scalars_zstd_dict_v2.parquet", "delta.parquet"] {
            let inMemory = try ParquetFile(data: try parquetData(name), fileName: name).rows()
            let file = try ParquetFile(contentsOf: try parquetURL(name))
            #expect(file.fileName == name)
            #expect(try file.rows() == inMemory, "\(name)")
            var groups: [Int] = []
            var streamed: [[String: JSONValue]] = []
            try file.forEachRowGroup { rows in
                groups.append(rows.count)
                streamed += rows
            }
            #expect(groups.count == file.rowGroupCount)
            #expect(streamed == inMemory, "\(name)")
            var iterator = file.makeRowIterator()
            var iterated: [[String: JSONValue]] = []
            while let row = try iterator.next() { iterated.append(row) }
            #expect(iterated == inMemory, "\(name)")
            #expect(try iterator.next() == nil)
        }
        // Several row groups, decoded one by one.
        #expect(try ParquetFile(contentsOf: try parquetURL("messages_plain_rowgroups.parquet")).rowGroupCount == 3)
    }

    /// Batches of a few rows end inside pages, and rows (lists of messages) span pages: every
    /// fixture still reads as pyarrow's rows, through the iterator and by row group.
    @Test func smallBatchesMatchPyarrow() throws {
        let expected = try expectedRows()
        for batch in [1, 2, 3, 7] {
            for (name, rows) in expected.sorted(by: { $0.key < $1.key }) {
                guard case .array(let truth) = rows else { continue }
                var file = try ParquetFile(contentsOf: try parquetURL(name))
                file.batchRows = batch
                var iterator = file.makeRowIterator()
                var index = 0
                while let row = try iterator.next() {
                    if index >= truth.count || !same(.object(row), truth[index]) {
                        Issue.record("\(name), batches of \(batch), row \(index): got \(row)")
                        break
                    }
                    index += 1
                }
                #expect(index == truth.count, "\(name), batches of \(batch)")
                #expect(try file.rows().count == truth.count)
            }
        }
        // Corrupt bytes read in small batches: rows or an error, never a trap.
        var generator = SystemRandomNumberGenerator()
        let original = [UInt8](try parquetData("messages_snappy_v2.parquet"))
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            guard var file = try? ParquetFile(data: Data(bytes), fileName: "flipped.parquet") else { continue }
            file.batchRows = 2
            _ = try? file.rows()
        }
    }

    @Test func truncatedFileOnDiskIsAnError() throws {
        let bytes = [UInt8](try parquetData("gsm8k.parquet"))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-trunc-\(UUID().uuidString).parquet")
        defer { try? FileManager.default.removeItem(at: url) }
        for length in [0, 7, 12, bytes.count / 2, bytes.count - 1] {
            try Data(bytes[..<length]).write(to: url)
            #expect(throws: ParquetError.self) { try ParquetFile(contentsOf: url).rows() }
            #expect(throws: DatasetError.self) { try JSONLDataset.load(url) }
        }
        // The footer kept, a column chunk cut short: the error names the row group and column.
        var spliced = bytes
        for i in 4..<min(64, bytes.count - 8) { spliced[i] = 0 }
        try Data(spliced).write(to: url)
        let error = try #require(throws: DatasetError.self) {
            try JSONLDataset.load(url, options: DatasetOptions(columns: ["question": "prompt"], answer: .gsm8k))
        }
        #expect("\(error)".contains("row group 0, column"), "\(error)")
        let missing = try #require(throws: ParquetError.self) { try ParquetFile(contentsOf: url.appendingPathExtension("gone")) }
        #expect(missing.description.contains("cannot open the file"), "\(missing)")
    }

    /// `forEachRow` gives each row with its source object, and stops when asked.
    @Test func rowsStreamWithTheirSourceColumns() throws {
        let options = DatasetOptions(columns: ["question": "prompt"], answer: .gsm8k)
        var summary = DatasetSummary()
        try JSONLDataset.forEachRow(try parquetURL("gsm8k.parquet"), options: options) { source, row in
            #expect(source["question"] != nil && source["prompt"] == nil)
            summary.add(row, source: source)
            return true
        }
        #expect(summary.rows == 40)
        #expect(summary.description == "40 rows; shape prompt/answer (40); plain text")
        #expect(summary.columnsDescription == "columns: answer (0 null), question (0 null)")
        var seen = 0
        try JSONLDataset.forEachRow(try parquetURL("gsm8k.parquet"), options: options) { _, _ in
            seen += 1
            return seen < 3
        }
        #expect(seen == 3)
        #expect(try JSONLDataset.load(try parquetURL("gsm8k.parquet"), options: options).count == 40)
    }
}

/// Reading speed on a large local file: `NUDGE_PARQUET_BENCH=/path/file.parquet swift test --filter ParquetBench`.
@Suite struct ParquetBench {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["NUDGE_PARQUET_BENCH"] != nil))
    func readLargeFile() throws {
        let path = try #require(ProcessInfo.processInfo.environment["NUDGE_PARQUET_BENCH"])
        let start = Date()
        var rows = 0
        try ParquetFile(contentsOf: URL(fileURLWithPath: path)).forEachRowGroup { rows += $0.count }
        print("ParquetBench: \(rows) rows in \(Date().timeIntervalSince(start)) s")
    }
}
