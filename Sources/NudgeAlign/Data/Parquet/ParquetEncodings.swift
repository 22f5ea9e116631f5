// ParquetEncodings.swift
//
// The value and level encodings of Parquet pages: PLAIN, the RLE/bit-packed hybrid (levels,
// booleans, dictionary indices), dictionary pages, DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY
// and DELTA_BYTE_ARRAY, and BYTE_STREAM_SPLIT. Decoders read from a checked cursor and produce
// at most the count a page header declares, which the file-wide `DecodeBudget` bounds, so a
// run-length of billions in a corrupt page is an error, not an allocation.

/// Caps what one file may decode to (values and bytes), so that run-length and delta encodings
/// cannot turn a few corrupt bytes into gigabytes.
final class DecodeBudget {
    private(set) var values: Int
    private(set) var bytes: Int

    /// Generous for real data (a Hub dataset is mostly text, far below 64 values per file byte).
    init(fileSize: Int) {
        values = max(1 << 20, fileSize.multipliedReportingOverflow(by: 64).partialValue)
        bytes = max(1 << 26, fileSize.multipliedReportingOverflow(by: 64).partialValue)
    }

    func take(values count: Int) throws {
        guard count >= 0, count <= values else {
            throw ParquetFailure("decodes to more values than a file of this size can hold (corrupt counts?)")
        }
        values -= count
    }

    func take(bytes count: Int) throws {
        guard count >= 0, count <= bytes else {
            throw ParquetFailure("decodes to more bytes than a file of this size can hold (corrupt lengths?)")
        }
        bytes -= count
    }
}

/// A bounds-checked cursor over `bytes[position..<end]`.
struct ByteCursor {
    let bytes: [UInt8]
    var position: Int
    let end: Int

    init(_ bytes: [UInt8], _ range: Range<Int>) {
        self.bytes = bytes
        position = range.lowerBound
        end = range.upperBound
    }

    var remaining: Int { end - position }

    mutating func byte() throws -> UInt8 {
        guard position < end else { throw ParquetFailure("page data ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func take(_ count: Int) throws -> Range<Int> {
        guard count >= 0, count <= remaining else {
            throw ParquetFailure("needs \(count) bytes but \(remaining) remain in the page")
        }
        defer { position += count }
        return position..<position + count
    }

    mutating func littleEndian(_ size: Int) throws -> UInt64 {
        let range = try take(size)
        var value: UInt64 = 0
        for (i, index) in range.enumerated() { value |= UInt64(bytes[index]) << (8 * UInt64(i)) }
        return value
    }

}

/// A byte source with ULEB128 varints and zigzag integers on top: Thrift's compact protocol and
/// Parquet's RLE and delta encodings write their integers the same way.
protocol VarintReading {
    mutating func byte() throws -> UInt8
}

extension VarintReading {
    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 64 else { throw ParquetFailure("varint longer than 10 bytes") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func zigzag() throws -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }
}

extension ByteCursor: VarintReading {}

/// Reads little-endian bit-packed integers (least significant bit first), as Parquet packs them.
struct BitReader {
    let bytes: [UInt8]
    var position: Int
    let end: Int
    private var buffer: UInt64 = 0
    private var bits = 0

    init(_ bytes: [UInt8], _ range: Range<Int>) {
        self.bytes = bytes
        position = range.lowerBound
        end = range.upperBound
    }

    /// The next `width`-bit value (width ≤ 64), or nil at the end of the data.
    mutating func read(_ width: Int) -> UInt64? {
        var result: UInt64 = 0
        var got = 0
        while got < width {
            if bits == 0 {
                guard position < end else { return nil }
                buffer = UInt64(bytes[position])
                position += 1
                bits = 8
            }
            let take = min(width - got, bits)
            result |= (buffer & ((1 << UInt64(take)) - 1)) << UInt64(got)
            buffer >>= UInt64(take)
            bits -= take
            got += take
        }
        return result
    }
}

enum ParquetEncoding {
    static let plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, deltaBinaryPacked = 5,
        deltaLengthByteArray = 6, deltaByteArray = 7, rleDictionary = 8, byteStreamSplit = 9

    /// `count` values of the RLE/bit-packed hybrid with `bitWidth`-bit values from the cursor.
    static func hybrid(_ cursor: inout ByteCursor, bitWidth: Int, count: Int, into output: inout [UInt32]) throws {
        guard (0...32).contains(bitWidth) else { throw ParquetFailure("RLE bit width \(bitWidth) is over 32") }
        let target = output.count + count
        let byteWidth = (bitWidth + 7) / 8
        while output.count < target {
            let header = try cursor.varint()
            let left = target - output.count
            if header & 1 == 0 {
                let run = header >> 1
                let value = UInt32(truncatingIfNeeded: try cursor.littleEndian(byteWidth))
                guard bitWidth == 32 || value >> UInt32(bitWidth) == 0 else {
                    throw ParquetFailure("RLE value \(value) wider than \(bitWidth) bits")
                }
                output.append(contentsOf: repeatElement(value, count: Int(min(run, UInt64(left)))))
            } else {
                let groups = header >> 1
                guard groups <= UInt64(cursor.remaining) else { throw ParquetFailure("bit-packed run longer than the page") }
                // A writer may end the last run early; the bytes present give what they hold.
                let size = min(Int(groups) * bitWidth, cursor.remaining)
                var reader = BitReader(cursor.bytes, try cursor.take(size))
                let wanted = min(Int(groups) * 8, left)
                for _ in 0..<wanted {
                    guard let value = reader.read(bitWidth) else { throw ParquetFailure("bit-packed run ends early") }
                    output.append(UInt32(truncatingIfNeeded: value))
                }
            }
        }
    }

    /// DELTA_BINARY_PACKED integers (the total count comes from the encoding's own header).
    static func deltaBinaryPacked(_ cursor: inout ByteCursor, budget: DecodeBudget, maximum: Int) throws -> [Int64] {
        let blockSize = try cursor.varint()
        let miniblocks = try cursor.varint()
        let total = try cursor.varint()
        var value = try cursor.zigzag()
        guard blockSize > 0, blockSize <= 1 << 16, miniblocks > 0, blockSize % miniblocks == 0,
              (blockSize / miniblocks) % 8 == 0 else {
            throw ParquetFailure("DELTA_BINARY_PACKED block of \(blockSize) in \(miniblocks) miniblocks is invalid")
        }
        guard total <= UInt64(maximum) else {
            throw ParquetFailure("DELTA_BINARY_PACKED holds \(total) values, more than the page's \(maximum)")
        }
        let count = Int(total)
        try budget.take(values: count)
        var output: [Int64] = []
        output.reserveCapacity(count)
        if count == 0 { return output }
        output.append(value)
        let perMiniblock = Int(blockSize / miniblocks)
        while output.count < count {
            let minDelta = try cursor.zigzag()
            let widthsRange = try cursor.take(Int(miniblocks))
            for index in widthsRange {
                guard output.count < count else { break }
                let width = Int(cursor.bytes[index])
                guard width <= 64 else { throw ParquetFailure("DELTA_BINARY_PACKED bit width \(width) is over 64") }
                // The last miniblock is padded to full size; tolerate a writer that stops at the data's end.
                let size = min(perMiniblock * width / 8, cursor.remaining)
                var reader = BitReader(cursor.bytes, try cursor.take(size))
                for _ in 0..<perMiniblock {
                    guard output.count < count else { break }
                    guard let packed = reader.read(width) else { throw ParquetFailure("DELTA_BINARY_PACKED miniblock ends early") }
                    value = value &+ minDelta &+ Int64(bitPattern: packed)
                    output.append(value)
                }
            }
        }
        return output
    }

    /// Byte strings whose lengths are DELTA_BINARY_PACKED, followed by their bytes.
    static func deltaLengthByteArrays(_ cursor: inout ByteCursor, budget: DecodeBudget, maximum: Int) throws -> [Range<Int>] {
        let lengths = try deltaBinaryPacked(&cursor, budget: budget, maximum: maximum)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(lengths.count)
        for length in lengths {
            guard length >= 0, length <= Int64(cursor.remaining) else {
                throw ParquetFailure("byte array length \(length) exceeds the \(cursor.remaining) bytes left")
            }
            ranges.append(try cursor.take(Int(length)))
        }
        return ranges
    }
}

/// A leaf column's physical type and how its values become JSON.
struct ParquetLeafType: Sendable {
    /// The physical type (parquet.thrift `Type`): 0 BOOLEAN … 7 FIXED_LEN_BYTE_ARRAY.
    var physical: Int
    var typeLength: Int
    /// Unsigned integers (UINT_32/UINT_64 or an unsigned INT logical type).
    var unsigned: Bool
    /// BYTE_ARRAY annotated as text (STRING/UTF8, ENUM, JSON): its values must be UTF-8.
    var isText: Bool

    var name: String {
        ["BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"][physical]
    }

    func int32(_ raw: UInt64) -> JSONValue {
        let bits = UInt32(truncatingIfNeeded: raw)
        return .int(unsigned ? Int(bits) : Int(Int32(bitPattern: bits)))
    }

    func int64(_ raw: UInt64) -> JSONValue {
        if unsigned, raw > UInt64(Int.max) { return .double(Double(raw)) }
        return .int(Int(Int64(bitPattern: raw)))
    }

    /// A BYTE_ARRAY value: a string; binary data that is not UTF-8 (image bytes and the like, which no
    /// dataset row uses) reads as null so that the file's text columns still load.
    func string(_ bytes: [UInt8], _ range: Range<Int>) throws -> JSONValue {
        guard let text = String(validating: bytes[range], as: UTF8.self) else {
            if isText { throw ParquetFailure("a string value is not valid UTF-8") }
            return .null
        }
        return .string(text)
    }

    /// `count` PLAIN values from the cursor.
    func plain(_ cursor: inout ByteCursor, count: Int, budget: DecodeBudget) throws -> [JSONValue] {
        try budget.take(values: count)
        var output: [JSONValue] = []
        switch physical {
        case 0:
            guard count <= cursor.remaining * 8 else { throw ParquetFailure("\(count) booleans need more bytes than remain") }
            var reader = BitReader(cursor.bytes, try cursor.take((count + 7) / 8))
            output.reserveCapacity(count)
            for _ in 0..<count { output.append(.bool(reader.read(1) == 1)) }
        case 1, 2, 4, 5:
            let size = physical == 1 || physical == 4 ? 4 : 8
            guard count <= cursor.remaining / size else { throw ParquetFailure("\(count) \(name) values need more bytes than remain") }
            output.reserveCapacity(count)
            for _ in 0..<count {
                let raw = try cursor.littleEndian(size)
                switch physical {
                case 1: output.append(int32(raw))
                case 2: output.append(int64(raw))
                case 4: output.append(.double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))))
                default: output.append(.double(Double(bitPattern: raw)))
                }
            }
        case 6:
            guard count <= cursor.remaining / 4 else { throw ParquetFailure("\(count) byte arrays need more bytes than remain") }
            output.reserveCapacity(count)
            for _ in 0..<count {
                let length = try cursor.littleEndian(4)
                guard length <= UInt64(cursor.remaining) else {
                    throw ParquetFailure("byte array length \(length) exceeds the \(cursor.remaining) bytes left")
                }
                output.append(try string(cursor.bytes, try cursor.take(Int(length))))
            }
        case 3, 7:
            // INT96 timestamps and fixed-length bytes (float16, UUIDs, decimals) have no JSON form
            // here; they read as null so that the rest of the file loads.
            let size = physical == 3 ? 12 : typeLength
            guard size >= 0, count <= cursor.remaining / max(size, 1) else {
                throw ParquetFailure("\(count) \(name) values need more bytes than remain")
            }
            _ = try cursor.take(count * size)
            output = Array(repeating: .null, count: count)
        default:
            throw ParquetFailure("\(name) columns are not supported")
        }
        return output
    }

    /// `count` values in `encoding` (not a dictionary encoding) from the cursor.
    func values(_ cursor: inout ByteCursor, encoding: Int, count: Int, budget: DecodeBudget) throws -> [JSONValue] {
        switch encoding {
        case ParquetEncoding.plain:
            return try plain(&cursor, count: count, budget: budget)
        case ParquetEncoding.rle where physical == 0:
            // Booleans in RLE: a 4-byte length, then the hybrid with 1-bit values.
            let length = Int(try cursor.littleEndian(4))
            var inner = ByteCursor(cursor.bytes, try cursor.take(length))
            try budget.take(values: count)
            var bits: [UInt32] = []
            try ParquetEncoding.hybrid(&inner, bitWidth: 1, count: count, into: &bits)
            return bits.map { .bool($0 == 1) }
        case ParquetEncoding.deltaBinaryPacked where physical == 1 || physical == 2:
            let numbers = try ParquetEncoding.deltaBinaryPacked(&cursor, budget: budget, maximum: count)
            guard numbers.count == count else { throw ParquetFailure("DELTA_BINARY_PACKED holds \(numbers.count) values, expected \(count)") }
            return numbers.map { physical == 1 ? int32(UInt64(bitPattern: $0)) : int64(UInt64(bitPattern: $0)) }
        case ParquetEncoding.deltaLengthByteArray where physical == 6:
            let ranges = try ParquetEncoding.deltaLengthByteArrays(&cursor, budget: budget, maximum: count)
            guard ranges.count == count else { throw ParquetFailure("DELTA_LENGTH_BYTE_ARRAY holds \(ranges.count) values, expected \(count)") }
            return try ranges.map { try string(cursor.bytes, $0) }
        case ParquetEncoding.deltaByteArray where physical == 6:
            let prefixes = try ParquetEncoding.deltaBinaryPacked(&cursor, budget: budget, maximum: count)
            let suffixes = try ParquetEncoding.deltaLengthByteArrays(&cursor, budget: budget, maximum: count)
            guard prefixes.count == count, suffixes.count == count else {
                throw ParquetFailure("DELTA_BYTE_ARRAY holds \(prefixes.count) prefixes and \(suffixes.count) suffixes, expected \(count)")
            }
            var previous: [UInt8] = []
            var output: [JSONValue] = []
            output.reserveCapacity(count)
            for (prefix, suffix) in zip(prefixes, suffixes) {
                guard prefix >= 0, prefix <= Int64(previous.count) else {
                    throw ParquetFailure("DELTA_BYTE_ARRAY prefix \(prefix) is longer than the previous value")
                }
                // Shared prefixes repeat bytes, so they count against the file's byte budget.
                try budget.take(bytes: Int(prefix) + suffix.count)
                var value = Array(previous[..<Int(prefix)])
                value.append(contentsOf: cursor.bytes[suffix])
                output.append(try string(value, 0..<value.count))
                previous = value
            }
            return output
        case ParquetEncoding.byteStreamSplit where [1, 2, 4, 5].contains(physical):
            let size = physical == 1 || physical == 4 ? 4 : 8
            guard count <= cursor.remaining / size else { throw ParquetFailure("\(count) \(name) values need more bytes than remain") }
            try budget.take(values: count)
            let range = try cursor.take(count * size)
            var output: [JSONValue] = []
            output.reserveCapacity(count)
            for index in 0..<count {
                var raw: UInt64 = 0
                for byte in 0..<size { raw |= UInt64(cursor.bytes[range.lowerBound + byte * count + index]) << (8 * UInt64(byte)) }
                switch physical {
                case 1: output.append(int32(raw))
                case 2: output.append(int64(raw))
                case 4: output.append(.double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))))
                default: output.append(.double(Double(bitPattern: raw)))
                }
            }
            return output
        default:
            throw ParquetFailure("encoding \(encoding) is not supported for \(name) values")
        }
    }
}
