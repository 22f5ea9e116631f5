// A model directory's config.json: TransformerConfiguration.load (parse + validate) must return
// a configuration or throw, never trap (e.g. on sizes whose products overflow).

import Foundation
import FuzzSupport
import NudgeLM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let url = writeScratch(fuzzInput(data, size), as: "config.json")
    do {
        let configuration = try TransformerConfiguration.load(url)
        _ = configuration.estimatedParameterCount
        _ = TokenLimits(configuration)
        // What `nudge lm` writes back next to a checkpoint.
        _ = configuration.configJSON()
        accepted("\(configuration.family) with \(configuration.estimatedParameterCount) parameters")
    } catch {
        rejected(error)
    }
    return 0
}
