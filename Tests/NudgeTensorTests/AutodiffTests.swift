// Tape semantics: recording only when needed, withoutGradients, stop-gradient, release after
import Foundation
// backward.

import Testing
@testable import NudgeTensor

@Suite("Autodiff") struct AutodiffTests {
    @Test func untrackedOpsRecordNothing() {
        let x = Tensor([1, 2, 3])
        let y = (x * 2).exp()
        #expect(y.tape == nil)
        #expect(!y.isTracked)
    }

    @Test func withoutGradientsPausesTheTape() {
        let x = Tensor([1, 2, 3])
        var inside: Tensor?
        let (_, g) = valueAndGrad([x]) { xs in
            inside = withoutGradients { xs[0] * 5 }
            return (xs[0] * inside!).sum()
        }
        #expect(inside?.tape == nil)
        // inside is a constant 5x: d/dx Σ x·c = c.
        #expect(g[0].scalars == [5, 10, 15])
    }

    @Test func detachStopsTheGradient() {
        let x = Tensor([2])
        let g = grad([x]) { xs in (xs[0] * xs[0].detached()).sum() }
        #expect(g[0].scalars == [2])  // not 4
    }

    @Test func leavesAreUntrackedAfterwardAndTapeIsReleased() {
        let x = Tensor([1, 2])
        weak var savedTape: Tape?
        let (value, g) = valueAndGrad(at: [x]) {
            savedTape = x.tape
            return (x.exp() * x).sum()
        }
        #expect(x.tape == nil && value.tape == nil)
        #expect(savedTape == nil, "the tape and its saved activations are freed after backward")
        #expect(g[0].count == 2)
    }

    @Test func unusedLeafGetsZeroGradient() {
        let a = Tensor([1, 2]), b = Tensor([3])
        let g = grad([a, b]) { xs in xs[0].sum() }
        #expect(g[1].scalars == [0])
    }

    @Test func nonScalarValueSeedsOnes() {
        let x = Tensor([1, 2, 3])
        let g = grad([x]) { xs in xs[0] * 3 }
        #expect(g[0].scalars == [3, 3, 3])
    }
}

@Suite("Storage") struct StorageTests {
    @Test func alignedAndReused() {
        let a = Tensor.zeros([1000])
        #expect(Int(bitPattern: a.data) % 64 == 0)
        let address = a.data
        _ = consume a
        let b = Tensor.zeros([1000])  // same size class: served from the pool
        #expect(b.data == address)
    }

    @Test func sizeClassesBoundWaste() {
        for n in [1, 16, 17, 4096, 4097, 5000, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let (cap, index) = BufferPool.sizeClass(n)
            #expect(cap >= n && Double(cap) <= Swift.max(16, Double(n) * 2))
            if n > 4096 { #expect(Double(cap) <= Double(n) * 1.25 + 1) }
            #expect(BufferPool.sizeClass(cap).index == index)
        }
    }
}

@Suite("Random") struct RandomTests {
    @Test func sameSeedSameNumbers() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
        let xs = (0..<5).map { _ in a.next() }
        #expect(xs == (0..<5).map { _ in b.next() })
        #expect(xs != (0..<5).map { _ in c.next() })
        let s1 = a.derive(stream: 1), s2 = a.derive(stream: 2)
        #expect(s1 != s2)
        #expect(s1 == RandomGenerator(seed: 42).derive(stream: 1), "streams depend only on the seed")
    }

    @Test func distributionMoments() {
        var rng = RandomGenerator(seed: 7)
        let n = 200_000
        func mean(_ f: () -> Double) -> (Double, Double) {
            var s = 0.0, s2 = 0.0
            for _ in 0..<n { let x = f(); s += x; s2 += x * x }
            return (s / Double(n), s2 / Double(n) - (s / Double(n)) * (s / Double(n)))
        }
        let u = mean { rng.uniform() }
        #expect(abs(u.0 - 0.5) < 0.005 && abs(u.1 - 1.0 / 12) < 0.002)
        let z = mean { rng.normal() }
        #expect(abs(z.0) < 0.01 && abs(z.1 - 1) < 0.01)
        // Shape, not just moments: tail and central masses of N(0, 1).
        var beyond3 = 0, within1 = 0, kurtosis = 0.0
        for _ in 0..<n {
            let x = rng.normal()
            if abs(x) > 3 { beyond3 += 1 }
            if abs(x) < 1 { within1 += 1 }
            kurtosis += x * x * x * x
        }
        #expect(abs(Double(beyond3) / Double(n) - 0.0027) < 0.0006)
        #expect(abs(Double(within1) / Double(n) - 0.6827) < 0.005)
        #expect(abs(kurtosis / Double(n) - 3) < 0.1)
        let g = mean { rng.gumbel() }
        #expect(abs(g.0 - 0.5772) < 0.01)
        let ga = mean { rng.gamma(shape: 2.5) }
        #expect(abs(ga.0 - 2.5) < 0.03 && abs(ga.1 - 2.5) < 0.06)
        let small = mean { rng.gamma(shape: 0.4) }
        #expect(abs(small.0 - 0.4) < 0.01)
        let be = mean { rng.beta(2, 5) }
        #expect(abs(be.0 - 2.0 / 7) < 0.005)
        let bern = mean { rng.bernoulli(0.3) ? 1 : 0 }
        #expect(abs(bern.0 - 0.3) < 0.005)
        var counts = [0, 0, 0]
        for _ in 0..<n { counts[rng.categorical(probabilities: [0.2, 0.5, 0.3])] += 1 }
        #expect(abs(Double(counts[1]) / Double(n) - 0.5) < 0.005)
        counts = [0, 0, 0]
        let logits: [Float] = [0, Float(Foundation.log(2.0)), -.infinity]
        for _ in 0..<n { counts[rng.categorical(logits: logits)] += 1 }
        #expect(abs(Double(counts[1]) / Double(n) - 2.0 / 3) < 0.005 && counts[2] == 0)
    }
}
