// `--config run.toml`: ConfigDocument.parseTOML must return a document or throw a ConfigError,
// never trap or abort (our TOMLParser; toml++, which it replaced, aborted on malformed input).

import Foundation
import FuzzSupport
import NudgeConfig

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    // ConfigDocument.load reads the file as UTF-8 and refuses anything else.
    guard let text = String(data: fuzzInput(data, size), encoding: .utf8) else { return 0 }
    do {
        let document = try ConfigDocument.parseTOML(text, name: "fuzz.toml")
        _ = String(describing: document)
        accepted("\(document.entries.count) entries")
    } catch {
        rejected(error)
    }
    return 0
}
