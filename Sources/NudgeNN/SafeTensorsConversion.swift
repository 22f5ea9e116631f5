// Element conversions between safetensors storage types and Swift `Float` / `Int64`.
//
// Safetensors stores data little-endian. Half precision (F16, IEEE binary16) and bfloat16 (BF16,
// the upper 16 bits of an IEEE binary32) are converted with portable bit manipulation, so the
// results do not depend on hardware `Float16` support. Narrowing from `Float` rounds to nearest,
// ties to even; NaN stays NaN (quiet) and overflow becomes infinity. The 8-bit float formats
// F8_E5M2 and F8_E4M3 (the "FN" variant: no infinities, NaN is S.1111.111) are decoded only.

extension SafeTensors {
    /// Converts IEEE binary16 bits to `Float` (exact).
    @inlinable
    public static func float(fromF16Bits h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x03FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa * 2^-24.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// Converts a `Float` to IEEE binary16 bits, rounding to nearest even.
    @inlinable
    public static func f16Bits(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude >= 0x4780_0000 {  // >= 65536, infinity or NaN
            if magnitude > 0x7F80_0000 {
                // NaN: keep the top payload bits, force quiet.
                return sign | 0x7E00 | UInt16(truncatingIfNeeded: (magnitude >> 13) & 0x03FF)
            }
            return sign | 0x7C00
        }
        if magnitude < 0x3880_0000 {  // < 2^-14: result is subnormal or zero
            // Adding 0.5 aligns the subnormal grid at the bottom of the float mantissa; the FPU
            // performs the round-to-nearest-even.
            let shifted = Float(bitPattern: magnitude) + 0.5
            return sign | UInt16(truncatingIfNeeded: shifted.bitPattern &- Float(0.5).bitPattern)
        }
        let mantissaOdd = (magnitude >> 13) & 1
        var rounded = magnitude &+ 0xC800_0FFF  // rebias exponent (15 - 127) << 23, plus 0xFFF
        rounded &+= mantissaOdd
        return sign | UInt16(truncatingIfNeeded: rounded >> 13)
    }

    /// Converts bfloat16 bits to `Float` (exact).
    @inlinable
    public static func float(fromBF16Bits b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// Converts a `Float` to bfloat16 bits, rounding to nearest even.
    @inlinable
    public static func bf16Bits(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN {
            return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        }
        let lsb = (bits >> 16) & 1
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ lsb) >> 16)
    }

    /// Converts F8_E5M2 bits to `Float` (exact).
    @inlinable
    public static func float(fromF8E5M2Bits b: UInt8) -> Float {
        float(fromF16Bits: UInt16(b) << 8)
    }

    /// Converts F8_E4M3 (E4M3FN) bits to `Float` (exact).
    @inlinable
    public static func float(fromF8E4M3Bits b: UInt8) -> Float {
        let negative = b & 0x80 != 0
        let exponent = Int((b >> 3) & 0x0F)
        let mantissa = Float(b & 0x07)
        let magnitude: Float
        if exponent == 0x0F && b & 0x07 == 0x07 {
            return negative ? -Float.nan : .nan
        } else if exponent == 0 {
            magnitude = mantissa * 0x1p-9
        } else {
            magnitude = (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
        }
        return negative ? -magnitude : magnitude
    }
}

/// Bulk decoding from little-endian storage; callers guarantee the sizes agree.
enum SafeTensorsDecode {
    /// Decodes `destination.count` elements of `dtype` from `source` into `Float`.
    static func floats(_ dtype: SafeTensorsDType, from source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) {
        let n = destination.count
        precondition(source.count == n * dtype.byteSize, "safetensors: decode size mismatch")
        guard n > 0, let out = destination.baseAddress, let input = source.baseAddress else { return }
        switch dtype {
        case .f32:
            #if _endian(little)
            UnsafeMutableRawPointer(out).copyMemory(from: input, byteCount: source.count)
            #else
            _ = input
            for i in 0 ..< n {
                out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            }
            #endif
        case .f16:
            for i in 0 ..< n {
                out[i] = SafeTensors.float(fromF16Bits: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
            }
        case .bf16:
            for i in 0 ..< n {
                out[i] = SafeTensors.float(fromBF16Bits: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
            }
        case .f64:
            for i in 0 ..< n {
                out[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
            }
        case .f8e5m2:
            for i in 0 ..< n { out[i] = SafeTensors.float(fromF8E5M2Bits: source[i]) }
        case .f8e4m3:
            for i in 0 ..< n { out[i] = SafeTensors.float(fromF8E4M3Bits: source[i]) }
        case .bool:
            for i in 0 ..< n { out[i] = source[i] != 0 ? 1 : 0 }
        case .u8:
            for i in 0 ..< n { out[i] = Float(source[i]) }
        case .i8:
            for i in 0 ..< n { out[i] = Float(Int8(bitPattern: source[i])) }
        case .i16:
            for i in 0 ..< n { out[i] = Float(Int16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))) }
        case .u16:
            for i in 0 ..< n { out[i] = Float(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
        case .i32:
            for i in 0 ..< n { out[i] = Float(Int32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))) }
        case .u32:
            for i in 0 ..< n { out[i] = Float(UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
        case .i64:
            for i in 0 ..< n { out[i] = Float(Int64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))) }
        case .u64:
            for i in 0 ..< n { out[i] = Float(UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))) }
        }
    }

    /// Decodes integer or boolean elements into `Int64`; returns false for floating-point
    /// dtypes or a U64 value above `Int64.max`.
    static func int64s(_ dtype: SafeTensorsDType, from source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Int64>) -> Bool {
        let n = destination.count
        precondition(source.count == n * dtype.byteSize, "safetensors: decode size mismatch")
        guard n > 0, let out = destination.baseAddress else { return !dtype.isFloatingPoint }
        switch dtype {
        case .f8e5m2, .f8e4m3, .f16, .bf16, .f32, .f64:
            return false
        case .bool:
            for i in 0 ..< n { out[i] = source[i] != 0 ? 1 : 0 }
        case .u8:
            for i in 0 ..< n { out[i] = Int64(source[i]) }
        case .i8:
            for i in 0 ..< n { out[i] = Int64(Int8(bitPattern: source[i])) }
        case .i16:
            for i in 0 ..< n { out[i] = Int64(Int16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))) }
        case .u16:
            for i in 0 ..< n { out[i] = Int64(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
        case .i32:
            for i in 0 ..< n { out[i] = Int64(Int32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))) }
        case .u32:
            for i in 0 ..< n { out[i] = Int64(UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
        case .i64:
            for i in 0 ..< n { out[i] = Int64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
        case .u64:
            for i in 0 ..< n {
                let v = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
                guard let exact = Int64(exactly: v) else { return false }
                out[i] = exact
            }
        }
        return true
    }
}
