// A model directory's tokenizer.json: BPETokenizer(data:) must load or throw a
// TokenizerLoadError, never trap; a tokenizer that loads must encode, decode and render a chat.

import Foundation
import FuzzSupport
import NudgeLM

let sample = "Hello, world! It's 2024 — ünïcødé 🙂\n\t  <|im_start|>user<|endoftext|><s></s> x"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let tokenizer: BPETokenizer
    do {
        tokenizer = try BPETokenizer(data: fuzzInput(data, size))
    } catch {
        rejected(error)
        return 0
    }
    accepted("vocabulary \(tokenizer.vocabularySize): \(tokenizer.encode(sample, addSpecialTokens: true))")
    for addSpecial in [false, true] {
        let ids = tokenizer.encode(sample, addSpecialTokens: addSpecial)
        _ = tokenizer.decode(ids, skipSpecialTokens: false)
        _ = tokenizer.decode(ids, skipSpecialTokens: true)
    }
    _ = tokenizer.decode([-1, 0, 1, tokenizer.vocabularySize, Int.max], skipSpecialTokens: false)
    for id in [-1, 0, tokenizer.vocabularySize - 1, tokenizer.vocabularySize] { _ = tokenizer.token(for: id) }
    if let template = tokenizer.defaultChatTemplate {
        let messages = [ChatMessage.system("be brief"), .user("hi"), .assistant("hello")]
        _ = tokenizer.applyChatTemplate(messages, template: template, addGenerationPrompt: true)
    }
    return 0
}
