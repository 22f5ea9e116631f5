// Snappy.swift
//
// A decompressor for raw Snappy blocks, the codec most Parquet files on the Hugging Face Hub use
// (Parquet stores each page as one raw block, without Snappy's framing format). A block is the
// uncompressed length as a varint, then literals and back-references; every length and offset is
// checked against the input and the output written so far, and the output never grows past the
// size the page header declares.

enum Snappy {
    /// The `expectedSize` bytes that `input[range]` decompresses to.
    static func decompress(_ input: [UInt8], _ range: Range<Int>, expectedSize: Int) throws -> [UInt8] {
        var position = range.lowerBound
        let end = range.upperBound
        func byte() throws -> Int {
            guard position < end else { throw ParquetFailure("snappy data ends early") }
            defer { position += 1 }
            return Int(input[position])
        }
        // The declared length must agree with the page header before anything is allocated.
        var declared: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 35 else { throw ParquetFailure("snappy length varint too long") }
            declared |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { break }
            shift += 7
        }
        guard declared == UInt64(expectedSize) else {
            throw ParquetFailure("snappy block holds \(declared) bytes but the page header says \(expectedSize)")
        }
        var output: [UInt8] = []
        output.reserveCapacity(expectedSize)
        while position < end {
            let tag = try byte()
            switch tag & 3 {
            case 0:
                var length = tag >> 2
                if length >= 60 {
                    let extra = length - 59
                    length = 0
                    for i in 0..<extra { length |= try byte() << (8 * i) }
                }
                length += 1
                guard length <= end - position else { throw ParquetFailure("snappy literal runs past the data") }
                guard length <= expectedSize - output.count else { throw ParquetFailure("snappy output exceeds \(expectedSize) bytes") }
                output.append(contentsOf: input[position..<position + length])
                position += length
            default:
                let length: Int, offset: Int
                switch tag & 3 {
                case 1:
                    length = 4 + ((tag >> 2) & 7)
                    offset = ((tag >> 5) << 8) | (try byte())
                case 2:
                    length = (tag >> 2) + 1
                    offset = try byte() | (try byte() << 8)
                default:
                    length = (tag >> 2) + 1
                    offset = try byte() | (try byte() << 8) | (try byte() << 16) | (try byte() << 24)
                }
                guard offset > 0, offset <= output.count else {
                    throw ParquetFailure("snappy back-reference offset \(offset) with \(output.count) bytes written")
                }
                guard length <= expectedSize - output.count else { throw ParquetFailure("snappy output exceeds \(expectedSize) bytes") }
                // Copies may overlap their own output (a run), so go byte by byte.
                let start = output.count - offset
                for i in 0..<length { output.append(output[start + i]) }
            }
        }
        guard output.count == expectedSize else {
            throw ParquetFailure("snappy block gave \(output.count) bytes, expected \(expectedSize)")
        }
        return output
    }
}
