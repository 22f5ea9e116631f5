// The README's example, kept compiling and working.

import Foundation
import NudgeNN
import NudgeRL
import NudgeTensor
import Testing

@Test func readmeExampleRuns() throws {
    var rng = RandomGenerator(seed: 1)
    let model = MLP(sizes: [2, 16, 1], activation: .tanh, using: &rng)
    let x = Tensor(rows: [[0, 0], [0, 1], [1, 0], [1, 1]])
    let y = Tensor(shape: [4, 1], values: [0, 1, 1, 0])
    let optimizer = Adam(learningRate: 0.05)
    for _ in 0..<500 {
        let (_, grads) = valueAndGrad(model) { m in binaryCrossEntropyWithLogits(m(x), y) }
        optimizer.update(model, gradients: grads)
    }
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("xor-\(UUID().uuidString).safetensors")
    try model.save(to: url)
    let predictions = model(x).sigmoid().scalars
    #expect(predictions[1] > 0.5 && predictions[0] < 0.5)

    let env = CartPole.make()
    let (observation, _) = env.reset(seed: 42)
    let step = try env.step(1)
    #expect(observation.count == 4 && step.reward == 1)
}
