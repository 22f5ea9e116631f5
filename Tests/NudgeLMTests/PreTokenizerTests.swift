// PreTokenizerTests.swift
//
// The GPT-2, Llama 3 and Qwen2 pre-tokenizer regexes: the hand-written scanners
// must produce exactly the pieces the Hugging Face library (Oniguruma) produces
// for the corpus and for several hundred random strings. Also checks how
// Foundation's NSRegularExpression (the generic fallback) compares, the Split
// behaviours, and the byte-level alphabet.

import Foundation
import Testing

@testable import NudgeLM

@Suite("Pre-tokenizer")
struct PreTokenizerTests {
    static let patternNames = ["gpt2", "llama3", "qwen2"]

    private func pieces(_ text: String, _ pattern: SplitPattern) -> [String] {
        SplitBehavior.isolated.split(Array(text.unicodeScalars), pattern: pattern, invert: false).map {
            var string = ""
            string.unicodeScalars.append(contentsOf: $0)
            return string
        }
    }

    private func sameBytes(_ left: [String], _ right: [String]) -> Bool {
        left.count == right.count && zip(left, right).allSatisfy { $0.utf8.elementsEqual($1.utf8) }
    }

    @Test("hand-written scanners match the library's pieces", arguments: patternNames)
    func scannerMatchesLibrary(name: String) throws {
        let fixture = try TokenizerFixtures.regexPieces()
        let entry = try #require(fixture.patterns[name])
        let pattern = try SplitPattern.regex(entry.pattern, field: "pattern")
        switch (name, pattern) {
        case ("gpt2", .gpt2), ("llama3", .llama3(maximumDigits: 3)), ("qwen2", .llama3(maximumDigits: 1)): break
        default: Issue.record("\(name) was not recognized as a known pattern")
        }
        #expect(fixture.strings.count >= 500)
        for (index, text) in fixture.strings.enumerated() {
            let actual = pieces(text, pattern)
            #expect(sameBytes(actual, entry.pieces[index]), "\(name) #\(index) \(escaped(text)): \(actual.map(escaped))")
        }
    }

    /// NSRegularExpression (ICU) is only the fallback for unknown patterns; on the known patterns it agrees
    /// with Oniguruma except where ICU's Unicode data is newer than the library's (letters of Unicode 17).
    @Test("NSRegularExpression fallback agrees with the library on the fixtures", arguments: patternNames)
    func regexFallbackMatchesLibrary(name: String) throws {
        let fixture = try TokenizerFixtures.regexPieces()
        let entry = try #require(fixture.patterns[name])
        let pattern = try SplitPattern.generalRegex(entry.pattern, field: "pattern")
        var mismatches: [String] = []
        for (index, text) in fixture.strings.enumerated() where !sameBytes(pieces(text, pattern), entry.pieces[index]) {
            mismatches.append("#\(index) \(escaped(text))")
        }
        #expect(mismatches.isEmpty, "\(name): \(mismatches.count) mismatches: \(mismatches.prefix(10))")
    }

    @Test("contractions: case-sensitive for GPT-2, case-insensitive (with long s) for Llama 3")
    func contractions() {
        #expect(pieces("I'M you'Re 's", .gpt2) == ["I", "'", "M", " you", "'", "Re", " '", "s"])
        #expect(pieces("I'M you'Re 'ſ", .llama3(maximumDigits: 3)) == ["I", "'M", " you", "'Re", " '", "ſ"].map { $0 })
        #expect(pieces("x'ſ", .llama3(maximumDigits: 3)) == ["x", "'ſ"])
        #expect(pieces("1234567", .llama3(maximumDigits: 3)) == ["123", "456", "7"])
        #expect(pieces("1234567", .llama3(maximumDigits: 1)) == ["1", "2", "3", "4", "5", "6", "7"])
        #expect(pieces("a  \n  b", .llama3(maximumDigits: 3)) == ["a", "  \n", " ", " b"])
        #expect(pieces("a   b", .gpt2) == ["a", "  ", " b"])
    }

    @Test("Split behaviours and invert")
    func splitBehaviors() {
        let text = Array("a--b-c".unicodeScalars)
        let dash = SplitPattern.literal(["-"])
        func run(_ behavior: SplitBehavior, invert: Bool = false) -> [String] {
            behavior.split(text, pattern: dash, invert: invert).map { String(String.UnicodeScalarView($0)) }
        }
        #expect(run(.isolated) == ["a", "-", "-", "b", "-", "c"])
        #expect(run(.removed) == ["a", "b", "c"])
        #expect(run(.mergedWithPrevious) == ["a-", "-", "b-", "c"])
        #expect(run(.mergedWithNext) == ["a", "-", "-b", "-c"])
        #expect(run(.contiguous) == ["a", "--", "b", "-", "c"])
        #expect(run(.removed, invert: true) == ["-", "-", "-"])
    }

    @Test("byte-level alphabet is the GPT-2 mapping")
    func byteLevelAlphabet() {
        #expect(ByteLevelAlphabet.scalarForByte[0x20] == "Ġ")
        #expect(ByteLevelAlphabet.scalarForByte[0x0A] == "Ċ")
        #expect(ByteLevelAlphabet.scalarForByte[0x41] == "A")
        #expect(ByteLevelAlphabet.scalarForByte[0x00] == "\u{100}")
        #expect(ByteLevelAlphabet.scalarForByte[0xAD] == "\u{143}")
        #expect(Set(ByteLevelAlphabet.scalarForByte).count == 256)
        for byte in 0..<256 {
            let scalar = ByteLevelAlphabet.scalarForByte[byte]
            #expect(ByteLevelAlphabet.decode(String(Character(scalar))) == [UInt8(byte)])
        }
        #expect(ByteLevelAlphabet.decode("<|x|> ") == nil)
    }
}
