// `--config run.yaml`: ConfigDocument.parseYAML must return a document or throw a ConfigError,
// never trap (libyaml is C underneath).

import Foundation
import FuzzSupport
import NudgeConfig

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let text = String(data: fuzzInput(data, size), encoding: .utf8) else { return 0 }
    do {
        let document = try ConfigDocument.parseYAML(text, name: "fuzz.yaml")
        _ = String(describing: document)
        accepted("\(document.entries.count) entries")
    } catch {
        rejected(error)
    }
    return 0
}
