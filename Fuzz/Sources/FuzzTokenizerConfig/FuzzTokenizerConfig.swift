// A model directory's tokenizer_config.json (bos/eos/pad tokens), read by
// BPETokenizer.load(directory:) next to a fixed, valid tokenizer.json.

import Foundation
import FuzzSupport
import NudgeLM

let directory: URL = {
    writeScratch(fixture("Tests/NudgeLMTests/Fixtures/tokenizers/qwen2-style.json"), as: "tokenizer.json")
    return fuzzScratch
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    writeScratch(fuzzInput(data, size), as: "tokenizer_config.json")
    do {
        let tokenizer = try BPETokenizer.load(directory: directory)
        let ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>", addSpecialTokens: true)
        accepted("bos \(String(describing: tokenizer.bosTokenID)) eos \(String(describing: tokenizer.eosTokenID)) pad \(String(describing: tokenizer.padTokenID)): \(ids)")
    } catch {
        rejected(error)
    }
    return 0
}
