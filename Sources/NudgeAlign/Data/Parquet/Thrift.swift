// Thrift.swift
//
// A decoder for Thrift's compact protocol, the encoding of a Parquet file's footer (FileMetaData)
// and of every page header. Rather than generated code for each struct, it reads any struct into
// a small tree keyed by field id; ParquetFile picks the fields it needs and ignores the rest, so
// fields that newer writers add are skipped for free. Every length is checked against the bytes
// that remain, and nesting is limited, so corrupt metadata is an error and never a trap or a
// huge allocation.

/// A failure to decode Parquet bytes; ParquetFile adds the file, row group, column and page.
struct ParquetFailure: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}

/// A decoded Thrift value.
indirect enum ThriftValue: Sendable {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case binary([UInt8])
    case list([ThriftValue])
    case structure(ThriftStruct)
}

/// A decoded Thrift struct: its fields by id.
struct ThriftStruct: Sendable {
    var fields: [Int16: ThriftValue] = [:]
    /// The struct's name, for errors about its fields.
    var name: String = "struct"

    func int(_ id: Int16) -> Int64? {
        if case .int(let value)? = fields[id] { return value }
        return nil
    }

    func bool(_ id: Int16) -> Bool? {
        if case .bool(let value)? = fields[id] { return value }
        return nil
    }

    /// A required integer field that must fit in an `Int` and lie in `range`.
    func int(_ id: Int16, _ field: String, in range: ClosedRange<Int64> = Int64(Int32.min)...Int64(Int32.max)) throws -> Int {
        guard let value = int(id) else { throw ParquetFailure("\(name) lacks its \(field)") }
        guard range.contains(value) else { throw ParquetFailure("\(name).\(field) is \(value), outside \(range)") }
        return Int(value)
    }

    func string(_ id: Int16) -> String? {
        if case .binary(let bytes)? = fields[id] { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    func list(_ id: Int16) -> [ThriftValue]? {
        if case .list(let items)? = fields[id] { return items }
        return nil
    }

    func structure(_ id: Int16, named name: String) -> ThriftStruct? {
        if case .structure(var value)? = fields[id] {
            value.name = name
            return value
        }
        return nil
    }
}

/// Reads compact-protocol values from a byte range.
struct CompactReader: VarintReading {
    let bytes: [UInt8]
    private(set) var position: Int
    let end: Int
    /// Structs and lists nest at most this deep; Parquet's metadata needs fewer than ten levels.
    static let maxDepth = 32

    init(_ bytes: [UInt8], from start: Int, to end: Int) {
        self.bytes = bytes
        self.position = start
        self.end = end
    }

    mutating func byte() throws -> UInt8 {
        guard position < end else { throw ParquetFailure("Thrift metadata ends early (truncated?)") }
        defer { position += 1 }
        return bytes[position]
    }


    /// A length that the remaining bytes can hold (each item takes at least `minimumSize` bytes).
    mutating func length(minimumSize: Int) throws -> Int {
        let raw = try varint()
        let remaining = end - position
        guard raw <= UInt64(remaining / max(minimumSize, 1)) else {
            throw ParquetFailure("Thrift length \(raw) exceeds the \(remaining) bytes left")
        }
        return Int(raw)
    }

    /// The struct that starts here.
    mutating func readStruct(depth: Int = 0) throws -> ThriftStruct {
        guard depth < Self.maxDepth else { throw ParquetFailure("Thrift metadata nests deeper than \(Self.maxDepth) levels") }
        var result = ThriftStruct()
        var lastID: Int16 = 0
        while true {
            let header = try byte()
            let type = header & 0x0F
            if type == 0 { return result }
            let delta = Int16(header >> 4)
            let id: Int16
            if delta == 0 {
                let raw = try zigzag()
                guard let exact = Int16(exactly: raw) else { throw ParquetFailure("Thrift field id \(raw) out of range") }
                id = exact
            } else {
                id = lastID &+ delta
            }
            lastID = id
            result.fields[id] = try value(type: type, depth: depth)
        }
    }

    mutating func value(type: UInt8, depth: Int) throws -> ThriftValue {
        // Lists of lists nest without a struct between them, so the limit is checked here too.
        guard depth < Self.maxDepth else { throw ParquetFailure("Thrift metadata nests deeper than \(Self.maxDepth) levels") }
        switch type {
        case 1: return .bool(true)
        case 2: return .bool(false)
        case 3: return .int(Int64(Int8(bitPattern: try byte())))
        case 4, 5, 6: return .int(try zigzag())
        case 7:
            guard end - position >= 8 else { throw ParquetFailure("Thrift double truncated") }
            var raw: UInt64 = 0
            for i in 0..<8 { raw |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += 8
            return .double(Double(bitPattern: raw))
        case 8:
            let count = try length(minimumSize: 1)
            defer { position += count }
            return .binary(Array(bytes[position..<position + count]))
        case 9, 10:
            let header = try byte()
            let elementType = header & 0x0F
            var count = Int(header >> 4)
            if count == 15 { count = try length(minimumSize: 1) }
            // Every element takes at least one byte except the empty struct's... which also takes one (its stop).
            guard count <= end - position else { throw ParquetFailure("Thrift list of \(count) exceeds the bytes left") }
            var items: [ThriftValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count {
                if elementType == 1 || elementType == 2 {
                    // Booleans in a list take a byte each: 1 is true.
                    items.append(.bool(try byte() == 1))
                } else {
                    items.append(try value(type: elementType, depth: depth + 1))
                }
            }
            return .list(items)
        case 11:
            // Maps (key_value_metadata and the like) are not needed: read past them.
            let count = try length(minimumSize: 2)
            if count > 0 {
                let types = try byte()
                for _ in 0..<count {
                    _ = try value(type: types >> 4, depth: depth + 1)
                    _ = try value(type: types & 0x0F, depth: depth + 1)
                }
            }
            return .list([])
        case 12: return .structure(try readStruct(depth: depth + 1))
        default: throw ParquetFailure("Thrift metadata has unknown type \(type)")
        }
    }
}
