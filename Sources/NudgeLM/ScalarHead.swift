// A scalar head on a causal language model's trunk, read at each row's last non-pad token: the
// shape of a reward model (Bradley–Terry, TRL's AutoModelForSequenceClassification with one label)
// and of PPO's value model. Saved and loaded as safetensors under `score.weight` (TRL's key), beside
// the trunk's own keys.

import Foundation
import NudgeNN
import NudgeTensor

/// A language-model trunk with a linear scalar head.
public final class ScalarHeadModel: Module {
    public let trunk: any CausalLanguageModel
    /// (1, H) projection without bias, as transformers' sequence-classification head.
    @Key public var score: Linear

    public init(trunk: any CausalLanguageModel, seed: UInt64 = 0) {
        self.trunk = trunk
        var rng = RandomGenerator(seed: seed)
        let h = trunk.configuration.hiddenSize
        _score = Key(wrappedValue: Linear(inputCount: h, outputCount: 1, bias: false,
                                          weightInit: .normal(std: 1 / Float(h + 1).squareRoot()), using: &rng), "score")
    }

    public override func items() -> (parameters: [(String, Tensor)], children: [(String, Module)]) {
        // The trunk's keys stay its own (model.*, lm_head.*), so a base checkpoint loads as is.
        let inner = trunk.items()
        return (inner.parameters, inner.children + [("score", score)])
    }

    /// Per-position scalars (B, T).
    public func values(_ input: TokenBatch) -> Tensor {
        score(trunk.finalHiddenStates(input)).reshaped([input.batchSize, input.length])
    }

    /// One scalar per row, read at its last non-pad token (B).
    public func callAsFunction(_ input: TokenBatch) -> Tensor {
        let all = values(input)
        let last = (0..<input.batchSize).map { r in
            (input.attentionMask?[r].lastIndex(of: true)) ?? (input.length - 1)
        }
        return all.pick(last)
    }
}
