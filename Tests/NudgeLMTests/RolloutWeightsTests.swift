// bf16 rollout weights: untaped products of few rows read the bf16 copy inside the scope and the
// Float32 weight everywhere else; generating with them equals generating with a model whose
// weights were rounded to bf16, and the copies are gone after the call.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
@testable import NudgeTensor

/// `x` rounded to the nearest bf16 value (ties to even), as a Float32.
private func roundedToBF16(_ x: Float) -> Float {
    let u = x.bitPattern
    return Float(bitPattern: (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000)
}

@Suite("bf16 rollout weights") struct RolloutWeightsTests {
    @Test func fewUntapedRowsReadTheCopyOnlyInsideTheScope() {
        var rng = RandomGenerator(seed: 3)
        let w = Tensor.normal([40, 70], using: &rng), few = Tensor.normal([3, 70], using: &rng), many = Tensor.normal([40, 70], using: &rng)
        let exactFew = linear(few, weight: w, bias: nil), exactMany = linear(many, weight: w, bias: nil)
        let bf16Few = QuantizedMatrix(quantizing: w, format: .bf16).bf16Product(few, kernel: RolloutWeights.kernel)
        #expect(exactFew.scalars != bf16Few.scalars)
        let exactGradient = grad([few]) { linear($0[0], weight: w, bias: nil).sum() }[0]
        let other = Tensor.normal([40, 70], using: &rng), otherExact = linear(few, weight: other, bias: nil)
        RolloutWeights.with(bf16: [w]) {
            #expect(linear(few, weight: w, bias: nil).scalars == bf16Few.scalars)
            // More than 32 rows: the Float32 product (prompts), as sgemm computes it.
            #expect(linear(many, weight: w, bias: nil).scalars == exactMany.scalars)
            // A product recorded for gradients keeps the Float32 weight.
            #expect(grad([few]) { linear($0[0], weight: w, bias: nil).sum() }[0].scalars == exactGradient.scalars)
            // Another weight of the same shape is not replaced.
            #expect(linear(few, weight: other, bias: nil).scalars == otherExact.scalars)
        }
        #expect(linear(few, weight: w, bias: nil).scalars == exactFew.scalars)
        #expect(!RolloutWeights.hasCopy(w))
    }

    @Test(arguments: ["llama", "qwen2", "gemma3", "gpt2"])
    func generatingInBF16EqualsAModelWithRoundedWeights(_ name: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(name))
        let rounded = try LanguageModelLoader.load(directory: lmFixture(name))
        let weights = linearWeights(of: rounded)
        #expect(!weights.isEmpty)
        for w in weights { for i in 0..<w.count { w.data[i] = roundedToBF16(w.data[i]) } }
        // A tied head is also the embedding table, whose lookups read Float32 values: round it in
        // both models so only the products differ between them.
        if let head = model.plainHeadWeight { for i in 0..<head.count { head.data[i] = roundedToBF16(head.data[i]) } }
        var config = GenerationConfig(maxNewTokens: 10, temperature: 0.9, seed: 7)
        // Prompts of at most 32 tokens in all: the prefill runs on the copies too.
        let prompts = [[5, 17, 99, 3], [7, 8, 9]]
        let reference = generate(model: rounded, prompts: prompts, config: config)
        let before = linearWeights(of: model).map(\.scalars)
        // On a kernel that keeps x in Float32 (AVX512_BF16's rounds x too, so it is compared below
        // with the scope this call opens).
        let widening = BF16Kernel.active == .dot ? BF16Kernel.avx512 : BF16Kernel.active
        let result = RolloutWeights.with(bf16: linearWeights(of: model), kernel: widening) { generate(model: model, prompts: prompts, config: config) }
        #expect(result.tokens == reference.tokens)
        for (a, b) in zip(result.logProbs.joined(), reference.logProbs.joined()) { #expect(abs(a - b) < 1e-4) }
        #expect(!linearWeights(of: model).contains(where: RolloutWeights.hasCopy))
        // `weights = .bf16` opens that scope on the rollout kernel.
        let direct = RolloutWeights.with(bf16: linearWeights(of: model)) { generate(model: model, prompts: prompts, config: config) }
        config.weights = .bf16
        let viaConfig = generate(model: model, prompts: prompts, config: config)
        #expect(viaConfig.tokens == direct.tokens && viaConfig.logProbs == direct.logProbs)
        // The Float32 weights are untouched.
        #expect(linearWeights(of: model).map(\.scalars) == before)
    }
}
