// Losses: mean squared error, Huber (smooth L1 with δ), cross-entropy (ignore index, label
// smoothing), binary cross-entropy with logits, categorical KL. All return the mean unless noted;
// formulas and reductions follow PyTorch's functional losses.

import NudgeTensor

/// Mean of (prediction − target)².
public func mseLoss(_ prediction: Tensor, _ target: Tensor) -> Tensor {
    (prediction - target).square().mean()
}

/// Mean Huber loss: ½d² where |d| ≤ δ, else δ(|d| − ½δ) (PyTorch's `huber_loss`).
public func huberLoss(_ prediction: Tensor, _ target: Tensor, delta: Float = 1) -> Tensor {
    let d = (prediction - target).abs()
    let quadratic = d.clamp(max: delta)
    // ½q² + δ(|d| − q): equals ½d² inside the threshold and δ(|d| − ½δ) outside.
    return (quadratic.square() * 0.5 + (d - quadratic) * delta).mean()
}

/// Mean cross-entropy of logits (…, C) against class indices (see `crossEntropy(logits:targets:)`).
public func crossEntropyLoss(
    logits: Tensor, targets: [Int], ignoreIndex: Int = -100, labelSmoothing: Float = 0
) -> Tensor {
    crossEntropy(logits: logits, targets: targets, ignoreIndex: ignoreIndex, labelSmoothing: labelSmoothing)
}

/// Mean binary cross-entropy of σ(logits) against targets in [0, 1], computed stably:
/// softplus(x) − x·y.
public func binaryCrossEntropyWithLogits(_ logits: Tensor, _ targets: Tensor) -> Tensor {
    (logits.softplus() - logits * targets).mean()
}

/// KL(p ‖ q) = Σ p (log p − log q) over the last axis for categorical distributions given by
/// logits, averaged over the leading axes.
public func categoricalKL(logitsP: Tensor, logitsQ: Tensor) -> Tensor {
    let logp = logitsP.logSoftmax(axis: -1), logq = logitsQ.logSoftmax(axis: -1)
    return (logp.exp() * (logp - logq)).sum(axis: -1).mean()
}
