// Tests of the F16 / BF16 / F8 element conversions used by the safetensors reader and writer.

import Foundation
import Testing
import NudgeNN

@Suite struct SafeTensorsConversionTests {
    @Test func f16DecodeIsExactForAllBitPatterns() {
        for bits in 0 ... UInt16.max {
            let value = SafeTensors.float(fromF16Bits: bits)
            #if !(os(macOS) && arch(x86_64))
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                #expect(value.isNaN)
            } else {
                #expect(value.bitPattern == reference.bitPattern, "bits \(bits)")
            }
            #endif
            if !value.isNaN {
                #expect(SafeTensors.f16Bits(from: value) == bits, "bits \(bits)")
            }
        }
    }

    @Test func f16EncodeRoundsToNearestEven() {
        #expect(SafeTensors.f16Bits(from: 1.0) == 0x3C00)
        #expect(SafeTensors.f16Bits(from: -0.0) == 0x8000)
        #expect(SafeTensors.f16Bits(from: 1 + 0x1p-11) == 0x3C00)          // tie -> even
        #expect(SafeTensors.f16Bits(from: 1 + 3 * 0x1p-11) == 0x3C02)      // tie -> even (up)
        #expect(SafeTensors.f16Bits(from: 65504) == 0x7BFF)
        #expect(SafeTensors.f16Bits(from: 65520) == 0x7C00)                // rounds to infinity
        #expect(SafeTensors.f16Bits(from: 1e10) == 0x7C00)
        #expect(SafeTensors.f16Bits(from: -.infinity) == 0xFC00)
        #expect(SafeTensors.f16Bits(from: 0x1p-24) == 0x0001)              // smallest subnormal
        #expect(SafeTensors.f16Bits(from: 0x1p-25) == 0x0000)              // tie -> even (zero)
        #expect(SafeTensors.f16Bits(from: 0x1.8p-25) == 0x0001)
        #expect(SafeTensors.float(fromF16Bits: SafeTensors.f16Bits(from: .nan)).isNaN)

        #if !(os(macOS) && arch(x86_64))
        var rng = SafeTensorsTestRNG(seed: 0x5EED)
        for _ in 0 ..< 100_000 {
            let value = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            let ours = SafeTensors.f16Bits(from: value)
            let reference = Float16(value)
            if reference.isNaN {
                #expect(SafeTensors.float(fromF16Bits: ours).isNaN)
            } else if ours != reference.bitPattern {
                Issue.record("f16 of \(value): \(ours) != \(reference.bitPattern)")
                return
            }
        }
        #endif
    }

    @Test func bf16DecodeAndEncode() {
        for bits in 0 ... UInt16.max {
            let value = SafeTensors.float(fromBF16Bits: bits)
            #expect(value.bitPattern == UInt32(bits) << 16)
            if !value.isNaN {
                #expect(SafeTensors.bf16Bits(from: value) == bits)
            } else {
                #expect(SafeTensors.float(fromBF16Bits: SafeTensors.bf16Bits(from: value)).isNaN)
            }
        }
        #expect(SafeTensors.bf16Bits(from: 1.0) == 0x3F80)
        #expect(SafeTensors.bf16Bits(from: 1 + 0x1p-8) == 0x3F80)          // tie -> even (down)
        #expect(SafeTensors.bf16Bits(from: 1 + 3 * 0x1p-8) == 0x3F82)      // tie -> even (up)
        #expect(SafeTensors.bf16Bits(from: 1 + 0x1p-8 + 0x1p-20) == 0x3F81) // above the tie
        #expect(SafeTensors.bf16Bits(from: .greatestFiniteMagnitude) == 0x7F80)
        #expect(SafeTensors.bf16Bits(from: -.infinity) == 0xFF80)
        // A NaN whose payload sits only in the low 16 bits must not become infinity.
        let lowPayloadNaN = Float(bitPattern: 0x7F80_0001)
        #expect(SafeTensors.float(fromBF16Bits: SafeTensors.bf16Bits(from: lowPayloadNaN)).isNaN)
    }

    @Test func f8Decode() {
        #expect(SafeTensors.float(fromF8E4M3Bits: 0x38) == 1.0)
        #expect(SafeTensors.float(fromF8E4M3Bits: 0x7E) == 448)
        #expect(SafeTensors.float(fromF8E4M3Bits: 0x01) == 0x1p-9)
        #expect(SafeTensors.float(fromF8E4M3Bits: 0xB8) == -1.0)
        #expect(SafeTensors.float(fromF8E4M3Bits: 0x7F).isNaN)
        #expect(SafeTensors.float(fromF8E4M3Bits: 0xFF).isNaN)
        #expect(SafeTensors.float(fromF8E5M2Bits: 0x3C) == 1.0)
        #expect(SafeTensors.float(fromF8E5M2Bits: 0x7B) == 57344)
        #expect(SafeTensors.float(fromF8E5M2Bits: 0x7C) == .infinity)
        #expect(SafeTensors.float(fromF8E5M2Bits: 0x01) == 0x1p-16)
    }
}
