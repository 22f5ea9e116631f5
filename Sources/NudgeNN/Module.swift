// Modules: parameters found by reflection over stored properties, with dotted Hugging Face style
// keys (`model.layers.0.self_attn.q_proj.weight`), freezing, strict loading, and a printed tree.
//
// A stored `Tensor` property is a parameter, a stored `Module` a child, `[Module]` numbered
// children, and optionals count when set. `@Key("lm_head")` renames a property's key. The list
// of parameters is discovered once and cached; parameters are updated in place (optimizers,
// loading), so the cache stays valid. Call `invalidateParameterCache()` after replacing a
// parameter or child object.

import Foundation
import NudgeTensor

/// Renames a property's key in parameter paths and checkpoints.
@propertyWrapper
public struct Key<Value> {
    public var wrappedValue: Value
    /// The key used instead of the property's name.
    public let key: String

    public init(wrappedValue: Value, _ key: String) {
        self.wrappedValue = wrappedValue
        self.key = key
    }
}

protocol KeyedProperty {
    var key: String { get }
    var anyValue: Any { get }
}

extension Key: KeyedProperty {
    var anyValue: Any { wrappedValue }
}

/// A flat, ordered collection of named tensors: parameters, gradients, optimizer state.
public struct NamedTensors: Sendable, Sequence {
    /// Keys in order.
    public private(set) var keys: [String]
    /// Tensors in the order of `keys`.
    public private(set) var tensors: [Tensor]
    private var index: [String: Int]

    public init(_ pairs: [(String, Tensor)] = []) {
        keys = pairs.map(\.0)
        tensors = pairs.map(\.1)
        index = Dictionary(pairs.enumerated().map { ($1.0, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public var count: Int { keys.count }

    /// The tensor for `key`, if present.
    public subscript(key: String) -> Tensor? {
        get { index[key].map { tensors[$0] } }
        set {
            if let i = index[key] {
                if let newValue { tensors[i] = newValue } else { remove(at: i) }
            } else if let newValue {
                index[key] = keys.count
                keys.append(key)
                tensors.append(newValue)
            }
        }
    }

    private mutating func remove(at i: Int) {
        keys.remove(at: i)
        tensors.remove(at: i)
        index = Dictionary(keys.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func makeIterator() -> Zip2Sequence<[String], [Tensor]>.Iterator { zip(keys, tensors).makeIterator() }

    /// Elementwise sum with another set of the same keys (gradient accumulation).
    public func adding(_ other: NamedTensors) -> NamedTensors {
        precondition(other.keys == keys, "adding: key sets differ")
        return NamedTensors(zip(keys, zip(tensors, other.tensors).map { Tensor.zipMap($0, $1, +) }).map { ($0, $1) })
    }

    /// Every tensor scaled by `factor`.
    public func scaled(by factor: Float) -> NamedTensors {
        // The vector kernel's product, bit for bit the scalar one's (one rounding per value).
        NamedTensors(zip(keys, tensors.map { t in withoutGradients { t * factor } }).map { ($0, $1) })
    }

    /// Each tensor's L2 norm by key, its squares summed in Double in order (e.g. the gradient norm
    /// per parameter before clipping, which the TRL parity tests compare).
    public func norms() -> [String: Double] {
        Dictionary(map { ($0, $1.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()) }, uniquingKeysWith: { a, _ in a })
    }

    /// The global L2 norm over all tensors.
    public func globalNorm() -> Float {
        // Squares summed in eight Float lanes over blocks of 256, each block's sum added in Double
        // (the order depends only on the sizes).
        var s: Double = 0
        for t in tensors {
            let n = t.count, raw = UnsafeRawPointer(t.data)
            var i = 0
            while i + 256 <= n {
                var acc = SIMD8<Float>()
                for j in stride(from: i, to: i + 256, by: 8) {
                    let x = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
                    acc += x * x
                }
                s += Double(acc.sum())
                i += 256
            }
            while i < n {
                s += Double(t.data[i]) * Double(t.data[i])
                i += 1
            }
        }
        return Float(s.squareRoot())
    }
}

/// Errors loading parameters into a module.
public enum ModuleError: Error, CustomStringConvertible, Equatable {
    case missingKey(String)
    case unusedKey(String)
    case shapeMismatch(key: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case .missingKey(let k): "parameter '\(k)' is missing from the loaded weights"
        case .unusedKey(let k): "loaded weight '\(k)' matches no parameter of the model"
        case .shapeMismatch(let k, let e, let a): "parameter '\(k)' has shape \(e), loaded weight has shape \(a)"
        }
    }
}

/// A neural-network building block with discovered parameters and children.
open class Module: CustomStringConvertible {
    /// Training mode (dropout active) or evaluation mode.
    public private(set) var isTraining = true
    /// Whether this module's own parameters are excluded from training.
    public private(set) var isFrozen = false
    private var cachedParameters: [(key: String, tensor: Tensor, owner: Module)]?

    public init() {}

    /// Direct children and own parameters, by key, discovered from stored properties (a subclass
    /// may override it to present another layout, e.g. a wrapper keeping its inner keys).
    open func items() -> (parameters: [(String, Tensor)], children: [(String, Module)]) {
        var parameters: [(String, Tensor)] = []
        var children: [(String, Module)] = []
        func visit(_ label: String, _ value: Any) {
            switch value {
            case let t as Tensor: parameters.append((label, t))
            case let m as Module: children.append((label, m))
            case let ms as [Module]: for (i, m) in ms.enumerated() { children.append(("\(label).\(i)", m)) }
            case let k as KeyedProperty: visit(k.key, k.anyValue)
            default:
                let mirror = Mirror(reflecting: value)
                if mirror.displayStyle == .optional, let wrapped = mirror.children.first {
                    visit(label, wrapped.value)
                }
            }
        }
        var mirror: Mirror? = Mirror(reflecting: self)
        var levels: [Mirror] = []
        while let m = mirror { levels.append(m); mirror = m.superclassMirror }
        for m in levels.reversed() {
            for child in m.children {
                guard var label = child.label else { continue }
                if label.hasPrefix("_") && child.value is KeyedProperty { label.removeFirst() }
                if label == "cachedParameters" { continue }
                visit(label, child.value)
            }
        }
        return (parameters, children)
    }

    /// Every parameter with its dotted key, depth first in declaration order (shared tensors once).
    public func namedParameters() -> [(key: String, tensor: Tensor, owner: Module)] {
        if let cachedParameters { return cachedParameters }
        var result: [(key: String, tensor: Tensor, owner: Module)] = []
        // A tensor shared by two modules (tied weights) is listed once, under its first key.
        var seen = Set<ObjectIdentifier>()
        func walk(_ module: Module, _ prefix: String) {
            let (params, children) = module.items()
            for (k, t) in params where seen.insert(ObjectIdentifier(t)).inserted { result.append((prefix + k, t, module)) }
            for (k, m) in children { walk(m, prefix + k + ".") }
        }
        walk(self, "")
        cachedParameters = result
        return result
    }

    /// Drops the cached parameter list (after replacing a parameter or child object).
    public func invalidateParameterCache() {
        cachedParameters = nil
        for (_, child) in items().children { child.invalidateParameterCache() }
    }

    /// All parameters by key.
    public func parameters() -> NamedTensors {
        NamedTensors(namedParameters().map { ($0.key, $0.tensor) })
    }

    /// Parameters not frozen.
    public func trainableParameters() -> NamedTensors {
        NamedTensors(namedParameters().filter { !$0.owner.isFrozen }.map { ($0.key, $0.tensor) })
    }

    /// The number of scalar parameters.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.tensor.count } }

    /// Excludes this module and its descendants from training.
    public func freeze() { setFrozen(true) }
    /// Includes this module and its descendants in training again.
    public func unfreeze() { setFrozen(false) }

    private func setFrozen(_ frozen: Bool) {
        isFrozen = frozen
        for (_, child) in items().children { child.setFrozen(frozen) }
    }

    /// Switches this module and its descendants to training or evaluation mode.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, child) in items().children { child.train(on) }
    }

    /// Evaluation mode (dropout off).
    public func eval() { train(false) }

    /// Copies `newParameters` into this module's parameters. With `strict`, a missing key, an
    /// unused key or a shape mismatch is an error naming the key; nothing is changed on error.
    public func update(parameters newParameters: NamedTensors, strict: Bool = true) throws {
        let own = namedParameters()
        var plan: [(Tensor, Tensor)] = []
        for (key, tensor, _) in own {
            guard let source = newParameters[key] else {
                if strict { throw ModuleError.missingKey(key) }
                continue
            }
            guard source.shape == tensor.shape else {
                throw ModuleError.shapeMismatch(key: key, expected: tensor.shape, actual: source.shape)
            }
            plan.append((tensor, source))
        }
        if strict {
            let known = Set(own.map(\.key))
            if let unused = newParameters.keys.first(where: { !known.contains($0) }) {
                throw ModuleError.unusedKey(unused)
            }
        }
        for (target, source) in plan { target.assign(source) }
    }

    /// A one-line summary of this module itself (type and sizes); subclasses override it.
    open var summary: String { String(describing: type(of: self)) }

    /// The module tree with parameter shapes.
    public var description: String {
        var lines: [String] = []
        func walk(_ module: Module, _ name: String?, _ depth: Int) {
            let pad = String(repeating: "  ", count: depth)
            let count = module.namedParameters().reduce(0) { $0 + $1.tensor.count }
            lines.append("\(pad)\(name.map { "(\($0)): " } ?? "")\(module.summary)  [\(count) params\(module.isFrozen ? ", frozen" : "")]")
            for (k, m) in module.items().children { walk(m, k, depth + 1) }
        }
        walk(self, nil, 0)
        return lines.joined(separator: "\n")
    }
}

/// A module mapping one tensor to one tensor.
public protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// The value of `body(model)` and its gradients with respect to the model's trainable
/// parameters (frozen parameters are constants).
public func valueAndGrad<M: Module>(
    _ model: M, _ body: (M) throws -> Tensor
) rethrows -> (value: Tensor, gradients: NamedTensors) {
    let trainable = model.trainableParameters()
    let (value, grads) = try valueAndGrad(at: trainable.tensors) { try body(model) }
    return (value, NamedTensors(zip(trainable.keys, grads).map { ($0, $1) }))
}
