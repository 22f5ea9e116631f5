// Applying LoRA to a model, merging, and PEFT-compatible adapter files.
//
// `applyLoRA` walks the module tree, replaces every targeted `Linear` projection (matched by key,
// as PEFT's `target_modules`: a key equal to a target or ending in "." + target) with a
// `LoRALinear`, and freezes everything but the adapters. Layers that hold replaceable
// projections conform to `LoRAAdaptable`.
//
// Adapter files are PEFT's `save_pretrained` layout: `adapter_model.safetensors` with keys
// `base_model.model.<module path>.lora_A.weight` / `.lora_B.weight`, and `adapter_config.json`.

import Foundation
import NudgeNN
import NudgeTensor

/// LoRA hyperparameters (PEFT's `LoraConfig` subset).
public struct LoRAConfiguration: Sendable, Equatable {
    /// The rank r (`r`).
    public var rank: Int
    /// The scaling numerator α (`lora_alpha`); the update is scaled by α/r.
    public var alpha: Float
    /// Dropout on the adapter input during training (`lora_dropout`).
    public var dropout: Float
    /// Module keys to adapt (`target_modules`), e.g. ["q_proj", "v_proj"]; a target matches a
    /// module whose path equals it or ends with "." + target ("attn.c_proj").
    public var targetModules: [String]
    /// Seed for A's initialization and the dropout masks (not saved: PEFT has no such field).
    public var seed: UInt64
    /// Scale by α/√r instead of α/r (`use_rslora`, Kalajdzievski 2023).
    public var useRSLoRA: Bool

    public init(rank: Int = 8, alpha: Float = 8, dropout: Float = 0, targetModules: [String] = ["q_proj", "v_proj"],
                seed: UInt64 = 0, useRSLoRA: Bool = false) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targetModules = targetModules
        self.seed = seed
        self.useRSLoRA = useRSLoRA
    }

    /// The factor applied to B·A.
    public var scale: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// Whether the module at `path` is targeted.
    public func targets(_ path: String) -> Bool {
        targetModules.contains { path == $0 || path.hasSuffix("." + $0) }
    }

    func validate() throws {
        guard rank > 0 else { throw LoRAError.invalidConfiguration("rank must be positive, got \(rank)") }
        guard dropout >= 0 && dropout < 1 else { throw LoRAError.invalidConfiguration("dropout \(dropout) not in [0, 1)") }
        guard alpha.isFinite else { throw LoRAError.invalidConfiguration("alpha \(alpha) is not finite") }
        guard !targetModules.isEmpty else { throw LoRAError.invalidConfiguration("no target modules") }
    }
}

/// Errors applying, saving or loading LoRA adapters.
public enum LoRAError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(String)
    /// No module of the model matched the targets.
    case noTargetModules([String])
    /// A targeted module is not a replaceable `Linear` projection.
    case unsupportedTarget(path: String, type: String)
    /// A targeted module already carries an adapter.
    case alreadyAdapted(String)
    /// The model has no LoRA layers.
    case noAdapters
    /// A field of adapter_config.json is missing, of the wrong type or unsupported.
    case adapterConfig(file: String, field: String, reason: String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let r): "invalid LoRA configuration: \(r)"
        case .noTargetModules(let t): "no module matches the LoRA target modules \(t)"
        case .unsupportedTarget(let p, let t): "LoRA target '\(p)' is a \(t), not a replaceable Linear projection"
        case .alreadyAdapted(let p): "'\(p)' already has a LoRA adapter"
        case .noAdapters: "the model has no LoRA adapters"
        case .adapterConfig(let f, let k, let r): "\(f): '\(k)' \(r)"
        }
    }
}

/// A module whose `Linear` projections LoRA may replace in place.
public protocol LoRAAdaptable: Module {
    /// The replaceable projections by checkpoint key.
    var adaptableLayers: [String: ReferenceWritableKeyPath<Self, any LinearLayer>] { get }
}

extension LlamaAttention: LoRAAdaptable {
    public var adaptableLayers: [String: ReferenceWritableKeyPath<LlamaAttention, any LinearLayer>] {
        ["q_proj": \.queryProjection, "k_proj": \.keyProjection, "v_proj": \.valueProjection, "o_proj": \.outputProjection]
    }
}

extension LlamaMLP: LoRAAdaptable {
    public var adaptableLayers: [String: ReferenceWritableKeyPath<LlamaMLP, any LinearLayer>] {
        ["gate_proj": \.gate, "up_proj": \.up, "down_proj": \.down]
    }
}

extension GPT2Attention: LoRAAdaptable {
    public var adaptableLayers: [String: ReferenceWritableKeyPath<GPT2Attention, any LinearLayer>] {
        ["c_attn": \.qkv, "c_proj": \.projection]
    }
}

extension GPT2MLP: LoRAAdaptable {
    public var adaptableLayers: [String: ReferenceWritableKeyPath<GPT2MLP, any LinearLayer>] {
        ["c_fc": \.expand, "c_proj": \.projection]
    }
}

extension LoRAAdaptable {
    /// Whether the child under `key` is a replaceable projection.
    public func canReplaceLinearLayer(at key: String) -> Bool { adaptableLayers[key] != nil }

    /// Sets the projection under `key` to `layer`; false when `key` is not replaceable. Call
    /// `invalidateParameterCache()` on the root module afterwards.
    @discardableResult
    public func replaceLinearLayer(at key: String, with layer: any LinearLayer) -> Bool {
        guard let path = adaptableLayers[key] else { return false }
        self[keyPath: path] = layer
        return true
    }
}

/// Replaces each targeted `Linear` of `model` with a `LoRALinear` (A drawn in module order from
/// `configuration.seed`, B zero), freezes every other parameter (`trainableParameters()` is then
/// the adapters only) and returns the replaced modules' paths. A targeted `QuantizedLinear` (a base
/// loaded straight into QLoRA's format) gets an adapter over its quantized weight, the same layer as
/// adapting the Float32 projection and then quantizing its base. Throws, changing nothing, when a
/// target matches no module, a non-linear module, a projection that cannot be replaced, or an adapter.
@discardableResult
public func applyLoRA(to model: Module, configuration: LoRAConfiguration) throws -> [String] {
    try configuration.validate()
    var plan: [(parent: any LoRAAdaptable, key: String, path: String, layer: any LinearLayer)] = []
    func walk(_ module: Module, _ prefix: String) throws {
        for (key, child) in module.items().children {
            let path = prefix + key
            if configuration.targets(path) {
                if child is LoRALinear { throw LoRAError.alreadyAdapted(path) }
                // A quantized projection (a base loaded straight into QLoRA's format) takes an adapter too.
                guard let layer = child as? any LinearLayer, layer is Linear || layer is QuantizedLinear,
                      let parent = module as? any LoRAAdaptable, parent.canReplaceLinearLayer(at: key) else {
                    throw LoRAError.unsupportedTarget(path: path, type: String(describing: type(of: child)))
                }
                plan.append((parent, key, path, layer))
            } else if !(child is LoRALinear) {
                try walk(child, path + ".")
            }
        }
    }
    try walk(model, "")
    guard !plan.isEmpty else { throw LoRAError.noTargetModules(configuration.targetModules) }
    var rng = RandomGenerator(seed: configuration.seed)
    for (parent, key, _, layer) in plan {
        let adapted = if let quantized = layer as? QuantizedLinear {
            LoRALinear(base: quantized, rank: configuration.rank, alpha: configuration.alpha,
                       dropout: configuration.dropout, useRSLoRA: configuration.useRSLoRA, using: &rng)
        } else {
            LoRALinear(base: layer as! Linear, rank: configuration.rank, alpha: configuration.alpha,
                       dropout: configuration.dropout, useRSLoRA: configuration.useRSLoRA, using: &rng)
        }
        adapted.train(layer.isTraining)
        parent.replaceLinearLayer(at: key, with: adapted)
    }
    model.freeze()
    for (_, layer) in loraLayers(in: model) { layer.freezeBase() }
    model.invalidateParameterCache()
    return plan.map(\.path)
}

/// Puts the original `Linear` back in place of every LoRA layer, with the adapter folded into its
/// weight when `merge` (PEFT's `merge_and_unload`) or the base weight restored otherwise; returns
/// the paths. Freezing is left as it was (call `model.unfreeze()` to train the whole model).
@discardableResult
public func unloadLoRA(from model: Module, merge: Bool = true) -> [String] {
    unloadLoRA(from: model, merge: merge, only: nil)
}

private func unloadLoRA(from model: Module, merge: Bool, only paths: Set<String>?) -> [String] {
    var done: [String] = []
    func walk(_ module: Module, _ prefix: String) {
        for (key, child) in module.items().children {
            let path = prefix + key
            if let lora = child as? LoRALinear {
                guard paths?.contains(path) ?? true, let parent = module as? any LoRAAdaptable else { continue }
                if parent.replaceLinearLayer(at: key, with: lora.unloadedLayer(merge: merge)) { done.append(path) }
            } else {
                walk(child, path + ".")
            }
        }
    }
    walk(model, "")
    model.invalidateParameterCache()
    // The Float32 weights just released would otherwise stay in the buffer pool's free lists:
    // the memory QLoRA exists to save.
    BufferPool.trim()
    return done
}

/// Quantizes every frozen base projection of `model` in place (QLoRA-style training): the base
/// weight of each LoRA layer, and each frozen `Linear` projection a LoRA layer could replace,
/// becomes a `QuantizedLinear`. The Float32 copies are dropped (and freed unless held
/// elsewhere); the quantized weights are not parameters, so `parameters()` no longer lists
/// them. Adapters stay Float32 and train as before. Call it after `applyLoRA`; merged LoRA layers
/// and trainable `Linear`s are left as they are. Returns the quantized modules' paths.
@discardableResult
public func quantizeFrozenBase(of model: Module, to format: WeightQuantization = .q8_0) -> [String] {
    replaceFrozenBase(of: model) { _, weight in QuantizedMatrix(quantizing: weight, format: format) }.map(\.path)
}

/// Replaces each frozen base projection's weight (a LoRA layer's base, or a frozen `Linear` a LoRA
/// layer could replace) with `quantized(path, weight)`; returns the paths and formats.
private func replaceFrozenBase(of model: Module, _ quantized: (String, Tensor) -> QuantizedMatrix) -> [(path: String, format: WeightQuantization)] {
    var done: [(path: String, format: WeightQuantization)] = []
    func walk(_ module: Module, _ prefix: String) {
        for (key, child) in module.items().children {
            let path = prefix + key
            if let lora = child as? LoRALinear {
                guard !lora.isBaseQuantized, !lora.isMerged else { continue }
                let matrix = quantized(path, lora.weight)
                lora.replaceBase(with: matrix)
                done.append((path, matrix.format))
            } else if let layer = child as? Linear, layer.isFrozen, let parent = module as? any LoRAAdaptable,
                      parent.canReplaceLinearLayer(at: key) {
                let matrix = quantized(path, layer.weight)
                parent.replaceLinearLayer(at: key, with: QuantizedLinear(weight: matrix, bias: layer.bias))
                done.append((path, matrix.format))
            } else {
                walk(child, path + ".")
            }
        }
    }
    walk(model, "")
    model.invalidateParameterCache()
    // The Float32 weights just released would otherwise stay in the buffer pool's free lists:
    // the memory QLoRA exists to save.
    BufferPool.trim()
    return done
}

/// `quantizeFrozenBase(of:to:)` with the weights a GGUF file stores quantized taken from the file
/// itself: a frozen base weight stored as Q8_0, Q4_1 or BF16 keeps the file's blocks (the very values the
/// Float32 model was loaded from, so the base computes what it did, in half (BF16) to a fifth of the
/// memory), any other is quantized to `fallback`. `model` is the model `file` was loaded into.
/// Returns each quantized module's path with the format it is held in.
@discardableResult
public func quantizeFrozenBase(of model: any CausalLanguageModel, from file: GGUFFile,
                               fallback: WeightQuantization = .q8_0) -> [(path: String, format: WeightQuantization)] {
    let config = model.configuration
    var stored: [String: GGUFTensorInfo] = [:]
    for info in file.tensors { if let key = GGUFWeights.key(info.name, family: config.family) { stored[key] = info } }
    /// The file's own blocks for `key`, rows in transformers' order, or nil (another type, or a shape that differs).
    func fileMatrix(_ key: String, shape: [Int]) -> QuantizedMatrix? {
        guard let info = stored[key], info.shape == shape, shape.count == 2 else { return nil }
        return GGUFWeights.storedMatrix(file, info, config: config)
    }
    return replaceFrozenBase(of: model) { path, weight in
        fileMatrix(path + ".weight", shape: weight.shape) ?? QuantizedMatrix(quantizing: weight, format: fallback)
    }
}

/// `model`'s parameters as a model without adapters would have them: each LoRA layer's weight is
/// its base plus s·B·A (a quantized base dequantized), and the adapters' own tensors are left out.
/// The model is unchanged. A model without LoRA layers gives its parameters as they are.
public func mergedLoRAParameters(of model: Module) -> [(String, Tensor)] {
    mergedLoRAParameterMakers(of: model).map { ($0.name, $0.make()) }
}

/// `mergedLoRAParameters(of:)` as makers, in the same order: a parameter's maker returns the tensor
/// itself, a LoRA layer's computes its merged weight when called. A saver that calls them one at a
/// time (`SafeTensors.write(computing:)`) holds one merged Float32 weight at a time, not all of
/// them beside a quantized base.
public func mergedLoRAParameterMakers(of model: Module) -> [(name: String, shape: [Int], make: () -> Tensor)] {
    let layers = loraLayers(in: model)
    let merged = Set(layers.map { $0.path + ".weight" })
    let adapterKeys = Set(layers.flatMap { l in l.layer.parameters().keys.filter { $0.hasPrefix("lora_") }.map { "\(l.path).\($0)" } })
    var out: [(name: String, shape: [Int], make: () -> Tensor)] = []
    for (key, tensor) in model.parameters() where !merged.contains(key) && !adapterKeys.contains(key) {
        out.append((key, tensor.shape, { tensor }))
    }
    for (path, layer) in layers {
        let shape = layer.quantizedBase?.shape ?? layer.weight.shape
        out.append((path + ".weight", shape, { withoutGradients { layer.weight + layer.deltaWeight } }))
    }
    return out
}

extension Module {
    /// Saves the parameters a model without adapters would have (`mergedLoRAParameters`: each LoRA
    /// layer's base plus s·B·A, a quantized base dequantized) to a safetensors file, atomically; a
    /// module without LoRA layers saves its parameters as `save(to:)` does.
    public func saveMerged(to url: URL) throws {
        if let bad = firstNonFiniteParameter() {
            throw CheckpointError.invalid(path: url.path, reason: "parameter \(bad.name) is \(bad.value); non-finite weights are never saved")
        }
        try SafeTensors.write(computing: mergedLoRAParameterMakers(of: self), to: url)
    }
}

/// Every LoRA layer of `model` with its module path, in parameter order.
public func loraLayers(in model: Module) -> [(path: String, layer: LoRALinear)] {
    var result: [(path: String, layer: LoRALinear)] = []
    func walk(_ module: Module, _ prefix: String) {
        for (key, child) in module.items().children {
            if let lora = child as? LoRALinear { result.append((prefix + key, lora)) } else { walk(child, prefix + key + ".") }
        }
    }
    walk(model, "")
    return result
}

/// Folds every adapter into its base weight (inference without the adapter path).
public func mergeLoRA(in model: Module) { for (_, l) in loraLayers(in: model) { l.merge() } }

/// Restores every merged base weight exactly.
public func unmergeLoRA(in model: Module) { for (_, l) in loraLayers(in: model) { l.unmerge() } }

/// Turns every adapter on or off (off: the model computes exactly the base model).
public func setLoRAEnabled(_ enabled: Bool, in model: Module) { for (_, l) in loraLayers(in: model) { l.isEnabled = enabled } }

// MARK: - PEFT adapter files

/// The adapter file name PEFT's `save_pretrained` writes.
public let loraAdapterWeightsFile = "adapter_model.safetensors"
/// The adapter configuration file name.
public let loraAdapterConfigFile = "adapter_config.json"

private let peftPrefix = "base_model.model."

/// The adapter weights under PEFT's keys (`base_model.model.<path>.lora_A.weight`), sharing storage.
public func loraAdapterWeights(of model: Module) -> NamedTensors {
    var pairs: [(String, Tensor)] = []
    for (path, layer) in loraLayers(in: model) {
        pairs.append(("\(peftPrefix)\(path).lora_A.weight", layer.loraA.weight))
        pairs.append(("\(peftPrefix)\(path).lora_B.weight", layer.loraB.weight))
    }
    return NamedTensors(pairs)
}

/// Writes `adapter_model.safetensors` and `adapter_config.json` into `directory` (created if
/// needed), loadable by PEFT's `PeftModel.from_pretrained`. `configuration` must be the one the
/// adapters were applied with (rank and α are checked against the layers).
public func saveLoRAAdapters(of model: Module, configuration: LoRAConfiguration, to directory: URL,
                             baseModelName: String? = nil) throws {
    let layers = loraLayers(in: model)
    guard !layers.isEmpty else { throw LoRAError.noAdapters }
    if let (path, l) = layers.first(where: { $0.layer.rank != configuration.rank || $0.layer.alpha != configuration.alpha }) {
        throw LoRAError.invalidConfiguration("'\(path)' has r = \(l.rank), α = \(l.alpha); the configuration says r = \(configuration.rank), α = \(configuration.alpha)")
    }
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
        throw CheckpointError.io(path: directory.path, reason: "\(error)")
    }
    // Saved unmerged values: A and B are never changed by merging.
    try Checkpoint.save(loraAdapterWeights(of: model), to: directory.appendingPathComponent(loraAdapterWeightsFile),
                        metadata: ["format": "pt"])
    let json = configuration.adapterConfigJSON(baseModelName: baseModelName, fanInFanOut: model is GPT2Model)
    let url = directory.appendingPathComponent(loraAdapterConfigFile)
    do {
        try json.write(to: url, options: .atomic)
    } catch {
        throw CheckpointError.io(path: url.path, reason: "\(error)")
    }
}

/// Loads adapter weights into `model`'s LoRA layers from a PEFT adapter directory (its
/// `adapter_model.safetensors`) or a safetensors file, strictly: a missing or unused key, or a
/// shape mismatch, is a `ModuleError` naming the PEFT key, and nothing is changed on error.
/// Merged layers are re-merged with the new weights.
public func loadLoRAAdapters(into model: Module, from url: URL) throws {
    var isDirectory: ObjCBool = false
    let file = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
        ? url.appendingPathComponent(loraAdapterWeightsFile) : url
    let loaded = try Checkpoint.load(file)
    let layers = loraLayers(in: model)
    guard !layers.isEmpty else { throw LoRAError.noAdapters }
    let own = loraAdapterWeights(of: model)
    var plan: [(Tensor, Tensor)] = []
    for (key, tensor) in own {
        guard let source = loaded[key] else { throw ModuleError.missingKey(key) }
        guard source.shape == tensor.shape else {
            throw ModuleError.shapeMismatch(key: key, expected: tensor.shape, actual: source.shape)
        }
        plan.append((tensor, source))
    }
    if let unused = loaded.keys.first(where: { own[$0] == nil }) { throw ModuleError.unusedKey(unused) }
    let merged = layers.filter(\.layer.isMerged).map(\.layer)
    for l in merged { l.unmerge() }
    for (target, source) in plan { target.assign(source) }
    for l in merged { l.merge() }
}

/// Merges a PEFT adapter directory into `model`'s weights and removes the adapter layers (PEFT's
/// `merge_and_unload`), leaving a plain model to save or export; returns how many layers changed.
/// Refuses an adapter that would make a weight non-finite.
@discardableResult
public func mergeLoRAAdapter(into model: Module, from directory: URL) throws -> Int {
    try loadLoRA(into: model, from: directory)
    let paths = unloadLoRA(from: model, merge: true)
    if let (name, tensor) = model.namedParameters().lazy.map({ ($0.0, $0.1) }).first(where: { !$0.1.scalars.allSatisfy(\.isFinite) }) {
        throw LoRAError.invalidConfiguration("merging \(directory.path) makes \(name) non-finite (shape \(tensor.shape))")
    }
    return paths.count
}

/// Reads a PEFT adapter directory (`adapter_config.json` and `adapter_model.safetensors`),
/// applies LoRA to `model` accordingly and loads the weights; returns the configuration. On a
/// weight error the layers just added are removed again.
@discardableResult
public func loadLoRA(into model: Module, from directory: URL, seed: UInt64 = 0) throws -> LoRAConfiguration {
    var configuration = try LoRAConfiguration.load(directory.appendingPathComponent(loraAdapterConfigFile))
    configuration.seed = seed
    let paths = try applyLoRA(to: model, configuration: configuration)
    do {
        try loadLoRAAdapters(into: model, from: directory.appendingPathComponent(loraAdapterWeightsFile))
    } catch {
        _ = unloadLoRA(from: model, merge: false, only: Set(paths))
        throw error
    }
    return configuration
}

extension LoRAConfiguration {
    /// PEFT's `adapter_config.json` for this configuration (`fanInFanOut` true for GPT-2's Conv1D
    /// projections, as PEFT sets it).
    public func adapterConfigJSON(baseModelName: String? = nil, fanInFanOut: Bool = false) -> Data {
        // Through the shortest decimal form, so 0.05 is written "0.05", not 0.05000000074505806.
        func number(_ x: Float) -> Any {
            x == x.rounded() && abs(x) < 1e15 ? Int(x) as Any : (Double("\(x)") ?? Double(x)) as Any
        }
        let object: [String: Any] = [
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": rank,
            "lora_alpha": number(alpha),
            "lora_dropout": number(dropout),
            "target_modules": targetModules,
            "bias": "none",
            "fan_in_fan_out": fanInFanOut,
            "use_rslora": useRSLoRA,
            "use_dora": false,
            "init_lora_weights": true,
            "inference_mode": true,
            "modules_to_save": NSNull(),
            "layers_to_transform": NSNull(),
            "rank_pattern": [String: Any](),
            "alpha_pattern": [String: Any](),
            "base_model_name_or_path": baseModelName.map { $0 as Any } ?? NSNull(),
        ]
        // Valid JSON objects only: serialization cannot fail.
        return try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    /// Reads PEFT's `adapter_config.json`; features this implementation lacks (DoRA, bias
    /// training, modules_to_save, per-layer ranks, regex targets) are errors naming the field.
    public init(adapterConfigJSON data: Data, file: String = loraAdapterConfigFile) throws {
        func fail(_ field: String, _ reason: String) -> LoRAError { .adapterConfig(file: file, field: field, reason: reason) }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("", "is not a JSON object")
        }
        func present(_ key: String) -> Any? {
            guard let v = object[key], !(v is NSNull) else { return nil }
            return v
        }
        func number(_ key: String) throws -> Double? {
            guard let v = present(key) else { return nil }
            guard let n = v as? NSNumber else { throw fail(key, "is not a number") }
            return n.doubleValue
        }
        func flag(_ key: String) throws -> Bool {
            guard let v = present(key) else { return false }
            guard let b = v as? Bool else { throw fail(key, "is not a boolean") }
            return b
        }
        guard let peftType = present("peft_type") as? String else { throw fail("peft_type", "is missing") }
        guard peftType == "LORA" else { throw fail("peft_type", "is \"\(peftType)\"; only \"LORA\" is supported") }
        guard let r = try number("r") else { throw fail("r", "is missing") }
        guard r == r.rounded(), r >= 1 else { throw fail("r", "is not a positive integer") }
        let targets: [String]
        switch present("target_modules") {
        case let list as [String]: targets = list
        case is String: throw fail("target_modules", "is a regular expression; only a list of names is supported")
        default: throw fail("target_modules", "is missing or not a list of names")
        }
        if let bias = present("bias") as? String, bias != "none" { throw fail("bias", "is \"\(bias)\"; only \"none\" is supported") }
        if try flag("use_dora") { throw fail("use_dora", "is true; DoRA is not supported") }
        if let m = present("modules_to_save") as? [Any], !m.isEmpty { throw fail("modules_to_save", "is not supported") }
        if present("layers_to_transform") != nil { throw fail("layers_to_transform", "is not supported") }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let p = present(key) as? [String: Any], !p.isEmpty { throw fail(key, "is not supported (per-layer ranks)") }
        }
        self.init(rank: Int(r), alpha: Float(try number("lora_alpha") ?? 8), dropout: Float(try number("lora_dropout") ?? 0),
                  targetModules: targets, useRSLoRA: try flag("use_rslora"))
    }

    /// Reads `adapter_config.json` at `url`.
    public static func load(_ url: URL) throws -> LoRAConfiguration {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw CheckpointError.io(path: url.path, reason: "\(error)") }
        return try LoRAConfiguration(adapterConfigJSON: data, file: url.path)
    }
}
