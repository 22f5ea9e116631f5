// A run directory's metrics.jsonl, read back on `--resume` and by `nudge report`: MetricsLog.read
// must return rows or throw a MetricsLogError, never trap; the rows must render as CSV.

import Foundation
import FuzzSupport
import NudgeReport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let url = writeScratch(fuzzInput(data, size), as: "metrics.jsonl")
    do {
        let rows = try MetricsLog.read(url)
        _ = MetricsLog.csv(rows)
        accepted("\(rows.count) rows")
    } catch {
        rejected(error)
    }
    return 0
}
