// Activation checkpointing of a module (transformers' `gradient_checkpointing`): the module's
// forward keeps only its input, and backward recomputes it (NudgeTensor's `checkpointed`), with the
// module's dropout masks drawn again from the same random states.

import NudgeTensor

extension Module {
    /// `body(x)` (this module's forward) under activation checkpointing: only `x` is kept for
    /// backward, which recomputes `body` with every dropout layer of this module rewound to the state
    /// it had, so the gradients equal those of `body(x)` computed directly. `body` must read no
    /// tracked tensor besides `x` and this module's parameters. Without an active tape it is `body(x)`.
    public func checkpointed(_ x: Tensor, _ body: @escaping (Tensor) -> Tensor) -> Tensor {
        let dropouts = Checkpoint.dropoutLayers(in: self).map(\.layer).filter { $0.probability > 0 && $0.isTraining }
        let rewindPoint: (() -> () -> Void)? = dropouts.isEmpty ? nil : {
            let states = dropouts.map(\.randomState)
            return { for (layer, state) in zip(dropouts, states) { layer.randomState = state } }
        }
        return NudgeTensor.checkpointed(x, parameters: parameters().tensors, rewindPoint: rewindPoint, body)
    }
}
