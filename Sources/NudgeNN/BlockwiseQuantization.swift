// Blockwise 8-bit quantization with dynamic (tree) maps, as bitsandbytes (Dettmers et al. 2022,
// "8-bit Optimizers via Block-wise Quantization"): a block of values is divided by its largest
// magnitude (absmax, kept in Float32) and each quotient is stored as the index of the nearest of
// 256 map values. The maps and the nearest-code rule follow bitsandbytes 0.50's
// `create_dynamic_map` and CPU `quantize_blockwise` (checked against its output in
// Tests/NudgeNNTests/Fixtures/adam8bit, written by scripts/make_adam8bit_fixtures.py).

import Foundation

/// A sorted table of 256 Float32 values that 8-bit codes index, with a fast nearest-code lookup.
public struct DynamicQuantizationMap: Sendable {
    /// The 256 values, ascending; code `c` stands for `values[c]`.
    public let values: [Float]
    /// For each top 16 bits of a Float32, the largest code whose value is at most the bucket's
    /// smallest number, so a lookup starts at most a step or two below its answer.
    let start: [UInt8]
    /// The code of 0 (what an all-zero block, whose absmax is 0, stores).
    public let zeroCode: UInt8

    /// The map of bitsandbytes' `create_dynamic_map(signed, max_exponent_bits: 7, total_bits: 8)`:
    /// for each decade 10⁻⁶…10⁰ a linear grid of midpoints of `linspace(0.1, 1)`, twice as fine per
    /// decade up; signed maps mirror them (127 negative, 0, 128 positive values up to 1), unsigned
    /// ones spend the sign bit on finer grids. Computed in Float32 as torch does.
    public static func dynamic(signed: Bool) -> DynamicQuantizationMap {
        let maxExponentBits = 7, totalBits = 8
        let nonSignBits = totalBits - 1
        var data: [Float] = []
        for i in 0..<maxExponentBits {
            let items = signed ? (1 << (i + nonSignBits - maxExponentBits)) + 1 : (1 << (i + nonSignBits - maxExponentBits + 1)) + 1
            let boundaries = linspace(0.1, 1, items)
            let scale = Float(Foundation.pow(10.0, Double(-(maxExponentBits - 1) + i)))
            for k in 0..<(items - 1) {
                let mean = (boundaries[k] + boundaries[k + 1]) / 2
                data.append(scale * mean)
                if signed { data.append(-scale * mean) }
            }
        }
        // additional_items = 2^(non_sign_bits - max_exponent_bits) - 1 = 0 for 8 bits and 7 exponent bits.
        data.append(0)
        data.append(1)
        precondition(data.count == 1 << totalBits, "dynamic map has \(data.count) values")
        return DynamicQuantizationMap(values: data.sorted())
    }

    /// torch.linspace in Float32 as its CPU kernel rounds it: the first half counted up from
    /// `start`, the rest down from `end`, each value one fused multiply-add.
    static func linspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        let step = (end - start) / Float(steps - 1)
        let halfway = steps / 2
        return (0..<steps).map { i in
            i < halfway ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(steps - i - 1))
        }
    }

    /// A map over 256 ascending `values`.
    public init(values: [Float]) {
        precondition(values.count == 256, "a quantization map has 256 values, got \(values.count)")
        self.values = values
        var start = [UInt8](repeating: 0, count: 1 << 16)
        for high in 0..<(1 << 16) {
            let bits = UInt32(high) << 16
            // The smallest number of the bucket: its low end when positive, its far end when negative.
            let low = Float(bitPattern: high & 0x8000 != 0 ? bits | 0xFFFF : bits)
            guard !low.isNaN else { continue }
            var lo = 0, hi = 255  // largest c with values[c] <= low, or 0
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if values[mid] <= low { lo = mid } else { hi = mid - 1 }
            }
            start[high] = UInt8(lo)
        }
        self.start = start
        zeroCode = UInt8(values.firstIndex(of: 0) ?? 0)
    }

    /// The code of the value nearest `x` (ties to the lower code, as bitsandbytes' CPU quantizer).
    @inline(__always)
    public func code(_ x: Float) -> UInt8 {
        values.withUnsafeBufferPointer { q in start.withUnsafeBufferPointer { s in Self.code(x, q, s) } }
    }

    @inline(__always)
    static func code(_ x: Float, _ q: UnsafeBufferPointer<Float>, _ start: UnsafeBufferPointer<UInt8>) -> UInt8 {
        var c = Int(start[Int(x.bitPattern >> 16)])
        while c < 255 && q[c + 1] <= x { c += 1 }
        if c < 255 && Swift.abs(x - q[c + 1]) < Swift.abs(x - q[c]) { c += 1 }
        return UInt8(c)
    }

    /// Quantizes `values[0..<count]` as one block: writes the codes of `values / absmax` to `codes`
    /// and returns absmax (0 for an all-zero block, whose codes are `zeroCode`).
    @inline(__always)
    func quantizeBlock(_ values: UnsafePointer<Float>, _ count: Int, into codes: UnsafeMutableRawPointer) -> Float {
        var absmax: Float = 0
        for i in 0..<count { absmax = Swift.max(absmax, Swift.abs(values[i])) }
        if absmax == 0 {
            codes.initializeMemory(as: UInt8.self, repeating: zeroCode, count: count)
            return 0
        }
        self.values.withUnsafeBufferPointer { q in
            start.withUnsafeBufferPointer { s in
                for i in 0..<count { codes.storeBytes(of: Self.code(values[i] / absmax, q, s), toByteOffset: i, as: UInt8.self) }
            }
        }
        return absmax
    }

    /// Writes `values[code] · absmax` for `count` codes.
    @inline(__always)
    func dequantizeBlock(_ codes: UnsafeRawPointer, _ count: Int, absmax: Float, into out: UnsafeMutablePointer<Float>) {
        self.values.withUnsafeBufferPointer { q in
            for i in 0..<count { out[i] = q[Int(codes.load(fromByteOffset: i, as: UInt8.self))] * absmax }
        }
    }

    /// Blockwise quantization of `values` (bitsandbytes' `quantize_blockwise`): one absmax per
    /// `blockSize` values (the last block may be shorter) and one code per value.
    public func quantize(_ values: [Float], blockSize: Int = 256) -> (codes: [UInt8], absmax: [Float]) {
        precondition(blockSize > 0, "block size must be positive")
        let blocks = (values.count + blockSize - 1) / blockSize
        var codes = [UInt8](repeating: 0, count: values.count)
        var absmax = [Float](repeating: 0, count: blocks)
        values.withUnsafeBufferPointer { v in
            codes.withUnsafeMutableBytes { c in
                for b in 0..<blocks {
                    let o = b * blockSize, n = Swift.min(blockSize, values.count - o)
                    absmax[b] = quantizeBlock(v.baseAddress! + o, n, into: c.baseAddress! + o)
                }
            }
        }
        return (codes, absmax)
    }

    /// The inverse of `quantize`: `values[code] · absmax` of each code's block.
    public func dequantize(codes: [UInt8], absmax: [Float], blockSize: Int = 256) -> [Float] {
        precondition(absmax.count == (codes.count + blockSize - 1) / blockSize, "one absmax per block of \(blockSize)")
        var out = [Float](repeating: 0, count: codes.count)
        codes.withUnsafeBytes { c in
            out.withUnsafeMutableBufferPointer { o in
                for b in 0..<absmax.count {
                    let off = b * blockSize, n = Swift.min(blockSize, codes.count - off)
                    dequantizeBlock(c.baseAddress! + off, n, absmax: absmax[b], into: o.baseAddress! + off)
                }
            }
        }
        return out
    }

    /// The first moment's map (bitsandbytes' signed dynamic map).
    public static let signed = dynamic(signed: true)
    /// The second moment's map (bitsandbytes' unsigned dynamic map).
    public static let unsigned = dynamic(signed: false)
}
