// Writing safetensors files.
//
// Output follows the reference writer (https://github.com/huggingface/safetensors): an 8-byte
// little-endian u64 header length N, then N bytes of compact UTF-8 JSON with `"__metadata__"`
// first and tensors in sorted name order, each `{"dtype","shape","data_offsets":[begin,end]}`
// with contiguous offsets (relative to the data buffer) in that same order; the header is padded
// with spaces so the data buffer starts at a multiple of 8 bytes; data is little-endian and
// row-major. Files are written atomically: to a temporary file in the destination directory,
// fsync'd, then renamed over the destination.

import Foundation
import NudgeTensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Namespace for writing safetensors files and for element conversions.
public enum SafeTensors {
    /// Element types `write` can produce.
    public static let writableDTypes: Set<SafeTensorsDType> = [.f32, .f16, .bf16]

    /// Writes `tensors` (row-major `Float` values; `shape: []` is a scalar) to `url` as `dtype`
    /// (F32, F16 or BF16; narrowing rounds to nearest even), atomically: to a temporary file in
    /// the same directory, fsync, then rename over the destination.
    public static func write(
        _ tensors: [(name: String, shape: [Int], values: [Float])],
        metadata: [String: String]? = nil,
        to url: URL,
        dtype: SafeTensorsDType = .f32
    ) throws(SafeTensorsError) {
        try write(sources: tensors.map { ($0.name, $0.shape, .values($0.values)) }, metadata: metadata, to: url, dtype: dtype)
    }

    /// Writes named tensors the same way, straight from their storage: no copy of the values is
    /// made, so saving a model (or its optimizer state) does not double its memory. Tensors named
    /// in `bytes` hold bytes packed four to a Float32 word (8-bit optimizer codes): each is written
    /// as a one-dimensional U8 tensor of its first `bytes[name]` bytes.
    public static func write(
        tensors: [(name: String, tensor: Tensor)],
        metadata: [String: String]? = nil,
        to url: URL,
        dtype: SafeTensorsDType = .f32,
        bytes: [String: Int] = [:]
    ) throws(SafeTensorsError) {
        try write(sources: tensors.map { name, tensor in
            if let count = bytes[name] { return (name, [count], .bytes(tensor, count: count)) }
            return (name, tensor.shape, .tensor(tensor))
        }, metadata: metadata, to: url, dtype: dtype)
    }

    /// Writes tensors that `make` computes one at a time while the file is written, each released
    /// before the next is made: saving values derived from a model (merged LoRA weights) holds one
    /// of them at a time instead of all. `shape` must be the shape `make` returns.
    public static func write(
        computing tensors: [(name: String, shape: [Int], make: () -> Tensor)],
        metadata: [String: String]? = nil,
        to url: URL,
        dtype: SafeTensorsDType = .f32
    ) throws(SafeTensorsError) {
        try write(sources: tensors.map { ($0.name, $0.shape, .computed(count: $0.shape.reduce(1, *), $0.make)) },
                  metadata: metadata, to: url, dtype: dtype)
    }

    /// Where a tensor's values come from.
    enum Source {
        case values([Float])
        case tensor(Tensor)
        /// Made when written (`count` values).
        case computed(count: Int, () -> Tensor)
        /// The first `count` bytes of a tensor's storage, written as U8.
        case bytes(Tensor, count: Int)

        var count: Int {
            switch self {
            case .values(let v): v.count
            case .tensor(let t): t.count
            case .computed(let count, _): count
            case .bytes(_, let count): count
            }
        }

        /// The element type written: U8 for packed bytes, else the file's `dtype`.
        func dtype(_ dtype: SafeTensorsDType) -> SafeTensorsDType {
            if case .bytes = self { return .u8 }
            return dtype
        }
    }

    static func write(
        sources tensors: [(name: String, shape: [Int], values: Source)],
        metadata: [String: String]?,
        to url: URL,
        dtype: SafeTensorsDType
    ) throws(SafeTensorsError) {
        let file = url.path
        guard url.isFileURL else { throw .io(file: file, reason: "not a file URL") }
        let sorted = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        let header = try makeHeader(sorted, metadata: metadata, dtype: dtype, file: file)

        let directory = url.deletingLastPathComponent().path
        let tempPath = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .io(file: file, reason: "cannot create temporary file \(tempPath): \(safeTensorsErrnoDescription(errno))")
        }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(tempPath) }
        }

        try writeAll(fd, header, file: file)
        for tensor in sorted {
            switch tensor.values {
            case .values(let values):
                try values.withUnsafeBufferPointer { (p) throws(SafeTensorsError) in try writeValues(fd, p, dtype: dtype, file: file) }
            case .tensor(let t):
                try withExtendedLifetime(t) { () throws(SafeTensorsError) in
                    try writeValues(fd, UnsafeBufferPointer(start: t.data, count: t.count), dtype: dtype, file: file)
                }
            case .computed(let count, let make):
                let t = make()
                guard t.count == count else {
                    throw .invalidEntry(file: file, tensor: tensor.name, field: "shape", reason: "shape \(tensor.shape) announced, \(t.shape) made")
                }
                try withExtendedLifetime(t) { () throws(SafeTensorsError) in
                    try writeValues(fd, UnsafeBufferPointer(start: t.data, count: t.count), dtype: dtype, file: file)
                }
            case .bytes(let t, let count):
                try withExtendedLifetime(t) { () throws(SafeTensorsError) in
                    try writeAll(fd, Array(UnsafeRawBufferPointer(start: t.data, count: count)), file: file)
                }
            }
        }
        guard fsync(fd) == 0 else {
            throw .io(file: file, reason: "fsync failed: \(safeTensorsErrnoDescription(errno))")
        }
        closed = true
        guard close(fd) == 0 else {
            throw .io(file: file, reason: "close failed: \(safeTensorsErrnoDescription(errno))")
        }
        guard rename(tempPath, file) == 0 else {
            throw .io(file: file, reason: "cannot rename \(tempPath) into place: \(safeTensorsErrnoDescription(errno))")
        }
        renamed = true
        // Persist the rename itself; failure here is not fatal (the data is already durable).
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    /// Validates the tensors and builds length prefix plus padded header JSON.
    private static func makeHeader(
        _ sorted: [(name: String, shape: [Int], values: Source)],
        metadata: [String: String]?,
        dtype: SafeTensorsDType,
        file: String
    ) throws(SafeTensorsError) -> [UInt8] {
        var json = "{"
        var first = true
        if let metadata {
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            json += "\"__metadata__\":{"
            json += keys.map { SafeTensorsJSON.quote($0) + ":" + SafeTensorsJSON.quote(metadata[$0] ?? "") }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        var previous: String? = nil
        for tensor in sorted {
            let name = tensor.name
            if case .bytes(let t, let count) = tensor.values, count > 4 * t.count {
                throw .invalidEntry(file: file, tensor: name, field: "values", reason: "\(count) bytes announced, the storage holds \(4 * t.count)")
            }
            let dtype = tensor.values.dtype(dtype)
            guard writableDTypes.contains(dtype) || dtype == .u8 else {
                throw .unsupportedConversion(file: file, tensor: name, dtype: dtype)
            }
            guard name != "__metadata__" else {
                throw .invalidEntry(file: file, tensor: name, field: "name", reason: "reserved for metadata")
            }
            guard name != previous else {
                throw .invalidEntry(file: file, tensor: name, field: "name", reason: "duplicate tensor name")
            }
            previous = name
            var count = 1
            for dim in tensor.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dim)
                guard dim >= 0, !overflow else {
                    throw .invalidEntry(file: file, tensor: name, field: "shape", reason: "dimensions must be non-negative and their product must fit in Int")
                }
                count = product
            }
            guard count == tensor.values.count else {
                throw .invalidEntry(file: file, tensor: name, field: "values",
                                    reason: "shape \(tensor.shape) needs \(count) values, got \(tensor.values.count)")
            }
            let (bytes, o1) = count.multipliedReportingOverflow(by: dtype.byteSize)
            let (end, o2) = offset.addingReportingOverflow(bytes)
            guard !o1, !o2 else {
                throw .invalidEntry(file: file, tensor: name, field: "values", reason: "data size overflows Int")
            }
            if !first { json += "," }
            first = false
            json += SafeTensorsJSON.quote(name)
            json += ":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":["
            json += tensor.shape.map(String.init).joined(separator: ",")
            json += "],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var headerBytes = Array(json.utf8)
        let padding = (8 - headerBytes.count % 8) % 8
        headerBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        return out
    }

    /// Encodes `values` as `dtype` little-endian and writes them, in bounded chunks.
    private static func writeValues(_ fd: Int32, _ values: UnsafeBufferPointer<Float>, dtype: SafeTensorsDType, file: String) throws(SafeTensorsError) {
        let chunk = 1 << 16
        var start = 0
        var buffer: [UInt8] = []
        while start < values.count {
            let end = min(values.count, start + chunk)
            buffer.removeAll(keepingCapacity: true)
            switch dtype {
            case .f16:
                for v in values[start ..< end] {
                    withUnsafeBytes(of: f16Bits(from: v).littleEndian) { buffer.append(contentsOf: $0) }
                }
            case .bf16:
                for v in values[start ..< end] {
                    withUnsafeBytes(of: bf16Bits(from: v).littleEndian) { buffer.append(contentsOf: $0) }
                }
            default:
                #if _endian(little)
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(values)[(start * 4) ..< (end * 4)]))
                #else
                for v in values[start ..< end] {
                    withUnsafeBytes(of: v.bitPattern.littleEndian) { buffer.append(contentsOf: $0) }
                }
                #endif
            }
            try writeAll(fd, buffer, file: file)
            start = end
        }
    }

    /// Writes every byte of `bytes`, retrying on partial writes and EINTR.
    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], file: String) throws(SafeTensorsError) {
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count, let base = raw.baseAddress {
                let n = safeTensorsSystemWrite(fd, base + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += n
            }
        }
        if failure != 0 {
            throw .io(file: file, reason: "write failed: \(safeTensorsErrnoDescription(failure))")
        }
    }
}

/// The POSIX `write(2)` call (unshadowed by `SafeTensors.write`).
private func safeTensorsSystemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
