// Datasets in their own column names and answer formats (GSM8K, MATH) loaded without conversion.

import Foundation
import Testing
@testable import NudgeAlign

@Suite("Dataset options") struct DatasetOptionsTests {
    @Test func extractors() {
        #expect(AnswerExtractor.gsm8k.extract("She pays 3 * 24 = <<3*24=72>>72 dollars.\n#### 72") == "72")
        #expect(AnswerExtractor.gsm8k.extract("So 1,000 + 234 = 1,234\n#### 1,234 ") == "1234")
        #expect(AnswerExtractor.gsm8k.extract("#### -5") == "-5")
        #expect(AnswerExtractor.gsm8k.extract("no marker here") == nil)
        #expect(AnswerExtractor.boxed.extract("so $x = \\boxed{\\frac{1}{2}}$ and then \\boxed{ 42 }.") == "42")
        #expect(AnswerExtractor.boxed.extract("\\boxed{\\dfrac{\\sqrt{3}}{2}}") == "\\dfrac{\\sqrt{3}}{2}")
        #expect(AnswerExtractor.boxed.extract("\\boxed{unbalanced") == nil)
        #expect(AnswerExtractor.lastNumber.extract("first 12, then 3.5, finally -1,250.") == "-1250")
        #expect(AnswerExtractor.lastNumber.extract("the answer is 7.") == "7")
        #expect(AnswerExtractor.lastNumber.extract("none") == nil)
    }

    @Test func columnsParse() throws {
        #expect(try DatasetOptions.parseColumns("question=prompt, answer = answer") == ["question": "prompt", "answer": "answer"])
        #expect(try DatasetOptions.parseColumns("") == [:])
        #expect(throws: DatasetOptionsError.self) { try DatasetOptions.parseColumns("question") }
        #expect(throws: DatasetOptionsError.self) { try DatasetOptions.parseColumns("a=prompt,b=prompt") }
    }

    @Test func gsm8kShapedRowsLoad() throws {
        let jsonl = """
        {"question": "Natalia sold 48 clips in April and half as many in May. How many in all?", "answer": "48/2 = 24\\n48+24 = 72\\n#### 72"}
        {"question": "What is 2 + 2?", "answer": "#### 4"}
        """
        let options = DatasetOptions(columns: ["question": "prompt"], answer: .gsm8k)
        let rows = try JSONLDataset.parse(Data(jsonl.utf8), fileName: "gsm8k.jsonl", options: options)
        #expect(rows == [.verifiable(prompt: .text("Natalia sold 48 clips in April and half as many in May. How many in all?"), answer: "72"),
                         .verifiable(prompt: .text("What is 2 + 2?"), answer: "4")])
        // A row whose answer has no #### names the file, line and field.
        let bad = "{\"question\": \"q\", \"answer\": \"no marker\"}"
        #expect { try JSONLDataset.parse(Data(bad.utf8), fileName: "gsm8k.jsonl", options: options) } throws: { error in
            "\(error)".hasPrefix("gsm8k.jsonl:1: field \"answer\": ") && "\(error)".contains("dataset.answer=gsm8k")
        }
    }

    @Test func rowsPrintAsTheJSONTheyWereReadFrom() throws {
        let rows: [DatasetRow] = [
            .verifiable(prompt: .text("2+2?"), answer: "4"),
            .verifiable(prompt: .text("3+3?"), answer: "6"),
        ]
        let lines = rows.map(\.jsonLine).joined(separator: "\n")
        #expect(try JSONLDataset.parse(Data(lines.utf8), fileName: "x.jsonl") == rows)
        let preference: [DatasetRow] = [.preference(prompt: .messages([.user("q")]), chosen: .messages([.assistant("a")]), rejected: .messages([.assistant("b")]))]
        #expect(try JSONLDataset.parse(Data(preference[0].jsonLine.utf8), fileName: "p.jsonl") == preference)
        #expect(DatasetSummary(rows).description == "2 rows; shape prompt/answer (2); plain text")
        #expect(DatasetSummary(preference).description == "1 rows; shape prompt/chosen/rejected (1); conversational")
    }

    /// Null counts: a column null or absent in a row counts once for it, whenever the column first appears.
    @Test func summaryCountsNullsPerSourceColumn() {
        var summary = DatasetSummary()
        let row = DatasetRow.verifiable(prompt: .text("q"), answer: "1")
        summary.add(row, source: ["question": .string("q"), "answer": .string("1"), "score": .null])
        summary.add(row, source: ["question": .string("q"), "answer": .string("1"), "score": .double(0.5)])
        summary.add(row, source: ["question": .string("q"), "answer": .string("1"), "source": .string("web")])
        #expect(summary.rows == 3)
        #expect(summary.columns.map(\.name) == ["answer", "question", "score", "source"])
        #expect(summary.columns.map(\.nulls) == [0, 0, 2, 2])
        #expect(summary.columnsDescription == "columns: answer (0 null), question (0 null), score (2 null), source (2 null)")
        #expect(DatasetSummary([row]).columnsDescription == "")
    }
}

@Suite("CSV, TSV and JSON datasets") struct DelimitedDatasetTests {
    func write(_ text: String, _ ext: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-data-\(UUID().uuidString).\(ext)")
        try Data(text.utf8).write(to: url)
        return url
    }

    @Test func csvWithQuotesAndNewlines() throws {
        let url = try write("question,answer\r\n\"What is 2+2, exactly?\",\"Two plus two\nis 4\n#### 4\"\r\nSay \"\"hi\"\"?,#### 5\n\n", "csv")
        let rows = try JSONLDataset.load(url, options: DatasetOptions(columns: ["question": "prompt"], answer: .gsm8k))
        #expect(rows == [.verifiable(prompt: .text("What is 2+2, exactly?"), answer: "4"), .verifiable(prompt: .text("Say \"\"hi\"\"?"), answer: "5")])
    }

    @Test func tsvAndJSONArray() throws {
        let tsv = try write("prompt\tcompletion\nhello\tworld\n", "tsv")
        #expect(try JSONLDataset.load(tsv) == [.promptCompletion(prompt: .text("hello"), completion: .text("world"))])
        let json = try write(" [{\"prompt\": \"a\", \"completion\": \"b\"}, {\"prompt\": \"c\", \"completion\": \"d\"}]", "json")
        #expect(try JSONLDataset.load(json).count == 2)
        let lines = try write("{\"prompt\": \"a\", \"completion\": \"b\"}\n", "json")
        #expect(try JSONLDataset.load(lines).count == 1)
    }

    @Test func malformedFilesNameTheLine() throws {
        let ragged = try write("prompt,completion\na,b\nc\n", "csv")
        #expect { try JSONLDataset.load(ragged) } throws: { "\($0)".hasPrefix("nudge-data-") && "\($0)".contains(":3: ") && "\($0)".contains("1 fields where the header has 2") }
        let open = try write("prompt,completion\n\"a,b\n", "csv")
        #expect { try JSONLDataset.load(open) } throws: { "\($0)".contains("not closed") }
        let notObjects = try write("[1, 2]", "json")
        #expect(throws: DatasetError.self) { try JSONLDataset.load(notObjects) }
    }
}
