// The fork-join team behind `parallelRanges`: every piece runs exactly once, nested and concurrent
// calls complete (on their own thread), helpers really join, and OpenBLAS's environment is set
// before main.

import Foundation
import Testing
@testable import NudgeTensor

@Suite("Parallel") struct ParallelTests {
    /// Counts per piece, written by whichever thread runs the piece (each piece its own slot).
    final class Slots: @unchecked Sendable {
        let counts: UnsafeMutablePointer<Int>
        let count: Int
        init(_ count: Int) {
            self.count = count
            counts = .allocate(capacity: count)
            counts.initialize(repeating: 0, count: count)
        }
        deinit { counts.deallocate() }
        var all: [Int] { Array(UnsafeBufferPointer(start: counts, count: count)) }
    }

    @Test func everyPieceRunsExactlyOnce() {
        var rng = RandomGenerator(seed: 3)
        for job in 0..<3000 {
            let pieces = 1 + Int(rng.uniform() * 40)
            let slots = Slots(pieces)
            forkJoin(pieces, threads: 4) { slots.counts[$0] += 1 }
            #expect(slots.all == Array(repeating: 1, count: pieces), "job \(job)")
        }
    }

    @Test func helpersJoinLongPieces() {
        final class Threads: @unchecked Sendable {
            let lock = NSLock()
            var seen = Set<UInt>()
            func add() { lock.withLock { _ = seen.insert(UInt(pthread_self())) } }
        }
        // Sleeping pieces leave the caller no way to finish alone before a helper wakes. Another
        // test running beside this one may hold the team, and a job then runs on its caller alone
        // (by design), so a job is tried until one finds the team free.
        var seen = 0
        for _ in 0..<100 where seen < 2 {
            let threads = Threads(), slots = Slots(16)
            forkJoin(16, threads: 2) { piece in
                threads.add()
                usleep(1000)
                slots.counts[piece] += 1
            }
            #expect(slots.all == Array(repeating: 1, count: 16))
            seen = threads.seen.count
        }
        #expect(seen == 2)
    }

    @Test func nestedCallsRunOnTheirOwnThread() {
        let outer = Slots(8), inner = Slots(8 * 16)
        forkJoin(8, threads: 4) { i in
            forkJoin(16, threads: 4) { j in inner.counts[i * 16 + j] += 1 }
            outer.counts[i] += 1
        }
        #expect(outer.all == Array(repeating: 1, count: 8))
        #expect(inner.all == Array(repeating: 1, count: 8 * 16))
    }

    @Test func concurrentCallersAllComplete() {
        let callers = 4, jobs = 300, pieces = 12
        let slots = Slots(callers * jobs * pieces)
        let done = DispatchGroup()
        for c in 0..<callers {
            done.enter()
            Thread {
                for j in 0..<jobs {
                    let base = (c * jobs + j) * pieces
                    forkJoin(pieces, threads: 2) { slots.counts[base + $0] += 1 }
                }
                done.leave()
            }.start()
        }
        done.wait()
        #expect(slots.all == Array(repeating: 1, count: callers * jobs * pieces))
    }

    @Test func parallelRangesCoverEveryIndexOnce() {
        for count in [1, 2, 63, 64, 65, 1000, 4097] {
            let slots = Slots(count)
            parallelRanges(count, minimum: 2, grain: 1) { range in for i in range { slots.counts[i] += 1 } }
            #expect(slots.all == Array(repeating: 1, count: count), "count \(count)")
        }
    }

    /// OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when it loads; Nudge sets it (unless the user has)
    /// before main, while no other thread can be reading the environment.
    @Test func openBLASTimeoutIsSetAtProcessStart() {
        #expect(getenv("OPENBLAS_THREAD_TIMEOUT") != nil)
    }
}
