// Text a user feeds to a real tokenizer (dataset fields, prompts): encode and decode arbitrary
// bytes (lossily decoded as UTF-8) with each fixture tokenizer, plain and as a chat. The first
// byte picks the tokenizer.

import Foundation
import FuzzSupport
import NudgeLM

let tokenizers: [BPETokenizer] = ["llama3.json", "qwen2-style.json", "gpt2-prefix-space.json", "gpt2-legacy-merges.json"].map { name in
    do {
        return try BPETokenizer(data: fixture("Tests/NudgeLMTests/Fixtures/tokenizers/" + name))
    } catch {
        fatalError("fixture tokenizer \(name) does not load: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let tokenizer = tokenizers[Int(data[0]) % tokenizers.count]
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    let ids = tokenizer.encode(text, addSpecialTokens: true)
    _ = tokenizer.decode(ids, skipSpecialTokens: true)
    let decoded = tokenizer.decode(tokenizer.encode(text, addSpecialTokens: false), skipSpecialTokens: false)
    _ = decoded
    if let template = tokenizer.defaultChatTemplate {
        _ = tokenizer.applyChatTemplate([.user(text), .assistant(text)], template: template, addGenerationPrompt: false)
    }
    return 0
}
