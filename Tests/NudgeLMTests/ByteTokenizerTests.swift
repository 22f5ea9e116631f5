// ByteTokenizerTests.swift
//
// ByteTokenizer: byte ids, special tokens after them, special-token matching in
// text, and the lossless round trip on random valid UTF-8 strings.

import Foundation
import Testing

@testable import NudgeLM

@Suite("ByteTokenizer")
struct ByteTokenizerTests {
    /// A small deterministic generator (SplitMix64).
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("bytes are ids 0...255 and special tokens follow")
    func layout() {
        let tokenizer = ByteTokenizer()
        #expect(tokenizer.vocabularySize == 260)
        #expect(tokenizer.specialTokens == ["<|endoftext|>": 256, "<|pad|>": 257, "<|im_start|>": 258, "<|im_end|>": 259])
        #expect(tokenizer.eosTokenID == 256)
        #expect(tokenizer.padTokenID == 257)
        #expect(tokenizer.bosTokenID == nil)
        #expect(tokenizer.defaultChatTemplate == .chatML)
        #expect(tokenizer.encode("Hé", addSpecialTokens: false) == [0x48, 0xC3, 0xA9])
        #expect(tokenizer.tokenID(for: "A") == 65)
        #expect(tokenizer.tokenID(for: "<0xC3>") == 0xC3)
        #expect(tokenizer.token(for: 0xC3) == "<0xC3>")
        #expect(tokenizer.token(for: 259) == "<|im_end|>")
        #expect(tokenizer.token(for: 260) == nil)
    }

    @Test("special tokens in text are emitted as their ids")
    func specialTokens() {
        let tokenizer = ByteTokenizer()
        #expect(tokenizer.encode("a<|endoftext|>b", addSpecialTokens: false) == [97, 256, 98])
        #expect(tokenizer.encode("<|im_start|><|im_end|>", addSpecialTokens: false) == [258, 259])
        #expect(tokenizer.encode("<|im_end|", addSpecialTokens: false).count == 9)
        #expect(tokenizer.decode([97, 256, 98], skipSpecialTokens: true) == "ab")
        #expect(tokenizer.decode([97, 256, 98], skipSpecialTokens: false) == "a<|endoftext|>b")
        #expect(tokenizer.decode([97, -1, 999, 98]) == "ab")

        // Longest match wins; custom tokens and a BOS.
        let custom = ByteTokenizer(specialTokens: ["<s>", "<s>x", "<s>", ""], bosToken: "<s>", eosToken: "</s>")
        #expect(custom.vocabularySize == 258)
        #expect(custom.bosTokenID == 256)
        #expect(custom.eosTokenID == nil)
        #expect(custom.encode("<s>x<s>", addSpecialTokens: true) == [256, 257, 256])
    }

    @Test("decode(encode(x)) == x for random valid UTF-8 strings")
    func randomRoundTrip() {
        let tokenizer = ByteTokenizer()
        var generator = SeededGenerator(state: 42)
        let specials = ByteTokenizer.defaultSpecialTokens
        for _ in 0..<500 {
            var text = ""
            for _ in 0..<Int.random(in: 0...40, using: &generator) {
                switch Int.random(in: 0..<10, using: &generator) {
                case 0: text += specials[Int.random(in: 0..<specials.count, using: &generator)]
                case 1: text += "<|"
                case 2...4: text.unicodeScalars.append(Unicode.Scalar(UInt8.random(in: 0..<128, using: &generator)))
                default:
                    // Any scalar, including astral planes and combining marks (surrogates excluded).
                    var value = UInt32.random(in: 0x80...0x10FFFF, using: &generator)
                    if (0xD800...0xDFFF).contains(value) { value = 0x301 }
                    text.unicodeScalars.append(Unicode.Scalar(value) ?? "?")
                }
            }
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            #expect(ids.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize })
            #expect(sameBytes(tokenizer.decode(ids, skipSpecialTokens: false), text), "\(escaped(text))")
        }
    }

    @Test("invalid byte sequences decode with replacement characters")
    func invalidBytes() {
        let tokenizer = ByteTokenizer()
        #expect(tokenizer.decode([0x61, 0xC3]) == "a\u{FFFD}")
        #expect(tokenizer.decode([0xFF, 0x62]) == "\u{FFFD}b")
    }
}
