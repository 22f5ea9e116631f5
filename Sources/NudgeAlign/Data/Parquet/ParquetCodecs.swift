// ParquetCodecs.swift
//
// Page decompression. Snappy is ours (Snappy.swift). Gzip and zstd come from the system's zlib
// and libzstd, opened with dlopen on first use: Swift on Linux offers no `import zlib` module,
// and a system-library target would make every build need the development headers, while the
// shared libraries themselves are on any machine that runs Foundation (zlib) or most package
// managers (zstd). Output sizes are the page header's, checked against a ratio limit first, so
// a corrupt header cannot make us allocate more than its compressed bytes could expand to.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parquet's compression codecs (the `CompressionCodec` enum of parquet.thrift).
enum ParquetCodec: Int, Sendable {
    case uncompressed = 0, snappy = 1, gzip = 2, lzo = 3, brotli = 4, lz4 = 5, zstd = 6, lz4Raw = 7

    var name: String {
        switch self {
        case .uncompressed: "uncompressed"
        case .snappy: "snappy"
        case .gzip: "gzip"
        case .lzo: "LZO"
        case .brotli: "brotli"
        case .lz4: "LZ4"
        case .zstd: "zstd"
        case .lz4Raw: "LZ4_RAW"
        }
    }

    /// The most a compressed byte can expand to (with headroom): deflate's limit is about 1032,
    /// Snappy's 64 bytes from a 3-byte copy; zstd's run-length blocks go further.
    var maxRatio: Int {
        switch self {
        case .uncompressed: 1
        case .snappy: 32
        case .gzip: 1100
        default: 1 << 15
        }
    }

    /// `input[range]` decompressed to exactly `size` bytes.
    func decompress(_ input: [UInt8], _ range: Range<Int>, size: Int) throws -> [UInt8] {
        guard size >= 0, size <= range.count * maxRatio + 64 else {
            throw ParquetFailure("page claims \(size) bytes from \(range.count) \(name)-compressed bytes")
        }
        switch self {
        case .uncompressed:
            guard range.count == size else {
                throw ParquetFailure("uncompressed page of \(range.count) bytes declares \(size)")
            }
            return Array(input[range])
        case .snappy: return try Snappy.decompress(input, range, expectedSize: size)
        case .gzip: return try SystemCodecs.shared.gunzip(input, range, size: size)
        case .zstd: return try SystemCodecs.shared.unzstd(input, range, size: size)
        default:
            throw ParquetFailure("\(name)-compressed Parquet is not supported; re-save with snappy or gzip")
        }
    }
}

/// zlib's `z_stream` as laid out on 64-bit platforms (pointers and `uLong` are 8 bytes).
private struct ZStream {
    var nextIn: UnsafeMutablePointer<UInt8>? = nil
    var availIn: UInt32 = 0
    var totalIn: UInt = 0
    var nextOut: UnsafeMutablePointer<UInt8>? = nil
    var availOut: UInt32 = 0
    var totalOut: UInt = 0
    var msg: UnsafePointer<CChar>? = nil
    var state: OpaquePointer? = nil
    var zalloc: OpaquePointer? = nil
    var zfree: OpaquePointer? = nil
    var opaque: OpaquePointer? = nil
    var dataType: Int32 = 0
    var adler: UInt = 0
    var reserved: UInt = 0
}

/// The system's zlib and libzstd, loaded once.
final class SystemCodecs: @unchecked Sendable {
    // Immutable after init; the libraries' functions are thread-safe on separate streams.
    typealias InflateInit2 = @convention(c) (UnsafeMutableRawPointer, Int32, UnsafePointer<CChar>, Int32) -> Int32
    typealias Inflate = @convention(c) (UnsafeMutableRawPointer, Int32) -> Int32
    typealias InflateEnd = @convention(c) (UnsafeMutableRawPointer) -> Int32
    typealias ZstdDecompress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int) -> Int
    typealias ZstdIsError = @convention(c) (Int) -> UInt32

    static let shared = SystemCodecs()

    let inflateInit2: InflateInit2?
    let inflate: Inflate?
    let inflateEnd: InflateEnd?
    let zstdDecompress: ZstdDecompress?
    let zstdIsError: ZstdIsError?

    private init() {
        #if os(macOS) || os(iOS)
        let zlibNames = ["/usr/lib/libz.1.dylib", "libz.dylib"]
        let zstdNames = ["libzstd.1.dylib", "/opt/homebrew/lib/libzstd.1.dylib", "/usr/local/lib/libzstd.1.dylib"]
        #else
        let zlibNames = ["libz.so.1", "libz.so"]
        let zstdNames = ["libzstd.so.1", "libzstd.so"]
        #endif
        func open(_ names: [String]) -> UnsafeMutableRawPointer? {
            for name in names { if let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) { return handle } }
            return nil
        }
        let zlib = open(zlibNames)
        inflateInit2 = zlib.flatMap { dlsym($0, "inflateInit2_") }.map { unsafeBitCast($0, to: InflateInit2.self) }
        inflate = zlib.flatMap { dlsym($0, "inflate") }.map { unsafeBitCast($0, to: Inflate.self) }
        inflateEnd = zlib.flatMap { dlsym($0, "inflateEnd") }.map { unsafeBitCast($0, to: InflateEnd.self) }
        let zstd = open(zstdNames)
        zstdDecompress = zstd.flatMap { dlsym($0, "ZSTD_decompress") }.map { unsafeBitCast($0, to: ZstdDecompress.self) }
        zstdIsError = zstd.flatMap { dlsym($0, "ZSTD_isError") }.map { unsafeBitCast($0, to: ZstdIsError.self) }
    }

    func gunzip(_ input: [UInt8], _ range: Range<Int>, size: Int) throws -> [UInt8] {
        guard let inflateInit2, let inflate, let inflateEnd else {
            throw ParquetFailure("gzip-compressed Parquet needs the system zlib (libz.so.1), which could not be loaded")
        }
        guard range.count <= Int(UInt32.max), size < Int(UInt32.max) else { throw ParquetFailure("gzip page too large") }
        var source = Array(input[range])
        // One spare byte: a stream that fills it is longer than the header says.
        var output = [UInt8](repeating: 0, count: size + 1)
        var stream = ZStream()
        let status: Int32 = source.withUnsafeMutableBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                withUnsafeMutablePointer(to: &stream) { pointer in
                    let raw = UnsafeMutableRawPointer(pointer)
                    // 15 + 32: a 32 KiB window, and accept both zlib and gzip headers.
                    guard inflateInit2(raw, 15 + 32, "1.2.11", Int32(MemoryLayout<ZStream>.size)) == 0 else { return -100 }
                    pointer.pointee.nextIn = src.baseAddress
                    pointer.pointee.availIn = UInt32(src.count)
                    pointer.pointee.nextOut = dst.baseAddress
                    pointer.pointee.availOut = UInt32(dst.count)
                    let result = inflate(raw, 4)  // Z_FINISH
                    _ = inflateEnd(raw)
                    return result
                }
            }
        }
        guard status == 1 else {  // Z_STREAM_END
            throw ParquetFailure(status == -100 ? "zlib could not start" : "gzip data is corrupt or longer than the \(size) bytes the page header declares (zlib status \(status))")
        }
        guard Int(stream.totalOut) == size else {
            throw ParquetFailure("gzip page gave \(stream.totalOut) bytes, expected \(size)")
        }
        output.removeLast()
        return output
    }

    func unzstd(_ input: [UInt8], _ range: Range<Int>, size: Int) throws -> [UInt8] {
        guard let zstdDecompress, let zstdIsError else {
            throw ParquetFailure("zstd-compressed Parquet is not supported here (no libzstd.so.1); re-save with snappy or gzip")
        }
        let source = Array(input[range])
        var output = [UInt8](repeating: 0, count: size + 1)
        let written = source.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in zstdDecompress(dst.baseAddress, dst.count, src.baseAddress, src.count) }
        }
        guard zstdIsError(written) == 0, written == size else {
            throw ParquetFailure("zstd data is corrupt or does not give the \(size) bytes the page header declares")
        }
        output.removeLast()
        return output
    }
}
