// Malformed TOML headers (once aborts under toml++, now errors).

import Foundation
import Testing
@testable import NudgeConfig

@Suite("TOML headers") struct TOMLHeaderTests {
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
