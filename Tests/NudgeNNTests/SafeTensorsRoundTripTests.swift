// Round-trip tests for the safetensors writer and reader: F32 exact, F16/BF16 within their
// rounding, metadata, scalar and empty tensors, header layout, and atomic replacement.

import Foundation
import Testing
import NudgeNN

@Suite struct SafeTensorsRoundTripTests {
    static let tensors: [(name: String, shape: [Int], values: [Float])] = [
        (name: "scalar", shape: [], values: [3.25]),
        (name: "empty", shape: [0, 3], values: []),
        (name: "matrix", shape: [2, 3], values: [1, -2, 0.1, 1e-7, 65000, -0.0]),
        (name: "cube", shape: [2, 2, 2], values: (0 ..< 8).map { Float($0) * 0.37 - 1 }),
        (name: "a.first", shape: [4], values: [Float.pi, -Float.pi, 1e4, -1e-3]),
    ]

    static func relativeTolerance(_ dtype: SafeTensorsDType) -> Float {
        switch dtype {
        case .f16: return 0x1p-11   // half an ulp of a 10-bit mantissa
        case .bf16: return 0x1p-8   // half an ulp of a 7-bit mantissa
        default: return 0
        }
    }

    @Test(arguments: [SafeTensorsDType.f32, .f16, .bf16])
    func roundTrip(dtype: SafeTensorsDType) throws {
        let dir = try SafeTensorsTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")
        let metadata = ["format": "pt", "step": "42", "quote\"key": "line\nbreak \u{1}\u{2713}"]
        try SafeTensors.write(Self.tensors, metadata: metadata, to: url, dtype: dtype)

        let file = try SafeTensorsFile(url: url)
        #expect(file.metadata == metadata)
        #expect(file.names == Self.tensors.map(\.name).sorted())
        #expect((8 + file.headerLength) % 8 == 0)
        let tolerance = Self.relativeTolerance(dtype)
        for tensor in Self.tensors {
            let entry = try #require(file.entry(tensor.name))
            #expect(entry.dtype == dtype)
            #expect(entry.shape == tensor.shape)
            #expect(entry.elementCount == tensor.values.count)
            let values = try file.floats(tensor.name)
            #expect(values.count == tensor.values.count)
            for (got, want) in zip(values, tensor.values) {
                if dtype == .f32 {
                    #expect(got.bitPattern == want.bitPattern)
                } else if dtype == .f16 && abs(want) < 0x1p-14 {
                    #expect(abs(got - want) <= 0x1p-25, "\(tensor.name): \(got) vs \(want)")  // subnormal grid
                } else {
                    #expect(abs(got - want) <= abs(want) * tolerance, "\(tensor.name): \(got) vs \(want)")
                }
            }
        }
        // Offsets are contiguous in sorted-name order.
        var offset = 0
        for entry in file.entries {
            #expect(entry.byteRange.lowerBound == offset)
            offset = entry.byteRange.upperBound
        }
        #expect(offset == file.dataSize)
    }

    @Test func headerLayoutMatchesReferenceWriter() throws {
        let dir = try SafeTensorsTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("x.safetensors")
        try SafeTensors.write([(name: "b", shape: [1], values: [1]), (name: "a", shape: [2], values: [2, 3])],
                              metadata: ["k": "v"], to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let n = Int(bytes[0]) | Int(bytes[1]) << 8
        #expect(bytes[2 ..< 8].allSatisfy { $0 == 0 })
        let header = String(decoding: bytes[8 ..< 8 + n], as: UTF8.self)
        #expect(header == #"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"# + "   ")
        #expect(bytes.count == 8 + n + 12)
        #expect(Array(bytes[(8 + n)...]) == [0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x3F])
    }

    @Test func writeIsAtomicAndOverwrites() throws {
        let dir = try SafeTensorsTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("ckpt.safetensors")
        try SafeTensors.write([(name: "w", shape: [3], values: [1, 2, 3])], metadata: ["v": "1"], to: url)
        let first = try SafeTensorsFile(url: url)  // stays mapped across the replacement
        try SafeTensors.write([(name: "w", shape: [2, 2], values: [4, 5, 6, 7])], metadata: ["v": "2"], to: url, dtype: .bf16)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["ckpt.safetensors"])
        let second = try SafeTensorsFile(url: url)
        #expect(second.metadata == ["v": "2"])
        #expect(try second.floats("w") == [4, 5, 6, 7])
        #expect(try first.floats("w") == [1, 2, 3])  // the old mapping is untouched by rename
    }

    @Test func failedWriteLeavesNoTemporaryFile() throws {
        let dir = try SafeTensorsTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("bad.safetensors")
        #expect(throws: SafeTensorsError.self) {
            try SafeTensors.write([(name: "w", shape: [2], values: [1, 2, 3])], to: url)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func writesEmptyCheckpoint() throws {
        let dir = try SafeTensorsTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("empty.safetensors")
        try SafeTensors.write([], metadata: nil, to: url)
        let file = try SafeTensorsFile(url: url)
        #expect(file.entries.isEmpty)
        #expect(file.metadata.isEmpty)
        #expect(file.dataSize == 0)
    }

    @Test func largeTensorRoundTripsThroughChunkedWriter() throws {
        let dir = try SafeTensorsTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("big.safetensors")
        let values = (0 ..< 150_000).map { Float($0 % 1024) }  // integers below 2048 are exact in F16
        try SafeTensors.write([(name: "big", shape: [300, 500], values: values)], to: url, dtype: .f16)
        #expect(try SafeTensorsFile(url: url).floats("big") == values)
    }

    @Test func concurrentReadsShareOneFile() async throws {
        let file = try SafeTensorsFile(url: SafeTensorsTestSupport.fixture("reference", "safetensors"))
        let expected = try file.floats("weight_f32")
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0 ..< 8 {
                group.addTask { (try? file.floats("weight_f32")) == expected }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: true, count: 8))
    }
}
