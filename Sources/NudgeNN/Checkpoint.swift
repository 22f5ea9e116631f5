// Checkpoints: modules and optimizer state as safetensors, written atomically.
//
// A training checkpoint is a directory holding `model.safetensors` (parameters under their Hugging
// Face keys) and `optimizer.safetensors` (moments under `<key>.<buffer>` and the step), with the
// step also in the metadata. The directory is assembled beside its destination and renamed into
// place, so a crash leaves either the previous checkpoint or the new one, never a mix.

import Foundation
import NudgeTensor

/// Errors from checkpoint directories.
public enum CheckpointError: Error, CustomStringConvertible {
    case io(path: String, reason: String)
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .io(let p, let r): "\(p): \(r)"
        case .invalid(let p, let r): "\(p): invalid checkpoint: \(r)"
        }
    }
}

/// Saving and loading named tensors, modules and optimizers.
public enum Checkpoint {
    /// Writes `tensors` to a safetensors file atomically.
    public static func save(_ tensors: NamedTensors, to url: URL, metadata: [String: String]? = nil,
                            dtype: SafeTensorsDType = .f32) throws {
        try SafeTensors.write(tensors.map { (name: $0.0, shape: $0.1.shape, values: $0.1.scalars) },
                              metadata: metadata, to: url, dtype: dtype)
    }

    /// Reads every tensor of a safetensors file, or of a Hugging Face directory
    /// (`model.safetensors` or a sharded `model.safetensors.index.json`), as Float32.
    public static func load(_ url: URL) throws -> NamedTensors {
        let checkpoint = try SafeTensorsCheckpoint(url: url)
        var pairs: [(String, Tensor)] = []
        for name in checkpoint.names {
            guard let entry = checkpoint.entry(name) else { continue }
            let t = Tensor(uninitializedShape: entry.shape)
            try checkpoint.read(name, into: UnsafeMutableBufferPointer(start: t.data, count: t.count))
            pairs.append((name, t))
        }
        return NamedTensors(pairs)
    }

    /// Writes a training checkpoint directory (model, optimizer state, step, any trainer `files`
    /// by name and any further safetensors files of `tensors` by name) atomically.
    public static func save(model: Module, optimizer: (any Optimizer)?, step: Int, to directory: URL,
                            metadata: [String: String] = [:], files: [String: Data] = [:],
                            tensors: [String: NamedTensors] = [:]) throws {
        let fm = FileManager.default
        let parent = directory.deletingLastPathComponent()
        let staging = parent.appendingPathComponent(".\(directory.lastPathComponent).tmp-\(getpid())")
        let old = parent.appendingPathComponent(".\(directory.lastPathComponent).old-\(getpid())")
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
            try? fm.removeItem(at: staging)
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch {
            throw CheckpointError.io(path: staging.path, reason: "\(error)")
        }
        var meta = metadata
        meta["step"] = String(step)
        meta["format"] = "nudge-checkpoint-1"
        try save(model.parameters(), to: staging.appendingPathComponent("model.safetensors"), metadata: meta)
        if let optimizer {
            try save(optimizer.state(), to: staging.appendingPathComponent("optimizer.safetensors"), metadata: meta)
        }
        for (name, named) in tensors.sorted(by: { $0.key < $1.key }) {
            try save(named, to: staging.appendingPathComponent(name), metadata: meta)
        }
        for (name, data) in files.sorted(by: { $0.key < $1.key }) {
            let url = staging.appendingPathComponent(name)
            do { try data.write(to: url) } catch { throw CheckpointError.io(path: url.path, reason: "\(error)") }
        }
        do {
            if fm.fileExists(atPath: directory.path) { try fm.moveItem(at: directory, to: old) }
            try fm.moveItem(at: staging, to: directory)
            try? fm.removeItem(at: old)
        } catch {
            throw CheckpointError.io(path: directory.path, reason: "cannot move checkpoint into place: \(error)")
        }
    }

    /// Restores a training checkpoint written by `save(model:optimizer:step:to:)` strictly;
    /// returns its step.
    @discardableResult
    public static func restore(model: Module, optimizer: (any Optimizer)?, from directory: URL) throws -> Int {
        let modelURL = directory.appendingPathComponent("model.safetensors")
        try model.update(parameters: load(modelURL))
        let file = try SafeTensorsFile(url: modelURL)
        guard let stepText = file.metadata["step"], let step = Int(stepText) else {
            throw CheckpointError.invalid(path: modelURL.path, reason: "metadata has no integer 'step'")
        }
        if let optimizer {
            try optimizer.load(state: load(directory.appendingPathComponent("optimizer.safetensors")))
        }
        return step
    }
}

extension Checkpoint {
    /// Restores a training checkpoint like `restore(model:optimizer:from:)` and returns its step with
    /// the metadata values a trainer stored beside it, parsed as numbers; a missing or non-numeric
    /// key is an error naming it.
    public static func restore(model: Module, optimizer: (any Optimizer)?, from directory: URL, trainerState keys: [String])
        throws -> (step: Int, state: [String: Double]) {
        let step = try restore(model: model, optimizer: optimizer, from: directory)
        let url = directory.appendingPathComponent("model.safetensors")
        let metadata = try SafeTensorsFile(url: url).metadata
        var state: [String: Double] = [:]
        for key in keys {
            guard let value = metadata[key].flatMap(Double.init) else {
                throw CheckpointError.invalid(path: url.path, reason: "metadata lacks the trainer's numeric '\(key)'")
            }
            state[key] = value
        }
        return (step, state)
    }
}

extension Module {
    /// Saves this module's parameters to a safetensors file (atomically).
    public func save(to url: URL, dtype: SafeTensorsDType = .f32) throws {
        try Checkpoint.save(parameters(), to: url, dtype: dtype)
    }

    /// Loads parameters from a safetensors file or Hugging Face directory, strictly.
    public func load(from url: URL, strict: Bool = true) throws {
        try update(parameters: Checkpoint.load(url), strict: strict)
    }
}
