// TokenizationTests.swift
//
// Row tokenization with ByteTokenizer and ChatML on hand-checked examples:
// completion and assistant masks, EOS, conversational preference suffixes,
// pre-tokenized rows, truncation keep-start/keep-end, padding and packing.

import NudgeLM
import Testing

@testable import NudgeAlign

let byteTokenizer = ByteTokenizer()  // EOS 256, pad 257, <|im_start|> 258, <|im_end|> 259
func bytes(_ text: String) -> [Int] { text.utf8.map(Int.init) }

@Suite("Row tokenization and collation")
struct TokenizationTests {
    @Test("Plain prompt/completion: completion mask and EOS")
    func plainSFT() throws {
        let tokenizer = RowTokenizer(tokenizer: byteTokenizer)
        let example = try tokenizer.sft(.promptCompletion(prompt: .text("Hi"), completion: .text("ok")))
        #expect(example.inputIDs == [72, 105, 111, 107, 256])
        #expect(example.completionMask == [0, 0, 1, 1, 1])
        var all = tokenizer
        all.options.completionOnlyLoss = false
        #expect(try all.sft(.promptCompletion(prompt: .text("Hi"), completion: .text("ok"))).completionMask == [1, 1, 1, 1, 1])
    }

    @Test("ChatML conversation: assistant mask")
    func conversationMask() throws {
        let tokenizer = RowTokenizer(tokenizer: byteTokenizer, template: .chatML)
        let example = try tokenizer.sft(.conversation([.user("Hi"), .assistant("ok")]))
        let expected = [258] + bytes("user\n") + [72, 105, 259, 10] + [258] + bytes("assistant\n") + [111, 107, 259, 10]
        #expect(example.inputIDs == expected)
        let mask = Array(repeating: 0, count: 6 + 4 + 11) + [1, 1, 1, 0]
        #expect(example.completionMask == mask)
    }

    @Test("Conversational preference: prompt with generation prompt, completions are suffixes")
    func conversationalPreference() throws {
        let tokenizer = RowTokenizer(tokenizer: byteTokenizer)  // default template: ChatML
        let example = try tokenizer.preference(
            .preference(prompt: .messages([.user("2+2?")]), chosen: .messages([.assistant("4")]), rejected: .messages([.assistant("5")])))
        #expect(example.promptIDs == [258] + bytes("user\n2+2?") + [259, 10, 258] + bytes("assistant\n"))
        #expect(example.chosenIDs == [52, 259, 10])
        #expect(example.rejectedIDs == [53, 259, 10])
    }

    @Test("Plain preference gets EOS; pre-tokenized rows are used as they are")
    func plainAndTokenizedPreference() throws {
        let tokenizer = RowTokenizer(tokenizer: byteTokenizer)
        let plain = try tokenizer.preference(.preference(prompt: .text("Q"), chosen: .text("a"), rejected: .text("b")))
        #expect(plain == PreferenceExample(promptIDs: [81], chosenIDs: [97, 256], rejectedIDs: [98, 256]))
        let raw = try tokenizer.preference(.tokenizedPreference(promptIDs: [1, 2], chosenIDs: [3], rejectedIDs: [4]))
        #expect(raw == PreferenceExample(promptIDs: [1, 2], chosenIDs: [3], rejectedIDs: [4]))
        #expect(throws: TokenizationError.self) { try tokenizer.preference(.promptOnly(.text("x"))) }
        let noTemplate = RowTokenizer(tokenizer: ByteTokenizer(specialTokens: ["<|endoftext|>"]))
        #expect(throws: TokenizationError.missingChatTemplate) { try noTemplate.sft(.conversation([.user("a"), .assistant("b")])) }
    }

    @Test("Truncation: prompt keep-start / keep-end, then maxLength cuts the completion")
    func truncation() throws {
        let row = DatasetRow.preference(prompt: .text("abcdef"), chosen: .text("xyz"), rejected: .text("q"))
        var options = TokenizationOptions(maxPromptLength: 3, promptTruncation: .keepEnd)
        #expect(try RowTokenizer(tokenizer: byteTokenizer, options: options).preference(row).promptIDs == bytes("def"))
        options.promptTruncation = .keepStart
        #expect(try RowTokenizer(tokenizer: byteTokenizer, options: options).preference(row).promptIDs == bytes("abc"))
        options.maxLength = 5
        let cut = try RowTokenizer(tokenizer: byteTokenizer, options: options).preference(row)
        #expect(cut.chosenIDs == bytes("xy"))
        #expect(cut.rejectedIDs == bytes("q") + [256])
        let sft = try RowTokenizer(tokenizer: byteTokenizer, options: options).sft(
            .promptCompletion(prompt: .text("abcdef"), completion: .text("xyz")))
        #expect(sft.inputIDs == bytes("abcxy"))
        #expect(sft.completionMask == [0, 0, 0, 1, 1])
        #expect(truncate([1, 2, 3, 4], to: 2, keeping: .keepEnd) == [3, 4])
        #expect(truncate([1, 2, 3, 4], to: 2, keeping: .keepStart) == [1, 2])
        #expect(truncate([1, 2], to: nil, keeping: .keepStart) == [1, 2])
    }

    @Test("Prompts: generation prompt, answers, left padding")
    func prompts() throws {
        let tokenizer = RowTokenizer(tokenizer: byteTokenizer)
        let a = try tokenizer.prompt(.verifiable(prompt: .text("Hey"), answer: "7"))
        #expect(a == PromptExample(promptIDs: bytes("Hey"), answer: "7"))
        let b = try tokenizer.prompt(.promptOnly(.text("Q")))
        let batch = Collator.prompts([a, b], padID: Collator.padID(for: byteTokenizer))
        #expect(batch.inputIDs == [bytes("Hey"), [257, 257, 81]])
        #expect(batch.attentionMask == [[1, 1, 1], [0, 0, 1]])
        #expect(batch.positionIDs == [[0, 1, 2], [0, 0, 0]])
        let conversation = try tokenizer.prompt(.conversation([.user("Hi"), .assistant("ok")]))
        #expect(conversation.promptIDs == [258] + bytes("user\nHi") + [259, 10, 258] + bytes("assistant\n"))
    }

    @Test("Right padding for SFT and preference batches")
    func padding() {
        let batch = Collator.sft(
            [SFTExample(inputIDs: [1, 2, 3], completionMask: [0, 1, 1]), SFTExample(inputIDs: [4], completionMask: [1])],
            padID: 0, multiple: 4)
        #expect(batch.inputIDs == [[1, 2, 3, 0], [4, 0, 0, 0]])
        #expect(batch.attentionMask == [[1, 1, 1, 0], [1, 0, 0, 0]])
        #expect(batch.lossMask == [[0, 1, 1, 0], [1, 0, 0, 0]])
        let pairs = Collator.preference([PreferenceExample(promptIDs: [1], chosenIDs: [2, 3], rejectedIDs: [4])], padID: 9)
        #expect(pairs.pairCount == 1)
        #expect(pairs.batch.inputIDs == [[1, 2, 3], [1, 4, 9]])
        #expect(pairs.batch.lossMask == [[0, 1, 1], [0, 1, 0]])
    }

    @Test("Packing: segment ids, per-segment positions, no cross-segment attention")
    func packing() {
        let examples = [
            SFTExample(inputIDs: [1, 2, 3], completionMask: [0, 1, 1]),
            SFTExample(inputIDs: [4, 5], completionMask: [0, 1]),
            SFTExample(inputIDs: [6, 7, 8, 9, 10, 11], completionMask: [1, 1, 1, 1, 1, 1]),
        ]
        let sequential = Packer.pack(examples, maxLength: 6, padID: 0, strategy: .sequential)
        #expect(sequential.inputIDs == [[1, 2, 3, 4, 5, 0], [6, 7, 8, 9, 10, 11]])
        #expect(sequential.segmentIDs == [[1, 1, 1, 2, 2, 0], [1, 1, 1, 1, 1, 1]])
        #expect(sequential.positionIDs == [[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]])
        #expect(sequential.lossMask == [[0, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1]])
        #expect(sequential.exampleIndices == [[0, 1], [2]])
        #expect(sequential.allowsAttention(row: 0, query: 4, key: 3))
        #expect(!sequential.allowsAttention(row: 0, query: 3, key: 2))  // across segments
        #expect(!sequential.allowsAttention(row: 0, query: 1, key: 2))  // future
        #expect(!sequential.allowsAttention(row: 0, query: 5, key: 5))  // padding
        let matrix = sequential.attentionMatrix(row: 0)
        #expect(matrix[4] == [false, false, false, true, true, false])

        let bfd = Packer.pack(examples + [SFTExample(inputIDs: [12], completionMask: [1])], maxLength: 6, padID: 0)
        #expect(bfd.exampleIndices == [[2], [0, 1, 3]])
        #expect(bfd.segmentIDs[1] == [1, 1, 1, 2, 2, 3])
        #expect(bfd.positionIDs[1] == [0, 1, 2, 0, 1, 0])
        // Every token appears exactly once; over-long examples are cut to maxLength.
        #expect(bfd.inputIDs.flatMap { $0 }.filter { $0 != 0 }.sorted() == Array(1...12))
        let long = Packer.pack([SFTExample(inputIDs: Array(1...9), completionMask: Array(repeating: 1, count: 9))], maxLength: 4, padID: 0)
        #expect(long.inputIDs == [[1, 2, 3, 4]])
    }

    @Test("Packed SFT from tokenized rows keeps per-example masks")
    func packTokenizedRows() throws {
        let tokenizer = RowTokenizer(tokenizer: byteTokenizer)
        let examples = try [
            DatasetRow.promptCompletion(prompt: .text("a"), completion: .text("b")),
            .promptCompletion(prompt: .text("cd"), completion: .text("e")),
        ].map(tokenizer.sft)
        let packed = Packer.pack(examples, maxLength: 16, padID: 257, strategy: .sequential)
        #expect(packed.rowCount == 1)
        #expect(Array(packed.inputIDs[0].prefix(7)) == [97, 98, 256, 99, 100, 101, 256])
        #expect(Array(packed.lossMask[0].prefix(7)) == [0, 1, 1, 0, 0, 1, 1])
        #expect(Array(packed.segmentIDs[0].prefix(8)) == [1, 1, 1, 2, 2, 2, 2, 0])
    }
}
