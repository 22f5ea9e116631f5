// The GGUF reader against the `gguf` Python package: every metadata value type, and every ggml type
// Nudge reads dequantized as gguf.quants.dequantize does (Fixtures/gguf, written by
// scripts/make_gguf_fixtures.py); corrupt and truncated files are errors naming the file.

import Foundation
import Testing
@testable import NudgeNN

@Suite("GGUF") struct GGUFTests {
    static func fixture(_ name: String, _ ext: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures/gguf"))
    }

    static func expected() throws -> [String: Any] {
        let data = try Data(contentsOf: try fixture("types", "json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func metadataOfEveryValueType() throws {
        let file = try GGUFFile(url: try Self.fixture("types", "gguf"))
        #expect(file.version == 3)
        #expect(try file.string("general.architecture") == "test")
        #expect(file.metadata["test.u8"] == .uint(200))
        #expect(file.metadata["test.i8"] == .int(-100))
        #expect(file.metadata["test.u16"] == .uint(60000))
        #expect(file.metadata["test.i16"] == .int(-30000))
        #expect(file.metadata["test.u32"] == .uint(4_000_000_000))
        #expect(file.metadata["test.i32"] == .int(-2_000_000_000))
        #expect(file.metadata["test.f32"] == .float(0.25))
        #expect(file.metadata["test.u64"] == .uint(UInt64(1) << 63 + 5))
        #expect(file.metadata["test.i64"] == .int(-(Int64(1) << 62)))
        #expect(file.metadata["test.f64"] == .float(1e-300))
        #expect(try file.bool("test.bool") == true)
        #expect(try file.string("test.string") == "héllo ✓ 🤗")
        #expect(try file.strings("test.array") == ["a", "bc", ""])
        #expect(try file.numbers("test.ints") == [1, -2, 3])
        #expect(throws: GGUFError.self) { try file.string("test.u8") }
        #expect(try file.int("test.missing") == nil)
    }

    @Test(arguments: ["f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"])
    func dequantizesAsTheGGUFPackage(_ name: String) throws {
        let file = try GGUFFile(url: try Self.fixture("types", "gguf"))
        let tensors = try #require(try Self.expected()["tensors"] as? [String: [String: Any]])
        let entry = try #require(tensors[name])
        let shape = try #require(entry["shape"] as? [Int])
        let values = try #require(entry["values"] as? [Double]).map(Float.init)
        let info = try #require(file.tensor(name))
        #expect(info.shape == shape)
        let got = try file.floats(name)
        #expect(got.count == values.count)
        var worst: Float = 0
        for (a, b) in zip(got, values) { worst = max(worst, abs(a - b) / max(1, abs(b))) }
        // numpy and Swift may round a product of two f32 factors in a different order: one ulp.
        #expect(worst <= 2e-7, "\(name): worst relative difference \(worst)")
    }

    /// Writes `bytes` to a temporary .gguf file.
    static func temporary(_ bytes: [UInt8]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-gguf-\(UUID().uuidString).gguf")
        try Data(bytes).write(to: url)
        return url
    }

    @Test func everyTruncationIsAnErrorNotATrap() throws {
        let bytes = Array(try Data(contentsOf: try Self.fixture("types", "gguf")))
        // Every prefix through the header and tensor infos, and a sample of the data section.
        let cuts = Array(0..<min(bytes.count, 1200)) + stride(from: 1200, to: bytes.count, by: 97)
        for cut in cuts {
            let url = try Self.temporary(Array(bytes[0..<cut]))
            defer { try? FileManager.default.removeItem(at: url) }
            #expect(throws: GGUFError.self, "cut at \(cut)") { _ = try GGUFFile(url: url) }
        }
    }

    @Test func corruptHeadersNameTheProblem() throws {
        let bytes = Array(try Data(contentsOf: try Self.fixture("types", "gguf")))
        func open(_ edit: (inout [UInt8]) -> Void) throws -> String {
            var copy = bytes
            edit(&copy)
            let url = try Self.temporary(copy)
            defer { try? FileManager.default.removeItem(at: url) }
            do {
                _ = try GGUFFile(url: url)
                return "opened"
            } catch {
                #expect(error.description.contains(url.path))
                return error.description
            }
        }
        #expect(try open { $0[0] = UInt8(ascii: "X") }.contains("magic"))
        #expect(try open { $0[4] = 1 }.contains("version 1"))
        #expect(try open { $0[8...15] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F] }.contains("tensor count"))
        // The first key's length made huge.
        #expect(try open { $0[24...31] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F] }.contains("past the end"))
        // Random byte flips never trap.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            _ = try open { b in
                for _ in 0..<3 { b[Int.random(in: 0..<min(b.count, 1500), using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            }
        }
    }

    @Test func unknownTypeIsNamed() throws {
        var bytes = Array(try Data(contentsOf: try Self.fixture("types", "gguf")))
        // Find the first tensor info's type field by locating the name "q4_0" in the header.
        let name = Array("q4_0".utf8)
        let at = try #require((0..<(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == name })
        // name, u32 n_dims (2), two u64 extents, then the u32 type.
        let typeOffset = at + 4 + 4 + 16
        #expect(bytes[typeOffset] == 2)
        bytes[typeOffset] = 16  // IQ2_XXS
        let url = try Self.temporary(bytes)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: GGUFError.unsupportedType(file: url.path, tensor: "q4_0", type: "IQ2_XXS")) { _ = try GGUFFile(url: url) }
    }

    @Test func q8_0QuantizesAsGGML() throws {
        let entry = try #require(try Self.expected()["q8_0_quantize"] as? [String: Any])
        let values = try #require(entry["values"] as? [Double]).map(Float.init)
        let hex = try #require(entry["bytes"] as? String)
        let expected = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: i)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
        #expect(GGUFWriter.quantizeQ8_0(values) == expected)
    }

    @Test func writtenFilesReadBack() throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string("test"))
        w.set("test.count", .u32(7))
        w.set("test.signed", .i32(-3))
        w.set("test.big", .u64(1 << 40))
        w.set("test.ratio", .f32(0.5))
        w.set("test.flag", .bool(false))
        w.set("test.words", .strings(["x", "yz"]))
        w.set("test.types", .i32s([1, 3, 4]))
        w.set("test.scores", .f32s([0.25, -1]))
        let values = (0..<(3 * 64)).map { Float($0 % 17) * 0.125 - 1 }
        w.add("a.f32", shape: [3, 64], values: values, type: .f32)
        w.add("a.f16", shape: [3, 64], values: values, type: .f16)
        w.add("a.bf16", shape: [3, 64], values: values, type: .bf16)
        w.add("a.q8", shape: [3, 64], values: values, type: .q8_0)
        w.add("a.vector", shape: [5], values: [1, 2, 3, 4, 5], type: .q8_0)  // not whole blocks: F32
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-gguf-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try w.write(to: url)
        let file = try GGUFFile(url: url)
        #expect(file.metadata["test.count"] == .uint(7) && file.metadata["test.signed"] == .int(-3))
        #expect(file.metadata["test.big"] == .uint(1 << 40) && file.metadata["test.ratio"] == .float(0.5))
        #expect(try file.bool("test.flag") == false && file.strings("test.words") == ["x", "yz"])
        #expect(try file.numbers("test.types") == [1, 3, 4] && file.numbers("test.scores") == [0.25, -1])
        #expect(try file.floats("a.f32") == values)
        #expect(try file.floats("a.f16") == values)  // multiples of 1/8 are exact in f16 and bf16
        #expect(try file.floats("a.bf16") == values)
        #expect(file.tensor("a.q8")?.type == .q8_0 && file.tensor("a.vector")?.type == .f32)
        let q8 = try file.floats("a.q8")
        #expect(zip(q8, values).allSatisfy { abs($0 - $1) <= 1.0 / 127 })
        // Every typed value read back converts to the same typed value.
        #expect(GGUFTypedValue(file.metadata["test.types"]!) == .i32s([1, 3, 4]))
        #expect(GGUFTypedValue(file.metadata["test.count"]!) == .u32(7))
    }
}
