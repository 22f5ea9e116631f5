// Writing GGUF files (version 3) that llama.cpp, Ollama and transformers' GGUF loader read:
// typed metadata (llama.cpp checks the stored type of keys such as `llama.block_count`, so every
// value carries its GGUF type), then tensor infos, then the data aligned to `general.alignment`.
// F32, F16 and BF16 are written as they are; Q8_0 quantizes blocks of 32 as ggml's reference
// quantizer does (d = max|x| / 127, q = round(x / d)). The file is written to a temporary name and
// renamed into place, so a failed export never leaves a half-written file under the final name.

import Foundation

/// A metadata value with its GGUF storage type.
public enum GGUFTypedValue: Sendable, Equatable {
    case u32(UInt32), i32(Int32), u64(UInt64), f32(Float), bool(Bool), string(String)
    case strings([String]), i32s([Int32]), f32s([Float])

    /// The typed form of a value read from a file (integers keep their width class: the reader does
    /// not keep the exact width, so unsigned become u32 when they fit, else u64; signed become i32).
    public init?(_ value: GGUFValue) {
        switch value {
        case .uint(let v): self = v <= UInt64(UInt32.max) ? .u32(UInt32(v)) : .u64(v)
        case .int(let v):
            guard let i = Int32(exactly: v) else { return nil }
            self = .i32(i)
        case .float(let v): self = .f32(Float(v))
        case .bool(let b): self = .bool(b)
        case .string(let s): self = .string(s)
        case .array(let items):
            if items.allSatisfy({ if case .string = $0 { true } else { false } }) {
                self = .strings(items.map { if case .string(let s) = $0 { s } else { "" } })
            } else if items.allSatisfy({ $0.intValue.flatMap { Int32(exactly: $0) } != nil }) {
                self = .i32s(items.map { Int32($0.intValue!) })
            } else if items.allSatisfy({ $0.doubleValue != nil }) {
                self = .f32s(items.map { Float($0.doubleValue!) })
            } else {
                return nil
            }
        }
    }
}

/// Builds and writes a GGUF file.
public struct GGUFWriter {
    public private(set) var metadata: [(String, GGUFTypedValue)] = []
    private var tensors: [(name: String, shape: [Int], type: GGMLType, data: [UInt8])] = []
    public let alignment = 32

    public init() {}

    /// Adds (or replaces) a metadata key.
    public mutating func set(_ key: String, _ value: GGUFTypedValue) {
        if let i = metadata.firstIndex(where: { $0.0 == key }) { metadata[i].1 = value } else { metadata.append((key, value)) }
    }

    /// Adds a tensor of `values` (row-major, `shape` outermost first) stored as `type`: F32, F16, BF16
    /// or Q8_0 (whose rows must be whole blocks of 32; other tensors fall back to F32).
    public mutating func add(_ name: String, shape: [Int], values: [Float], type: GGMLType) {
        var type = type
        if type == .q8_0, (shape.last ?? 0) % 32 != 0 || shape.count < 2 { type = .f32 }
        var data: [UInt8] = []
        switch type {
        case .f16:
            data.reserveCapacity(values.count * 2)
            for v in values { let b = SafeTensors.f16Bits(from: v); data.append(UInt8(b & 0xFF)); data.append(UInt8(b >> 8)) }
        case .bf16:
            data.reserveCapacity(values.count * 2)
            for v in values { let b = SafeTensors.bf16Bits(from: v); data.append(UInt8(b & 0xFF)); data.append(UInt8(b >> 8)) }
        case .q8_0:
            data = Self.quantizeQ8_0(values)
        default:
            type = .f32
            data.reserveCapacity(values.count * 4)
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        }
        tensors.append((name, shape, type, data))
    }

    /// ggml's reference Q8_0: per block of 32, d = max|x| / 127 (stored f16), q = round(x / d).
    static func quantizeQ8_0(_ values: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(values.count / 32 * 34)
        for block in stride(from: 0, to: values.count, by: 32) {
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(values[block + j])) }
            let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
            let bits = SafeTensors.f16Bits(from: d)
            out.append(UInt8(bits & 0xFF))
            out.append(UInt8(bits >> 8))
            for j in 0..<32 {
                let q = (values[block + j] * id).rounded(.toNearestOrAwayFromZero)
                out.append(UInt8(bitPattern: Int8(max(-128, min(127, q)))))
            }
        }
        return out
    }

    /// The file's bytes.
    public func bytes() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        out.append(contentsOf: Array("GGUF".utf8))
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, value) in metadata {
            string(key)
            switch value {
            case .u32(let v): u32(4); u32(v)
            case .i32(let v): u32(5); u32(UInt32(bitPattern: v))
            case .u64(let v): u32(10); u64(v)
            case .f32(let v): u32(6); u32(v.bitPattern)
            case .bool(let b): u32(7); out.append(b ? 1 : 0)
            case .string(let s): u32(8); string(s)
            case .strings(let items): u32(9); u32(8); u64(UInt64(items.count)); items.forEach(string)
            case .i32s(let items): u32(9); u32(5); u64(UInt64(items.count)); items.forEach { u32(UInt32(bitPattern: $0)) }
            case .f32s(let items): u32(9); u32(6); u64(UInt64(items.count)); items.forEach { u32($0.bitPattern) }
            }
        }
        var offset = 0
        for t in tensors {
            string(t.name)
            u32(UInt32(t.shape.count))
            for extent in t.shape.reversed() { u64(UInt64(extent)) }
            u32(t.type.rawValue)
            u64(UInt64(offset))
            offset += (t.data.count + alignment - 1) / alignment * alignment
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out.append(contentsOf: t.data)
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }

    /// Writes the file atomically (a temporary name in the same directory, then a rename).
    public func write(to url: URL) throws {
        let data = Data(bytes())
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw GGUFError.io(file: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
