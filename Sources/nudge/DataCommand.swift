// `nudge data show`: a dataset as Nudge reads it (after column mapping and answer extraction).

import ArgumentParser
import Foundation
import Nudge

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Dataset tools.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a dataset's rows as Nudge reads them, with a summary.",
            discussion: """
            FILE is JSONL or Parquet, or a Hub dataset directory (data/<split>-*.parquet). Rows are printed
            as JSON objects in TRL's field names after --columns and --answer are applied, so what is shown
            is what training sees. The summary gives the rows, their shape and format, and each source
            column (before --columns renames it) with the number of rows where it is null or absent. The
            file is streamed (Parquet page by page), so a large dataset needs little memory. Example:
              nudge data show gsm8k/ --columns question=prompt --answer gsm8k --rows 3
            """)
        @Argument(help: "A JSONL or Parquet file, or a Hub dataset directory.") var path: String
        @Option(help: "Rows to print (0: none, only the summary).") var rows = 5
        @Option(help: "Column mapping, as dataset.columns (e.g. question=prompt).") var columns = ""
        @Option(help: "Answer extractor, as dataset.answer: gsm8k, boxed or last_number.") var answer: String?
        @Option(help: "The split of a Hub dataset directory.") var split = "train"
        @Flag(help: "Print only the rows, one JSON object per line.") var json = false

        func run() throws {
            guard rows >= 0 else { throw ValidationError("--rows: expected an integer ≥ 0, got \(rows)") }
            var extractor: AnswerExtractor?
            if let answer {
                guard let known = AnswerExtractor(rawValue: answer) else {
                    throw ValidationError("--answer: expected \(AnswerExtractor.allCases.map(\.rawValue).joined(separator: ", ")), got '\(answer)'")
                }
                extractor = known
            }
            let mapping: [String: String]
            do { mapping = try DatasetOptions.parseColumns(columns) } catch { throw ValidationError("--columns: \(error)") }
            // Streamed: rows are printed and counted as they are read, never all held; with --json only
            // the printed rows are read.
            var printed = 0
            let options = DatasetOptions(columns: mapping, answer: extractor, split: split)
            let summary = try DatasetSummary.scan(URL(fileURLWithPath: path), options: options) { row in
                if printed < rows {
                    print(row.jsonLine)
                    printed += 1
                }
                return !json || printed < rows
            }
            if !json {
                print("\(path): \(summary)")
                print("  \(summary.columnsDescription)")
            }
        }
    }
}
