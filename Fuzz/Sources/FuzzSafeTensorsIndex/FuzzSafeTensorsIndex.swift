// A sharded checkpoint's model.safetensors.index.json, next to the two valid shards of the
// NudgeNN test fixture: SafeTensorsCheckpoint must open it or throw, never trap.

import Foundation
import FuzzSupport
import NudgeNN

let shards = "Tests/NudgeNNTests/Fixtures/safetensors/sharded/"
let directory: URL = {
    for name in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
        writeScratch(fixture(shards + name), as: name)
    }
    return fuzzScratch
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = directory
    writeScratch(fuzzInput(data, size), as: SafeTensorsCheckpoint.indexFileName)
    do {
        let checkpoint = try SafeTensorsCheckpoint(url: directory)
        _ = checkpoint.metadata
        for name in checkpoint.names {
            _ = try? checkpoint.floats(name)
            _ = checkpoint.entry(name)
        }
        accepted("\(checkpoint.names.count) tensors")
    } catch {
        rejected(error)
    }
    return 0
}
