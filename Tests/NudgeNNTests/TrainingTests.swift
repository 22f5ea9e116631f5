// Losses against hand-computed values, optimizers against hand-computed steps, schedules,
// clipping, gradient accumulation, and learning smoke tests (XOR, a regression).

import Foundation
import Testing
@testable import NudgeNN
import NudgeTensor

final class Scalar: Module {
    let x: Tensor
    init(_ v: Float) { x = Tensor([v]) }
}

@Suite("Training") struct TrainingTests {
    @Test func lossValues() {
        let p = Tensor([1, 2, 3]), t = Tensor([1, 0, 5])
        #expect(mseLoss(p, t).item() == Float(8) / 3)
        // Huber δ = 1: d = (0, 2, 2) → (0, 1.5, 1.5)
        #expect(huberLoss(p, t).item() == 1)
        // BCE with logits at 0 is log 2 whatever the target.
        #expect(abs(binaryCrossEntropyWithLogits(Tensor([0, 0]), Tensor([1, 0])).item() - Float(log(2.0))) < 1e-6)
        // KL of a distribution with itself is 0; KL((.5,.5) ‖ (.25,.75)).
        let lp = Tensor(shape: [1, 2], values: [0, 0]), lq = Tensor(shape: [1, 2], values: [0, Float(log(3.0))])
        #expect(abs(categoricalKL(logitsP: lp, logitsQ: lp).item()) < 1e-7)
        let kl = 0.5 * log(0.5 / 0.25) + 0.5 * log(0.5 / 0.75)
        #expect(abs(categoricalKL(logitsP: lp, logitsQ: lq).item() - Float(kl)) < 1e-6)
    }

    @Test func adamMatchesHandComputedSteps() {
        // f(x) = (x − 3)², x₀ = 0, lr 0.1 (PyTorch's Adam update, written out in Double).
        let model = Scalar(0)
        let opt = Adam(learningRate: 0.1)
        var x = 0.0, m = 0.0, v = 0.0
        for t in 1...5 {
            let (_, g) = valueAndGrad(model) { m in (m.x - 3).square().sum() }
            opt.update(model, gradients: g)
            let gx = 2 * (x - 3)
            m = 0.9 * m + 0.1 * gx
            v = 0.999 * v + 0.001 * gx * gx
            let bc1 = 1 - pow(0.9, Double(t)), bc2 = 1 - pow(0.999, Double(t))
            x -= 0.1 / bc1 * m / (v.squareRoot() / bc2.squareRoot() + 1e-8)
            #expect(abs(Double(model.x.item()) - x) < 1e-5, "step \(t)")
            if t == 1 { #expect(abs(model.x.item() - 0.1) < 1e-6) }  // first Adam step moves by lr
        }
    }

    @Test func adamWDecaysDecoupled() {
        let model = Scalar(2)
        let opt = AdamW(learningRate: 0.1, weightDecay: 0.5)
        opt.update(model, gradients: NamedTensors([("x", Tensor([0]))]))
        // zero gradient: only the decay acts, x·(1 − lr·wd) = 2·0.95
        #expect(abs(model.x.item() - 1.9) < 1e-6)
    }

    @Test func sgdMomentumAndNesterov() {
        for nesterov in [false, true] {
            let model = Scalar(1)
            let opt = SGD(learningRate: 0.1, momentum: 0.9, nesterov: nesterov)
            var x = 1.0, b = 0.0
            for t in 0..<3 {
                let (_, g) = valueAndGrad(model) { m in m.x.square().sum() }
                opt.update(model, gradients: g)
                let gx = 2 * x
                b = t == 0 ? gx : 0.9 * b + gx
                x -= 0.1 * (nesterov ? gx + 0.9 * b : b)
                #expect(abs(Double(model.x.item()) - x) < 1e-6)
            }
        }
    }

    @Test func rmspropStep() {
        let model = Scalar(1)
        let opt = RMSprop(learningRate: 0.01)
        opt.update(model, gradients: NamedTensors([("x", Tensor([2]))]))
        // v = 0.01·4 = 0.04, step = 0.01·2/(0.2 + 1e-8)
        #expect(abs(model.x.item() - (1 - 0.1)) < 1e-6)
    }

    @Test func clippingReturnsPreClipNorm() {
        var g = NamedTensors([("a", Tensor([3, 0])), ("b", Tensor([4]))])
        let norm = clipGradientNorm(&g, maxNorm: 1)
        #expect(norm == 5)
        #expect(abs(g.globalNorm() - 1) < 1e-5)
        var small = NamedTensors([("a", Tensor([0.3]))])
        #expect(clipGradientNorm(&small, maxNorm: 1) == 0.3 && small["a"]!.scalars == [0.3])
    }

    /// The blocked sum of squares (256 at a time) against a plain Double sum, over sizes with and
    /// without a remainder.
    @Test func globalNormOfLargeTensors() {
        var rng = RandomGenerator(seed: 5)
        let tensors = [1000, 256, 7, 4096].map { Tensor.normal([$0], using: &rng) }
        let exact = tensors.reduce(0.0) { s, t in t.scalars.reduce(s) { $0 + Double($1) * Double($1) } }.squareRoot()
        let norm = NamedTensors(tensors.enumerated().map { ("t\($0.offset)", $0.element) }).globalNorm()
        #expect(abs(Double(norm) - exact) < 1e-6 * exact)
        #expect(NamedTensors([("c", Tensor(repeating: 0.5, shape: [1000]))]).globalNorm() == Float(250.0.squareRoot()))
    }

    @Test func schedules() {
        #expect(LearningRateSchedule.constant(0.1)(100) == 0.1)
        #expect(LearningRateSchedule.linearWarmup(peak: 1, steps: 4)(1) == 0.5)
        #expect(LearningRateSchedule.linearDecay(initial: 1, steps: 4)(1) == 0.75)
        #expect(LearningRateSchedule.linearDecay(initial: 1, steps: 4)(9) == 0)
        let cosine = LearningRateSchedule.cosine(peak: 1, final: 0, steps: 10, warmup: 0)
        #expect(cosine(0) == 1 && abs(cosine(5) - 0.5) < 1e-6 && abs(cosine(10)) < 1e-6)
    }

    @Test func gradientAccumulationEqualsOneBigBatch() {
        var rng = RandomGenerator(seed: 5)
        let model = MLP(sizes: [3, 8, 1], using: &rng)
        let x = Tensor.normal([8, 3], using: &rng), y = Tensor.normal([8, 1], using: &rng)
        let (_, full) = valueAndGrad(model) { m in mseLoss(m(x), y) }
        // Two halves, each loss scaled by its share of the batch, gradients summed.
        var acc: NamedTensors?
        for half in [0..<4, 4..<8] {
            let (_, g) = valueAndGrad(model) { m in
                mseLoss(m(x.slice(axis: 0, half)), y.slice(axis: 0, half)) * 0.5
            }
            acc = acc.map { $0.adding(g) } ?? g
        }
        for (a, b) in zip(full.tensors, acc!.tensors) {
            for i in 0..<a.count { #expect(abs(a.data[i] - b.data[i]) < 1e-6) }
        }
    }

    @Test func mlpLearnsXOR() {
        var rng = RandomGenerator(seed: 1)
        let model = MLP(sizes: [2, 8, 1], activation: .tanh, using: &rng)
        let x = Tensor(rows: [[0, 0], [0, 1], [1, 0], [1, 1]]), y = Tensor(shape: [4, 1], values: [0, 1, 1, 0])
        let opt = Adam(learningRate: 0.05)
        var loss: Float = 1
        for _ in 0..<500 {
            let (l, g) = valueAndGrad(model) { m in binaryCrossEntropyWithLogits(m(x), y) }
            opt.update(model, gradients: g)
            loss = l.item()
        }
        #expect(loss < 0.05)
        let predictions = model(x).sigmoid().scalars
        #expect(predictions[0] < 0.2 && predictions[1] > 0.8 && predictions[2] > 0.8 && predictions[3] < 0.2)
    }

    @Test func mlpFitsARegression() {
        // y = sin(2x) on [−1.5, 1.5].
        var rng = RandomGenerator(seed: 2)
        let model = MLP(sizes: [1, 32, 32, 1], activation: .tanh, using: &rng)
        let x = Tensor.uniform([128, 1], low: -1.5, high: 1.5, using: &rng)
        let y = (x * 2).map { sin($0) }
        let opt = Adam(learningRate: 0.01)
        var first: Float = 0, last: Float = 0
        for step in 0..<600 {
            let (l, g) = valueAndGrad(model) { m in mseLoss(m(x), y) }
            opt.update(model, gradients: g)
            if step == 0 { first = l.item() }
            last = l.item()
        }
        #expect(last < 0.005 && last < first / 50, "loss \(first) → \(last)")
    }
}
