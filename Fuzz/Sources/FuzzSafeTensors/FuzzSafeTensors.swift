// A .safetensors file: SafeTensorsFile must open it and read every tensor every way, or throw a
// SafeTensorsError, never trap.

import Foundation
import FuzzSupport
import NudgeNN

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let url = writeScratch(fuzzInput(data, size), as: "model.safetensors")
    do {
        let file = try SafeTensorsFile(url: url)
        _ = file.metadata
        for entry in file.entries {
            _ = try? file.floats(entry.name)
            // An absurd element count is refused by floats(); don't allocate it here either.
            if entry.elementCount <= 1 << 20 {
                var buffer = [Float](repeating: 0, count: entry.elementCount)
                _ = try? buffer.withUnsafeMutableBufferPointer { try file.read(entry.name, into: $0) }
            }
            _ = try? file.int64s(entry.name)
            _ = try? file.rawData(entry.name)
            _ = try? file.withRawBytes(entry.name) { $0.count }
        }
        _ = try SafeTensorsCheckpoint(url: url).names
        accepted("\(file.entries.count) tensors")
    } catch {
        rejected(error)
    }
    return 0
}
