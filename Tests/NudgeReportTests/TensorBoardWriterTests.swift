// TensorBoardWriterTests.swift
//
// Tests of the TensorBoard events writer: the CRC32C and varint building blocks
// against known values, and whole files decoded back with a small independent
// TFRecord + protobuf reader (which also checks every record's CRCs).

import Foundation
import Testing

@testable import NudgeReport

private func temporaryDirectory() -> URL {
    FileManager.default.temporaryDirectory
        .appendingPathComponent("nudge-tensorboard-tests-\(UUID().uuidString)", isDirectory: true)
}

// MARK: - A minimal reader for the files under test

/// One decoded `Event`: the fields the writer uses.
private struct DecodedEvent {
    var wallTime: Double?
    var step: Int64 = 0
    var fileVersion: String?
    var values: [(tag: String, value: Float)] = []
    var sessionStatus: UInt64?
}

private struct ReadError: Error, CustomStringConvertible {
    var description: String
}

/// Reads protobuf fields from a byte buffer.
private struct ProtoReader {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index >= bytes.count }

    mutating func byte() throws -> UInt8 {
        guard index < bytes.count else { throw ReadError(description: "unexpected end of message") }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            guard shift < 64 else { throw ReadError(description: "varint too long") }
        }
    }

    mutating func fixed(_ count: Int) throws -> UInt64 {
        var result: UInt64 = 0
        for i in 0..<count { result |= UInt64(try byte()) << (8 * UInt64(i)) }
        return result
    }

    mutating func lengthDelimited() throws -> [UInt8] {
        let n = Int(try varint())
        guard index + n <= bytes.count else { throw ReadError(description: "field overruns message") }
        defer { index += n }
        return Array(bytes[index..<index + n])
    }

    /// Calls `body(field, wireType)` for each field; `body` must consume the value.
    mutating func fields(_ body: (inout ProtoReader, Int, UInt64) throws -> Void) throws {
        while !atEnd {
            let key = try varint()
            try body(&self, Int(key >> 3), key & 7)
        }
    }
}

private func decodeEvent(_ bytes: [UInt8]) throws -> DecodedEvent {
    var event = DecodedEvent()
    var reader = ProtoReader(bytes)
    try reader.fields { r, field, wire in
        switch (field, wire) {
        case (1, 1): event.wallTime = Double(bitPattern: try r.fixed(8))
        case (2, 0): event.step = Int64(bitPattern: try r.varint())
        case (3, 2): event.fileVersion = String(decoding: try r.lengthDelimited(), as: UTF8.self)
        case (5, 2):
            var summary = ProtoReader(try r.lengthDelimited())
            try summary.fields { s, field, wire in
                guard field == 1, wire == 2 else { throw ReadError(description: "unexpected Summary field \(field)") }
                var value = ProtoReader(try s.lengthDelimited())
                var tag = ""
                var number: Float = .nan
                try value.fields { v, field, wire in
                    switch (field, wire) {
                    case (1, 2): tag = String(decoding: try v.lengthDelimited(), as: UTF8.self)
                    case (2, 5): number = Float(bitPattern: UInt32(try v.fixed(4)))
                    default: throw ReadError(description: "unexpected Value field \(field)")
                    }
                }
                event.values.append((tag, number))
            }
        case (7, 2):
            var log = ProtoReader(try r.lengthDelimited())
            try log.fields { l, field, _ in
                guard field == 1 else { throw ReadError(description: "unexpected SessionLog field") }
                event.sessionStatus = try l.varint()
            }
        default: throw ReadError(description: "unexpected Event field \(field) (wire type \(wire))")
        }
    }
    return event
}

/// Splits a TFRecord file into payloads, checking both masked CRCs of every record.
private func readRecords(_ url: URL) throws -> [[UInt8]] {
    let data = [UInt8](try Data(contentsOf: url))
    var records: [[UInt8]] = []
    var i = 0
    func le(_ range: Range<Int>) -> UInt64 {
        range.reversed().reduce(0) { $0 << 8 | UInt64(data[$1]) }
    }
    while i < data.count {
        guard i + 12 <= data.count else { throw ReadError(description: "truncated header at \(i)") }
        let length = Int(le(i..<i + 8))
        guard UInt32(le(i + 8..<i + 12)) == CRC32C.masked(CRC32C.checksum(data[i..<i + 8])) else {
            throw ReadError(description: "bad length CRC at \(i)")
        }
        let start = i + 12
        guard start + length + 4 <= data.count else { throw ReadError(description: "truncated record at \(i)") }
        let payload = Array(data[start..<start + length])
        guard UInt32(le(start + length..<start + length + 4)) == CRC32C.masked(CRC32C.checksum(payload)) else {
            throw ReadError(description: "bad data CRC at \(i)")
        }
        records.append(payload)
        i = start + length + 4
    }
    return records
}

private func readEvents(_ url: URL) throws -> [DecodedEvent] {
    try readRecords(url).map(decodeEvent)
}

// MARK: - Building blocks

@Test func crc32cMatchesKnownValues() {
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    #expect(CRC32C.checksum([UInt8]()) == 0)
    #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)  // RFC 3720 B.4
    #expect(CRC32C.masked(0) == 0xA282_EAD8)
    // ((c >> 15) | (c << 17)) + 0xa282ead8, with wrap-around.
    #expect(CRC32C.masked(0xE306_9283) == 0xC78A_B0E5)  // 0x2507C60D + 0xA282EAD8
    #expect(CRC32C.masked(0xFFFF_FFFF) == 0xA282_EAD7)
}

@Test func protobufEncodingMatchesTheWireFormat() {
    var w = ProtoWriter()
    w.varint(300)
    #expect(w.bytes == [0xAC, 0x02])
    w = ProtoWriter()
    w.varint(0)
    w.varint(127)
    w.varint(128)
    #expect(w.bytes == [0x00, 0x7F, 0x80, 0x01])
    w = ProtoWriter()
    w.int64(2, -1)  // ten bytes of two's complement
    #expect(w.bytes == [0x10] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
    w = ProtoWriter()
    w.string(1, "ab")
    w.float(2, 1)
    w.double(1, 1)
    #expect(w.bytes == [0x0A, 0x02, 0x61, 0x62, 0x15, 0x00, 0x00, 0x80, 0x3F, 0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
}

@Test func tfRecordFramingIsLittleEndianWithMaskedCRCs() {
    let framed = TFRecord.frame([1, 2, 3])
    #expect(framed.count == 3 + 16)
    #expect(Array(framed[0..<8]) == [3, 0, 0, 0, 0, 0, 0, 0])
    let lengthCRC = CRC32C.masked(CRC32C.checksum(framed[0..<8]))
    #expect(Array(framed[8..<12]) == withUnsafeBytes(of: lengthCRC.littleEndian) { Array($0) })
    #expect(Array(framed[12..<15]) == [1, 2, 3])
    let dataCRC = CRC32C.masked(CRC32C.checksum([1, 2, 3] as [UInt8]))
    #expect(Array(framed[15...]) == withUnsafeBytes(of: dataCRC.littleEndian) { Array($0) })
}

// MARK: - Whole files

@Test func writerOutputDecodesBack() throws {
    let dir = temporaryDirectory()
    let writer = try TensorBoardWriter(directory: dir)
    #expect(writer.fileURL.lastPathComponent.hasPrefix("events.out.tfevents."))
    try writer.add(step: 0, scalars: [("loss", 2.5), ("charts/episodic_return", -12)], wallTime: 1_700_000_000.25)
    try writer.add(step: 10, scalars: [("loss", 0.1), ("nan", .nan)], wallTime: 1_700_000_001)
    try writer.add(step: -3, scalars: [])  // nothing to write
    try writer.flush()
    writer.close()
    #expect(throws: TensorBoardWriterError.self) { try writer.add(step: 11, scalars: [("loss", 1)]) }

    let events = try readEvents(writer.fileURL)
    #expect(events.count == 5)
    #expect(events[0].fileVersion == "brain.Event:2")
    #expect(events[0].values.isEmpty)
    #expect((events[0].wallTime ?? 0) > 1_600_000_000)
    #expect(events[1...].map(\.step) == [0, 0, 10, 10])
    #expect(events[1...].map(\.wallTime) == [1_700_000_000.25, 1_700_000_000.25, 1_700_000_001, 1_700_000_001])
    let values = events[1...].flatMap(\.values)
    #expect(values.map(\.tag) == ["loss", "charts/episodic_return", "loss", "nan"])
    #expect(values.prefix(3).map(\.value) == [2.5, -12, Float(0.1)])
    #expect(values[3].value.isNaN)
}

@Test func secondWriterInSameDirectoryGetsItsOwnLaterFile() throws {
    let dir = temporaryDirectory()
    let a = try TensorBoardWriter(directory: dir)
    let b = try TensorBoardWriter(directory: dir)
    #expect(a.fileURL != b.fileURL)
    // TensorBoard reads a directory's events files in name order.
    #expect(a.fileURL.lastPathComponent < b.fileURL.lastPathComponent)
}

@Test func runDirectoryMirrorsScalarsToTensorBoard() throws {
    let url = temporaryDirectory().appendingPathComponent("run", isDirectory: true)
    let run = try RunDirectory.create(at: url, config: [:])
    #expect(run.tensorBoardEventsURL == nil)  // started lazily
    try run.log(step: 1, ["loss": 1.5, "reward": 0.25])
    try run.log(step: 2, ["loss": 0.75])
    try run.sync()
    let eventsURL = try #require(run.tensorBoardEventsURL)
    #expect(eventsURL.deletingLastPathComponent().standardizedFileURL == url.standardizedFileURL)
    let scalars = try readEvents(eventsURL).flatMap { e in e.values.map { (e.step, $0.tag, $0.value) } }
    #expect(scalars.map(\.0) == [1, 1, 2])
    #expect(scalars.map(\.1) == ["loss", "reward", "loss"])
    #expect(scalars.map(\.2) == [1.5, 0.25, 0.75])

    // Rolling back marks the redo with a SessionLog START at the first dropped step.
    try run.truncate(afterStep: 1)
    try run.log(step: 2, ["loss": 0.5])
    let events = try readEvents(eventsURL)
    #expect(events[events.count - 2].sessionStatus == 1)
    #expect(events[events.count - 2].step == 2)
    #expect(events.last?.values.first?.value == 0.5)
    run.close()

    // Resuming starts a second file; overwriting removes both.
    let resumed = try RunDirectory.create(at: url, config: [:], mode: .resume)
    try resumed.log(step: 3, ["loss": 0.25])
    #expect(resumed.tensorBoardEventsURL != eventsURL)
    resumed.close()
    let names = { try FileManager.default.contentsOfDirectory(atPath: url.path).filter { $0.contains("tfevents") } }
    #expect(try names().count == 2)
    let fresh = try RunDirectory.create(at: url, config: [:], mode: .overwrite)
    #expect(try names().isEmpty)
    fresh.close()
}
