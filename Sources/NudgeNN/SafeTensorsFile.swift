// Read-only, memory-mapped access to one safetensors file.
//
// Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian u64 header length
// N, then N bytes of UTF-8 JSON (possibly space-padded) mapping tensor names to
// `{"dtype", "shape", "data_offsets": [begin, end]}` with offsets relative to the data buffer
// that follows the header, plus an optional `"__metadata__"` string-to-string map; then the data
// buffer, little-endian and row-major. The whole file is mapped with `mmap`; the header is
// validated completely on open, so later reads only touch byte ranges already proven in bounds.
// As with any mapping, truncating the file on disk while it is open is undefined behaviour.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns a read-only memory mapping and unmaps it on deinit.
final class SafeTensorsMapping: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
    }

    deinit {
        munmap(base, count)
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// The current `errno` as text.
func safeTensorsErrnoDescription(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// A safetensors file opened read-only and memory-mapped. Immutable after `init`, so it can be
/// shared across tasks and read concurrently.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Largest header length accepted (the reference implementation's limit).
    public static let maxHeaderLength = 100_000_000

    /// Location of the file.
    public let url: URL
    /// The header's `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// All tensors, sorted by name (UTF-8 byte order).
    public let entries: [SafeTensorsEntry]
    /// Length in bytes of the JSON header, padding included.
    public let headerLength: Int
    /// Length in bytes of the data buffer after the header.
    public let dataSize: Int

    private let mapping: SafeTensorsMapping
    private let indexByName: [String: Int]

    /// Opens, maps and validates the file at `url`.
    public init(url: URL) throws(SafeTensorsError) {
        let file = url.path
        guard url.isFileURL else { throw .io(file: file, reason: "not a file URL") }
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .io(file: file, reason: "cannot open: \(safeTensorsErrnoDescription(errno))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw .io(file: file, reason: "cannot stat: \(safeTensorsErrnoDescription(errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .io(file: file, reason: "not a regular file")
        }
        guard let size = Int(exactly: info.st_size), size >= 8 else {
            throw .truncated(file: file, expected: 8, actual: Int(info.st_size))
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1)
        else {
            throw .io(file: file, reason: "cannot map: \(safeTensorsErrnoDescription(errno))")
        }
        let mapping = SafeTensorsMapping(base: base, count: size)
        let bytes = mapping.bytes

        let declared = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(SafeTensorsFile.maxHeaderLength) else {
            throw .headerTooLarge(file: file, headerLength: declared, limit: SafeTensorsFile.maxHeaderLength)
        }
        let headerLength = Int(declared)
        guard headerLength <= size - 8 else {
            throw .headerPastEnd(file: file, headerLength: declared, fileSize: size)
        }
        let dataSize = size - 8 - headerLength
        let header = try SafeTensorsHeader.parse(Array(bytes[8 ..< 8 + headerLength]), dataSize: dataSize, file: file)

        self.url = url
        self.mapping = mapping
        self.headerLength = headerLength
        self.dataSize = dataSize
        self.metadata = header.metadata
        self.entries = header.entries
        var index: [String: Int] = [:]
        index.reserveCapacity(header.entries.count)
        for (i, entry) in header.entries.enumerated() { index[entry.name] = i }
        self.indexByName = index
    }

    /// Tensor names, sorted.
    public var names: [String] { entries.map(\.name) }

    /// The entry for `name`, or nil.
    public func entry(_ name: String) -> SafeTensorsEntry? {
        indexByName[name].map { entries[$0] }
    }

    private func requireEntry(_ name: String) throws(SafeTensorsError) -> SafeTensorsEntry {
        guard let entry = entry(name) else { throw .missingTensor(file: url.path, tensor: name) }
        return entry
    }

    /// The validated bytes of `entry` inside the mapping.
    private func bytes(of entry: SafeTensorsEntry) -> UnsafeRawBufferPointer {
        let start = 8 + headerLength + entry.byteRange.lowerBound
        return UnsafeRawBufferPointer(rebasing: mapping.bytes[start ..< start + entry.byteRange.count])
    }

    /// Hands the mapped pages holding tensor `name` back to the kernel (read from the file again if
    /// touched later): a loader that converts one tensor at a time then never holds the mapped file
    /// in its resident memory beside what it built. Whole pages, so a neighbour's edge page may go too.
    public func releasePages(of name: String) {
        guard let entry = entry(name), !entry.byteRange.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (8 + headerLength + entry.byteRange.lowerBound) / page * page
        let end = min((8 + headerLength + entry.byteRange.upperBound + page - 1) / page * page, mapping.count)
        guard end > start else { return }
        // MADV_DONTNEED on a private, never-written file mapping only drops clean pages: no data changes.
        _ = madvise(mapping.base + start, end - start, MADV_DONTNEED)
    }

    /// Reads tensor `name` converted to `Float` (from any dtype; integers and F64 are rounded).
    public func floats(_ name: String) throws(SafeTensorsError) -> [Float] {
        let entry = try requireEntry(name)
        let source = bytes(of: entry)
        let count = entry.elementCount
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            SafeTensorsDecode.floats(entry.dtype, from: source, into: UnsafeMutableBufferPointer(rebasing: buffer[0 ..< count]))
            initialized = count
        }
    }

    /// Converts tensor `name` to `Float` directly into `destination`, whose count must equal the
    /// tensor's element count.
    public func read(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws(SafeTensorsError) {
        let entry = try requireEntry(name)
        guard destination.count == entry.elementCount else {
            throw .countMismatch(file: url.path, tensor: name, expected: entry.elementCount, actual: destination.count)
        }
        SafeTensorsDecode.floats(entry.dtype, from: bytes(of: entry), into: destination)
    }

    /// Reads an integer or boolean tensor as `Int64`. Floating-point tensors, and U64 values
    /// above `Int64.max`, throw `unsupportedConversion`.
    public func int64s(_ name: String) throws(SafeTensorsError) -> [Int64] {
        let entry = try requireEntry(name)
        let source = bytes(of: entry)
        let count = entry.elementCount
        var ok = true
        let values = [Int64](unsafeUninitializedCapacity: count) { buffer, initialized in
            let out = UnsafeMutableBufferPointer(rebasing: buffer[0 ..< count])
            ok = SafeTensorsDecode.int64s(entry.dtype, from: source, into: out)
            if !ok { out.initialize(repeating: 0) }
            initialized = count
        }
        guard ok else { throw .unsupportedConversion(file: url.path, tensor: name, dtype: entry.dtype) }
        return values
    }

    /// A copy of tensor `name`'s stored bytes (little-endian, row-major).
    public func rawData(_ name: String) throws(SafeTensorsError) -> Data {
        let entry = try requireEntry(name)
        return Data(bytes(of: entry))
    }

    /// Calls `body` with tensor `name`'s stored bytes, valid only during the call.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let entry = try requireEntry(name)
        return try withExtendedLifetime(mapping) { try body(bytes(of: entry)) }
    }
}
