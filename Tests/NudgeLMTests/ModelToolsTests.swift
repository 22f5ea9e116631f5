// The model tools behind `nudge lm init|logits|export` and `nudge generate`: a fresh preset written
// and read back, next-token logits, one prompt's completion, and a model exported to a directory
// (a GGUF file needs a tokenizer the byte-level preset does not have).

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Model tools") struct ModelToolsTests {
    func scratch() -> URL { FileManager.default.temporaryDirectory.appendingPathComponent("nudge-tools-\(UUID().uuidString)") }

    @Test func freshModelExportsAndAnswers() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try LanguageModelLoader.writeFreshModel(preset: "Q", to: dir.appendingPathComponent("none")) == nil)
        let model = try #require(try LanguageModelLoader.writeFreshModel(preset: "tiny", seed: 3, to: dir.appendingPathComponent("tiny")))
        #expect(model.configuration.vocabularySize == LanguageModelLoader.byteTokenizer.vocabularySize)

        let export = try ModelExport(source: dir.appendingPathComponent("tiny"))
        #expect(throws: ModelLoadError.self) { try export.check(destination: dir.appendingPathComponent("tiny.gguf")) }
        #expect(throws: ModelLoadError.self) { try export.write(to: dir.appendingPathComponent("tiny.gguf")) }
        try export.write(to: dir.appendingPathComponent("copy"))
        let (copy, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: dir.appendingPathComponent("copy"))
        #expect(copy.parameterCount == model.parameterCount)
        #expect(ModelExport.types["q8_0"] == .q8_0 && ModelExport.types["q4_0"] == nil)

        let ids = try #require(try tokenizer.promptIDs("12+7="))
        #expect(ids == tokenizer.encode("12+7=", addSpecialTokens: true))
        let logits = try NextTokenLogits(model: copy, ids: ids)
        let reference = try NextTokenLogits(model: model, ids: ids)
        #expect(logits.logits.count == model.configuration.vocabularySize && logits.logits == reference.logits)
        #expect(logits.summary.hasPrefix("vocabulary \(logits.logits.count); top-10 next tokens: "))
        #expect(throws: TokenLimitError.emptyPrompt) { try NextTokenLogits(model: model, ids: []) }
        #expect(throws: TokenLimitError.self) { try NextTokenLogits(model: model, ids: [model.configuration.vocabularySize]) }

        let completion = try TextCompletion(model: copy, tokenizer: tokenizer, prompt: ids, config: GenerationConfig(maxNewTokens: 3, temperature: 0))
        #expect(completion.tokenCount <= 3 && completion.statistics.hasPrefix("finish: "))
        #expect(throws: TokenLimitError.self) {
            try TextCompletion(model: copy, tokenizer: tokenizer, prompt: ids, config: GenerationConfig(topP: 2))
        }
        #expect(throws: RowError.self) { try TextCompletion(model: copy, tokenizer: tokenizer, prompt: [], config: GenerationConfig()) }
    }

    @Test func conversationsComeAsAListOrAnObjectWithMessages() throws {
        let list = try JinjaValue(json: #"[{"role": "user", "content": "hi"}]"#)
        #expect(ChatTemplateRenderer.messages(in: list)?.count == 1)
        #expect(ChatTemplateRenderer.messages(in: try JinjaValue(json: #"{"messages": [{"role": "user", "content": "hi"}]}"#))?.count == 1)
        #expect(ChatTemplateRenderer.messages(in: try JinjaValue(json: #"{"role": "user"}"#)) == nil)
        #expect(JinjaError(.raised, "stop", templateName: "t.jinja", line: 1, column: 2).userMessage == "stop")
        #expect(JinjaError(.syntax, "bad", templateName: "t.jinja", line: 1, column: 2).userMessage == "t.jinja:1:2: bad")
    }
}
