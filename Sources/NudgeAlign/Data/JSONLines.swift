// JSONLines.swift
//
// The low-level half of the dataset loader: a robust JSON Lines reader that
// splits a file into numbered lines (accepting `\n` and `\r\n` endings, a
// missing final newline, blank lines and a leading UTF-8 byte-order mark), and
// `JSONValue`, a small JSON tree whose numbers, booleans and strings stay
// distinct so that the shape checks in `JSONLDataset` can report wrong types
// precisely.

import Foundation

/// A parsed JSON value.
public enum JSONValue: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number that is an exact integer.
    case int(Int)
    /// Any other number.
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object (key order is not kept).
    case object([String: JSONValue])

    /// A short name of the value's JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }
}

extension JSONValue: Decodable {
    /// Decodes any JSON value; booleans are tried before numbers so `true` never becomes `1`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}

/// One non-blank line of a JSON Lines file.
public struct JSONLine: Sendable, Equatable {
    /// The 1-based physical line number in the file.
    public var number: Int
    /// The line's bytes, without the line ending.
    public var bytes: [UInt8]
}

/// Splits JSON Lines data into numbered, non-blank lines.
public enum JSONLinesReader {
    /// The non-blank lines of `data`.
    ///
    /// A leading UTF-8 BOM is dropped, lines end at `\n` with an optional preceding `\r`, the last
    /// line needs no newline, and lines holding only spaces, tabs or `\r` are skipped (they still
    /// count for line numbers).
    public static func lines(of data: Data) -> [JSONLine] {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var result: [JSONLine] = []
        var number = 0
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            var line = Array(rawLine)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            let isBlank = line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            if !isBlank { result.append(JSONLine(number: number, bytes: line)) }
        }
        return result
    }
}

extension JSONLinesReader {
    /// Calls `body` with each non-blank line of the file at `path`, by the rules of `lines(of:)`, until
    /// it returns false. The file is read in chunks of a few megabytes, so a large file is never held
    /// whole (only its longest line must fit).
    ///
    /// - Throws: the file's read error (as Foundation gives it), or what `body` throws.
    public static func forEachLine(ofFileAt path: String, chunkSize: Int = 1 << 22, _ body: (JSONLine) throws -> Bool) throws {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var pending: [UInt8] = []
        var number = 0
        var first = true
        var ended = false
        /// Hands out one line (without its `\n`); false when `body` asked to stop.
        func emit(_ raw: ArraySlice<UInt8>) throws -> Bool {
            number += 1
            var line = Array(raw)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            let isBlank = line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            return isBlank ? true : try body(JSONLine(number: number, bytes: line))
        }
        while !ended {
            let chunk = try handle.read(upToCount: chunkSize) ?? Data()
            ended = chunk.isEmpty
            pending.append(contentsOf: chunk)
            if first && (pending.count >= 3 || ended) {
                if pending.starts(with: [0xEF, 0xBB, 0xBF]) { pending.removeFirst(3) }
                first = false
            }
            if first { continue }
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                guard try emit(pending[start..<newline]) else { return }
                start = newline + 1
            }
            pending.removeFirst(start)
        }
        // The last line needs no newline; a file ending in one has an empty last line, which is blank.
        _ = try emit(pending[...])
    }
}
