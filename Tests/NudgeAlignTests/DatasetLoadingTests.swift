// DatasetLoadingTests.swift
//
// JSON Lines loading: every TRL shape parses from a fixture, implicit prompts are
// extracted, the line reader copes with BOM / CRLF / blank lines / no final
// newline, and every malformed file fails with an error naming file, line and field.

import Foundation
import NudgeLM
import Testing

@testable import NudgeAlign

func fixtureURL(_ name: String) throws -> URL {
    try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"))
}

func loadFixture(_ name: String) throws -> [DatasetRow] {
    try JSONLDataset.load(try fixtureURL(name))
}

func loadError(_ name: String) throws -> DatasetError {
    do {
        let rows = try loadFixture(name)
        Issue.record("expected an error, got \(rows.count) rows")
        return DatasetError(file: "", line: 0, field: nil, kind: .invalidJSON)
    } catch let error as DatasetError {
        return error
    }
}

@Suite("JSONL dataset loading")
struct DatasetLoadingTests {
    @Test("Line reader: BOM, CRLF, blank lines, missing final newline")
    func lineReader() {
        let data = Data([0xEF, 0xBB, 0xBF] + Array("a\r\n\r\n  \nb\nc".utf8))
        let lines = JSONLinesReader.lines(of: data)
        #expect(lines.map(\.number) == [1, 4, 5])
        #expect(lines.map { String(decoding: $0.bytes, as: UTF8.self) } == ["a", "b", "c"])
    }

    @Test("prompt/completion (BOM, CRLF, extra keys)")
    func promptCompletion() throws {
        let rows = try loadFixture("prompt_completion.jsonl")
        #expect(rows == [
            .promptCompletion(prompt: .text("The sky is"), completion: .text(" blue.")),
            .promptCompletion(prompt: .text("2+2="), completion: .text("4")),
        ])
    }

    @Test("messages")
    func messages() throws {
        let rows = try loadFixture("messages.jsonl")
        #expect(rows.count == 2)
        #expect(rows[0] == .conversation([.system("Be brief."), .user("Hi"), .assistant("Hello.")]))
    }

    @Test("prompt/chosen/rejected, plain and conversational")
    func preference() throws {
        #expect(try loadFixture("preference.jsonl")[1] == .preference(prompt: .text("2+2="), chosen: .text("4"), rejected: .text("5")))
        #expect(try loadFixture("preference_conversational.jsonl") == [
            .preference(prompt: .messages([.user("2+2?")]), chosen: .messages([.assistant("4")]), rejected: .messages([.assistant("5")]))
        ])
    }

    @Test("Implicit prompt: the shared prefix becomes the prompt")
    func implicitPrompt() throws {
        #expect(try loadFixture("implicit_preference.jsonl") == [
            .preference(
                prompt: .messages([.user("What color is the sky?")]), chosen: .messages([.assistant("Blue.")]),
                rejected: .messages([.assistant("Green.")]))
        ])
        #expect(try loadFixture("implicit_preference_text.jsonl") == [
            .preference(prompt: .text("The sky is"), chosen: .text(" blue."), rejected: .text(" green."))
        ])
    }

    @Test("prompt/completion/label, answer, solution, pre-tokenized")
    func otherShapes() throws {
        #expect(try loadFixture("unpaired.jsonl") == [
            .unpairedPreference(prompt: .text("2+2="), completion: .text("4"), label: true),
            .unpairedPreference(prompt: .text("2+2="), completion: .text("5"), label: false),
        ])
        #expect(try loadFixture("verifiable.jsonl") == [
            .verifiable(prompt: .text("What is 2 + 3?"), answer: "5"), .verifiable(prompt: .text("What is 4 + 4?"), answer: "8"),
        ])
        #expect(try loadFixture("solution.jsonl") == [.verifiable(prompt: .messages([.user("What is 2 + 3?")]), answer: "5")])
        #expect(try loadFixture("tokenized_preference.jsonl") == [
            .tokenizedPreference(promptIDs: [1, 2, 3], chosenIDs: [4, 5], rejectedIDs: [6])
        ])
        #expect(try loadFixture("tokenized_lm.jsonl") == [
            .tokenizedLanguageModeling(inputIDs: [10, 11, 12, 13], completionMask: [0, 0, 1, 1]),
            .tokenizedLanguageModeling(inputIDs: [20, 21], completionMask: [1, 1]),
        ])
    }

    @Test(
        "Errors name file, line and field",
        arguments: [
            ("bad_chosen_type.jsonl", 3, "chosen", "bad_chosen_type.jsonl:3: field \"chosen\": expected a string or a list of messages, found a number"),
            ("bad_json.jsonl", 2, nil, "bad_json.jsonl:2: invalid JSON"),
            ("empty_completion.jsonl", 1, "completion", "empty_completion.jsonl:1: field \"completion\": empty completion"),
            ("missing_rejected.jsonl", 2, "rejected", "missing_rejected.jsonl:2: field \"rejected\": missing"),
            ("mixed_shapes.jsonl", 2, "chosen", nil),
            ("bad_role.jsonl", 2, "messages[1].role", nil),
            ("bad_label.jsonl", 1, "label", "bad_label.jsonl:1: field \"label\": expected a boolean, found a number"),
            ("mixed_formats.jsonl", 2, "completion", nil),
            ("bad_mask.jsonl", 1, "completion_mask", nil),
            ("not_object.jsonl", 1, nil, nil),
        ] as [(String, Int, String?, String?)])
    func errors(file: String, line: Int, field: String?, message: String?) throws {
        let error = try loadError(file)
        #expect(error.file == file)
        #expect(error.line == line)
        #expect(error.field == field)
        if let message { #expect(error.description == message) }
        #expect(error.description.hasPrefix("\(file):\(line): "))
    }

    @Test("Typed error kinds")
    func kinds() throws {
        #expect(try loadError("mixed_shapes.jsonl").kind == .mixedShapes(expected: .promptCompletion, found: .preference, firstLine: 1))
        #expect(try loadError("bad_role.jsonl").kind == .invalidRole("robot"))
        #expect(try loadError("mixed_formats.jsonl").kind == .mixedFormats)
        #expect(try loadError("not_object.jsonl").kind == .notAnObject)
        let missing = try #require(throws: DatasetError.self) {
            try JSONLDataset.load(URL(fileURLWithPath: "/nonexistent/x.jsonl"))
        }
        #expect(missing.file == "x.jsonl")
    }

    @Test("Inline edge cases")
    func inline() throws {
        func parse(_ text: String) throws -> [DatasetRow] { try JSONLDataset.parse(Data(text.utf8), fileName: "t.jsonl") }
        #expect(try parse("").isEmpty)
        #expect(try parse("\n\n").isEmpty)
        let noAssistant = #"{"messages": [{"role": "user", "content": "hi"}]}"#
        #expect(throws: DatasetError(file: "t.jsonl", line: 1, field: "messages", kind: .emptyCompletion)) { try parse(noAssistant) }
        let unknown = #"{"text": "hi"}"#
        #expect(throws: DatasetError(file: "t.jsonl", line: 1, field: nil, kind: .unknownShape(keys: ["text"]))) { try parse(unknown) }
        let negative = #"{"input_ids": [1, -2]}"#
        #expect(throws: DatasetError(file: "t.jsonl", line: 1, field: "input_ids[1]", kind: .wrongType(expected: "a non-negative integer", found: "a number"))) { try parse(negative) }
        let badContent = "{\"prompt\": \"p\", \"completion\": \"c\"}\n{\"messages\": [{\"role\": \"user\", \"content\": 5}]}"
        let error = try #require(throws: DatasetError.self) { try parse(badContent) }
        #expect(error.line == 2)
        let identical = #"{"chosen": "same", "rejected": "same"}"#
        #expect(throws: DatasetError.self) { try parse(identical) }
    }

    /// A completion is the assistant's turn: a user turn there, or a prompt ending with the
    /// assistant, is named by file, line and field instead of failing later in the template.
    @Test("Conversational completions start with the assistant's turn")
    func completionTurns() throws {
        func parse(_ text: String) throws -> [DatasetRow] { try JSONLDataset.parse(Data(text.utf8), fileName: "t.jsonl") }
        let userCompletion = #"{"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "user", "content": "yo"}]}"#
        let error = try #require(throws: DatasetError.self) { try parse(userCompletion) }
        #expect(error.line == 1 && error.field == "completion[0].role" && "\(error)".contains("\"user\""))
        let assistantPrompt = #"{"prompt": [{"role": "assistant", "content": "hi"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#
        #expect(try #require(throws: DatasetError.self) { try parse(assistantPrompt) }.field == "prompt[0].role")
        let implicit = #"{"chosen": [{"role": "user", "content": "q"}, {"role": "system", "content": "a"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}"#
        #expect(try #require(throws: DatasetError.self) { try parse(implicit) }.field == "chosen[1].role")
        let good = #"{"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "yo"}]}"#
        #expect(try parse(good).count == 1)
    }
}

/// JSON Lines files are read in chunks: the lines are those `JSONLinesReader.lines(of:)` gives for
/// the whole file, wherever the chunks end (BOM, CRLF, blank lines, no final newline).
@Suite("JSONL streaming") struct JSONLStreamingTests {
    @Test func chunkedLinesEqualWholeFileLines() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-lines-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        let texts = [
            "\u{FEFF}{\"a\": 1}\r\n\r\n  \n{\"b\": \"x\\ny\"}\n{\"c\": 3}",
            "{\"a\": 1}\n",
            "",
            "\u{FEFF}",
            "\n\n{\"only\": true}\r\n",
            "\u{FEFF}{\"é\": \"ü\"}\n \t\r\n{\"z\": [1, 2]}",
        ]
        for text in texts {
            try Data(text.utf8).write(to: url)
            let whole = JSONLinesReader.lines(of: Data(text.utf8))
            for chunk in [1, 2, 3, 5, 64, 1 << 22] {
                var streamed: [JSONLine] = []
                try JSONLinesReader.forEachLine(ofFileAt: url.path, chunkSize: chunk) {
                    streamed.append($0)
                    return true
                }
                #expect(streamed == whole, "\(text.debugDescription) in chunks of \(chunk)")
            }
            var first: [JSONLine] = []
            try JSONLinesReader.forEachLine(ofFileAt: url.path, chunkSize: 2) {
                first.append($0)
                return false
            }
            #expect(first == Array(whole.prefix(1)))
        }
    }

    @Test func loadingStreamsAndStopsEarly() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-rows-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        let lines = (0..<50).map { "{\"question\": \"q\($0)\", \"answer\": \"#### \($0)\"}" }
        try Data((lines.joined(separator: "\n") + "\n{\"question\": \"bad\"").utf8).write(to: url)
        let options = DatasetOptions(columns: ["question": "prompt"], answer: .gsm8k)
        var seen = 0
        try JSONLDataset.forEachRow(url, options: options) { source, row in
            #expect(source["question"] != nil)
            #expect(row == .verifiable(prompt: .text("q\(seen)"), answer: "\(seen)"))
            seen += 1
            return seen < 10
        }
        #expect(seen == 10)
        // Read to the end, the malformed last line is found and named.
        let error = try #require(throws: DatasetError.self) { try JSONLDataset.load(url, options: options) }
        #expect("\(error)".contains(":51:"), "\(error)")
        struct Stop: Error {}
        #expect(throws: Stop.self) { try JSONLDataset.forEachRow(url, options: options) { _, _ in throw Stop() } }
    }
}
