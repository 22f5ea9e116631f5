// ChatTemplateTests.swift
//
// ChatML and Llama 3 chat templates: exact rendered strings, and the token ids
// and assistant masks of the segment-by-segment tokenization.

import Foundation
import Testing

@testable import NudgeLM

@Suite("Chat templates")
struct ChatTemplateTests {
    static let conversation: [ChatMessage] = [
        .system("Be brief."),
        .user("What is 2+2?"),
        .assistant("4."),
        .user("And 3+3?"),
    ]

    @Test("ChatML renders Qwen2-style text")
    func chatMLString() {
        let text = ChatTemplate.chatML.apply(messages: Self.conversation, addGenerationPrompt: true)
        #expect(
            text
                == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                + "<|im_start|>assistant\n4.<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n")
        #expect(ChatTemplate.chatML.apply(messages: [.user("hi")], addGenerationPrompt: false) == "<|im_start|>user\nhi<|im_end|>\n")
    }

    @Test("Llama 3 renders its header format")
    func llama3String() {
        let text = ChatTemplate.llama3.apply(messages: Self.conversation, addGenerationPrompt: true)
        #expect(
            text
                == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n4.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(ChatTemplate.llama3.apply(messages: [], addGenerationPrompt: false) == "<|begin_of_text|>")
    }

    @Test("ChatML mask on the byte tokenizer: assistant content and <|im_end|> only")
    func chatMLMaskBytes() {
        let tokenizer = ByteTokenizer()
        let messages: [ChatMessage] = [.user("Hi"), .assistant("Yo")]
        let encoding = tokenizer.applyChatTemplate(messages, template: .chatML, addGenerationPrompt: false)
        let start = 258, end = 259
        let expectedIDs = [start] + Array("user\nHi".utf8).map(Int.init) + [end, 10]
            + [start] + Array("assistant\n".utf8).map(Int.init) + [89, 111, end, 10]
        #expect(encoding.ids == expectedIDs)
        let expectedMask = [Int](repeating: 0, count: 1 + 7 + 2) + [Int](repeating: 0, count: 1 + 10) + [1, 1, 1, 0]
        #expect(encoding.assistantMask == expectedMask)
        #expect(tokenizer.decode(encoding.ids) == ChatTemplate.chatML.apply(messages: messages, addGenerationPrompt: false))
    }

    @Test("masks on BPE tokenizers cover exactly the assistant turns", arguments: [ChatTemplate.chatML, .llama3])
    func bpeMasks(template: ChatTemplate) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(template == .chatML ? "qwen2-style.json" : "llama3.json")
        #expect(tokenizer.defaultChatTemplate == template)
        let encoding = tokenizer.applyChatTemplate(Self.conversation, template: template, addGenerationPrompt: true)
        #expect(encoding.ids.count == encoding.assistantMask.count)
        // Segment-by-segment ids equal whole-text ids for this conversation.
        let text = template.apply(messages: Self.conversation, addGenerationPrompt: true)
        #expect(encoding.ids == tokenizer.encode(text, addSpecialTokens: false))
        // The masked tokens decode to the assistant content plus its end-of-turn token.
        let masked = zip(encoding.ids, encoding.assistantMask).filter { $0.1 == 1 }.map(\.0)
        let endOfTurn = template == .chatML ? "<|im_end|>" : "<|eot_id|>"
        #expect(tokenizer.decode(masked) == "4." + endOfTurn)
        #expect(masked.last == tokenizer.eosTokenID)
        // The generation prompt is unmasked and ends the sequence.
        let prompt = tokenizer.encode(
            template == .chatML ? "<|im_start|>assistant\n" : "<|start_header_id|>assistant<|end_header_id|>\n\n",
            addSpecialTokens: false)
        #expect(Array(encoding.ids.suffix(prompt.count)) == prompt)
        #expect(encoding.assistantMask.suffix(prompt.count).allSatisfy { $0 == 0 })
        if template == .llama3 { #expect(encoding.ids.first == tokenizer.bosTokenID) }
    }
}
