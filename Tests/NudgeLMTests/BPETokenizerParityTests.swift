// BPETokenizerParityTests.swift
//
// BPETokenizer against the Hugging Face `tokenizers` library: for every corpus
// string and every fixture tokenizer (GPT-2 style with legacy merges and with
// add_prefix_space, Llama 3 style with pair and legacy merges, Qwen2 style with
// NFC and added tokens), ids with and without special tokens, decoded text and
// decoding of partial id sequences must equal what the library produced.

import Foundation
import Testing

@testable import NudgeLM

@Suite("BPETokenizer parity with Hugging Face tokenizers")
struct BPETokenizerParityTests {
    @Test("ids equal the library's for every corpus string", arguments: TokenizerFixtures.tokenizerNames)
    func idsMatchLibrary(name: String) throws {
        let parity = try TokenizerFixtures.parity()
        let entry = try #require(parity.tokenizers[name])
        let tokenizer = try TokenizerFixtures.tokenizer(entry.file)
        #expect(parity.strings.count >= 150)
        var mismatches = 0
        for (index, text) in parity.strings.enumerated() {
            let plain = tokenizer.encode(text, addSpecialTokens: false)
            let withSpecial = tokenizer.encode(text, addSpecialTokens: true)
            if plain != entry.ids[index] || withSpecial != entry.ids_with_special[index] { mismatches += 1 }
            #expect(plain == entry.ids[index], "\(name) #\(index) \(escaped(text))")
            #expect(withSpecial == entry.ids_with_special[index], "\(name) #\(index) \(escaped(text))")
        }
        #expect(mismatches == 0)
    }

    @Test("decoding equals the library's", arguments: TokenizerFixtures.tokenizerNames)
    func decodeMatchesLibrary(name: String) throws {
        let parity = try TokenizerFixtures.parity()
        let entry = try #require(parity.tokenizers[name])
        let tokenizer = try TokenizerFixtures.tokenizer(entry.file)
        for index in parity.strings.indices {
            let ids = entry.ids_with_special[index]
            let decoded = tokenizer.decode(ids, skipSpecialTokens: false)
            let skipped = tokenizer.decode(ids, skipSpecialTokens: true)
            let half = tokenizer.decode(Array(entry.ids[index].prefix(entry.ids[index].count / 2)), skipSpecialTokens: false)
            #expect(sameBytes(decoded, entry.decoded[index]), "\(name) #\(index) \(escaped(decoded))")
            #expect(sameBytes(skipped, entry.decoded_skip_special[index]), "\(name) #\(index) \(escaped(skipped))")
            #expect(sameBytes(half, entry.decoded_first_half[index]), "\(name) #\(index) \(escaped(half))")
        }
    }

    @Test("decode(encode(x)) == x for byte-level tokenizers without normalizer or prefix space")
    func roundTrip() throws {
        let parity = try TokenizerFixtures.parity()
        for name in ["gpt2-legacy-merges", "llama3", "llama3-legacy-merges"] {
            let tokenizer = try TokenizerFixtures.tokenizer("\(name).json")
            for text in parity.strings {
                let decoded = tokenizer.decode(tokenizer.encode(text, addSpecialTokens: false), skipSpecialTokens: false)
                #expect(sameBytes(decoded, text), "\(name): \(escaped(text)) -> \(escaped(decoded))")
            }
        }
        // With NFC, the round trip yields the NFC form.
        let qwen = try TokenizerFixtures.tokenizer("qwen2-style.json")
        let decomposed = "Zu\u{308}rich cafe\u{301}"
        #expect(sameBytes(qwen.decode(qwen.encode(decomposed, addSpecialTokens: false)), decomposed.precomposedStringWithCanonicalMapping))
    }

    @Test("legacy and pair merge forms load to the same tokenizer")
    func mergeFormsAgree() throws {
        let parity = try TokenizerFixtures.parity()
        let pairs = try TokenizerFixtures.tokenizer("llama3.json")
        let legacy = try TokenizerFixtures.tokenizer("llama3-legacy-merges.json")
        for text in parity.strings {
            #expect(pairs.encode(text) == legacy.encode(text))
        }
    }

    @Test("special tokens are split out of the text first")
    func specialTokenSplitting() throws {
        let llama = try TokenizerFixtures.tokenizer("llama3.json")
        let begin = try #require(llama.tokenID(for: "<|begin_of_text|>"))
        let eot = try #require(llama.tokenID(for: "<|eot_id|>"))
        let header = try #require(llama.tokenID(for: "<|start_header_id|>"))
        #expect(llama.specialTokens["<|eot_id|>"] == eot)
        #expect(llama.bosTokenID == begin)
        #expect(llama.eosTokenID == eot)
        #expect(llama.defaultChatTemplate == .llama3)

        let ids = llama.encode("Hi<|eot_id|>there", addSpecialTokens: true)
        #expect(ids.first == begin)
        #expect(ids.filter { $0 == eot }.count == 1)
        #expect(llama.encode("<|eot_id|><|eot_id|>", addSpecialTokens: false) == [eot, eot])
        #expect(llama.encode("<|start_header_id|>", addSpecialTokens: false) == [header])
        // An incomplete special token is ordinary text.
        #expect(!llama.encode("<|eot_id|", addSpecialTokens: false).contains(eot))
        // Skipping special tokens when decoding.
        #expect(llama.decode(llama.encode("a<|eot_id|>b"), skipSpecialTokens: true) == "ab")
        #expect(llama.decode(llama.encode("a<|eot_id|>b"), skipSpecialTokens: false) == "<|begin_of_text|>a<|eot_id|>b")

        let qwen = try TokenizerFixtures.tokenizer("qwen2-style.json")
        #expect(qwen.defaultChatTemplate == .chatML)
        #expect(qwen.eosTokenID == qwen.tokenID(for: "<|im_end|>"))
        #expect(qwen.bosTokenID == nil)
        let tool = try #require(qwen.tokenID(for: "<tool>"))
        let kitten = try #require(qwen.tokenID(for: "kitten"))
        // lstrip/rstrip: the surrounding spaces belong to the token.
        #expect(qwen.encode("a <tool> b", addSpecialTokens: false).count == 3)
        #expect(qwen.encode("a <tool> b", addSpecialTokens: false)[1] == tool)
        // single_word: only as a whole word.
        #expect(qwen.encode("a kitten b", addSpecialTokens: false).contains(kitten))
        #expect(!qwen.encode("kittens", addSpecialTokens: false).contains(kitten))
        // Non-special added tokens survive skipSpecialTokens.
        #expect(qwen.decode(qwen.encode("<think>x</think>"), skipSpecialTokens: true) == "<think>x</think>")
    }

    @Test("vocabulary size and token lookups")
    func lookups() throws {
        let gpt2 = try TokenizerFixtures.tokenizer("gpt2-legacy-merges.json")
        #expect(gpt2.vocabularySize == 1201)
        #expect(gpt2.tokenID(for: "<|endoftext|>") == 1200)
        #expect(gpt2.token(for: 1200) == "<|endoftext|>")
        #expect(gpt2.eosTokenID == 1200)
        #expect(gpt2.bosTokenID == nil)
        #expect(gpt2.padTokenID == nil)
        #expect(gpt2.tokenID(for: "Ġ") != nil)
        #expect(gpt2.token(for: -1) == nil)
        #expect(gpt2.token(for: 5000) == nil)
        #expect(gpt2.decode([-3, 99_999]) == "")
        let gpt2Padded = try BPETokenizer(
            contentsOf: try TokenizerFixtures.url("gpt2-legacy-merges.json"), padToken: "<|endoftext|>")
        #expect(gpt2Padded.padTokenID == 1200)
        #expect(throws: TokenizerLoadError.self) {
            try BPETokenizer(contentsOf: try TokenizerFixtures.url("gpt2-legacy-merges.json"), eosToken: "<|nope|>")
        }
    }

    @Test("encoding is safe to share across tasks")
    func concurrentEncoding() async throws {
        let parity = try TokenizerFixtures.parity()
        let entry = try #require(parity.tokenizers["llama3"])
        let tokenizer = try TokenizerFixtures.tokenizer("llama3.json")
        let strings = parity.strings
        let results = await withTaskGroup(of: Bool.self, returning: [Bool].self) { group in
            for worker in 0..<4 {
                group.addTask {
                    strings.indices.allSatisfy { index in
                        let shifted = (index + worker * 37) % strings.count
                        return tokenizer.encode(strings[shifted], addSpecialTokens: false) == entry.ids[shifted]
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results == [true, true, true, true])
    }
}
