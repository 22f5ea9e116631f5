// One process per run directory (a lock), and malformed TOML headers (once aborts under toml++, now errors).

import Foundation
import Testing
@testable import NudgeReport

@Suite("Run directory lock and TOML headers") struct RunDirectoryLockTests {
    @Test func aSecondWriterIsRefusedUntilTheFirstCloses() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-lock-\(UUID().uuidString)")
        let first = try RunDirectory.create(at: url, config: [:], mode: .overwrite)
        try first.log(step: 1, [("loss", 1)])
        let error = try #require(throws: RunDirectoryError.self) {
            try RunDirectory.create(at: url, config: [:], mode: .overwrite)
        }
        #expect("\(error)".contains("in use by another nudge process") && "\(error)".contains("pid \(getpid())"))
        // The first run's metrics were not replaced.
        #expect(try first.readMetrics().count == 1)
        first.close()
        let second = try RunDirectory.create(at: url, config: [:], mode: .resume)
        #expect(try second.readMetrics().count == 1)
        second.close()
    }

    @Test(arguments: ["[[\n", "[\n", "x = 1\n[[ \t\r\n", "[[a]]\n[[\n", "[  # comment\n", "[["])
    func anEmptyTableHeaderIsAnErrorNotAnAbort(text: String) {
        let error = #expect(throws: ConfigError.self) { try ConfigDocument.parseTOML(text, name: "bad.toml") }
        #expect(error.map { "\($0)" }?.contains("a table header needs a name") == true)
    }

    @Test func bracketsInsideValuesAreNotHeaders() throws {
        let text = "a = [\n[1, 2],\n[\n3]]\nb = \"[\"\nc = '''\n[\n'''\n[t]\nx = 1\n"
        let document = try ConfigDocument.parseTOML(text, name: "ok.toml")
        #expect(document.entries.map(\.key).sorted() == ["a", "b", "c", "t.x"])
    }
}
