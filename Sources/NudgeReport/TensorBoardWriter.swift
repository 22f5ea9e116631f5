// TensorBoardWriter.swift
//
// Scalar summaries in TensorBoard's event-file format, so `tensorboard --logdir runs`
// can show a run next to runs from other frameworks. Nothing beyond Foundation is
// needed: the few protobuf messages involved are encoded by hand (`ProtoWriter`),
// framed as TFRecords (length, masked CRC32C of the length, payload, masked CRC32C
// of the payload), and appended to `events.out.tfevents.<unix-time>.<hostname>`.
//
// The messages written (field numbers from tensorflow/core/util/event.proto and
// tensorflow/core/framework/summary.proto):
//
//     Event      { double wall_time = 1; int64 step = 2; string file_version = 3;
//                  Summary summary = 5; SessionLog session_log = 7; }
//     Summary    { repeated Value value = 1; }
//     Value      { string tag = 1; float simple_value = 2; }
//     SessionLog { SessionStatus status = 1; }   // START = 1

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Errors raised by `TensorBoardWriter`.
public enum TensorBoardWriterError: Error, CustomStringConvertible, Sendable {
    /// The writer was closed; the associated URL is its events file.
    case closed(URL)

    public var description: String {
        switch self {
        case .closed(let url): "TensorBoard events file is closed: \(url.path)"
        }
    }
}

/// Appends scalar summaries to a TensorBoard events file. Thread-safe.
///
///     let writer = try TensorBoardWriter(directory: runURL)
///     try writer.add(step: 100, scalars: [("loss", 0.25), ("charts/episodic_return", 87)])
///
/// Each `add` reaches the file with a single `write()` (no user-space buffer), so a killed
/// process keeps every step it added; `flush()` additionally forces the data to disk.
public final class TensorBoardWriter: @unchecked Sendable {
    /// The events file being written, `<directory>/events.out.tfevents.<unix-time>.<hostname>`
    /// (with a `.1`, `.2`, … suffix if that name is taken).
    public let fileURL: URL

    private let lock = NSLock()
    private var fd: Int32

    /// Creates `directory` if needed and starts a new events file in it with the
    /// `file_version` record TensorBoard expects first.
    public init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let now = Date().timeIntervalSince1970
        (fd, fileURL) = try Self.createEventsFile(in: directory, unixTime: now)
        // If this throws, deinit still runs (every property is set) and closes the file.
        try append(TFRecord.frame(TensorBoardEvent.fileVersion(wallTime: now)))
    }

    deinit { FileOps.close(fd) }

    /// Appends one `Event` per scalar, all with `step` and `wallTime` (seconds since the Unix
    /// epoch; default now). Values are stored as 32-bit floats, as TensorBoard's `simple_value`
    /// requires.
    public func add(step: Int, scalars: [(String, Double)], wallTime: Double? = nil) throws {
        guard !scalars.isEmpty else { return }
        let time = wallTime ?? Date().timeIntervalSince1970
        var bytes: [UInt8] = []
        for (tag, value) in scalars {
            bytes += TFRecord.frame(TensorBoardEvent.scalar(tag: tag, value: value, step: step, wallTime: time))
        }
        try append(bytes)
    }

    /// Appends a `SessionLog(START)` event at `step`. TensorBoard's loader then discards every
    /// event already read with a step ≥ `step` (its "restart" rule), which is how a run that was
    /// rolled back to a checkpoint hides the steps it is about to redo.
    public func addSessionStart(step: Int, wallTime: Double? = nil) throws {
        let time = wallTime ?? Date().timeIntervalSince1970
        try append(TFRecord.frame(TensorBoardEvent.sessionStart(step: step, wallTime: time)))
    }

    /// Forces the events file to stable storage (fsync). Added data already survives a process
    /// crash without this; it guards against power loss.
    public func flush() throws {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { throw TensorBoardWriterError.closed(fileURL) }
        try FileOps.sync(fd, path: fileURL.path)
    }

    /// Closes the events file; later `add` calls throw `TensorBoardWriterError.closed`.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        FileOps.close(fd)
        fd = -1
    }

    /// Writes framed records with one write() call, so readers and crashes see whole records
    /// except at most a torn last one (which TensorBoard's reader skips).
    private func append(_ bytes: [UInt8]) throws {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { throw TensorBoardWriterError.closed(fileURL) }
        try FileOps.writeAll(fd, Data(bytes), path: fileURL.path)
    }

    /// Opens a new events file exclusively. TensorBoard reads a directory's events files in name
    /// order, so on a collision (two writers within one second) the suffix keeps the later file later.
    private static func createEventsFile(in directory: URL, unixTime: Double) throws -> (Int32, URL) {
        let base = "events.out.tfevents.\(Int(unixTime)).\(hostName())"
        var attempt = 0
        while true {
            let url = directory.appendingPathComponent(attempt == 0 ? base : "\(base).\(attempt)")
            do {
                return (try FileOps.open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND), url)
            } catch let error as FileIOError where error.code == EEXIST && attempt < 10_000 {
                attempt += 1
            }
        }
    }

    /// This machine's host name, as TensorFlow puts it in event file names ("localhost" if unknown).
    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let safe = name.filter { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" }
        return safe.isEmpty ? "localhost" : safe
    }
}

/// The serialized `Event` messages the writer produces.
enum TensorBoardEvent {
    /// The first event of every file: `file_version = "brain.Event:2"`, which also tells
    /// TensorBoard to purge only on `SessionLog(START)`, not on out-of-order steps.
    static func fileVersion(wallTime: Double) -> [UInt8] {
        var event = ProtoWriter()
        event.double(1, wallTime)
        event.string(3, "brain.Event:2")
        return event.bytes
    }

    /// An event carrying one scalar summary value.
    static func scalar(tag: String, value: Double, step: Int, wallTime: Double) -> [UInt8] {
        var summaryValue = ProtoWriter()
        summaryValue.string(1, tag)
        summaryValue.float(2, Float(value))
        var summary = ProtoWriter()
        summary.message(1, summaryValue.bytes)
        var event = ProtoWriter()
        event.double(1, wallTime)
        event.int64(2, Int64(step))
        event.message(5, summary.bytes)
        return event.bytes
    }

    /// An event carrying `SessionLog { status: START }`.
    static func sessionStart(step: Int, wallTime: Double) -> [UInt8] {
        var sessionLog = ProtoWriter()
        sessionLog.varintField(1, 1)
        var event = ProtoWriter()
        event.double(1, wallTime)
        event.int64(2, Int64(step))
        event.message(7, sessionLog.bytes)
        return event.bytes
    }
}

/// A minimal protobuf encoder for the wire types the event messages use.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    /// Base-128 varint, least significant group first.
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// A field key: `(field << 3) | wireType` (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
    mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    mutating func varintField(_ field: Int, _ value: UInt64) {
        key(field, 0)
        varint(value)
    }

    /// An int64 field; negative values take ten bytes (two's complement), as protobuf specifies.
    mutating func int64(_ field: Int, _ value: Int64) { varintField(field, UInt64(bitPattern: value)) }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, 1)
        littleEndian(value.bitPattern)
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        littleEndian(value.bitPattern)
    }

    mutating func string(_ field: Int, _ value: String) { message(field, Array(value.utf8)) }

    /// A length-delimited field: bytes, a string or an embedded message.
    mutating func message(_ field: Int, _ payload: [UInt8]) {
        key(field, 2)
        varint(UInt64(payload.count))
        bytes += payload
    }

    private mutating func littleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}

/// TFRecord framing: `uint64 length`, `uint32 masked_crc32c(length)`, `data`,
/// `uint32 masked_crc32c(data)`, all little-endian.
enum TFRecord {
    static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        out += length
        withUnsafeBytes(of: CRC32C.masked(CRC32C.checksum(length)).littleEndian) { out += $0 }
        out += data
        withUnsafeBytes(of: CRC32C.masked(CRC32C.checksum(data)).littleEndian) { out += $0 }
        return out
    }
}

/// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
enum CRC32C {
    /// One entry per byte value: the CRC update for that byte, computed once.
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked CRC: rotated right by 15 bits plus a constant, so that CRCs of data that
    /// itself contains CRCs stay well distributed.
    static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}
