// Optimizers (SGD with momentum and Nesterov, Adam, AdamW, RMSprop), global-norm clipping and
// learning-rate schedules. Update rules and defaults follow torch.optim exactly, so a run matches
// PyTorch's arithmetic step for step. Each update is one fused pass per parameter.

import Foundation
import NudgeTensor

/// Optimizer errors (loading state).
public enum OptimizerError: Error, CustomStringConvertible, Equatable {
    case missingState(String)
    case shapeMismatch(key: String, expected: [Int], actual: [Int])
    case stateKind(key: String, reason: String)

    public var description: String {
        switch self {
        case .missingState(let k): "optimizer state '\(k)' is missing"
        case .shapeMismatch(let k, let e, let a): "optimizer state '\(k)' has shape \(a), expected \(e)"
        case .stateKind(let k, let r): "optimizer state '\(k)' \(r)"
        }
    }
}

/// An optimizer that updates a module's trainable parameters in place from gradients.
public protocol Optimizer: AnyObject {
    /// The step size; a schedule may change it between steps.
    var learningRate: Float { get set }
    /// Steps taken so far.
    var step: Int { get }
    /// Applies one update to `model`'s trainable parameters.
    func update(_ model: Module, gradients: NamedTensors)
    /// The internal state (moments, step) as named tensors, for checkpoints.
    func state() -> NamedTensors
    /// Restores state saved by `state()`.
    func load(state: NamedTensors) throws
    /// Entries of `state()` holding bytes packed four to a Float32 word, with their byte counts
    /// (from `model`'s parameter sizes): checkpoints store them as U8 (bitsandbytes' uint8 codes),
    /// not as Float32 bit patterns.
    func packedByteCounts(for model: Module) -> [String: Int]
    /// Throws for restored state that does not fit `model`: a buffer whose parameter (the same key
    /// in `model`) needs another shape. A mismatched optimizer file is an error naming the tensor,
    /// never an update that reads past its buffers.
    func checkState(against model: Module) throws
}

extension Optimizer {
    public func packedByteCounts(for model: Module) -> [String: Int] { [:] }
    public func checkState(against model: Module) throws {}
}

/// Shared bookkeeping: per-parameter state buffers keyed by parameter key.
open class StatefulOptimizer {
    public var learningRate: Float
    public private(set) var step = 0
    /// Per-parameter buffers: `buffers[name][key]`.
    var buffers: [String: [String: Tensor]] = [:]
    let bufferNames: [String]

    init(learningRate: Float, bufferNames: [String]) {
        self.learningRate = learningRate
        self.bufferNames = bufferNames
        for name in bufferNames { buffers[name] = [:] }
    }

    /// The shape buffer `name` of parameter `p` has: the parameter's own (Adam's 8-bit codes and
    /// block scales differ).
    func expectedShape(of name: String, for p: Tensor) -> [Int] { p.shape }

    /// `Optimizer.checkState(against:)`. Buffers of keys `model` lacks are left alone: an
    /// optimizer may serve a submodule, keyed from there, and such buffers are never read.
    public func checkState(against model: Module) throws {
        var parameters: [String: Tensor] = [:]
        for (key, tensor, _) in model.namedParameters() { parameters[key] = tensor }
        for name in bufferNames {
            for (key, t) in (buffers[name] ?? [:]).sorted(by: { $0.key < $1.key }) {
                guard let p = parameters[key] else { continue }
                let expected = expectedShape(of: name, for: p)
                guard t.shape == expected else { throw OptimizerError.shapeMismatch(key: "\(key).\(name)", expected: expected, actual: t.shape) }
            }
        }
    }

    func buffer(_ name: String, for key: String, like p: Tensor) -> Tensor {
        if let b = buffers[name]?[key] { return b }
        let b = Tensor.zeros(p.shape)
        buffers[name]![key] = b
        return b
    }

    /// A flat buffer of `count` values (zeros when new); a restored one of another size is a
    /// broken checkpoint.
    func buffer(_ name: String, for key: String, count: Int) -> Tensor {
        if let b = buffers[name]?[key] {
            precondition(b.count == count, "optimizer state '\(key).\(name)' has \(b.count) values, expected \(count)")
            return b
        }
        let b = Tensor.zeros([count])
        buffers[name]![key] = b
        return b
    }

    /// Calls `body(key, parameter, gradient)` for each trainable parameter with a gradient.
    func forEachParameter(_ model: Module, _ gradients: NamedTensors, _ body: (String, Tensor, Tensor) -> Void) {
        step += 1
        for (key, parameter) in model.trainableParameters() {
            guard let g = gradients[key] else { continue }
            precondition(g.shape == parameter.shape, "gradient for '\(key)' has shape \(g.shape), parameter \(parameter.shape)")
            body(key, parameter, g)
        }
    }

    public func state() -> NamedTensors {
        var pairs: [(String, Tensor)] = [("step", Tensor(Float(step)))]
        for name in bufferNames {
            for (key, t) in (buffers[name] ?? [:]).sorted(by: { $0.key < $1.key }) { pairs.append(("\(key).\(name)", t)) }
        }
        return NamedTensors(pairs)
    }

    public func load(state: NamedTensors) throws {
        guard let s = state["step"] else { throw OptimizerError.missingState("step") }
        step = Int(s.item())
        for name in bufferNames { buffers[name] = [:] }
        for (key, t) in state where key != "step" {
            guard let dot = key.lastIndex(of: "."), bufferNames.contains(String(key[key.index(after: dot)...])) else {
                throw OptimizerError.missingState(key)
            }
            buffers[String(key[key.index(after: dot)...])]![String(key[..<dot])] = t.copy()
        }
    }
}

/// Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay
/// (torch.optim.SGD).
public final class SGD: StatefulOptimizer, Optimizer {
    public var momentum: Float
    public var dampening: Float
    public var nesterov: Bool
    public var weightDecay: Float

    public init(learningRate: Float, momentum: Float = 0, dampening: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        super.init(learningRate: learningRate, bufferNames: ["momentum_buffer"])
    }

    public func update(_ model: Module, gradients: NamedTensors) {
        let lr = learningRate, mu = momentum, damp = dampening, wd = weightDecay, nesterov = nesterov
        forEachParameter(model, gradients) { key, p, g in
            let first = buffers["momentum_buffer"]![key] == nil
            let b = buffer("momentum_buffer", for: key, like: p)
            let pd = p.data, gd = g.data, bd = b.data
            for i in 0..<p.count {
                var d = gd[i] + wd * pd[i]
                if mu != 0 {
                    bd[i] = first ? d : mu * bd[i] + (1 - damp) * d
                    d = nesterov ? d + mu * bd[i] : bd[i]
                }
                pd[i] -= lr * d
            }
        }
    }
}

/// How Adam keeps its moments.
public enum AdamStateStorage: Sendable, Equatable {
    /// Float32 m and v (torch.optim.Adam/AdamW).
    case float32
    /// bitsandbytes' blockwise 8-bit state (Adam8bit/AdamW8bit): m and v of tensors with at least
    /// `minimumSize` values as one byte per value (codes of the signed and unsigned dynamic maps)
    /// plus one Float32 absmax per `blockSize` values; smaller tensors keep Float32 state.
    case blockwise8bit(blockSize: Int = 256, minimumSize: Int = 4096)
}

/// The AdamW implementations a trainer can build, by Hugging Face TrainingArguments' `optim` names.
public enum OptimizerName: String, CaseIterable, Sendable {
    /// torch.optim.AdamW: Float32 moments.
    case adamwTorch = "adamw_torch"
    /// bitsandbytes' AdamW8bit: blockwise 8-bit moments (about a quarter of the memory).
    case adamw8bit = "adamw_8bit"

    /// The state storage this name stands for.
    public var stateStorage: AdamStateStorage {
        switch self {
        case .adamwTorch: .float32
        case .adamw8bit: .blockwise8bit()
        }
    }
}

/// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019, decoupled weight decay), as
/// torch.optim.Adam / AdamW: p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε). With
/// `.blockwise8bit` state, as bitsandbytes' 8-bit Adam: each block of m and v is dequantized, takes
/// the same Float32 update, and is requantized with its new absmax.
public final class Adam: StatefulOptimizer, Optimizer {
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    /// Decoupled weight decay (AdamW) when `decoupled`, else L2 added to the gradient (Adam).
    public var weightDecay: Float
    public let decoupled: Bool
    /// Which parameters receive weight decay (default: all, as PyTorch; e.g. `{ $1.rank >= 2 }`
    /// excludes biases and norm gains).
    public var decayFilter: @Sendable (String, Tensor) -> Bool
    /// How the moments are stored.
    public let stateStorage: AdamStateStorage

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = false, stateStorage: AdamStateStorage = .float32,
                decayFilter: @escaping @Sendable (String, Tensor) -> Bool = { _, _ in true }) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupled = decoupled
        self.decayFilter = decayFilter
        self.stateStorage = stateStorage
        if case .blockwise8bit(let blockSize, let minimumSize) = stateStorage {
            precondition(blockSize > 0 && blockSize % 4 == 0 && minimumSize >= 0, "8-bit Adam: block size must be a positive multiple of 4")
        }
        // bitsandbytes' state names for the 8-bit moments: codes (state1/state2) and block scales (absmax1/absmax2).
        super.init(learningRate: learningRate, bufferNames: ["exp_avg", "exp_avg_sq"] + Self.quantizedNames)
    }

    static let quantizedNames = ["state1", "state2", "absmax1", "absmax2"]

    override func expectedShape(of name: String, for p: Tensor) -> [Int] {
        guard case .blockwise8bit(let blockSize, _) = stateStorage else { return p.shape }
        switch name {
        case "state1", "state2": return [(p.count + 3) / 4]
        case "absmax1", "absmax2": return [(p.count + blockSize - 1) / blockSize]
        default: return p.shape
        }
    }

    /// The 8-bit codes (state1, state2), one byte per value of their parameter in `model` (the
    /// buffers round it up to whole words; a key `model` lacks counts its whole words).
    public func packedByteCounts(for model: Module) -> [String: Int] {
        var sizes: [String: Int] = [:]
        for (key, tensor, _) in model.namedParameters() { sizes[key] = tensor.count }
        var counts: [String: Int] = [:]
        for name in ["state1", "state2"] {
            for (key, codes) in buffers[name] ?? [:] { counts["\(key).\(name)"] = sizes[key] ?? 4 * codes.count }
        }
        return counts
    }

    public func update(_ model: Module, gradients: NamedTensors) {
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = eps
        let t = Float(step + 1)
        let bc1 = 1 - Foundation.pow(b1, t), bc2 = 1 - Foundation.pow(b2, t)
        let stepSize = lr / bc1, bc2Sqrt = bc2.squareRoot()
        forEachParameter(model, gradients) { key, p, g in
            let wd = decayFilter(key, p) ? weightDecay : 0
            let decay: Float = decoupled ? 1 - lr * wd : 1
            let l2: Float = decoupled ? 0 : wd
            if case .blockwise8bit(let blockSize, let minimumSize) = stateStorage, p.count >= minimumSize {
                updateQuantized(key, p, g, blockSize: blockSize, b1, b2, eps, stepSize, bc2Sqrt, decay, l2)
                return
            }
            let m = buffer("exp_avg", for: key, like: p), v = buffer("exp_avg_sq", for: key, like: p)
            adamKernel(p.data, g.data, m.data, v.data, p.count, b1, b2, eps, stepSize, bc2Sqrt, decay, l2)
        }
    }

    /// One 8-bit update of `p`: per block, dequantize m and v, `adamKernel`, requantize. Blocks are
    /// independent, so threads split them without changing any result.
    private func updateQuantized(_ key: String, _ p: Tensor, _ g: Tensor, blockSize: Int, _ b1: Float, _ b2: Float,
                                 _ eps: Float, _ stepSize: Float, _ bc2Sqrt: Float, _ decay: Float, _ l2: Float) {
        let n = p.count, blocks = (n + blockSize - 1) / blockSize
        // Codes live four to a Float32 word of a pool tensor, so the checkpoint writes and reads them
        // byte for byte (an all-zero absmax makes any codes stand for 0, so zeroed buffers are a valid start).
        let codes1 = buffer("state1", for: key, count: (n + 3) / 4), codes2 = buffer("state2", for: key, count: (n + 3) / 4)
        let absmax1 = buffer("absmax1", for: key, count: blocks), absmax2 = buffer("absmax2", for: key, count: blocks)
        let pd = UncheckedSendablePointers(p.data, g.data, codes1.data, codes2.data, absmax1.data, absmax2.data)
        let map1 = DynamicQuantizationMap.signed, map2 = DynamicQuantizationMap.unsigned
        parallelRanges(blocks, minimum: Engine.parallelThreshold / blockSize, grain: 1) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * blockSize) { scratch in
                let m = scratch.baseAddress!, v = m + blockSize
                let c1 = UnsafeMutableRawPointer(pd.codes1), c2 = UnsafeMutableRawPointer(pd.codes2)
                for b in range {
                    let o = b * blockSize, count = Swift.min(blockSize, n - o)
                    map1.dequantizeBlock(c1 + o, count, absmax: pd.absmax1[b], into: m)
                    map2.dequantizeBlock(c2 + o, count, absmax: pd.absmax2[b], into: v)
                    adamKernel(pd.p + o, pd.g + o, m, v, count, b1, b2, eps, stepSize, bc2Sqrt, decay, l2)
                    pd.absmax1[b] = map1.quantizeBlock(m, count, into: c1 + o)
                    pd.absmax2[b] = map2.quantizeBlock(v, count, into: c2 + o)
                }
            }
        }
    }

    /// Restores state saved by `state()`; state of the other storage kind (a Float32 checkpoint
    /// loaded into 8-bit Adam, or the reverse) is an error naming the tensor.
    public override func load(state: NamedTensors) throws {
        var blockwise = false, minimumSize = Int.max
        if case .blockwise8bit(_, let m) = stateStorage { blockwise = true; minimumSize = m }
        for (key, t) in state {
            if !blockwise, let name = Self.quantizedNames.first(where: { key.hasSuffix("." + $0) }) {
                throw OptimizerError.stateKind(key: key, reason: "holds 8-bit state (\(name)); this Adam keeps Float32 moments (optim=adamw_torch)")
            }
            if blockwise, key.hasSuffix(".exp_avg") || key.hasSuffix(".exp_avg_sq"), t.count >= minimumSize {
                throw OptimizerError.stateKind(key: key, reason: "holds Float32 moments of \(t.count) values; this Adam keeps 8-bit state for tensors of \(minimumSize) or more (optim=adamw_8bit)")
            }
        }
        try super.load(state: state)
    }
}

/// Raw pointers of one 8-bit update, passed to the threads that split its blocks (each thread
/// writes only its own blocks).
private struct UncheckedSendablePointers: @unchecked Sendable {
    let p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>
    let codes1: UnsafeMutablePointer<Float>, codes2: UnsafeMutablePointer<Float>
    let absmax1: UnsafeMutablePointer<Float>, absmax2: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ codes1: UnsafeMutablePointer<Float>,
         _ codes2: UnsafeMutablePointer<Float>, _ absmax1: UnsafeMutablePointer<Float>, _ absmax2: UnsafeMutablePointer<Float>) {
        self.p = p; self.g = g; self.codes1 = codes1; self.codes2 = codes2; self.absmax1 = absmax1; self.absmax2 = absmax2
    }
}

/// One fused Adam pass, eight lanes at a time (the tail lane by lane with the same arithmetic).
@inline(__always)
func adamKernel(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                _ v: UnsafeMutablePointer<Float>, _ n: Int, _ b1: Float, _ b2: Float, _ eps: Float,
                _ stepSize: Float, _ bc2Sqrt: Float, _ decay: Float, _ l2: Float) {
    var i = 0
    let rp = UnsafeMutableRawPointer(p), rg = UnsafeRawPointer(g), rm = UnsafeMutableRawPointer(m), rv = UnsafeMutableRawPointer(v)
    while i + 8 <= n {
        let o = i * 4
        var pv = rp.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
        let gi = rg.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + l2 * pv
        pv *= decay
        let mv = b1 * rm.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + (1 - b1) * gi
        let vv = b2 * rv.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + (1 - b2) * gi * gi
        pv -= stepSize * mv / (vsqrt(vv) / bc2Sqrt + eps)
        rp.storeBytes(of: pv, toByteOffset: o, as: SIMD8<Float>.self)
        rm.storeBytes(of: mv, toByteOffset: o, as: SIMD8<Float>.self)
        rv.storeBytes(of: vv, toByteOffset: o, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n {
        let gi = g[i] + l2 * p[i]
        p[i] *= decay
        m[i] = b1 * m[i] + (1 - b1) * gi
        v[i] = b2 * v[i] + (1 - b2) * gi * gi
        p[i] -= stepSize * m[i] / (v[i].squareRoot() / bc2Sqrt + eps)
        i += 1
    }
}

/// AdamW with PyTorch's defaults (weight decay 0.01); `optim` picks Float32 or 8-bit moments.
public func AdamW(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                  weightDecay: Float = 0.01, optim: OptimizerName = .adamwTorch,
                  decayFilter: @escaping @Sendable (String, Tensor) -> Bool = { _, _ in true }) -> Adam {
    Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
         decoupled: true, stateStorage: optim.stateStorage, decayFilter: decayFilter)
}

/// RMSprop (torch.optim.RMSprop): v ← αv + (1−α)g², p ← p − lr·g/(√v + ε), optional momentum
/// and centering.
public final class RMSprop: StatefulOptimizer, Optimizer {
    public var alpha: Float
    public var eps: Float
    public var momentum: Float
    public var centered: Bool
    public var weightDecay: Float

    public init(learningRate: Float = 1e-2, alpha: Float = 0.99, eps: Float = 1e-8, momentum: Float = 0,
                centered: Bool = false, weightDecay: Float = 0) {
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        self.centered = centered
        self.weightDecay = weightDecay
        super.init(learningRate: learningRate, bufferNames: ["square_avg", "momentum_buffer", "grad_avg"])
    }

    public func update(_ model: Module, gradients: NamedTensors) {
        let lr = learningRate, a = alpha, eps = eps, mu = momentum, wd = weightDecay, centered = centered
        forEachParameter(model, gradients) { key, p, g in
            let v = buffer("square_avg", for: key, like: p)
            let b = mu > 0 ? buffer("momentum_buffer", for: key, like: p) : nil
            let ga = centered ? buffer("grad_avg", for: key, like: p) : nil
            let pd = p.data, gd = g.data, vd = v.data
            for i in 0..<p.count {
                let gi = gd[i] + wd * pd[i]
                vd[i] = a * vd[i] + (1 - a) * gi * gi
                var avg = vd[i]
                if let ga {
                    ga.data[i] = a * ga.data[i] + (1 - a) * gi
                    avg -= ga.data[i] * ga.data[i]
                }
                let denom = avg.squareRoot() + eps
                if let b {
                    b.data[i] = mu * b.data[i] + gi / denom
                    pd[i] -= lr * b.data[i]
                } else {
                    pd[i] -= lr * gi / denom
                }
            }
        }
    }
}

/// Scales `gradients` so their global L2 norm is at most `maxNorm` (torch's clip_grad_norm_:
/// factor maxNorm/(norm + 1e-6) when below 1). Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ gradients: inout NamedTensors, maxNorm: Float) -> Float {
    let norm = gradients.globalNorm()
    let factor = maxNorm / (norm + 1e-6)
    if factor < 1 {
        // One tensor at a time, each replaced as soon as it is scaled: a whole scaled copy beside the
        // gradients would add their size (the model's, in Float32) to the step's peak memory.
        for key in gradients.keys { gradients[key] = withoutGradients { gradients[key]! * factor } }
    }
    return norm
}

/// A learning rate as a function of the step (0-based).
public enum LearningRateSchedule: Sendable, Equatable {
    /// The same rate throughout.
    case constant(Float)
    /// From 0 up to `peak` over `steps`, then constant.
    case linearWarmup(peak: Float, steps: Int)
    /// From `initial` down to `final` linearly over `steps` (CleanRL's annealing:
    /// lr·(1 − step/steps)).
    case linearDecay(initial: Float, final: Float = 0, steps: Int)
    /// Linear warmup to `peak` over `warmup` steps, then cosine down to `final` at `steps`.
    case cosine(peak: Float, final: Float = 0, steps: Int, warmup: Int = 0)

    /// The rate at `step`.
    public func callAsFunction(_ step: Int) -> Float {
        switch self {
        case .constant(let lr): return lr
        case .linearWarmup(let peak, let steps):
            return steps <= 0 ? peak : peak * Swift.min(1, Float(step + 1) / Float(steps))
        case .linearDecay(let initial, let final, let steps):
            let frac = Swift.max(0, 1 - Float(step) / Float(Swift.max(steps, 1)))
            return final + (initial - final) * frac
        case .cosine(let peak, let final, let steps, let warmup):
            if step < warmup { return peak * Float(step + 1) / Float(warmup) }
            let progress = Swift.min(1, Float(step - warmup) / Float(Swift.max(steps - warmup, 1)))
            return final + (peak - final) * 0.5 * (1 + Foundation.cos(.pi * progress))
        }
    }
}
