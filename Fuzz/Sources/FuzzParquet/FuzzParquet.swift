// Parquet datasets (`--data file.parquet`): ParquetFile must return rows or throw a ParquetError,
// and the dataset loader a DatasetError, never trap or allocate without bound.

import Foundation
import FuzzSupport
import NudgeAlign

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = fuzzInput(data, size)
    do {
        let file = try ParquetFile(data: input, fileName: "fuzz.parquet")
        let rows = try file.rows()
        for row in rows { _ = String(describing: row) }
        accepted("\(rows.count) Parquet rows")
    } catch {
        rejected(error)
    }
    do {
        let rows = try JSONLDataset.parseParquet(input, fileName: "fuzz.parquet")
        accepted("\(rows.count) dataset rows")
    } catch {
        rejected(error)
    }
    return 0
}
