// A chat template (chat_template.jinja, tokenizer_config.json's chat_template, GGUF metadata):
// JinjaTemplate must parse and render it or throw, never trap, whatever the text (deep nesting,
// runaway loops and recursion, huge strings, integer overflow). The same bytes also go through
// the engine's JSON reader (messages, tools and tokenizer_config.json are read with it).

import Foundation
import FuzzSupport
import NudgeLM

/// A conversation with the keys real templates read.
let messages: [JinjaValue] = [
    ["role": "system", "content": "Be brief."],
    ["role": "user", "content": "What's 2+2? é😀"],
    ["role": "assistant", "content": "<think>add</think>4", "reasoning_content": "add",
     "tool_calls": [["id": "call123456", "type": "function", "function": ["name": "add", "arguments": ["a": 2, "b": 2]]]]],
    ["role": "tool", "content": "4", "tool_call_id": "call123456"],
    ["role": "user", "content": [["type": "text", "text": "thanks"], ["type": "image"]]],
]
let tools: [JinjaValue] = [["type": "function", "function": ["name": "add", "description": "Adds.", "parameters": ["type": "object"]]]]

/// Small limits, so that a runaway template ends well within libFuzzer's per-input timeout.
let options = JinjaRenderOptions(
    now: Date(timeIntervalSince1970: 0), maximumOutputLength: 200_000, maximumLoopIterations: 20_000, maximumMacroDepth: 50)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    do {
        let renderer = try ChatTemplateRenderer(source: text, name: "fuzz.jinja", specialTokens: ["bos_token": "<s>", "eos_token": "</s>"])
        let rendering = try renderer.render(
            messages: messages, addGenerationPrompt: true, tools: tools, variables: ["enable_thinking": false], options: options)
        _ = rendering.assistantStringRanges
        accepted("\(rendering.text.utf8.count) bytes")
    } catch {
        rejected(error)
    }
    if let value = try? JinjaValue(json: text) {
        accepted("JSON \(value.objectValue?.count ?? value.arrayValue?.count ?? 0)")
    }
    return 0
}
