// Weight initializers: orthogonal with gain (Saxe et al. 2014; CleanRL's layer_init), Xavier
// (Glorot & Bengio 2010) and Kaiming (He et al. 2015), uniform and normal, normal(std), constant.
// Fan-in and fan-out follow PyTorch: for a weight (out, in, …) fan_in = in·receptive, fan_out = out·receptive.

import Foundation
import NudgeTensor

/// Ways to fill a parameter tensor.
public enum Initializer: Sendable {
    case constant(Float)
    case normal(std: Float)
    case uniform(low: Float, high: Float)
    case xavierUniform(gain: Float = 1)
    case xavierNormal(gain: Float = 1)
    /// Kaiming with `gain` (√2 for ReLU) over fan-in.
    case kaimingUniform(gain: Float = 1.41421356)
    case kaimingNormal(gain: Float = 1.41421356)
    /// A (semi-)orthogonal matrix times `gain`, from the QR decomposition of a normal matrix.
    case orthogonal(gain: Float = 1)

    /// A new tensor of `shape` drawn from this initializer.
    public func make(_ shape: [Int], using rng: inout RandomGenerator) -> Tensor {
        let receptive = shape.dropFirst(2).reduce(1, *)
        let fanIn = shape.count >= 2 ? shape[1] * receptive : (shape.first ?? 1)
        let fanOut = shape.count >= 2 ? shape[0] * receptive : (shape.first ?? 1)
        switch self {
        case .constant(let v): return Tensor(repeating: v, shape: shape)
        case .normal(let std): return Tensor.normal(shape, std: std, using: &rng)
        case .uniform(let lo, let hi): return Tensor.uniform(shape, low: lo, high: hi, using: &rng)
        case .xavierUniform(let gain):
            let a = gain * (6 / Float(fanIn + fanOut)).squareRoot()
            return Tensor.uniform(shape, low: -a, high: a, using: &rng)
        case .xavierNormal(let gain):
            return Tensor.normal(shape, std: gain * (2 / Float(fanIn + fanOut)).squareRoot(), using: &rng)
        case .kaimingUniform(let gain):
            let a = gain * (3 / Float(fanIn)).squareRoot()
            return Tensor.uniform(shape, low: -a, high: a, using: &rng)
        case .kaimingNormal(let gain):
            return Tensor.normal(shape, std: gain / Float(fanIn).squareRoot(), using: &rng)
        case .orthogonal(let gain):
            let rows = shape.first ?? 1
            let cols = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
            let q = orthogonalMatrix(rows: rows, cols: cols, using: &rng)
            return Tensor(shape: shape, values: q.map { Float($0) * gain })
        }
    }
}

/// A rows×cols matrix with orthonormal rows or columns (whichever are fewer), as PyTorch's
/// `orthogonal_`: QR of a normal matrix, with Q's columns signed by diag(R).
func orthogonalMatrix(rows: Int, cols: Int, using rng: inout RandomGenerator) -> [Double] {
    let tall = rows >= cols
    let n = tall ? rows : cols, k = tall ? cols : rows  // work on an n×k matrix, n ≥ k
    var a = (0..<(n * k)).map { _ in rng.normal() }  // column j at a[j*n ..< (j+1)*n]
    // Modified Gram–Schmidt; the norm is diag(R), positive, which fixes the sign as PyTorch does.
    for j in 0..<k {
        for p in 0..<j {
            var dot = 0.0
            for i in 0..<n { dot += a[p * n + i] * a[j * n + i] }
            for i in 0..<n { a[j * n + i] -= dot * a[p * n + i] }
        }
        var norm = 0.0
        for i in 0..<n { norm += a[j * n + i] * a[j * n + i] }
        norm = norm.squareRoot()
        for i in 0..<n { a[j * n + i] /= norm }
    }
    var out = [Double](repeating: 0, count: rows * cols)
    for r in 0..<rows {
        for c in 0..<cols {
            out[r * cols + c] = tall ? a[c * n + r] : a[r * n + c]
        }
    }
    return out
}
