// Tensor storage: 64-byte aligned Float32 buffers served by a caching allocator.
//
// A training step allocates and frees the same sizes every iteration. Going to malloc for each
// op costs time, and glibc serves allocations over 32 MB with fresh mappings (page faults on
// every fill), so freed buffers are kept in per-size-class free lists and handed out again.
// Size classes are powers of two below 4096 floats and quarter-octave steps above, so a buffer
// is at most 25 % larger than requested.

import Foundation
import Synchronization

/// The caching allocator behind every tensor buffer.
public enum BufferPool {
    /// Bytes every buffer is aligned to (one cache line, and enough for AVX-512 loads).
    public static let alignment = 64
    /// Most bytes kept in free lists (2 GiB, or `NUDGE_POOL_MB` MiB); beyond this, freed buffers go
    /// back to the system. A smaller pool trades some page faults for a lower peak RSS.
    public static let maxCachedBytes = ProcessInfo.processInfo.environment["NUDGE_POOL_MB"].flatMap(Int.init).map { $0 << 20 } ?? 2 << 30

    struct State: ~Copyable {
        // Addresses as integers: pointers are not Sendable, and the lists cross threads.
        var free: [[UInt]] = Array(repeating: [], count: 160)
        var cachedBytes = 0
        var hits = 0
        var misses = 0
    }

    static let state = Mutex(State())

    /// The capacity (in floats) and class index for a request of `count` floats.
    @inline(__always)
    static func sizeClass(_ count: Int) -> (capacity: Int, index: Int) {
        let n = max(count, 16)
        if n <= 4096 {
            let log = Int.bitWidth - (n - 1).leadingZeroBitCount  // ceil(log2 n)
            return (1 << log, log)
        }
        // Quarter-octave steps: 2^e * (4 + q) / 4 for q in 1...4.
        let e = Int.bitWidth - 1 - (n - 1).leadingZeroBitCount  // floor(log2(n - 1))
        let base = 1 << e
        let step = base >> 2
        let q = (n - base + step - 1) / step  // 1...4
        return (base + q * step, 13 + (e - 12) * 4 + q)
    }

    @usableFromInline
    static func allocate(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        let (capacity, index) = sizeClass(count)
        let cached: UInt? = state.withLock { s in
            if let p = s.free[index].popLast() {
                s.cachedBytes -= capacity * 4
                s.hits += 1
                return p
            }
            s.misses += 1
            return nil
        }
        if let cached, let p = UnsafeMutablePointer<Float>(bitPattern: cached) { return (p, capacity) }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: alignment)
        return (raw.bindMemory(to: Float.self, capacity: capacity), capacity)
    }

    @usableFromInline
    static func release(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        let (_, index) = sizeClass(capacity)
        let address = UInt(bitPattern: pointer)
        let kept = state.withLock { s in
            guard s.cachedBytes + capacity * 4 <= maxCachedBytes else { return false }
            s.free[index].append(address)
            s.cachedBytes += capacity * 4
            return true
        }
        if !kept { UnsafeMutableRawPointer(pointer).deallocate() }
    }

    /// Returns every cached buffer to the system.
    public static func trim() {
        let pointers = state.withLock { s -> [UInt] in
            let all = s.free.flatMap { $0 }
            s.free = Array(repeating: [], count: s.free.count)
            s.cachedBytes = 0
            return all
        }
        for p in pointers { UnsafeMutableRawPointer(bitPattern: p)?.deallocate() }
    }

    /// Allocation statistics: buffers served from the cache, fresh allocations, bytes cached now.
    public static var statistics: (hits: Int, misses: Int, cachedBytes: Int) {
        state.withLock { ($0.hits, $0.misses, $0.cachedBytes) }
    }
}

/// A reference-counted Float32 buffer; returned to the pool when the last tensor using it goes.
///
/// Mutation rule: an op writes only into storage it has just allocated. In-place updates
/// (optimizers, gradient accumulation) happen outside recorded computation, on buffers the
/// caller owns.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let capacity: Int

    @inlinable
    init(count: Int) {
        (pointer, capacity) = BufferPool.allocate(count)
    }

    deinit { BufferPool.release(pointer, capacity: capacity) }
}
