// Exact snapshots of environments, for resuming training where it stopped.
//
// An environment, each wrapper around it, and a vector of them write their state as a flat list
// of 64-bit words (doubles by bit pattern, so nothing is rounded) and read it back in the same
// order. Restoring a snapshot into a freshly built environment of the same kind makes it continue
// exactly as the original would have: same physics state, same random stream, same step counters
// and running statistics.

import Foundation
import NudgeTensor

/// The state of an environment (or a stack of wrappers) as 64-bit words.
public struct EnvironmentSnapshot: Codable, Sendable, Equatable {
    public var words: [UInt64] = []

    public init(words: [UInt64] = []) { self.words = words }

    mutating func write(_ value: UInt64) { words.append(value) }
    mutating func write(_ value: Double) { words.append(value.bitPattern) }
    mutating func write(_ value: Int) { words.append(UInt64(bitPattern: Int64(value))) }
    mutating func write(_ value: Bool) { words.append(value ? 1 : 0) }
    mutating func write(_ values: [Double]) {
        write(values.count)
        for v in values { write(v) }
    }
    mutating func write(_ rng: RandomGenerator) { words += rng.snapshot }
}

/// Reads an `EnvironmentSnapshot` back in the order it was written.
public struct SnapshotReader {
    let words: [UInt64]
    let environment: String
    var position = 0

    public init(_ snapshot: EnvironmentSnapshot, environment: String) {
        words = snapshot.words
        self.environment = environment
    }

    mutating func word() throws -> UInt64 {
        guard position < words.count else {
            throw EnvironmentError.invalidState(env: environment, reason: "snapshot ends after \(words.count) words")
        }
        defer { position += 1 }
        return words[position]
    }

    mutating func double() throws -> Double { Double(bitPattern: try word()) }
    mutating func int() throws -> Int { Int(Int64(bitPattern: try word())) }
    mutating func bool() throws -> Bool { try word() != 0 }
    mutating func doubles() throws -> [Double] {
        let n = try int()
        guard n >= 0 && n <= words.count - position else {
            throw EnvironmentError.invalidState(env: environment, reason: "snapshot array of \(n) values at word \(position)")
        }
        return try (0..<n).map { _ in try double() }
    }
    mutating func generator() throws -> RandomGenerator {
        let state = try (0..<5).map { _ in try word() }
        guard let rng = RandomGenerator(snapshot: state) else {
            throw EnvironmentError.invalidState(env: environment, reason: "snapshot holds an invalid generator state")
        }
        return rng
    }

    /// Fails unless every word was read (a snapshot of another kind of environment).
    func finish() throws {
        guard position == words.count else {
            throw EnvironmentError.invalidState(env: environment, reason: "snapshot has \(words.count - position) words left over")
        }
    }
}

/// An environment whose complete state (including its random generator) can be saved and restored.
public protocol SnapshotEnvironment: Environment {
    /// Appends this environment's state (then its base's, for wrappers).
    func writeSnapshot(to snapshot: inout EnvironmentSnapshot)
    /// Reads back what `writeSnapshot` wrote, in the same order.
    func readSnapshot(from reader: inout SnapshotReader) throws
}

extension SnapshotEnvironment {
    /// The environment's complete state.
    public func snapshot() -> EnvironmentSnapshot {
        var s = EnvironmentSnapshot()
        writeSnapshot(to: &s)
        return s
    }

    /// Continues from `snapshot` (taken from an environment of the same kind and wrappers).
    public func restore(_ snapshot: EnvironmentSnapshot) throws {
        var reader = SnapshotReader(snapshot, environment: id)
        try readSnapshot(from: &reader)
        try reader.finish()
    }
}

/// Where a vector of environments stands: each one's snapshot and which wait for a reset.
public struct VectorSnapshot: Codable, Sendable, Equatable {
    public var environments: [EnvironmentSnapshot]
    public var needsReset: [Bool]
}

extension SyncVectorEnvironment where Base: SnapshotEnvironment {
    /// Every environment's state.
    public func snapshot() -> VectorSnapshot {
        VectorSnapshot(environments: environments.map { $0.snapshot() }, needsReset: pendingResets)
    }

    /// Continues from `snapshot` (taken from a vector of as many environments of the same kind).
    public func restore(_ snapshot: VectorSnapshot) throws {
        guard snapshot.environments.count == count, snapshot.needsReset.count == count else {
            throw EnvironmentError.invalidArgument("snapshot of \(snapshot.environments.count) environments for a vector of \(count)")
        }
        for (env, s) in zip(environments, snapshot.environments) { try env.restore(s) }
        pendingResets = snapshot.needsReset
    }
}
