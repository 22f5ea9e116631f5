// Read-only, memory-mapped access to a GGUF file (llama.cpp's model format, versions 2 and 3).
//
// Layout (ggml's docs/gguf.md), little-endian: the magic "GGUF", a u32 version, a u64 tensor count,
// a u64 metadata count; the metadata key/value pairs (a key is a u64 length and UTF-8 bytes, a
// value a u32 type and its payload: integers of 8-64 bits, f32/f64, bool, string, or an array of
// one element type with a u64 count); the tensor infos (name, u32 dimension count, u64 extents
// innermost first, u32 ggml type, u64 offset into the data section); padding to
// `general.alignment` (default 32); the data section. Every length and offset is checked against
// the file before it is used, so a truncated or corrupt file is a `GGUFError`, never a trap; later
// reads only touch byte ranges proven in bounds at open.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors reading a GGUF file; each names the file.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case io(file: String, reason: String)
    case invalid(file: String, reason: String)
    /// A tensor stored in a type Nudge cannot dequantize.
    case unsupportedType(file: String, tensor: String, type: String)
    case missingTensor(file: String, tensor: String)
    case missingKey(file: String, key: String)
    case wrongType(file: String, key: String, expected: String)

    public var description: String {
        switch self {
        case .io(let f, let r): "\(f): \(r)"
        case .invalid(let f, let r): "\(f): invalid GGUF file: \(r)"
        case .unsupportedType(let f, let t, let type):
            "\(f): tensor '\(t)' is stored as \(type), which Nudge cannot read (supported: \(GGMLType.supportedNames))"
        case .missingTensor(let f, let t): "\(f): no tensor named '\(t)'"
        case .missingKey(let f, let k): "\(f): missing metadata key '\(k)'"
        case .wrongType(let f, let k, let e): "\(f): metadata key '\(k)' should be \(e)"
        }
    }
}

/// A GGUF metadata value.
public indirect enum GGUFValue: Sendable, Equatable {
    case int(Int64)
    case uint(UInt64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    /// The value as an `Int` when it is an integer that fits.
    public var intValue: Int? {
        switch self {
        case .int(let v): return Int(exactly: v)
        case .uint(let v): return Int(exactly: v)
        default: return nil
        }
    }

    /// The value as a `Double` when it is a number.
    public var doubleValue: Double? {
        switch self {
        case .float(let v): return v
        case .int(let v): return Double(v)
        case .uint(let v): return Double(v)
        default: return nil
        }
    }
}

/// ggml's tensor storage types, by their numbers in the file.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case f64 = 28, bf16 = 30

    /// Elements per block and bytes per block.
    public var block: (elements: Int, bytes: Int) {
        switch self {
        case .f32: (1, 4)
        case .f16, .bf16: (1, 2)
        case .f64: (1, 8)
        case .q4_0: (32, 18)
        case .q4_1: (32, 20)
        case .q5_0: (32, 22)
        case .q5_1: (32, 24)
        case .q8_0: (32, 34)
        case .q8_1: (32, 36)
        case .q2_K: (256, 84)
        case .q3_K: (256, 110)
        case .q4_K: (256, 144)
        case .q5_K: (256, 176)
        case .q6_K: (256, 210)
        case .q8_K: (256, 292)
        }
    }

    /// The name llama.cpp prints (`Q4_K`, `F16`, …).
    public var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .f64: "F64"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        }
    }

    static var supportedNames: String { allCases.map(\.name).joined(separator: ", ") }

    /// Names of the ggml types Nudge does not read, for messages.
    static func unknownName(_ raw: UInt32) -> String {
        let names: [UInt32: String] = [
            16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
            23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0",
            39: "MXFP4",
        ]
        return names[raw] ?? "ggml type \(raw)"
    }
}

/// One tensor's description in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Extents outermost first, as PyTorch writes them (the file stores them innermost first).
    public let shape: [Int]
    public let type: GGMLType
    /// Byte range inside the data section.
    public let byteRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A GGUF file opened read-only and memory-mapped. Immutable after `init`.
public final class GGUFFile: @unchecked Sendable {
    /// Location of the file.
    public let url: URL
    /// The format version (2 or 3).
    public let version: Int
    /// Metadata in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// Offset of the data section in the file.
    public let dataOffset: Int

    private let mapping: SafeTensorsMapping
    private let indexByName: [String: Int]

    /// Limits that keep a corrupt header from asking for absurd allocations.
    static let maxTensors = 1 << 20, maxMetadata = 1 << 20, maxDimensions = 4

    /// Opens, maps and validates the file at `url`.
    public init(url: URL) throws(GGUFError) {
        let file = url.path
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(file: file, reason: "cannot open: \(safeTensorsErrnoDescription(errno))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(file: file, reason: "cannot stat: \(safeTensorsErrnoDescription(errno))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .io(file: file, reason: "not a regular file") }
        guard let size = Int(exactly: info.st_size), size >= 24 else {
            throw .invalid(file: file, reason: "\(info.st_size) bytes is shorter than the 24-byte header")
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw .io(file: file, reason: "cannot map: \(safeTensorsErrnoDescription(errno))")
        }
        let mapping = SafeTensorsMapping(base: base, count: size)
        var reader = GGUFReader(bytes: mapping.bytes, file: file)

        guard try reader.bytes(4) == Array("GGUF".utf8) else {
            throw .invalid(file: file, reason: "it does not start with the magic 'GGUF' (is it a GGUF file?)")
        }
        let version = Int(try reader.u32())
        guard version == 2 || version == 3 else {
            throw .invalid(file: file, reason: "version \(version) is not supported (2 and 3 are)")
        }
        let tensorCount = try reader.u64(), kvCount = try reader.u64()
        guard tensorCount <= UInt64(Self.maxTensors) else { throw .invalid(file: file, reason: "tensor count \(tensorCount) is implausible") }
        guard kvCount <= UInt64(Self.maxMetadata) else { throw .invalid(file: file, reason: "metadata count \(kvCount) is implausible") }

        var keys: [String] = [], metadata: [String: GGUFValue] = [:]
        for _ in 0..<Int(kvCount) {
            let key = try reader.string()
            let type = try reader.u32()
            let value = try reader.value(type: type, key: key, depth: 0)
            if metadata.updateValue(value, forKey: key) != nil { throw .invalid(file: file, reason: "metadata key '\(key)' appears twice") }
            keys.append(key)
        }

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.intValue, v > 0, v <= 1 << 20, v & (v - 1) == 0 else {
                throw .invalid(file: file, reason: "general.alignment must be a power of two, got \(a)")
            }
            alignment = v
        }

        struct RawInfo { let name: String; let shape: [Int]; let type: GGMLType; let offset: Int; let byteCount: Int }
        var raw: [RawInfo] = []
        var names: [String: Int] = [:]
        for i in 0..<Int(tensorCount) {
            let name = try reader.string()
            let dims = Int(try reader.u32())
            guard (1...Self.maxDimensions).contains(dims) else {
                throw .invalid(file: file, reason: "tensor '\(name)' has \(dims) dimensions (1 to \(Self.maxDimensions) allowed)")
            }
            var extents: [Int] = []
            var count = 1
            for _ in 0..<dims {
                let e = try reader.u64()
                guard let extent = Int(exactly: e), extent >= 0 else { throw .invalid(file: file, reason: "tensor '\(name)' has extent \(e)") }
                let (product, overflow) = count.multipliedReportingOverflow(by: extent)
                guard !overflow, product <= size * 8 else {
                    throw .invalid(file: file, reason: "tensor '\(name)' has more elements than the file can hold")
                }
                count = product
                extents.append(extent)
            }
            let typeRaw = try reader.u32()
            guard let type = GGMLType(rawValue: typeRaw) else {
                throw .unsupportedType(file: file, tensor: name, type: GGMLType.unknownName(typeRaw))
            }
            let offset = try reader.u64()
            let (elements, bytesPerBlock) = type.block
            guard extents[0] % elements == 0 else {
                throw .invalid(file: file, reason: "tensor '\(name)': its rows of \(extents[0]) are not whole \(type.name) blocks of \(elements)")
            }
            guard let start = Int(exactly: offset), start % alignment == 0 else {
                throw .invalid(file: file, reason: "tensor '\(name)': offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            if names.updateValue(i, forKey: name) != nil { throw .invalid(file: file, reason: "tensor '\(name)' appears twice") }
            raw.append(RawInfo(name: name, shape: extents.reversed(), type: type, offset: start, byteCount: count / elements * bytesPerBlock))
        }
        // A vocabulary-only file (no tensors) may end before the padding of an empty data section.
        let dataOffset = raw.isEmpty ? min(size, (reader.position + alignment - 1) / alignment * alignment)
            : (reader.position + alignment - 1) / alignment * alignment
        guard dataOffset <= size else { throw .invalid(file: file, reason: "the data section starts past the end of the file") }
        let dataSize = size - dataOffset
        var tensors: [GGUFTensorInfo] = []
        for r in raw {
            guard r.offset <= dataSize, r.byteCount <= dataSize - r.offset else {
                throw .invalid(file: file, reason: "tensor '\(r.name)' (\(r.byteCount) bytes at \(r.offset)) runs past the end of the file (truncated?)")
            }
            tensors.append(GGUFTensorInfo(name: r.name, shape: r.shape, type: r.type, byteRange: r.offset..<(r.offset + r.byteCount)))
        }
        self.url = url
        self.version = version
        self.metadataKeys = keys
        self.metadata = metadata
        self.tensors = tensors
        self.dataOffset = dataOffset
        self.mapping = mapping
        self.indexByName = names
    }

    /// The tensor named `name`, or nil.
    public func tensor(_ name: String) -> GGUFTensorInfo? { indexByName[name].map { tensors[$0] } }

    /// Tensor `name` dequantized to `Float`, in row-major order of `info.shape`.
    public func floats(_ name: String) throws(GGUFError) -> [Float] {
        guard let info = tensor(name) else { throw .missingTensor(file: url.path, tensor: name) }
        return floats(info)
    }

    /// Calls `body` with `info`'s bytes as stored (its blocks, for a quantized type); the pointer is
    /// valid only inside `body`.
    public func withStoredBytes<T>(_ info: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let start = dataOffset + info.byteRange.lowerBound
        return try body(UnsafeRawBufferPointer(rebasing: mapping.bytes[start..<(start + info.byteRange.count)]))
    }

    /// `info`'s values dequantized to `Float`.
    public func floats(_ info: GGUFTensorInfo) -> [Float] {
        let count = info.elementCount
        let start = dataOffset + info.byteRange.lowerBound
        let source = UnsafeRawBufferPointer(rebasing: mapping.bytes[start..<(start + info.byteRange.count)])
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            GGUFDequantize.floats(info.type, from: source, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
            initialized = count
        }
    }

    // MARK: Typed metadata

    /// The value of `key` as `convert` reads it; nil when absent, a `wrongType` error naming
    /// `expected` when it does not convert.
    func typed<T>(_ key: String, expected: String, _ convert: (GGUFValue) -> T?) throws(GGUFError) -> T? {
        guard let v = metadata[key] else { return nil }
        guard let t = convert(v) else { throw .wrongType(file: url.path, key: key, expected: expected) }
        return t
    }

    /// An array of `key` whose every item `convert` reads; nil when absent, a `wrongType` error
    /// naming `expected` when it is not an array or an item does not convert.
    func typedArray<T>(_ key: String, expected: String, _ convert: (GGUFValue) -> T?) throws(GGUFError) -> [T]? {
        try typed(key, expected: expected) { v -> [T]? in
            guard case .array(let items) = v else { return nil }
            var out: [T] = []
            out.reserveCapacity(items.count)
            for item in items {
                guard let t = convert(item) else { return nil }
                out.append(t)
            }
            return out
        }
    }

    /// A string value.
    public func string(_ key: String) throws(GGUFError) -> String? {
        try typed(key, expected: "a string") { if case .string(let s) = $0 { s } else { nil } }
    }

    /// An integer value.
    public func int(_ key: String) throws(GGUFError) -> Int? { try typed(key, expected: "an integer") { $0.intValue } }

    /// A required integer value.
    public func requiredInt(_ key: String) throws(GGUFError) -> Int {
        guard let v = try int(key) else { throw .missingKey(file: url.path, key: key) }
        return v
    }

    /// A number.
    public func double(_ key: String) throws(GGUFError) -> Double? { try typed(key, expected: "a number") { $0.doubleValue } }

    /// A boolean.
    public func bool(_ key: String) throws(GGUFError) -> Bool? {
        try typed(key, expected: "a boolean") { if case .bool(let b) = $0 { b } else { nil } }
    }

    /// An array of strings.
    public func strings(_ key: String) throws(GGUFError) -> [String]? {
        try typedArray(key, expected: "an array of strings") { if case .string(let s) = $0 { s } else { nil } }
    }

    /// An array of numbers (integers or floats) as `Double`.
    public func numbers(_ key: String) throws(GGUFError) -> [Double]? {
        try typedArray(key, expected: "an array of numbers") { $0.doubleValue }
    }
}

/// A bounds-checked little-endian cursor over the mapped header.
struct GGUFReader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    var position = 0

    init(bytes: UnsafeRawBufferPointer, file: String) {
        self.bytes = bytes
        self.file = file
    }

    private mutating func take(_ n: Int) throws(GGUFError) -> Int {
        guard n >= 0, n <= bytes.count - position else {
            throw .invalid(file: file, reason: "the header ends early at byte \(position) (truncated file?)")
        }
        defer { position += n }
        return position
    }

    mutating func bytes(_ n: Int) throws(GGUFError) -> [UInt8] {
        let at = try take(n)
        return Array(bytes[at..<(at + n)])
    }

    mutating func u8() throws(GGUFError) -> UInt8 { bytes[try take(1)] }
    mutating func u16() throws(GGUFError) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2), as: UInt16.self)) }
    mutating func u32() throws(GGUFError) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4), as: UInt32.self)) }
    mutating func u64() throws(GGUFError) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8), as: UInt64.self)) }

    mutating func string() throws(GGUFError) -> String {
        let length = try u64()
        guard length <= UInt64(bytes.count - position) else {
            throw .invalid(file: file, reason: "a string of \(length) bytes at byte \(position) runs past the end of the file")
        }
        let at = try take(Int(length))
        let slice = UnsafeRawBufferPointer(rebasing: bytes[at..<(at + Int(length))])
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw .invalid(file: file, reason: "the string at byte \(at) is not UTF-8")
        }
        return s
    }

    /// One value of `type`; arrays nest at most a few levels.
    mutating func value(type: UInt32, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case 0: return .uint(UInt64(try u8()))
        case 1: return .int(Int64(Int8(bitPattern: try u8())))
        case 2: return .uint(UInt64(try u16()))
        case 3: return .int(Int64(Int16(bitPattern: try u16())))
        case 4: return .uint(UInt64(try u32()))
        case 5: return .int(Int64(Int32(bitPattern: try u32())))
        case 6: return .float(Double(Float(bitPattern: try u32())))
        case 7:
            let b = try u8()
            guard b <= 1 else { throw .invalid(file: file, reason: "metadata key '\(key)': boolean byte \(b)") }
            return .bool(b == 1)
        case 8: return .string(try string())
        case 9:
            guard depth < 4 else { throw .invalid(file: file, reason: "metadata key '\(key)': arrays nested too deeply") }
            let elementType = try u32()
            let count = try u64()
            // Every element takes at least one byte, so a count beyond the remaining bytes is corrupt.
            guard count <= UInt64(bytes.count - position) else {
                throw .invalid(file: file, reason: "metadata key '\(key)': an array of \(count) elements runs past the end of the file")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        case 10: return .uint(try u64())
        case 11: return .int(Int64(bitPattern: try u64()))
        case 12: return .float(Double(bitPattern: try u64()))
        default: throw .invalid(file: file, reason: "metadata key '\(key)' has unknown value type \(type)")
        }
    }
}
