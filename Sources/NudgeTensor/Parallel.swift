// Splitting large kernels over threads.
//
// Own kernels run single-threaded below about 256K elements. Pieces run on a small team of helper
// threads (CNudgeKernels' team.c) that spin briefly between jobs and then sleep: a fork-join costs
// about 1 µs while they spin, against 46–110 µs through GCD's `concurrentPerform` on a 2-core VM.
// Work is split into fixed chunks whose boundaries depend only on the problem size, and every
// reduction keeps a fixed order per row, so results do not depend on the thread count or on
// scheduling.

import CNudgeKernels
import Foundation

/// Engine-wide threading settings.
public enum Engine {
    /// Threads own kernels may use (at least 1). Defaults to `NUDGE_THREADS` or the core count.
    nonisolated(unsafe) public static var threads: Int = {
        if let s = ProcessInfo.processInfo.environment["NUDGE_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Elements below which an elementwise kernel stays on one thread.
    public static let parallelThreshold = 1 << 18
}

/// Calls `body` on consecutive ranges covering `0..<count`, in parallel when `count` is at least
/// `minimum` and more than one thread is allowed. Each range is `grain`-aligned.
@inlinable
public func parallelRanges(
    _ count: Int, minimum: Int = Engine.parallelThreshold, grain: Int = 64,
    _ body: (Range<Int>) -> Void
) {
    let threads = Engine.threads
    if count < minimum || threads < 2 {
        body(0..<count)
        return
    }
    let chunks = min(threads * 4, max(1, count / max(grain, minimum / 4)))
    let per = ((count + chunks - 1) / chunks + grain - 1) / grain * grain
    let n = (count + per - 1) / per
    // A mixed-precision scope holds for the caller's thread; the pieces run under it too.
    let bf16 = MixedPrecision.isActive
    forkJoin(n, threads: threads) { i in
        let start = i * per
        MixedPrecision.bf16(bf16) { body(start..<min(count, start + per)) }
    }
}

/// Calls `body(i)` for every i in 0..<pieces: on the calling thread and up to `threads` − 1 team
/// helpers, or on this thread alone, in order, when the team is busy (a nested or concurrent call).
@usableFromInline
func forkJoin(_ pieces: Int, threads: Int, _ body: (Int) -> Void) {
    if pieces > 1 && threads > 1 {
        let ran = withoutActuallyEscaping(body) { body -> Bool in
            var job = body
            return withUnsafeMutablePointer(to: &job) { job in
                nudge_team_run(pieces, Int32(min(threads, 64)), { context, piece in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(piece)
                }, job) != 0
            }
        }
        if ran { return }
    }
    for i in 0..<pieces { body(i) }
}
