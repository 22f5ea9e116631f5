// Faults around checkpoints: non-finite weights are found and never saved, and a save killed
// between its two renames (the fallback swap) is repaired before a resume reads the checkpoint.

import Foundation
import Testing
@testable import NudgeNN
import NudgeTensor

@Suite("Fault tolerance") struct FaultToleranceTests {
    func model(seed: UInt64 = 3) -> MLP {
        var rng = RandomGenerator(seed: seed)
        return MLP(sizes: [3, 5, 2], using: &rng)
    }

    func firstParameter(_ m: MLP) -> (String, Tensor) {
        var iterator = m.parameters().makeIterator()
        return iterator.next()!
    }

    @Test func nonFiniteValuesAreFoundWherever() {
        for count in [1, 7, 8, 9, 64, 1000] {
            for position in Set([0, count / 2, count - 1]) {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var values = [Float](repeating: 1e38, count: count)  // large but finite: no false alarm from overflow
                    values[position] = bad
                    let found = values.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count) }
                    #expect(found.map { $0.isNaN == bad.isNaN && ($0.isNaN || $0 == bad) } == true)
                }
            }
            let finite = [Float](repeating: 3e38, count: count)
            #expect(finite.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count) } == nil)
        }
    }

    @Test func nonFiniteWeightsAreNeverSaved() throws {
        let m = model()
        let dir = temporaryDirectory().appendingPathComponent("latest")
        try Checkpoint.save(model: m, optimizer: nil, step: 1, to: dir)
        let (name, tensor) = firstParameter(m)
        tensor.data[0] = .nan
        #expect(m.firstNonFiniteParameter()?.name == name)
        #expect(throws: CheckpointError.self) { try Checkpoint.save(model: m, optimizer: nil, step: 2, to: dir) }
        #expect(throws: CheckpointError.self) { try m.save(to: dir.deletingLastPathComponent().appendingPathComponent("m.safetensors")) }
        // The finite checkpoint of step 1 is untouched.
        let restored = model(seed: 9)
        #expect(try Checkpoint.restore(model: restored, optimizer: nil, from: dir) == 1)
        #expect(restored.firstNonFiniteParameter() == nil)
    }

    @Test func parameterCheckNamesTheStepAndParameter() throws {
        let m = model()
        try NonFiniteValueError.checkParameters(of: m, step: 4)
        firstParameter(m).1.data[1] = -.infinity
        let error = try #require(throws: NonFiniteValueError.self) { try NonFiniteValueError.checkParameters(of: m, step: 4) }
        #expect(error.step == 4 && error.afterUpdate && error.metric.hasPrefix("parameter "))
        #expect(error.description.contains("not saved"))
    }

    /// A kill between "old checkpoint aside" and "new checkpoint in" (simulated by a throwing
    /// hook) leaves no `latest`; recovery puts the previous one back, and the next save works.
    @Test func aSaveKilledBetweenItsRenamesIsRecovered() throws {
        let dir = temporaryDirectory().appendingPathComponent("latest")
        let first = model(seed: 1), second = model(seed: 2)
        try Checkpoint.save(model: first, optimizer: nil, step: 1, to: dir)
        struct Killed: Error {}
        Checkpoint.useExchange = false
        Checkpoint.afterMovingAside = { throw Killed() }
        defer {
            Checkpoint.useExchange = true
            Checkpoint.afterMovingAside = nil
        }
        #expect(throws: Killed.self) { try Checkpoint.save(model: second, optimizer: nil, step: 2, to: dir) }
        #expect(!FileManager.default.fileExists(atPath: dir.path))
        try Checkpoint.recoverInterruptedSwap(at: dir)
        let restored = model(seed: 7)
        #expect(try Checkpoint.restore(model: restored, optimizer: nil, from: dir) == 1)
        #expect(restored.parameters().map { $0.1.scalars } == first.parameters().map { $0.1.scalars })
        // Nothing stale is left beside it, and a later save (same fallback) goes through.
        Checkpoint.afterMovingAside = nil
        try Checkpoint.save(model: second, optimizer: nil, step: 2, to: dir)
        #expect(try Checkpoint.restore(model: restored, optimizer: nil, from: dir) == 2)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.deletingLastPathComponent().path).filter { $0 != "latest" }
        #expect(leftovers.isEmpty)
    }

    @Test func exchangeSwapReplacesAndCleansStaleStaging() throws {
        let dir = temporaryDirectory().appendingPathComponent("latest")
        try Checkpoint.save(model: model(seed: 1), optimizer: nil, step: 1, to: dir)
        // A staging directory left by a process killed mid-save.
        let stale = dir.deletingLastPathComponent().appendingPathComponent(".latest.tmp-999999")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: false)
        try Checkpoint.save(model: model(seed: 2), optimizer: nil, step: 2, to: dir)
        #expect(try Checkpoint.restore(model: model(seed: 5), optimizer: nil, from: dir) == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.deletingLastPathComponent().path) == ["latest"])
    }
}
