// ByteLevelAlphabet.swift
//
// The GPT-2 byte-to-unicode mapping used by byte-level BPE (GPT-2, Llama 3,
// Qwen2): every byte 0...255 is shown as a printable Unicode scalar so that
// token strings never contain raw control bytes or spaces. Printable Latin-1
// bytes map to themselves; the 68 others map to U+0100 and up, in byte order
// (so the space 0x20 becomes "Ġ" U+0120 and the newline 0x0A becomes "Ċ").

/// The GPT-2 byte ↔ scalar tables.
enum ByteLevelAlphabet {
    /// `scalarForByte[b]` is the scalar that stands for byte `b`.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\u{0}", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            let value = printable ? UInt32(byte) : next
            if !printable { next += 1 }
            table[byte] = Unicode.Scalar(value) ?? "\u{FFFD}"
        }
        return table
    }()

    /// `byteForScalar[s.value]` is the byte for scalar `s`, or -1; covers U+0000...U+01FF.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x200)
        for (byte, scalar) in scalarForByte.enumerated() where scalar.value < 0x200 {
            table[Int(scalar.value)] = Int16(byte)
        }
        return table
    }()

    /// The byte-level spelling of `scalars`: their UTF-8 bytes, each shown as its scalar.
    static func encode(_ scalars: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(scalars.count)
        for scalar in scalars {
            if scalar.value < 0x80 {
                result.append(scalarForByte[Int(scalar.value)])
            } else {
                guard let encoded = UTF8.encode(scalar) else { continue }
                for byte in encoded { result.append(scalarForByte[Int(byte)]) }
            }
        }
        return result
    }

    /// The bytes spelled by `token`, or nil when it contains a scalar outside the alphabet.
    static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard scalar.value < 0x200 else { return nil }
            let byte = byteForScalar[Int(scalar.value)]
            guard byte >= 0 else { return nil }
            bytes.append(UInt8(byte))
        }
        return bytes
    }
}
