// The scalar head reads the last real token, ignores padding, trains, and saves/loads.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Scalar head") struct ScalarHeadTests {
    @Test func readsTheLastRealTokenAndIgnoresPadding() throws {
        let trunk = try LanguageModelLoader.load(directory: lmFixture("llama"))
        let model = ScalarHeadModel(trunk: trunk, seed: 1)
        let plain = withoutGradients { model(TokenBatch(ids: [[4, 5, 6]])) }
        // Right padding after the real tokens: the value at token 6 must not change.
        let padded = withoutGradients { model(TokenBatch(ids: [[4, 5, 6, 0, 0]], attentionMask: [[true, true, true, false, false]])) }
        #expect(abs(plain.item() - padded.item()) < 1e-5)
        let perPosition = withoutGradients { model.values(TokenBatch(ids: [[4, 5, 6]])) }
        #expect(perPosition.scalars[2] == plain.item())
    }

    @Test func keysTrainingAndRoundTrip() throws {
        let dir = try lmFixture("llama")
        let model = ScalarHeadModel(trunk: try LanguageModelLoader.load(directory: dir), seed: 2)
        #expect(model.parameters().keys.contains("score.weight"))
        #expect(model.parameters().keys.contains("model.embed_tokens.weight"))
        model.trunk.freeze()
        #expect(model.trainableParameters().keys == ["score.weight"])
        // Bradley–Terry on one pair: the margin grows.
        let chosen = TokenBatch(ids: [[3, 4, 5]]), rejected = TokenBatch(ids: [[3, 4, 9]])
        let optimizer = Adam(learningRate: 0.05)
        func margin() -> Float { withoutGradients { (model(chosen) - model(rejected)).item() } }
        let before = margin()
        for _ in 0..<20 {
            let (_, g) = valueAndGrad(model) { m in -(m(chosen) - m(rejected)).logSigmoid().mean() }
            optimizer.update(model, gradients: g)
        }
        #expect(margin() > before + 0.5)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rm-\(UUID().uuidString).safetensors")
        try model.save(to: url)
        let other = ScalarHeadModel(trunk: try LanguageModelLoader.load(directory: dir), seed: 3)
        try other.load(from: url)
        #expect(withoutGradients { other(chosen).item() } == withoutGradients { model(chosen).item() })
    }
}
