// The blockwise 8-bit AdamW (optim=adamw_8bit) against bitsandbytes 0.50.2 on the CPU
// (Fixtures/adam8bit, from scripts/make_adam8bit_fixtures.py): the quantization maps exactly, the
// blockwise codes, and AdamW8bit's parameters and state after 1 and 5 steps; then a Float64
// reference of the same algorithm, exact checkpoint round trips and the 8-bit trajectory beside
// Float32 AdamW's on a small regression.

import Foundation
import Testing
@testable import NudgeNN
import NudgeTensor

final class TwoTensors: Module {
    let big: Tensor
    let small: Tensor
    init(big: Tensor, small: Tensor) {
        self.big = big
        self.small = small
    }
}

@Suite("Adam8bit") struct Adam8bitTests {
    struct Fixture: Decodable {
        struct Quantize: Decodable { let n: Int; let blocksize: Int; let codes: [Int]; let absmax: [Float] }
        struct Step: Decodable {
            let step: Int
            let big: [Float], state1: [Int], state2: [Int], absmax1: [Float], absmax2: [Float], small: [Float]
            let small_state1_dtype: String
        }
        struct Run: Decodable {
            let lr: Float, beta1: Float, beta2: Float, eps: Float, weight_decay: Float
            let big_shape: [Int], small_shape: [Int], steps: [Step]
        }
        let qmap_signed: [Float], qmap_unsigned: [Float]
        let quantize: Quantize
        let adamw8bit: Run
    }

    static func fixture() throws -> Fixture {
        let url = try #require(Bundle.module.url(forResource: "bnb_adamw8bit", withExtension: "json", subdirectory: "Fixtures/adam8bit"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    // The fixture's inputs, as the script computes them (libm in Double, then Float32).
    static func paramInit(_ i: Int) -> Float { Float(0.5 * cos(0.11 * Double(i))) }
    static func grad(_ i: Int, _ t: Int, _ scale: Double) -> Float {
        Float((i % 3 == 0 ? -1.0 : 1.0) * scale * (1.2 + sin(0.37 * Double(i) + 1.3 * Double(t))) * exp(-Double((i * 7) % 97) / 40.0))
    }
    static func gradients(_ t: Int, bigShape: [Int], smallShape: [Int]) -> NamedTensors {
        let nb = bigShape.reduce(1, *), ns = smallShape.reduce(1, *)
        return NamedTensors([("big", Tensor(shape: bigShape, values: (0..<nb).map { grad($0, t, 0.01) })),
                             ("small", Tensor(shape: smallShape, values: (0..<ns).map { grad($0, t, 0.01) }))])
    }

    /// The packed codes of `key.name` as bytes.
    static func codes(_ opt: Adam, _ key: String, _ name: String, count: Int) throws -> [UInt8] {
        let t = try #require(opt.buffers[name]?[key])
        return Array(UnsafeRawBufferPointer(start: t.data, count: count))
    }

    @Test func dynamicMapsAreBitsandbytes() throws {
        let f = try Self.fixture()
        #expect(DynamicQuantizationMap.signed.values == f.qmap_signed)
        #expect(DynamicQuantizationMap.unsigned.values == f.qmap_unsigned)
        #expect(DynamicQuantizationMap.signed.values.first! < -0.99 && DynamicQuantizationMap.signed.values.last == 1)
        #expect(DynamicQuantizationMap.unsigned.values.first == 0 && DynamicQuantizationMap.unsigned.values.last == 1)
    }

    @Test func blockwiseQuantizationIsBitsandbytes() throws {
        let f = try Self.fixture()
        let x = (0..<f.quantize.n).map { i in Float(sin(0.73 * Double(i)) * exp(-Double(i % 61) / 9.0)) }
        let (codes, absmax) = DynamicQuantizationMap.signed.quantize(x, blockSize: f.quantize.blocksize)
        #expect(absmax == f.quantize.absmax)
        // bitsandbytes' CPU quantizer finds the code with BinSearch's Direct2 table, which for values
        // near 0 can return a code that is not the nearest (0.0 → code 131, 2.1e-5); Nudge takes the
        // nearest. So: the same code wherever bitsandbytes' is the nearest, a nearer one elsewhere.
        let map = DynamicQuantizationMap.signed.values
        var differing = 0
        for i in x.indices {
            let normed = x[i] / absmax[i / 256]
            let nearest = map.map { abs(normed - $0) }.min()!
            let theirs = f.quantize.codes[i], ours = Int(codes[i])
            if abs(normed - map[theirs]) == nearest {
                #expect(ours == theirs || abs(normed - map[ours]) == nearest, "value \(i): code \(ours), bitsandbytes \(theirs)")
            } else {
                differing += 1
                #expect(abs(normed - map[ours]) < abs(normed - map[theirs]), "value \(i)")
            }
        }
        #expect(differing < x.count / 20, "\(differing) of \(x.count) bitsandbytes codes are not the nearest")
        // Every value comes back within half a map step of its block.
        let back = DynamicQuantizationMap.signed.dequantize(codes: codes, absmax: absmax, blockSize: f.quantize.blocksize)
        for i in x.indices { #expect(abs(back[i] - x[i]) <= 0.008 * absmax[i / 256], "value \(i)") }
    }

    /// The nearest-code lookup table agrees with a plain search over the map for values across
    /// every decade, both signs and the bucket edges.
    @Test func nearestCodeMatchesExhaustiveSearch() {
        for map in [DynamicQuantizationMap.signed, DynamicQuantizationMap.unsigned] {
            var rng = RandomGenerator(seed: 7)
            var probes: [Float] = map.values + zip(map.values, map.values.dropFirst()).map { ($0 + $1) / 2 }
            for _ in 0..<20000 {
                let magnitude = Float(pow(10.0, Double(Float(rng.uniform())) * 8 - 8))
                probes.append(map.values.first! < 0 && Float(rng.uniform()) < 0.5 ? -magnitude : magnitude)
            }
            for x in probes where x >= map.values.first! - 0.01 && x <= 1 {
                var best = 0
                for c in 1..<256 where abs(x - map.values[c]) < abs(x - map.values[best]) { best = c }
                #expect(abs(x - map.values[Int(map.code(x))]) == abs(x - map.values[best]), "x = \(x)")
            }
        }
    }

    @Test func adamw8bitStepsAreBitsandbytes() throws {
        let f = try Self.fixture(), r = f.adamw8bit
        let nb = r.big_shape.reduce(1, *)
        let model = TwoTensors(big: Tensor(shape: r.big_shape, values: (0..<nb).map(Self.paramInit)),
                               small: Tensor(shape: r.small_shape, values: (0..<r.small_shape.reduce(1, *)).map(Self.paramInit)))
        let opt = AdamW(learningRate: r.lr, beta1: r.beta1, beta2: r.beta2, eps: r.eps, weightDecay: r.weight_decay, optim: .adamw8bit)
        for t in 1...5 {
            opt.update(model, gradients: Self.gradients(t, bigShape: r.big_shape, smallShape: r.small_shape))
            guard let want = r.steps.first(where: { $0.step == t }) else { continue }
            let big = model.big.scalars
            // Step 1 starts from zero state, so only Float32 rounding separates the two; later steps
            // dequantize codes that may differ where a value sat on a rounding tie. Bound: a small
            // fraction of that step's update, plus float rounding.
            var worst: Float = 0
            for i in 0..<nb {
                let d = abs(big[i] - want.big[i])
                worst = max(worst, d)
            }
            // A one-code difference in m moves that value's update by up to ~15 % (the map's relative
            // step near 0.1), so after 5 steps a value may differ by a fraction of lr; most agree.
            #expect(worst <= (t == 1 ? 1e-7 : 0.5 * r.lr), "step \(t): largest parameter difference \(worst)")
            let meanDifference = (0..<nb).map { abs(big[$0] - want.big[$0]) }.reduce(0, +) / Float(nb)
            #expect(meanDifference <= (t == 1 ? 1e-8 : 0.01 * r.lr), "step \(t): mean parameter difference \(meanDifference)")
            // absmax of each block: the same moments up to rounding; v's differ by up to ~1.3e-5
            // relative because Adam takes 1 − β₂ in Float32 (1 − Float(0.999) = 0.00099998713),
            // torch in Double.
            let a1 = try #require(opt.buffers["absmax1"]?["big"]).scalars, a2 = try #require(opt.buffers["absmax2"]?["big"]).scalars
            for b in a1.indices {
                #expect(abs(a1[b] - want.absmax1[b]) <= 1e-6 * want.absmax1[b], "step \(t) absmax1[\(b)]")
                #expect(abs(a2[b] - want.absmax2[b]) <= 3e-5 * want.absmax2[b], "step \(t) absmax2[\(b)]")
            }
            // Codes: all equal after step 1; at most one map step apart (rare ties) after step 5.
            let c1 = try Self.codes(opt, "big", "state1", count: nb), c2 = try Self.codes(opt, "big", "state2", count: nb)
            let off1 = (0..<nb).filter { Int(c1[$0]) != want.state1[$0] }, off2 = (0..<nb).filter { Int(c2[$0]) != want.state2[$0] }
            if t == 1 {
                // From zero state m = (1 − β₁)g and v = (1 − β₂)g² exactly; every code Nudge stores is
                // the nearest to m/absmax (v/absmax), and where bitsandbytes' differs its code is not
                // nearer (its BinSearch can stop one code off).
                let g = Self.gradients(1, bigShape: r.big_shape, smallShape: r.small_shape)["big"]!.scalars
                for (codes, theirs, map, absmax, moment) in [(c1, want.state1, DynamicQuantizationMap.signed, a1, { (x: Float) in (1 - r.beta1) * x }),
                                                             (c2, want.state2, DynamicQuantizationMap.unsigned, a2, { (x: Float) in (1 - r.beta2) * x * x })] {
                    var differing = 0
                    for i in 0..<nb {
                        let normed = moment(g[i]) / absmax[i / 256], q = map.values
                        let nearest = q.map { abs(normed - $0) }.min()!
                        #expect(abs(normed - q[Int(codes[i])]) == nearest, "value \(i)")
                        if Int(codes[i]) != theirs[i] {
                            differing += 1
                            #expect(abs(normed - q[theirs[i]]) >= nearest)
                        }
                    }
                    // Measured with bitsandbytes 0.50.2: 7 codes of m and 105 of v (of 4224) differ.
                    #expect(differing <= nb / 20, "step 1: \(differing) codes differ")
                }
            } else {
                // Later steps carry those one-code differences on: at most one code apart, under 2 %.
                #expect(off1.allSatisfy { abs(Int(c1[$0]) - want.state1[$0]) <= 1 } && off2.allSatisfy { abs(Int(c2[$0]) - want.state2[$0]) <= 1 })
                #expect(off1.count + off2.count <= 2 * nb / 50, "step \(t): \(off1.count) + \(off2.count) codes differ")
            }
            // The 8×8 tensor (64 < min_8bit_size) keeps Float32 state, as bitsandbytes.
            #expect(want.small_state1_dtype == "torch.float32" && opt.buffers["exp_avg"]?["small"] != nil && opt.buffers["state1"]?["small"] == nil)
            for (a, b) in zip(model.small.scalars, want.small) { #expect(abs(a - b) <= 1e-7, "step \(t) small tensor") }
        }
    }

    /// The same algorithm in Float64 (dequantize, Adam, requantize by the maps), step for step.
    @Test func matchesAFloat64Reference() {
        let n = 5000, blockSize = 256, blocks = (n + blockSize - 1) / blockSize
        var rng = RandomGenerator(seed: 3)
        let p0 = (0..<n).map { _ in Float(rng.uniform()) - 0.5 }
        let model = TwoTensors(big: Tensor(shape: [n], values: p0), small: Tensor([0]))
        let opt = AdamW(learningRate: 1e-2, weightDecay: 0.1, optim: .adamw8bit)
        var p = p0.map(Double.init), q1 = [UInt8](repeating: 0, count: n), q2 = q1
        var a1 = [Double](repeating: 0, count: blocks), a2 = a1
        let map1 = DynamicQuantizationMap.signed, map2 = DynamicQuantizationMap.unsigned
        for t in 1...8 {
            let g = (0..<n).map { _ in (Float(rng.uniform()) - 0.5) * Float(pow(10.0, Double(Float(rng.uniform())) * 4 - 4)) }
            opt.update(model, gradients: NamedTensors([("big", Tensor(shape: [n], values: g)), ("small", Tensor([0]))]))
            let bc1 = 1 - pow(0.9, Double(t)), bc2 = 1 - pow(0.999, Double(t))
            for b in 0..<blocks {
                let range = (b * blockSize)..<min(n, (b + 1) * blockSize)
                var m = range.map { Double(map1.values[Int(q1[$0])]) * a1[b] }, v = range.map { Double(map2.values[Int(q2[$0])]) * a2[b] }
                for (j, i) in range.enumerated() {
                    m[j] = 0.9 * m[j] + 0.1 * Double(g[i])
                    v[j] = 0.999 * v[j] + 0.001 * Double(g[i]) * Double(g[i])
                    p[i] = p[i] * (1 - 1e-2 * 0.1) - 1e-2 / bc1 * m[j] / (v[j].squareRoot() / bc2.squareRoot() + 1e-8)
                }
                a1[b] = m.map(abs).max()!
                a2[b] = v.max()!
                for (j, i) in range.enumerated() {
                    q1[i] = a1[b] > 0 ? map1.code(Float(m[j] / a1[b])) : map1.zeroCode
                    q2[i] = a2[b] > 0 ? map2.code(Float(v[j] / a2[b])) : map2.zeroCode
                }
            }
            // Float32 against Float64 arithmetic: the parameters agree to a small fraction of lr.
            let got = model.big.scalars
            let worst = (0..<n).map { abs(Double(got[$0]) - p[$0]) }.max()!
            #expect(worst < 1e-5, "step \(t): \(worst)")
        }
    }

    /// state() → load(state:) → the same updates, bit for bit; across a safetensors checkpoint too.
    @Test func checkpointRoundTripIsExact() throws {
        let n = 4100
        var rng = RandomGenerator(seed: 5)
        func model() -> TwoTensors {
            var r = RandomGenerator(seed: 1)
            return TwoTensors(big: Tensor(shape: [41, 100], values: (0..<n).map { _ in Float(r.uniform()) }), small: Tensor([1, 2, 3]))
        }
        let grads = (0..<6).map { _ in
            NamedTensors([("big", Tensor(shape: [41, 100], values: (0..<n).map { _ in Float(rng.uniform()) - 0.5 })),
                          ("small", Tensor([Float(rng.uniform()), Float(rng.uniform()), Float(rng.uniform())]))])
        }
        let a = model(), optA = AdamW(learningRate: 1e-3, optim: .adamw8bit)
        for g in grads.prefix(3) { optA.update(a, gradients: g) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adam8bit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Checkpoint.save(model: a, optimizer: optA, step: 3, to: dir)
        let b = model(), optB = AdamW(learningRate: 1e-3, optim: .adamw8bit)
        #expect(try Checkpoint.restore(model: b, optimizer: optB, from: dir) == 3)
        #expect(optB.step == 3)
        for g in grads.suffix(3) {
            optA.update(a, gradients: g)
            optB.update(b, gradients: g)
        }
        #expect(a.big.scalars.map(\.bitPattern) == b.big.scalars.map(\.bitPattern))
        #expect(a.small.scalars.map(\.bitPattern) == b.small.scalars.map(\.bitPattern))
        let sa = optA.state(), sb = optB.state()
        #expect(sa.keys == sb.keys)
        for (key, t) in sa { #expect(t.scalars.map(\.bitPattern) == sb[key]!.scalars.map(\.bitPattern), "\(key)") }
        // 8-bit state is 2 bytes per value plus 8 bytes per block of 256 (Float32: 8 per value).
        let bytes = sa.filter { $0.0.hasPrefix("big.") }.map { $0.1.count * 4 }.reduce(0, +)
        #expect(bytes == 2 * ((n + 3) / 4) * 4 + 2 * 17 * 4)
    }

    /// The codes reach optimizer.safetensors as U8 tensors of one byte per value (bitsandbytes'
    /// uint8 state1/state2), the block scales as F32; a checkpoint written before, with the codes
    /// as Float32 words, still restores to the same state.
    @Test func codesAreStoredAsBytes() throws {
        let n = 4099
        let m = TwoTensors(big: Tensor(shape: [n], values: (0..<n).map { Self.paramInit($0) }), small: Tensor([1, 2]))
        let opt = AdamW(learningRate: 1e-3, optim: .adamw8bit)
        for t in 0..<2 { opt.update(m, gradients: Self.gradients(t, bigShape: [n], smallShape: [2])) }
        #expect(opt.packedByteCounts(for: m) == ["big.state1": n, "big.state2": n])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adam8bit-u8-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Checkpoint.save(model: m, optimizer: opt, step: 2, to: dir)
        let file = try SafeTensorsFile(url: dir.appendingPathComponent("optimizer.safetensors"))
        for name in ["state1", "state2"] {
            let entry = try #require(file.entry("big.\(name)"))
            #expect(entry.dtype == .u8 && entry.shape == [n] && entry.byteRange.count == n)
            #expect(Array(try file.rawData("big.\(name)")) == (try Self.codes(opt, "big", name, count: n)))
        }
        #expect(file.entry("big.absmax1")?.dtype == .f32 && file.entry("small.exp_avg")?.dtype == .f32)
        // Without packedBytes a U8 tensor reads as its values (0…255), as any other integer tensor.
        #expect(try Checkpoint.load(dir.appendingPathComponent("optimizer.safetensors"))["big.state1"]?.count == n)

        // The earlier layout: every state tensor as F32, codes as the bit patterns of their words.
        let old = dir.appendingPathComponent("old")
        try FileManager.default.createDirectory(at: old, withIntermediateDirectories: true)
        try Checkpoint.save(opt.state(), to: old.appendingPathComponent("optimizer.safetensors"), metadata: ["step": "2"])
        try SafeTensors.write(tensors: m.parameters().map { (name: $0.0, tensor: $0.1) }, metadata: ["step": "2"],
                              to: old.appendingPathComponent("model.safetensors"))
        for source in [dir, old] {
            let restored = AdamW(learningRate: 1e-3, optim: .adamw8bit)
            try Checkpoint.restore(model: TwoTensors(big: Tensor.zeros([n]), small: Tensor([0, 0])), optimizer: restored, from: source)
            for (key, t) in opt.state() {
                #expect(t.scalars.map(\.bitPattern) == restored.state()[key]?.scalars.map(\.bitPattern), "\(source.lastPathComponent) \(key)")
            }
        }
    }

    /// An optimizer file from another model (same keys, other sizes) is an error naming the tensor
    /// at restore, for Float32 and 8-bit state alike, not a trap or a read past a buffer mid-step.
    @Test func stateOfAnotherModelIsRefusedAtRestore() throws {
        for optim in [OptimizerName.adamwTorch, .adamw8bit] {
            func trained(_ n: Int) -> (TwoTensors, Adam) {
                let m = TwoTensors(big: Tensor(shape: [n], values: (0..<n).map { Self.paramInit($0) }), small: Tensor([1, 2]))
                let opt = AdamW(learningRate: 1e-3, optim: optim)
                opt.update(m, gradients: Self.gradients(0, bigShape: [n], smallShape: [2]))
                return (m, opt)
            }
            let (m, opt) = trained(4100), (otherModel, other) = trained(8200)
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adam-mismatch-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            try Checkpoint.save(model: m, optimizer: opt, step: 1, to: dir)
            #expect(throws: Never.self) { try Checkpoint.restore(model: m, optimizer: AdamW(optim: optim), from: dir) }
            try Checkpoint.save(other.state(), to: dir.appendingPathComponent("optimizer.safetensors"), metadata: ["step": "1"],
                                bytes: other.packedByteCounts(for: otherModel))
            do {
                try Checkpoint.restore(model: m, optimizer: AdamW(optim: optim), from: dir)
                Issue.record("\(optim): a mismatched optimizer file restored")
            } catch let error as OptimizerError {
                #expect("\(error)".contains("big."), "\(optim): \(error)")
            }
        }
    }

    @Test func stateOfTheOtherKindIsRefused() throws {
        let m = TwoTensors(big: Tensor(shape: [4096], values: [Float](repeating: 1, count: 4096)), small: Tensor([1]))
        let g = NamedTensors([("big", Tensor(shape: [4096], values: [Float](repeating: 0.1, count: 4096))), ("small", Tensor([0.1]))])
        let f32 = AdamW(learningRate: 1e-3), q8 = AdamW(learningRate: 1e-3, optim: .adamw8bit)
        f32.update(m, gradients: g)
        q8.update(m, gradients: g)
        #expect(throws: OptimizerError.self) { try AdamW(optim: .adamw8bit).load(state: f32.state()) }
        #expect(throws: OptimizerError.self) { try AdamW().load(state: q8.state()) }
        do {
            try AdamW().load(state: q8.state())
        } catch {
            #expect("\(error)".contains("big.") && "\(error)".contains("adamw_torch"))
        }
    }

    /// On a small regression the 8-bit trajectory stays beside Float32 AdamW's.
    @Test func trajectoryStaysCloseToFloat32() {
        var rng = RandomGenerator(seed: 11)
        let x = Tensor.uniform([256, 64], low: -1, high: 1, using: &rng)
        let wTrue = Tensor.uniform([64, 1], low: -1, high: 1, using: &rng)
        let y = matmul(x, wTrue)
        let start = (0..<(64 * 64)).map { _ in Float(rng.uniform()) * 0.2 - 0.1 }
        final class Net: Module {
            let w1: Tensor, w2: Tensor
            init(_ s: [Float], _ w2: [Float]) {
                w1 = Tensor(shape: [64, 64], values: s)
                self.w2 = Tensor(shape: [64, 1], values: w2)
            }
        }
        let w2 = (0..<64).map { _ in Float(rng.uniform()) * 0.2 - 0.1 }
        var losses: [[Float]] = []
        for optim in [OptimizerName.adamwTorch, .adamw8bit] {
            let net = Net(start, w2)
            let opt = AdamW(learningRate: 3e-3, weightDecay: 0, optim: optim)
            var curve: [Float] = []
            for _ in 0..<300 {
                let (l, g) = valueAndGrad(net) { n in mseLoss(matmul(matmul(x, n.w1), n.w2), y) }
                opt.update(net, gradients: g)
                curve.append(l.item())
            }
            losses.append(curve)
        }
        let (f32, q8) = (losses[0], losses[1])
        #expect(f32.last! < f32.first! / 100, "Float32 AdamW: \(f32.first!) → \(f32.last!)")
        #expect(q8.last! < q8.first! / 100, "8-bit AdamW: \(q8.first!) → \(q8.last!)")
        for i in stride(from: 0, to: 300, by: 30) {
            #expect(abs(q8[i] - f32[i]) <= 0.1 * f32[i] + 1e-3, "step \(i): 8-bit \(q8[i]) vs Float32 \(f32[i])")
        }
    }
}
