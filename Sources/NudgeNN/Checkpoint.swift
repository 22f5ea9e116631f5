// Checkpoints: modules and optimizer state as safetensors, written atomically.
//
// A training checkpoint is a directory holding `model.safetensors` (parameters under their Hugging
// Face keys) and `optimizer.safetensors` (moments under `<key>.<buffer>` and the step), with the
// step also in the metadata. The directory is assembled beside its destination and swapped into
// place (one atomic renameat2 exchange on Linux), so a crash leaves either the previous checkpoint
// or the new one, never a mix and never none.

import CNudgeSystem
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
    /// Tensors named in `bytes` hold packed bytes and are written as U8 (see `SafeTensors.write`).
    public static func save(_ tensors: NamedTensors, to url: URL, metadata: [String: String]? = nil,
                            dtype: SafeTensorsDType = .f32, bytes: [String: Int] = [:]) throws {
        try SafeTensors.write(tensors: tensors.map { (name: $0.0, tensor: $0.1) }, metadata: metadata, to: url, dtype: dtype, bytes: bytes)
    }

    /// Reads every tensor of a safetensors file, or of a Hugging Face directory
    /// (`model.safetensors` or a sharded `model.safetensors.index.json`), as Float32. With
    /// `packedBytes`, U8 tensors come back as their bytes packed four to a Float32 word (zero-padded),
    /// as `save(…, bytes:)` took them: an 8-bit optimizer's codes.
    public static func load(_ url: URL, packedBytes: Bool = false) throws -> NamedTensors {
        let checkpoint = try SafeTensorsCheckpoint(url: url)
        var pairs: [(String, Tensor)] = []
        for name in checkpoint.names {
            guard let entry = checkpoint.entry(name) else { continue }
            if packedBytes, entry.dtype == .u8, let file = checkpoint.file(containing: name) {
                let count = entry.shape.reduce(1, *)
                let t = Tensor.zeros([(count + 3) / 4])
                try file.withRawBytes(name) { bytes in
                    if let source = bytes.baseAddress, count > 0 { UnsafeMutableRawPointer(t.data).copyMemory(from: source, byteCount: count) }
                }
                pairs.append((name, t))
                continue
            }
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
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
            try recoverInterruptedSwap(at: directory)
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError.io(path: staging.path, reason: "\(error)")
        }
        if let bad = model.firstNonFiniteParameter() {
            throw CheckpointError.invalid(path: directory.path, reason: "parameter \(bad.name) is \(bad.value); non-finite weights are never saved")
        }
        var meta = metadata
        meta["step"] = String(step)
        meta["format"] = "nudge-checkpoint-1"
        let dropouts = dropoutLayers(in: model)
        if !dropouts.isEmpty {
            meta["dropout_rng"] = dropouts.map { "\($0.path)=\($0.layer.randomState.map(String.init).joined(separator: ","))" }.joined(separator: ";")
        }
        try save(model.parameters(), to: staging.appendingPathComponent("model.safetensors"), metadata: meta)
        if let optimizer {
            try save(optimizer.state(), to: staging.appendingPathComponent("optimizer.safetensors"), metadata: meta,
                     bytes: optimizer.packedByteCounts(for: model))
        }
        for (name, named) in tensors.sorted(by: { $0.key < $1.key }) {
            try save(named, to: staging.appendingPathComponent(name), metadata: meta)
        }
        for (name, data) in files.sorted(by: { $0.key < $1.key }) {
            let url = staging.appendingPathComponent(name)
            do { try data.write(to: url) } catch { throw CheckpointError.io(path: url.path, reason: "\(error)") }
        }
        try swapIntoPlace(staging, directory)
    }

    /// Test hook: runs between the two renames of the fallback swap (a kill there is what
    /// `recoverInterruptedSwap` repairs).
    nonisolated(unsafe) static var afterMovingAside: (() throws -> Void)?
    /// Test hook: false forces the two-rename fallback where RENAME_EXCHANGE is available.
    nonisolated(unsafe) static var useExchange = true

    /// Puts the finished `staging` directory at `directory`. With Linux's RENAME_EXCHANGE the two
    /// swap in one atomic step (a kill leaves the old or the new checkpoint at `directory`, never
    /// none); elsewhere the old one is renamed aside first, to a name `recoverInterruptedSwap`
    /// knows, then the new one in.
    static func swapIntoPlace(_ staging: URL, _ directory: URL) throws {
        let fm = FileManager.default
        func fail(_ what: String) -> CheckpointError {
            CheckpointError.io(path: directory.path, reason: "cannot move checkpoint into place (\(what)): \(String(cString: strerror(errno)))")
        }
        if !fm.fileExists(atPath: directory.path) {
            guard rename(staging.path, directory.path) == 0 else { throw fail("rename") }
            syncDirectory(directory.deletingLastPathComponent())
            return
        }
        if useExchange && nudge_rename_exchange(staging.path, directory.path) == 0 {
            syncDirectory(directory.deletingLastPathComponent())
            try? fm.removeItem(at: staging)  // now the previous checkpoint
            return
        }
        let old = asideURL(directory)
        try? fm.removeItem(at: old)
        guard rename(directory.path, old.path) == 0 else { throw fail("rename aside") }
        try afterMovingAside?()
        guard rename(staging.path, directory.path) == 0 else { throw fail("rename") }
        syncDirectory(directory.deletingLastPathComponent())
        try? fm.removeItem(at: old)
    }

    /// Where the fallback swap keeps the previous checkpoint of `directory` for a moment.
    static func asideURL(_ directory: URL) -> URL {
        directory.deletingLastPathComponent().appendingPathComponent(".\(directory.lastPathComponent).old")
    }

    /// Repairs what a killed save leaves: when `directory` is missing but its previous version sits
    /// aside, it is moved back; an aside copy beside a complete `directory` and staging directories
    /// of earlier processes are deleted. Safe because one process owns a run (the run directory's
    /// lock). Call before reading a checkpoint to resume.
    public static func recoverInterruptedSwap(at directory: URL) throws {
        let fm = FileManager.default
        let parent = directory.deletingLastPathComponent()
        let name = directory.lastPathComponent
        let old = asideURL(directory)
        if fm.fileExists(atPath: old.path) {
            if fm.fileExists(atPath: directory.path) {
                try? fm.removeItem(at: old)
            } else if rename(old.path, directory.path) != 0 {
                throw CheckpointError.io(path: directory.path, reason: "cannot restore the previous checkpoint from \(old.path): \(String(cString: strerror(errno)))")
            }
        }
        let stale = ((try? fm.contentsOfDirectory(atPath: parent.path)) ?? []).filter { $0.hasPrefix(".\(name).tmp-") || $0.hasPrefix(".\(name).old-") }
        for entry in stale { try? fm.removeItem(at: parent.appendingPathComponent(entry)) }
    }

    /// fsync of a directory, so a rename in it survives a power loss (best effort).
    static func syncDirectory(_ url: URL) {
        let fd = open(url.path, O_RDONLY)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
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
            try optimizer.load(state: load(directory.appendingPathComponent("optimizer.safetensors"), packedBytes: true))
            try optimizer.checkState(against: model)
        }
        // Dropout mask streams continue where they stood (checkpoints written before they were kept have none).
        if let saved = file.metadata["dropout_rng"] {
            var states: [String: [UInt64]] = [:]
            for entry in saved.split(separator: ";") {
                let parts = entry.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                states[String(parts[0])] = parts[1].split(separator: ",").compactMap { UInt64($0) }
            }
            for (path, layer) in dropoutLayers(in: model) {
                guard let words = states[path], RandomGenerator(snapshot: words) != nil else {
                    throw CheckpointError.invalid(path: modelURL.path, reason: "dropout_rng has no valid state for \(path)")
                }
                layer.randomState = words
            }
        }
        return step
    }

    /// Every dropout layer of `model` with its module path.
    static func dropoutLayers(in model: Module) -> [(path: String, layer: Dropout)] {
        var found: [(path: String, layer: Dropout)] = []
        func walk(_ module: Module, _ prefix: String) {
            for (key, child) in module.items().children {
                if let dropout = child as? Dropout { found.append((prefix + key, dropout)) } else { walk(child, prefix + key + ".") }
            }
        }
        walk(model, "")
        return found
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
        if let bad = firstNonFiniteParameter() {
            throw CheckpointError.invalid(path: url.path, reason: "parameter \(bad.name) is \(bad.value); non-finite weights are never saved")
        }
        try Checkpoint.save(parameters(), to: url, dtype: dtype)
    }

    /// Loads parameters from a safetensors file or Hugging Face directory, strictly.
    public func load(from url: URL, strict: Bool = true) throws {
        try update(parameters: Checkpoint.load(url), strict: strict)
    }
}
