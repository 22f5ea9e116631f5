// Dequantization of ggml's block formats to Float32, as ggml-quants.c's `dequantize_row_*` define
// them (checked against the `gguf` Python package's numpy dequantizers in the tests).
//
// Legacy blocks hold 32 values: Q4_0 = f16 d, 16 bytes of nibbles (x = (q - 8)·d); Q4_1 adds an f16
// minimum m (x = q·d + m); Q5_0/Q5_1 add a u32 of fifth bits; Q8_0 = f16 d, 32 int8. In every 32-value
// block the low nibbles are values 0-15 and the high nibbles 16-31. K-quants hold 256 values in
// sub-blocks of 16 or 32 with quantized per-sub-block scales (and minimums): Q2_K, Q3_K (2 bits plus
// a high-bit mask, 6-bit signed scales packed in 12 bytes), Q4_K and Q5_K (6-bit scales and minimums
// packed in 12 bytes), Q6_K (4 + 2 bits, int8 scales), Q8_K (f32 d, int8 values).

/// Block dequantizers.
public enum GGUFDequantize {
    /// Dequantizes `destination.count` values of `type` from `source` (whole blocks, validated by the caller).
    public static func floats(_ type: GGMLType, from source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) {
        guard let out = destination.baseAddress, let src = source.baseAddress else { return }
        let n = destination.count
        let (elements, bytes) = type.block
        let blocks = n / elements
        let p = src.assumingMemoryBound(to: UInt8.self)
        switch type {
        case .f32:
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<n { out[i] = SafeTensors.float(fromF16Bits: half(p, 2 * i)) }
        case .bf16:
            for i in 0..<n { out[i] = SafeTensors.float(fromBF16Bits: half(p, 2 * i)) }
        case .f64:
            for i in 0..<n { out[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        default:
            for b in 0..<blocks {
                let block = p + b * bytes, y = out + b * elements
                switch type {
                case .q4_0: q4_0(block, y)
                case .q4_1: q4_1(block, y)
                case .q5_0: q5(block, y, hasMinimum: false)
                case .q5_1: q5(block, y, hasMinimum: true)
                case .q8_0, .q8_1: q8(block, y, scaleBytes: type == .q8_0 ? 2 : 4)
                case .q2_K: q2_K(block, y)
                case .q3_K: q3_K(block, y)
                case .q4_K: q4_K(block, y)
                case .q5_K: q5_K(block, y)
                case .q6_K: q6_K(block, y)
                case .q8_K: q8_K(block, y)
                case .f32, .f16, .bf16, .f64: break
                }
            }
        }
    }

    @inline(__always)
    static func half(_ p: UnsafePointer<UInt8>, _ offset: Int) -> UInt16 { UInt16(p[offset]) | UInt16(p[offset + 1]) << 8 }

    @inline(__always)
    static func f16(_ p: UnsafePointer<UInt8>, _ offset: Int) -> Float { SafeTensors.float(fromF16Bits: half(p, offset)) }

    static func q4_0(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(x, 0), qs = x + 2
        for j in 0..<16 {
            y[j] = Float(Int(qs[j] & 0x0F) - 8) * d
            y[j + 16] = Float(Int(qs[j] >> 4) - 8) * d
        }
    }

    static func q4_1(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(x, 0), m = f16(x, 2), qs = x + 4
        for j in 0..<16 {
            y[j] = Float(qs[j] & 0x0F) * d + m
            y[j + 16] = Float(qs[j] >> 4) * d + m
        }
    }

    static func q5(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, hasMinimum: Bool) {
        let d = f16(x, 0), m: Float = hasMinimum ? f16(x, 2) : 0
        let h = hasMinimum ? 4 : 2
        let qh = UInt32(x[h]) | UInt32(x[h + 1]) << 8 | UInt32(x[h + 2]) << 16 | UInt32(x[h + 3]) << 24
        let qs = x + h + 4
        let offset = hasMinimum ? 0 : 16
        for j in 0..<16 {
            let high0 = Int(((qh >> UInt32(j)) << 4) & 0x10)
            let high1 = Int((qh >> UInt32(j + 12)) & 0x10)
            let v0 = (Int(qs[j] & 0x0F) | high0) - offset
            let v1 = (Int(qs[j] >> 4) | high1) - offset
            y[j] = Float(v0) * d + m
            y[j + 16] = Float(v1) * d + m
        }
    }

    static func q8(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, scaleBytes: Int) {
        let d = f16(x, 0), qs = x + scaleBytes
        for j in 0..<32 { y[j] = Float(Int8(bitPattern: qs[j])) * d }
    }

    static func q2_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let scales = x, d = f16(x, 80), dmin = f16(x, 82)
        var q = x + 16, out = y, s = 0
        for _ in 0..<2 {
            var shift: UInt8 = 0
            for _ in 0..<4 {
                for half in 0..<2 {
                    let sc = scales[s]
                    s += 1
                    let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                    for l in 0..<16 { out[l] = dl * Float((q[l + 16 * half] >> shift) & 3) - ml }
                    out += 16
                }
                shift += 2
            }
            q += 32
        }
    }

    /// Q3_K's sixteen 6-bit scales (stored with a bias of 32) from their 12 packed bytes.
    static func q3_KScales(_ p: UnsafePointer<UInt8>) -> [Int] {
        var scales = [Int](repeating: 0, count: 16)
        for j in 0..<16 {
            let low = j < 8 ? (p[j] & 0x0F) : (p[j - 8] >> 4)
            let high = (p[8 + j % 4] >> (2 * UInt8(j / 4))) & 3
            scales[j] = Int(low | high << 4) - 32
        }
        return scales
    }

    static func q3_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let hmask = x, d = f16(x, 108)
        let scales = q3_KScales(x + 96)
        var q = x + 32, out = y, s = 0
        var m: UInt8 = 1
        for _ in 0..<2 {
            var shift: UInt8 = 0
            for _ in 0..<4 {
                for half in 0..<2 {
                    let dl = d * Float(scales[s])
                    s += 1
                    for l in 0..<16 {
                        let low = Int((q[l + 16 * half] >> shift) & 3)
                        let high = hmask[l + 16 * half] & m != 0 ? 0 : 4
                        out[l] = dl * Float(low - high)
                    }
                    out += 16
                }
                shift += 2
                m <<= 1
            }
            q += 32
        }
    }

    /// The scale and minimum of sub-block `j` from the 12 packed bytes of Q4_K/Q5_K.
    @inline(__always)
    static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (Float, Float) {
        if j < 4 { return (Float(q[j] & 63), Float(q[j + 4] & 63)) }
        return (Float((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4)), Float((q[j + 4] >> 4) | ((q[j] >> 6) << 4)))
    }

    static func q4_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(x, 0), dmin = f16(x, 2), scales = x + 4
        var q = x + 16, out = y
        for j in 0..<4 {
            let (sc1, m1) = scaleMin(2 * j, scales), (sc2, m2) = scaleMin(2 * j + 1, scales)
            let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
            for l in 0..<32 { out[l] = d1 * Float(q[l] & 0x0F) - min1 }
            for l in 0..<32 { out[32 + l] = d2 * Float(q[l] >> 4) - min2 }
            out += 64
            q += 32
        }
    }

    static func q5_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(x, 0), dmin = f16(x, 2), scales = x + 4, qh = x + 16
        var ql = x + 48, out = y
        var u1: UInt8 = 1, u2: UInt8 = 2
        for j in 0..<4 {
            let (sc1, m1) = scaleMin(2 * j, scales), (sc2, m2) = scaleMin(2 * j + 1, scales)
            let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
            for l in 0..<32 { out[l] = d1 * Float(Int(ql[l] & 0x0F) + (qh[l] & u1 != 0 ? 16 : 0)) - min1 }
            for l in 0..<32 { out[32 + l] = d2 * Float(Int(ql[l] >> 4) + (qh[l] & u2 != 0 ? 16 : 0)) - min2 }
            out += 64
            ql += 32
            u1 <<= 2
            u2 <<= 2
        }
    }

    static func q6_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(x, 208)
        var ql = x, qh = x + 128, sc = x + 192, out = y
        for _ in 0..<2 {
            for l in 0..<32 {
                let s = l / 16
                let q1 = Int((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32
                let q2 = Int((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32
                let q3 = Int((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32
                let q4 = Int((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32
                out[l] = d * Float(Int8(bitPattern: sc[s])) * Float(q1)
                out[l + 32] = d * Float(Int8(bitPattern: sc[s + 2])) * Float(q2)
                out[l + 64] = d * Float(Int8(bitPattern: sc[s + 4])) * Float(q3)
                out[l + 96] = d * Float(Int8(bitPattern: sc[s + 6])) * Float(q4)
            }
            out += 128
            ql += 64
            qh += 32
            sc += 8
        }
    }

    static func q8_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let bits = UInt32(x[0]) | UInt32(x[1]) << 8 | UInt32(x[2]) << 16 | UInt32(x[3]) << 24
        let d = Float(bitPattern: bits)
        for j in 0..<256 { y[j] = d * Float(Int8(bitPattern: x[4 + j])) }
    }
}
