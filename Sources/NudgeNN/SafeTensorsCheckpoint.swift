// Loading a model checkpoint stored as one safetensors file or as Hugging Face-style shards.
//
// A sharded checkpoint is a directory holding `model.safetensors.index.json` —
// `{"metadata": {...}, "weight_map": {"tensor name": "shard file name", ...}}` — next to the
// shard files it names (each an ordinary safetensors file). Opening validates the index: every
// shard must exist and open cleanly, and every tensor the weight map lists must be present in
// the shard it points to. The weight map is authoritative for which tensors the checkpoint has.

import Foundation

/// A checkpoint made of one safetensors file or of several shards described by an index.
public final class SafeTensorsCheckpoint: Sendable {
    /// File name of a sharded checkpoint's index.
    public static let indexFileName = "model.safetensors.index.json"
    /// File name of a single-file checkpoint.
    public static let singleFileName = "model.safetensors"

    /// What was opened: a directory, an index file or a safetensors file.
    public let url: URL
    /// The index's `metadata` (non-string values as JSON text), or a single file's `__metadata__`.
    public let metadata: [String: String]
    /// The opened files, sorted by file name.
    public let files: [SafeTensorsFile]
    /// All tensor names, sorted.
    public let names: [String]

    private let lookup: [String: Int]  // tensor name -> index into `files`

    /// Opens `url`: a directory containing `model.safetensors.index.json` or `model.safetensors`,
    /// an index file (`*.json`), or a single safetensors file.
    public init(url: URL) throws(SafeTensorsError) {
        self.url = url
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw .io(file: url.path, reason: "no such file or directory")
        }
        let target: URL
        if isDirectory.boolValue {
            let index = url.appendingPathComponent(SafeTensorsCheckpoint.indexFileName)
            let single = url.appendingPathComponent(SafeTensorsCheckpoint.singleFileName)
            if FileManager.default.fileExists(atPath: index.path) {
                target = index
            } else if FileManager.default.fileExists(atPath: single.path) {
                target = single
            } else {
                throw .io(file: url.path, reason: "contains neither \(SafeTensorsCheckpoint.indexFileName) nor \(SafeTensorsCheckpoint.singleFileName)")
            }
        } else {
            target = url
        }

        if target.pathExtension == "json" {
            let index = try SafeTensorsCheckpoint.parseIndex(target)
            let directory = target.deletingLastPathComponent()
            let shardNames = Set(index.weightMap.values).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            var files: [SafeTensorsFile] = []
            var fileIndex: [String: Int] = [:]
            for shard in shardNames {
                let shardURL = directory.appendingPathComponent(shard)
                var shardIsDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: shardURL.path, isDirectory: &shardIsDirectory),
                      !shardIsDirectory.boolValue
                else {
                    let tensor = index.weightMap.filter { $0.value == shard }.keys.min() ?? ""
                    throw .invalidIndex(file: target.path, reason: "tensor '\(tensor)' maps to shard '\(shard)', which does not exist")
                }
                fileIndex[shard] = files.count
                files.append(try SafeTensorsFile(url: shardURL))
            }
            var lookup: [String: Int] = [:]
            let names = index.weightMap.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for name in names {
                guard let shard = index.weightMap[name], let i = fileIndex[shard] else { continue }
                guard files[i].entry(name) != nil else {
                    throw .invalidIndex(file: target.path, reason: "tensor '\(name)' is mapped to shard '\(shard)', which has no such tensor")
                }
                lookup[name] = i
            }
            self.metadata = index.metadata
            self.files = files
            self.names = names
            self.lookup = lookup
        } else {
            let file = try SafeTensorsFile(url: target)
            self.metadata = file.metadata
            self.files = [file]
            self.names = file.names
            var lookup: [String: Int] = [:]
            for name in file.names { lookup[name] = 0 }
            self.lookup = lookup
        }
    }

    /// The file holding tensor `name`, or nil.
    public func file(containing name: String) -> SafeTensorsFile? {
        lookup[name].map { files[$0] }
    }

    /// The entry for tensor `name`, or nil.
    public func entry(_ name: String) -> SafeTensorsEntry? {
        file(containing: name)?.entry(name)
    }

    private func requireFile(_ name: String) throws(SafeTensorsError) -> SafeTensorsFile {
        guard let file = file(containing: name) else { throw .missingTensor(file: url.path, tensor: name) }
        return file
    }

    /// `SafeTensorsFile.releasePages(of:)` in the shard holding `name`.
    public func releasePages(of name: String) { file(containing: name)?.releasePages(of: name) }

    /// Reads tensor `name` converted to `Float`.
    public func floats(_ name: String) throws(SafeTensorsError) -> [Float] {
        try requireFile(name).floats(name)
    }

    /// Converts tensor `name` to `Float` directly into `destination` (count must match).
    public func read(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws(SafeTensorsError) {
        try requireFile(name).read(name, into: destination)
    }

    /// Reads an integer or boolean tensor `name` as `Int64`.
    public func int64s(_ name: String) throws(SafeTensorsError) -> [Int64] {
        try requireFile(name).int64s(name)
    }

    // MARK: - Index parsing

    private struct Index {
        var metadata: [String: String]
        var weightMap: [String: String]
    }

    private static func parseIndex(_ url: URL) throws(SafeTensorsError) -> Index {
        let file = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .io(file: file, reason: "cannot read: \(error.localizedDescription)")
        }
        let json: SafeTensorsJSON
        do {
            json = try SafeTensorsJSON.parse([UInt8](data))
        } catch {
            throw .invalidIndex(file: file, reason: "invalid JSON: \(error.reason)")
        }
        guard case let .object(members) = json else {
            throw .invalidIndex(file: file, reason: "expected a JSON object, found \(json.typeName)")
        }
        var metadata: [String: String] = [:]
        var weightMap: [String: String]? = nil
        for member in members {
            switch member.key {
            case "metadata":
                switch member.value {
                case .null: break
                case let .object(items):
                    for item in items {
                        if case let .string(s) = item.value {
                            metadata[item.key] = s
                        } else {
                            metadata[item.key] = item.value.serialized
                        }
                    }
                default:
                    throw .invalidIndex(file: file, reason: "'metadata' must be an object, found \(member.value.typeName)")
                }
            case "weight_map":
                guard case let .object(items) = member.value else {
                    throw .invalidIndex(file: file, reason: "'weight_map' must be an object, found \(member.value.typeName)")
                }
                var map: [String: String] = [:]
                for item in items {
                    guard case let .string(shard) = item.value else {
                        throw .invalidIndex(file: file, reason: "weight_map entry '\(item.key)' must be a file name string, found \(item.value.typeName)")
                    }
                    let components = shard.split(separator: "/", omittingEmptySubsequences: false)
                    guard !shard.isEmpty, !shard.hasPrefix("/"), !components.contains(".."), !shard.contains("\0") else {
                        throw .invalidIndex(file: file, reason: "weight_map entry '\(item.key)' names shard '\(shard)', which is not a relative path inside the checkpoint directory")
                    }
                    map[item.key] = shard
                }
                weightMap = map
            default:
                break
            }
        }
        guard let weightMap else {
            throw .invalidIndex(file: file, reason: "missing 'weight_map'")
        }
        return Index(metadata: metadata, weightMap: weightMap)
    }
}
