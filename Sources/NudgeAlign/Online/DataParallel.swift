// What the online trainers need from a data-parallel job beyond NudgeNN's Communicator: per-row
// values of the whole step, gathered from the rank that holds each row.

import Foundation
import NudgeNN

extension Communicator {
    /// The whole step's `total` rows, given this rank's `local` rows at `offset` (nil stays nil):
    /// one allreduce of a vector each rank fills only at its own rows.
    func gatherRows(_ local: [Double?], offset: Int, total: Int) -> [Double?] {
        guard isDistributed else { return local }
        // Other ranks add 0 at this rank's rows; nil travels as NaN (a NaN sum stays NaN).
        var all = [Double](repeating: 0, count: total)
        for (r, v) in local.enumerated() { all[offset + r] = v ?? .nan }
        allreduceSum(&all)
        return all.map { $0.isNaN ? nil : $0 }
    }

    func gatherRows(_ local: [Double], offset: Int, total: Int) -> [Double?] {
        gatherRows(local.map { Optional($0) }, offset: offset, total: total)
    }

    /// The sum of `value` over the ranks before this one (this rank's offset in rank order).
    func exclusivePrefixSum(_ value: Double) -> Double {
        guard isDistributed else { return 0 }
        var all = [Double](repeating: 0, count: size)
        all[rank] = value
        allreduceSum(&all)
        return all[..<rank].reduce(0, +)
    }
}
