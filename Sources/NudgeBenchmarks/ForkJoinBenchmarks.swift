// What one fork-join costs: `parallelRanges` (Nudge's helper team) against GCD's
// `concurrentPerform`, over two pieces of busy work with serial work between calls, as in a
// training or decoding step: `NudgeBench --only forkjoin`.

import Dispatch
import Foundation
import NudgeTensor

extension EngineBenchmarks {
    /// Median µs a two-piece fork-join takes beyond its pieces' own length, for each piece length
    /// and serial gap (µs), through the team and through GCD.
    public static func forkJoinOverhead(pieces: [Int] = [20, 50, 100, 300], gaps: [Int] = [0, 20, 200, 2000],
                                        calls: Int = 400) -> [(piece: Int, gap: Int, team: Double, gcd: Double)] {
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        func spin(_ microseconds: Int) {
            let end = now() + UInt64(microseconds) * 1000
            while now() < end {}
        }
        func measure(_ piece: Int, _ gap: Int, _ fork: (() -> Void) -> Void) -> Double {
            var times: [Double] = []
            for _ in 0..<calls {
                spin(gap)
                let t0 = now()
                fork { spin(piece) }
                times.append(Double(now() - t0) / 1000 - Double(piece))
            }
            return times.sorted()[times.count / 2]
        }
        var rows: [(piece: Int, gap: Int, team: Double, gcd: Double)] = []
        for piece in pieces {
            for gap in gaps {
                let team = measure(piece, gap) { work in parallelRanges(2, minimum: 2, grain: 1) { _ in work() } }
                let gcd = measure(piece, gap) { work in
                    withoutActuallyEscaping(work) { work in
                        let box = UncheckedBox(work)
                        DispatchQueue.concurrentPerform(iterations: 2) { _ in box.value() }
                    }
                }
                rows.append((piece, gap, team, gcd))
            }
        }
        return rows
    }
}

private struct UncheckedBox: @unchecked Sendable {
    let value: () -> Void
    init(_ value: @escaping () -> Void) { self.value = value }
}
