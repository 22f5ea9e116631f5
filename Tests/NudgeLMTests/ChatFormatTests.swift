// A model's Jinja template as the chat format of training rows: assistant masks from
// {% generation %} ranges, or by TRL's prefix rule, and a clear error when neither can locate them.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN

@Suite("Chat formats") struct ChatFormatTests {
    static let smol = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are SmolLM<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    static let conversation: [ChatMessage] = [.user("hi"), .assistant("hello"), .user("2+2?"), .assistant("4")]

    @Test func prefixRuleMarksEachAssistantTurn() throws {
        let format = JinjaChatFormat(try ChatTemplateRenderer(source: Self.smol, name: "smol"))
        let segments = try format.segments(messages: Self.conversation, addGenerationPrompt: false)
        #expect(segments.filter(\.isAssistant).map(\.text) == ["hello<|im_end|>\n", "4<|im_end|>\n"])
        #expect(segments.map(\.text).joined() == (try format.render(messages: Self.conversation, addGenerationPrompt: false)))
        #expect(segments.first?.text.hasPrefix("<|im_start|>system\nYou are SmolLM") == true)
    }

    @Test func generationBlocksGiveTheMask() throws {
        let source = "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}{% generation %}{{ m.content }}<|im_end|>{% endgeneration %}{% else %}{{ m.content }}<|im_end|>{% endif %}\n{% endfor %}"
        let format = JinjaChatFormat(try ChatTemplateRenderer(source: source, name: "gen"))
        let segments = try format.segments(messages: Self.conversation, addGenerationPrompt: false)
        #expect(segments.filter(\.isAssistant).map(\.text) == ["hello<|im_end|>", "4<|im_end|>"])
    }

    @Test func templatesThatRewriteEarlierTurnsAreRefused() throws {
        // Shows only the last assistant turn in full, as reasoning templates drop earlier thinking.
        let source = "{% for m in messages %}{{ m.role }}: {% if m.role == 'assistant' and not loop.last %}…{% else %}{{ m.content }}{% endif %}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
        let format = JinjaChatFormat(try ChatTemplateRenderer(source: source, name: "rewrites"))
        #expect(throws: ChatFormatError.self) { _ = try format.segments(messages: Self.conversation, addGenerationPrompt: false) }
    }

    @Test func ggufTemplateTravelsWithTheTokenizer() throws {
        let url = try #require(Bundle.module.url(forResource: "tiny_tokenizer", withExtension: "gguf", subdirectory: "Fixtures/gguf"))
        let (_, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: url)
        let format = try #require(tokenizer.chatFormat as? JinjaChatFormat)
        let encoding = try format.tokenize(messages: [.user("hello"), .assistant("hello world")], addGenerationPrompt: false, tokenizer: tokenizer)
        #expect(encoding.ids.first == 1 && encoding.ids.contains(262) && encoding.ids.contains(267))
        // This template writes no generation prompt, so by the prefix rule the assistant's header is
        // part of what its turn adds (TRL's completion would hold it too).
        let assistant = zip(encoding.ids, encoding.assistantMask).filter { $0.1 == 1 }.map(\.0)
        #expect(tokenizer.decode(assistant, skipSpecialTokens: false) == "<|im_start|>assistant\nhello world<|im_end|>\n")
    }
}
