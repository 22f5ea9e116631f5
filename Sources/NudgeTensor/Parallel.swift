// Splitting large kernels over threads.
//
// Own kernels run single-threaded below about 256K elements: `concurrentPerform`'s second thread
// starts 25–200 µs late, so only ops of about 100 µs or more gain. Work is split into fixed
// chunks whose boundaries depend only on the problem size, and every reduction keeps a fixed
// order per row, so results do not depend on the thread count or on scheduling.

import Dispatch
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

@usableFromInline struct UncheckedSendable<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(value: T) { self.value = value }
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
    withoutActuallyEscaping(body) { body in
        let box = UncheckedSendable(value: body)
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let start = i * per
            MixedPrecision.bf16(bf16) { box.value(start..<min(count, start + per)) }
        }
    }
}
