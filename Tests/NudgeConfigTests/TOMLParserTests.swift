// TOMLParserTests.swift
//
// Tests of our TOML 1.0 parser: exact values for every kind of value, key positions, errors with
// their line and column, the inputs that once crashed toml++, nesting limits, the round trip
// through `TOMLWriter`, and agreement with Python's tomllib on the fixtures under Fixtures/toml
// (expected.json is written by scripts/make_toml_fixtures.py).

import Foundation
import Testing
@testable import NudgeConfig

private func parse(_ text: String) throws -> TOMLTable { try TOMLParser.parse(text) }

/// The error for `text`, or nil when it parses.
private func parseError(_ text: String) -> TOMLError? {
    do {
        _ = try TOMLParser.parse(text)
        return nil
    } catch {
        return error
    }
}

/// A table as plain config values (dates as their RFC 3339 text), for exact comparisons.
private func plain(_ table: TOMLTable) -> ConfigValue {
    .table(ConfigTable(table.entries.map { ($0.key, plain($0.value)) }))
}

private func plain(_ value: TOMLValue) -> ConfigValue {
    switch value {
    case .string(let s): return .string(s)
    case .integer(let i): return .int(i)
    case .float(let d): return .double(d)
    case .boolean(let b): return .bool(b)
    case .dateTime(let d): return .string("date:\(d)")
    case .array(let items): return .array(items.map(plain))
    case .table(let t): return plain(t)
    }
}

/// The repository's root, for files outside the test target (Fuzz/crashes).
private let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("TOML parser") struct TOMLParserTests {
    // MARK: Valid documents

    @Test func commentsAndKeys() throws {
        let text = """
            # A comment, with unicode: é ✓
            bare_key-1 = "a" # after a value
            1234 = 'b'
            "127.0.0.1" = 1
            "ʎǝʞ" = 2
            'quoted "value"' = 3
            "" = 4
            "\\u0041\\n" = 5
            site."google.com" = true
            fruit . color	=	"red"
            3.14159 = "pi"
            [tables ."with spaces" . 'and.dots']  # a header comment
            x = 1
            """
        #expect(plain(try parse(text)) == [
            "bare_key-1": "a", "1234": "b", "127.0.0.1": 1, "ʎǝʞ": 2, "quoted \"value\"": 3, "": 4, "A\n": 5,
            "site": ["google.com": true], "fruit": ["color": "red"], "3": ["14159": "pi"],
            "tables": ["with spaces": ["and.dots": ["x": 1]]],
        ])
    }

    @Test func basicStrings() throws {
        let table = try parse(#"""
            escapes = "\b\t\n\f\r\"\\"
            unicode = "\u00E9\u0000\U0001F600\U00000041"
            raw = "é😀	tab"
            empty = ""
            """#)
        #expect(plain(table) == [
            "escapes": "\u{8}\t\n\u{C}\r\"\\", "unicode": "é\u{0}😀A", "raw": "é😀\ttab", "empty": "",
        ])
    }

    @Test func multiLineBasicStrings() throws {
        let table = try parse("""
            trimmed = \"\"\"
            Roses\tare red
            Violets are blue\"\"\"
            folded = \"\"\"\\
                   The quick brown \\
                   fox jumps over \\\t
                   the lazy dog.\\
                   \"\"\"
            quotes = \"\"\"two "" quotes\"\"\"
            one-end = \"\"\"a\"\"\"\"
            two-end = \"\"\"a\"\"\"\"\"
            escaped = \"\"\"three \"\"\\" quotes\\u00E9\"\"\"
            crlf = \"\"\"\r\nline one\r\nline two\r\n\"\"\"
            """)
        #expect(plain(table) == [
            "trimmed": "Roses\tare red\nViolets are blue",
            "folded": "The quick brown fox jumps over the lazy dog.",
            "quotes": "two \"\" quotes", "one-end": "a\"", "two-end": "a\"\"",
            "escaped": "three \"\"\" quotesé",
            "crlf": "line one\nline two\n",
        ])
    }

    @Test func literalStrings() throws {
        let table = try parse("""
            path = 'C:\\Users\\nodejs\\templates'
            quoted = 'Tom "Dubs" Preston-Werner'
            empty = ''
            lines = '''
            The first newline is
               trimmed; \\n stays.
            '''
            apostrophes = '''Here are two: ''.'''
            end = ''''That,' she said''''
            """)
        #expect(plain(table) == [
            "path": "C:\\Users\\nodejs\\templates", "quoted": "Tom \"Dubs\" Preston-Werner", "empty": "",
            "lines": "The first newline is\n   trimmed; \\n stays.\n", "apostrophes": "Here are two: ''.",
            "end": "'That,' she said'",
        ])
    }

    @Test func integers() throws {
        let table = try parse("""
            a = +99
            b = 42
            c = 0
            d = -17
            e = 1_000
            f = 5_349_221
            g = -0
            max = 9223372036854775807
            min = -9223372036854775808
            hex = 0xDEAD_beef
            hexmax = 0x7FFFFFFFFFFFFFFF
            oct = 0o755
            bin = 0b1101_0110
            """)
        #expect(plain(table) == [
            "a": 99, "b": 42, "c": 0, "d": -17, "e": 1000, "f": 5_349_221, "g": 0, "max": .int(.max), "min": .int(.min),
            "hex": 0xDEADBEEF, "hexmax": .int(.max), "oct": 0o755, "bin": 0b11010110,
        ])
    }

    @Test(arguments: [
        "a = 9223372036854775808", "a = -9223372036854775809", "a = 99999999999999999999999",
        "a = 0x8000000000000000", "a = 0xFFFFFFFFFFFFFFFFFF", "a = 0o1000000000000000000000", "a = 0b" + String(repeating: "1", count: 64),
    ])
    func integerOverflowIsAnError(text: String) throws {
        let error = try #require(parseError(text))
        #expect((error.line, error.column) == (1, 5))
        #expect(error.message.hasSuffix("out of the 64-bit integer range"))
    }

    @Test func floats() throws {
        let table = try parse("""
            a = +1.0
            b = 3.1415
            c = -0.01
            d = 5e+22
            e = 1e06
            f = -2E-2
            g = 6.626e-34
            h = 224_617.445_991_228
            i = 1e1_0
            j = 0e0
            """)
        #expect(plain(table) == [
            "a": 1.0, "b": 3.1415, "c": -0.01, "d": 5e22, "e": 1e6, "f": -2e-2, "g": 6.626e-34, "h": 224_617.445_991_228,
            "i": 1e10, "j": 0.0,
        ])
        let special = try parse("a = inf\nb = +inf\nc = -inf\nd = nan\ne = +nan\nf = -nan\ng = -0.0\nh = +0.0\n")
        guard case .float(let a)? = special["a"], case .float(let b)? = special["b"], case .float(let c)? = special["c"],
              case .float(let d)? = special["d"], case .float(let e)? = special["e"], case .float(let f)? = special["f"],
              case .float(let g)? = special["g"], case .float(let h)? = special["h"]
        else {
            Issue.record("not all floats: \(special)")
            return
        }
        #expect(a == .infinity && b == .infinity && c == -.infinity)
        #expect(d.isNaN && e.isNaN && f.isNaN && f.sign == .minus && d.sign == .plus)
        #expect(g == 0 && g.sign == .minus && h == 0 && h.sign == .plus)
    }

    @Test func booleans() throws {
        #expect(plain(try parse("t = true\nf = false")) == ["t": true, "f": false])
    }

    @Test func datesAndTimes() throws {
        let table = try parse("""
            odt1 = 1979-05-27T07:32:00Z
            odt2 = 1979-05-27T00:32:00.999999-07:00
            odt3 = 1979-05-27 07:32:00+05:30
            odt4 = 1979-05-27t07:32:00z
            ldt = 1979-05-27T07:32:00.5
            long = 1979-05-27T00:32:00.1234567891
            ld = 2000-02-29
            lt = 07:32:00
            lt2 = 00:32:00.999999
            """)
        #expect(plain(table) == [
            "odt1": "date:1979-05-27T07:32:00Z", "odt2": "date:1979-05-27T00:32:00.999999-07:00",
            "odt3": "date:1979-05-27T07:32:00+05:30", "odt4": "date:1979-05-27T07:32:00Z",
            "ldt": "date:1979-05-27T07:32:00.5",
            // Past nanoseconds the digits are dropped, not rounded.
            "long": "date:1979-05-27T00:32:00.123456789",
            "ld": "date:2000-02-29", "lt": "date:07:32:00", "lt2": "date:00:32:00.999999",
        ])
        #expect(table["odt2"] == .dateTime(TOMLDateTime(date: .init(year: 1979, month: 5, day: 27),
                                                         time: .init(hour: 0, minute: 32, second: 0, nanosecond: 999_999_000),
                                                         offsetMinutes: -420)))
        #expect(table["ld"] == .dateTime(TOMLDateTime(date: .init(year: 2000, month: 2, day: 29), time: nil, offsetMinutes: nil)))
        #expect(table["lt"] == .dateTime(TOMLDateTime(date: nil, time: .init(hour: 7, minute: 32, second: 0, nanosecond: 0), offsetMinutes: nil)))
    }

    @Test func arrays() throws {
        let table = try parse("""
            integers = [ 1, 2, 3 ]
            mixed = [ 1, "a", 2.5, [true], { x = 1 }, [] ]
            trailing = [1, 2,]
            multi = [ # comment
              1,
              # on its own line

              2, # after
            ]
            nested = [[1, 2], [[3]], []]
            strings = [ "all", 'strings', \"\"\"are\"\"\", '''the same''' ]
            """)
        #expect(plain(table) == [
            "integers": [1, 2, 3], "mixed": [1, "a", 2.5, [true], ["x": 1], []], "trailing": [1, 2], "multi": [1, 2],
            "nested": [[1, 2], [[3]], []], "strings": ["all", "strings", "are", "the same"],
        ])
    }

    @Test func inlineTables() throws {
        let table = try parse("""
            name = { first = "Tom", last = "Preston-Werner" }
            point = {x=1,y=2}
            dotted = { type.name = "pug", type.age = 3, a.b.c = 1 }
            empty = {}
            nested = { a = { b = [1, { c = 2 }] } }
            """)
        #expect(plain(table) == [
            "name": ["first": "Tom", "last": "Preston-Werner"], "point": ["x": 1, "y": 2],
            "dotted": ["type": ["name": "pug", "age": 3], "a": ["b": ["c": 1]]], "empty": [:],
            "nested": ["a": ["b": [1, ["c": 2]]]],
        ])
    }

    @Test func tablesAndArraysOfTables() throws {
        let table = try parse("""
            top = 0
            [x.y.z]
            a = 1
            [x]        # a super-table may be defined after its sub-table
            b = 2
            [fruit]
            apple.color = "red"
            [fruit.apple.texture]  # a sub-table of a table made by dotted keys
            smooth = true
            [[fruits]]
            name = "apple"
            [fruits.physical]
            color = "red"
            [[fruits.varieties]]
            name = "red delicious"
            [[fruits.varieties]]
            name = "granny smith"
            [[fruits]]
            name = "banana"
            [[fruits]]
            [a.b.c]
            z = 9
            [a]
            b.d = 1    # dotted keys may add to the implicit parents of a header's table
            """)
        #expect(plain(table) == [
            "top": 0,
            "x": ["y": ["z": ["a": 1]], "b": 2],
            "fruit": ["apple": ["color": "red", "texture": ["smooth": true]]],
            "fruits": [
                ["name": "apple", "physical": ["color": "red"], "varieties": [["name": "red delicious"], ["name": "granny smith"]]],
                ["name": "banana"],
                [:],
            ],
            "a": ["b": ["c": ["z": 9], "d": 1]],
        ])
    }

    @Test func emptyDocumentsAndLineEnds() throws {
        #expect(try parse("").entries.isEmpty)
        #expect(try parse("# only a comment\n\n  \t\n").entries.isEmpty)
        #expect(plain(try parse("a = 1")) == ["a": 1])  // no final newline
        #expect(plain(try parse("a = 1\r\nb = 2\r\n# c\r\n[t]\r\n")) == ["a": 1, "b": 2, "t": [:]])
        #expect(plain(try parse("\u{FEFF}a = 1\n")) == ["a": 1])  // a byte-order mark
    }

    /// Every key knows where it was written; a header's table is placed at the header's key.
    @Test func keyPositions() throws {
        let table = try parse("""
            # comment
            a = 1
            [t]
              b.c = "é"
            d = { e = 1, "é" = 2 }
            [[arr]]
            [[arr]]
            f = 3
            """)
        func position(_ entry: TOMLTable.Entry?) -> [Int]? { entry.map { [$0.line, $0.column] } }
        #expect(table.entries.map { [$0.line, $0.column] } == [[2, 1], [3, 2], [6, 3]])
        guard case .table(let t)? = table["t"], case .table(let b)? = t["b"], case .table(let d)? = t["d"],
              case .array(let arr)? = table["arr"], arr.count == 2, case .table(let second) = arr[1]
        else {
            Issue.record("unexpected shape: \(table)")
            return
        }
        #expect(position(t.entries.first) == [4, 3])
        #expect(position(b.entries.first) == [4, 5])
        #expect(position(t.entries.last) == [5, 1])
        // Columns count characters, not bytes.
        #expect(d.entries.map { [$0.line, $0.column] } == [[5, 7], [5, 14]])
        #expect(position(second.entries.first) == [8, 1])
    }

    // MARK: Errors

    @Test(arguments: [
        // The inputs that aborted toml++.
        ("[.a]\n", 1, 2, "expected a key, found '.'"),
        ("[é]\nx = 1\n", 1, 2, "'é' cannot be part of a bare key (A-Z, a-z, 0-9, _ and - can); quote the key, e.g. \"café\""),
        ("f=[}]\n", 1, 4, "expected a value, found '}'"),
        ("a=2000-01-01Tx0:00\n", 1, 3, "invalid date or date-time '2000-01-01Tx0:00' (expected e.g. 1979-05-27, 1979-05-27T07:32:00 or 1979-05-27T07:32:00Z)"),
        // Headers.
        ("[[\n", 1, 1, "a table header needs a name, e.g. [sft] or [[items]]"),
        ("x = 1\n[]\n", 2, 1, "a table header needs a name, e.g. [sft] or [[items]]"),
        ("seed = 1\n[sft\nepochs = 2\n", 2, 5, "expected ']' to close the table header, found the end of the line"),
        ("[[a]\n", 1, 5, "expected ']]' to close the header, found the end of the line"),
        ("[a.]\n", 1, 4, "expected a key after '.', found ']'"),
        ("[a] b = 1\n", 1, 5, "expected the end of the line after the table header, found 'b'"),
        // Keys and values.
        ("a 1\n", 1, 3, "expected '=' after the key, found '1'"),
        ("= 1\n", 1, 1, "expected a key, found '='"),
        ("a =\n", 1, 4, "expected a value, found the end of the line"),
        ("a = 1 b = 2\n", 1, 7, "expected the end of the line after the value, found 'b'"),
        ("a = hello\n", 1, 5, "invalid value 'hello' (a string needs quotes)"),
        ("\"\"\"a\"\"\" = 1\n", 1, 1, "a key cannot be a multi-line string"),
        // Redefinitions.
        ("[sft]\nlearning_rate = 1\nlearning_rate = 2\n", 3, 1, "duplicate key 'sft.learning_rate' (first set on line 2)"),
        ("a.b = 1\na.b = 2\n", 2, 3, "duplicate key 'a.b' (first set on line 1)"),
        ("[a]\n[b]\n[a]\n", 3, 2, "table [a] is defined twice (first on line 1)"),
        ("[fruit]\napple.color = 1\n[fruit.apple]\n", 3, 8, "table [fruit.apple] was already defined by dotted keys (line 2)"),
        ("[a.b.c]\n[a]\nb.c.t = 1\n", 3, 3, "dotted keys cannot add to table [a.b.c], defined on line 1; write the key under its header"),
        ("a = {b = 1}\n[a.c]\n", 2, 2, "'a' is an inline table (line 1), which cannot be extended"),
        ("a = {b = 1}\na.c = 2\n", 2, 1, "'a' is an inline table (line 1), which cannot be extended"),
        ("a = [1]\n[[a]]\n", 2, 3, "'a' is a static array (line 1), which [[a]] cannot extend"),
        ("[[a]]\n[a]\n", 2, 2, "[a] would redefine the array of tables 'a' (line 1); use [[a]] to add an element"),
        ("[a]\n[[a]]\n", 2, 3, "'a' is already a table (line 1), not an array of tables"),
        ("a = 1\n[a.b]\n", 2, 2, "'a' is already a value (line 1), not a table"),
        // Inline tables and arrays.
        ("a = {b = 1,\nc = 2}\n", 1, 12, "an inline table must stay on one line; close it with '}' (or use a [table])"),
        ("a = {b = 1,}\n", 1, 12, "an inline table cannot end with ','"),
        ("a = {b.c = 1, b = 2}\n", 1, 15, "duplicate key 'a.b' (first set on line 1)"),
        ("a = [1 2]\n", 1, 8, "expected ',' or ']' after an array element, found '2'"),
        ("a = [\n1,\n2\n", 4, 1, "expected ']' to close the array opened on line 1, found the end of the file"),
        // Numbers.
        ("a = 01\n", 1, 5, "invalid number '01': leading zeros are not allowed"),
        ("a = 1__0\n", 1, 5, "invalid number '1__0': an underscore must sit between two digits"),
        ("a = 1.\n", 1, 5, "invalid number '1.': a digit must follow '.'"),
        ("a = .5\n", 1, 5, "invalid number '.5': a digit must come before '.'"),
        ("a = 1e\n", 1, 5, "invalid number '1e': the exponent needs digits"),
        ("a = +0x1\n", 1, 5, "invalid number '+0x1': only decimal numbers take a sign"),
        ("a = 0xG\n", 1, 5, "invalid number '0xG': 'G' is not a base-16 digit"),
        // Dates and times.
        ("a = 2023-02-29\n", 1, 5, "invalid date or date-time '2023-02-29' (expected e.g. 1979-05-27, 1979-05-27T07:32:00 or 1979-05-27T07:32:00Z)"),
        ("a = 24:00:00\n", 1, 5, "invalid time '24:00:00' (expected e.g. 07:32:00 or 07:32:00.5)"),
        ("a = 07:32\n", 1, 5, "invalid time '07:32' (expected e.g. 07:32:00 or 07:32:00.5)"),
        // Strings.
        ("a = \"abc\n", 1, 9, "expected '\"' to close the string before the end of the line (use \"\"\" for a multi-line string)"),
        ("a = \"\\x41\"\n", 1, 6, "invalid escape sequence '\\x'; write \\\\ for a backslash"),
        ("a = \"\\uD800\"\n", 1, 6, "U+D800 is not a Unicode scalar value (surrogates and values past U+10FFFF are not allowed)"),
        ("a = \"\\u12\"\n", 1, 6, "\\u needs exactly 4 hexadecimal digits"),
        ("a = \"\"\"x\\  y\"\"\"\n", 1, 9, "a backslash followed by blanks must end the line (a line-ending backslash); write \\\\ for a backslash"),
        ("a = \"\"\"x\"\"\"\"\"\"\n", 1, 12, "a multi-line string cannot contain three quotes in a row; escape one of them"),
        ("a = \"\"\"abc\n", 2, 1, "expected '\"\"\"' to close the multi-line string opened on line 1, found the end of the file"),
        // Control characters; columns count characters, not bytes.
        ("x = 1\n\ny = \"é\u{7F}\"\n", 3, 7, "control character U+007F must be escaped in a string"),
        ("a = 'a\u{1}'\n", 1, 7, "control character U+0001 is not allowed in a literal string"),
        ("a = 1 # \u{0}\n", 1, 9, "control character U+0000 is not allowed in a comment"),
        ("a = 1\rb = 2\n", 1, 6, "a carriage return (U+000D) must be followed by a line feed"),
    ] as [(String, Int, Int, String)])
    func errorsHaveLineColumnAndMessage(text: String, line: Int, column: Int, message: String) throws {
        let error = try #require(parseError(text), "parsed: \(text.debugDescription)")
        #expect(error == TOMLError(line: line, column: column, message: message), "\(text.debugDescription)")
    }

    @Test func invalidUTF8IsAnError() throws {
        let error = try #require(throws: TOMLError.self) { try TOMLParser.parse(bytes: Array("a = \"".utf8) + [0xFF, 0x22]) }
        #expect(error == TOMLError(line: 1, column: 6, message: "the file is not valid UTF-8"))
        #expect(TOMLParser.firstInvalidUTF8([0xED, 0xA0, 0x80]) == 0)  // an encoded surrogate
        #expect(TOMLParser.firstInvalidUTF8([0xC0, 0xAF]) == 0)  // an overlong '/'
        #expect(TOMLParser.firstInvalidUTF8([0x61, 0xF4, 0x90, 0x80, 0x80]) == 1)  // past U+10FFFF
        #expect(TOMLParser.firstInvalidUTF8(Array("é😀✓".utf8)) == nil)
    }

    /// Nesting is limited, so deep input is an error rather than a stack overflow.
    @Test func nestingDepthIsLimited() throws {
        let limit = TOMLParser.maxDepth
        _ = try parse("a = " + String(repeating: "[", count: limit) + String(repeating: "]", count: limit))
        _ = try parse("[" + Array(repeating: "t", count: limit).joined(separator: ".") + "]")
        let tooDeep = [
            "a = " + String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1),
            "a = " + String(repeating: "[", count: 100_000),
            "a = " + String(repeating: "{b = ", count: 100_000),
            "[" + Array(repeating: "t", count: limit + 1).joined(separator: ".") + "]",
            Array(repeating: "t", count: limit + 1).joined(separator: ".") + ".x = []",
        ]
        for text in tooDeep {
            let error = try #require(parseError(text))
            #expect(error.message == "tables and arrays nest more than \(limit) levels deep")
        }
    }

    // MARK: Config documents

    /// The inputs that aborted the process under toml++ are errors with a line and column.
    @Test func crashInputsAreErrors() throws {
        let directory = repositoryRoot.appendingPathComponent("Fuzz/crashes/FuzzTOML")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }.sorted()
        #expect(files.count >= 4)
        for file in files {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            let error = try #require(throws: ConfigError.self, "\(file)") { try ConfigDocument.parseTOML(text, name: file) }
            guard case .invalidFile(let name, let line?, let column?, let message)? = error.problems.first else {
                Issue.record("\(file): \(error)")
                continue
            }
            #expect(name == file && line >= 1 && column >= 1 && message.hasPrefix("invalid TOML: "))
        }
    }

    @Test func configDocumentsListKeysInFileOrderWithLines() throws {
        let text = """
            seed = 1
            [sft]
            learning_rate = 1e-3
            [dpo]
            loss = "ipo"
            [sft.extra]
            on = true
            [[runs]]
            name = "a"
            [[runs]]
            name = "b"
            """
        let document = try ConfigDocument.parseTOML(text, name: "c.toml")
        #expect(document.entries.map(\.key) == ["seed", "sft.learning_rate", "dpo.loss", "sft.extra.on", "runs"])
        #expect(document.entries.map(\.line) == [1, 3, 5, 7, 8])
        #expect(document.entries.last?.value == .typed([["name": "a"], ["name": "b"]]))
    }

    @Test func configErrorsKeepTheirShape() throws {
        let error = try #require(throws: ConfigError.self) {
            try ConfigDocument.parseTOML("[sft]\nepochs = 1\nepochs = 2\n", name: "run.toml")
        }
        #expect(error == ConfigError([.invalidFile("run.toml", line: 3, column: 1,
                                                   message: "invalid TOML: duplicate key 'sft.epochs' (first set on line 2)")]))
        let dates = try #require(throws: ConfigError.self) {
            try ConfigDocument.parseTOML("a = 1\nwhen = [2024-01-02]\n[t]\nx = { at = 07:00:00 }\n", name: "d.toml")
        }
        #expect(dates.description == """
            d.toml line 2: when: dates and times are not supported in a config
            d.toml line 4: t.x.at: dates and times are not supported in a config
            """)
    }

    // MARK: Round trip and external truth

    /// What `TOMLWriter` writes reads back to the same values and config entries.
    @Test func writerOutputParsesBack() throws {
        let config: ConfigTable = [
            "seed": 1,
            "env-id": "CartPole-v1",
            "total timesteps": 500_000,
            "min": .int(.min),
            "max": .int(.max),
            "anneal_lr": false,
            "gamma": 0.99,
            "big": 1e20,
            "tiny": 1e-5,
            "neg_zero": -0.0,
            "pos_inf": .double(.infinity),
            "neg_inf": .double(-.infinity),
            "note": "say \"hi\" \\ \n\ttab\u{1}\u{7F}\u{8}\u{C}\r é 😀",
            "": "empty key",
            "a.b": "dotted name",
            "layers": [64, 64],
            "mixed": [1, "a", [true, false], [], 2.5],
            "inline": .array([["a": 1, "b c": "x", "nested": ["d": [1, 2]]], .table([:])]),
            "optimizer": ["name": "adam", "betas": [0.9, 0.999], "schedule": ["kind": "cosine", "steps": 10]],
            "empty": .table([:]),
            "z": ["y": ["x": ["w": 1]]],
        ]
        let text = TOMLWriter.render(config)
        let parsed = try parse(text)
        #expect(plain(parsed) == .table(config))

        func flatten(_ table: ConfigTable, _ prefix: String = "") -> [(String, ConfigValue)] {
            table.entries.flatMap { entry -> [(String, ConfigValue)] in
                let key = prefix.isEmpty ? entry.key : prefix + "." + entry.key
                if case .table(let sub) = entry.value { return flatten(sub, key) }
                return [(key, entry.value)]
            }
        }
        let document = try ConfigDocument.parseTOML(text, name: "config.toml")
        let expected = flatten(config)
        #expect(document.entries.map(\.key) == expected.map(\.0))
        #expect(document.entries.map(\.value) == expected.map { .typed($0.1) })

        // NaN is unequal to itself, so it is checked apart.
        guard case .float(let nan)? = try parse(TOMLWriter.render(["x": .double(.nan)]))["x"] else {
            Issue.record("nan did not read back as a float")
            return
        }
        #expect(nan.isNaN)
    }

    /// Every fixture under Fixtures/toml reads as Python's tomllib reads it: the same values for
    /// valid files, an error for invalid ones (expected.json, from scripts/make_toml_fixtures.py).
    @Test func fixturesAgreeWithPythonTomllib() throws {
        let url = try #require(Bundle.module.url(forResource: "expected", withExtension: "json", subdirectory: "Fixtures/toml"))
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        #expect(expected.count >= 40)
        #expect(expected.values.contains { $0 as? String == "error" } && expected.values.contains { $0 is [String: Any] })
        let directory = url.deletingLastPathComponent()
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".toml") }
        #expect(Set(files) == Set(expected.keys), "expected.json is out of date: run scripts/make_toml_fixtures.py")
        for (file, want) in expected.sorted(by: { $0.key < $1.key }) {
            let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent(file)))
            let result = Result { () throws(TOMLError) in try TOMLParser.parse(bytes: bytes) }
            switch (want as? String == "error", result) {
            case (true, .success):
                Issue.record("\(file): tomllib rejects it, we accept it")
            case (false, .failure(let error)):
                Issue.record("\(file): tomllib accepts it, we reject it: \(error)")
            case (false, .success(let table)):
                if let difference = mismatch(want, .table(table), path: file) { Issue.record("\(difference)") }
            case (true, .failure):
                break
            }
        }
    }
}

/// Where `actual` differs from `expected` (toml-test's tagged JSON, as make_toml_fixtures.py
/// writes it), or nil.
private func mismatch(_ expected: Any, _ actual: TOMLValue, path: String) -> String? {
    func tag(_ type: String, _ value: String) -> String? {
        guard let dict = expected as? [String: Any], let wantType = dict["type"] as? String, let wantValue = dict["value"] as? String
        else { return "\(path): expected \(expected), got a \(type) \(value)" }
        if wantType != type { return "\(path): expected a \(wantType), got a \(type)" }
        if type == "float" {
            guard case .float(let got) = actual else { return nil }
            let want: Double? = switch wantValue {
            case "nan": Double.nan
            case "inf": Double.infinity
            case "-inf": -Double.infinity
            default: Double(wantValue)
            }
            guard let want else { return "\(path): bad expected float \(wantValue)" }
            let same = want.isNaN ? got.isNaN : want.bitPattern == got.bitPattern
            return same ? nil : "\(path): expected \(wantValue), got \(got)"
        }
        return wantValue == value ? nil : "\(path): expected \(wantValue.debugDescription), got \(value.debugDescription)"
    }
    func pad(_ n: Int, _ width: Int) -> String {
        String(repeating: "0", count: max(0, width - String(n).count)) + String(n)
    }
    switch actual {
    case .string(let s): return tag("string", s)
    case .integer(let i): return tag("integer", String(i))
    case .float(let d): return tag("float", String(d))
    case .boolean(let b): return tag("bool", b ? "true" : "false")
    case .dateTime(let d):
        // tomllib keeps microseconds and always spells them out.
        var text = ""
        if let date = d.date { text += "\(pad(date.year, 4))-\(pad(date.month, 2))-\(pad(date.day, 2))" }
        if let time = d.time {
            if d.date != nil { text += "T" }
            text += "\(pad(time.hour, 2)):\(pad(time.minute, 2)):\(pad(time.second, 2)).\(pad(time.nanosecond / 1000, 6))"
        }
        if let offset = d.offsetMinutes {
            text += (offset < 0 ? "-" : "+") + "\(pad(abs(offset) / 60, 2)):\(pad(abs(offset) % 60, 2))"
        }
        let type = d.offsetMinutes != nil ? "datetime" : d.date == nil ? "time-local" : d.time == nil ? "date-local" : "datetime-local"
        return tag(type, text)
    case .array(let items):
        guard let want = expected as? [Any] else { return "\(path): expected \(expected), got an array" }
        guard want.count == items.count else { return "\(path): expected \(want.count) items, got \(items.count)" }
        for (i, (w, item)) in zip(want, items).enumerated() {
            if let difference = mismatch(w, item, path: "\(path)[\(i)]") { return difference }
        }
        return nil
    case .table(let table):
        guard let want = expected as? [String: Any] else { return "\(path): expected \(expected), got a table" }
        guard Set(want.keys) == Set(table.keys) else { return "\(path): expected keys \(want.keys.sorted()), got \(table.keys.sorted())" }
        for entry in table.entries {
            if let difference = mismatch(want[entry.key] ?? NSNull(), entry.value, path: "\(path).\(entry.key)") { return difference }
        }
        return nil
    }
}
