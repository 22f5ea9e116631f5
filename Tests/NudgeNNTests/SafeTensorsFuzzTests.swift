// Deterministic mutation fuzzing of the safetensors reader: every mutated file must either open
// and read cleanly or throw a SafeTensorsError — never crash.

import Foundation
import Testing
import NudgeNN

/// SplitMix64: a tiny, seedable, deterministic random number generator for tests.
struct SafeTensorsTestRNG: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct SafeTensorsFuzzTests {
    /// Applies one random mutation to `bytes`. `headerEnd` is where the data buffer starts.
    static func mutate(_ bytes: inout [UInt8], headerEnd: Int, rng: inout SafeTensorsTestRNG) {
        let significant = Array("{}[]\",:0123456789-.e \\".utf8)
        switch rng.next() % 8 {
        case 0:  // flip a bit anywhere
            guard !bytes.isEmpty else { return }
            bytes[Int.random(in: 0 ..< bytes.count, using: &rng)] ^= 1 << UInt8.random(in: 0 ... 7, using: &rng)
        case 1:  // put a JSON-significant character into the header
            guard headerEnd > 8, bytes.count >= headerEnd else { return }
            bytes[Int.random(in: 8 ..< headerEnd, using: &rng)] = significant.randomElement(using: &rng) ?? 0
        case 2:  // truncate
            bytes.removeLast(Int.random(in: 0 ... bytes.count, using: &rng))
        case 3:  // rewrite the header-length field
            guard bytes.count >= 8 else { return }
            let old = bytes[0 ..< 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let new: UInt64
            switch rng.next() % 4 {
            case 0: new = rng.next()
            case 1: new = old &+ UInt64.random(in: 0 ... 16, using: &rng) &- 8
            case 2: new = UInt64.random(in: 0 ... UInt64(bytes.count), using: &rng)
            default: new = [UInt64.max, UInt64(Int.max), UInt64(Int.max) + 1, 0].randomElement(using: &rng) ?? 0
            }
            withUnsafeBytes(of: new.littleEndian) { bytes.replaceSubrange(0 ..< 8, with: $0) }
        case 4:  // append junk
            bytes.append(contentsOf: (0 ..< Int.random(in: 1 ... 64, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) })
        case 5:  // change a digit in the header (shapes and offsets)
            guard headerEnd > 8, bytes.count >= headerEnd else { return }
            let digits = (8 ..< headerEnd).filter { bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }
            if let i = digits.randomElement(using: &rng) { bytes[i] = UInt8.random(in: 0x30 ... 0x39, using: &rng) }
        case 6:  // delete a slice of the header
            guard headerEnd > 9, bytes.count >= headerEnd else { return }
            let start = Int.random(in: 8 ..< headerEnd, using: &rng)
            bytes.removeSubrange(start ..< min(headerEnd, start + Int.random(in: 1 ... 8, using: &rng)))
        default:  // random byte anywhere
            guard !bytes.isEmpty else { return }
            bytes[Int.random(in: 0 ..< bytes.count, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng)
        }
    }

    /// Opens `url` and reads every tensor every way; returns whether everything succeeded.
    static func exercise(_ url: URL) -> Bool {
        do {
            let file = try SafeTensorsFile(url: url)
            for entry in file.entries {
                let values = try file.floats(entry.name)
                guard values.count == entry.elementCount else { return false }
                var buffer = [Float](repeating: 0, count: entry.elementCount)
                try buffer.withUnsafeMutableBufferPointer { try file.read(entry.name, into: $0) }
                _ = try? file.int64s(entry.name)
                guard try file.rawData(entry.name).count == entry.byteRange.count else { return false }
            }
            return true
        } catch {
            return false
        }
    }

    @Test func mutatedFilesNeverCrash() throws {
        let dir = try SafeTensorsTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let written = dir.appendingPathComponent("base.safetensors")
        try SafeTensors.write(
            [(name: "w", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), (name: "s", shape: [], values: [7]),
             (name: "e", shape: [0, 2], values: []), (name: "b", shape: [3], values: [0.5, -1, 2])],
            metadata: ["k": "v"], to: written, dtype: .bf16)
        let bases = [
            [UInt8](try Data(contentsOf: written)),
            [UInt8](try Data(contentsOf: SafeTensorsTestSupport.fixture("reference", "safetensors"))),
        ]
        #expect(bases.allSatisfy { Self.exercise(try! SafeTensorsTestSupport.write($0, in: dir)) })

        var rng = SafeTensorsTestRNG(seed: 20_240_601)
        let target = dir.appendingPathComponent("fuzz.safetensors")
        var opened = 0, rejected = 0
        for iteration in 0 ..< 2000 {
            var bytes = bases[iteration % bases.count]
            let headerEnd = 8 + (bytes[0 ..< 8].reversed().reduce(0) { $0 << 8 | Int($1) })
            for _ in 0 ... rng.next() % 3 {
                Self.mutate(&bytes, headerEnd: headerEnd, rng: &rng)
            }
            try SafeTensorsTestSupport.write(bytes, to: target)
            if Self.exercise(target) { opened += 1 } else { rejected += 1 }
        }
        #expect(opened + rejected == 2000)
        #expect(opened > 0)
        #expect(rejected > 0)
    }
}
