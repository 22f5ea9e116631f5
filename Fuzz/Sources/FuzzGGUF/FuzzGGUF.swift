// A .gguf file: GGUFFile must open it and dequantize every tensor, and the model configuration,
// weights and tokenizer read from it must be built, or each step throws — never a trap.

import Foundation
import FuzzSupport
import NudgeLM
import NudgeNN

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let url = writeScratch(fuzzInput(data, size), as: "model.gguf")
    do {
        let file = try GGUFFile(url: url)
        for info in file.tensors where info.elementCount <= 1 << 20 { _ = file.floats(info) }
        _ = try? LanguageModelLoader.info(gguf: file)
        _ = try? GGUFTokenizer.make(file)
        // Only small models: a header may describe a billion parameters in a few bytes.
        if let config = try? TransformerConfiguration(gguf: file), config.estimatedParameterCount <= 1e6 {
            _ = try? LanguageModelLoader.load(gguf: file)
        }
        accepted("\(file.tensors.count) tensors")
    } catch {
        rejected(error)
    }
    return 0
}
