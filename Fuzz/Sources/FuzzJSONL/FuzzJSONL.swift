// JSON Lines datasets (`--data file.jsonl`): JSONLDataset.parse must return rows or throw a
// DatasetError, never trap.

import Foundation
import FuzzSupport
import NudgeAlign

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    do {
        let rows = try JSONLDataset.parse(fuzzInput(data, size), fileName: "fuzz.jsonl")
        for row in rows { _ = String(describing: row) }
        accepted("\(rows.count) rows")
    } catch {
        rejected(error)
    }
    return 0
}
