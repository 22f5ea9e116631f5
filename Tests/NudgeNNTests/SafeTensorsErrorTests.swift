// One test per safetensors error case: malformed files, bad headers, bad index files, misuse.

import Foundation
import Testing
import NudgeNN

@Suite struct SafeTensorsErrorTests {
    typealias Support = SafeTensorsTestSupport

    /// Writes `bytes` to a temporary file, calls `body` with its URL, then cleans up.
    func withFile(_ bytes: [UInt8], _ body: (URL) throws -> Void) throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try body(try Support.write(bytes, in: dir))
    }

    /// Asserts that opening a file with `header` (and `data`) fails with the error built from its path.
    func expectOpen(header: String, data: [UInt8] = [], _ error: (String) -> SafeTensorsError,
                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        try withFile(Support.fileBytes(header: header, data: data)) { url in
            #expect(throws: error(url.path), sourceLocation: sourceLocation) { try SafeTensorsFile(url: url) }
        }
    }

    @Test func truncatedPrefix() throws {
        for count in [0, 1, 7] {
            try withFile(Array(repeating: 0, count: count)) { url in
                #expect(throws: SafeTensorsError.truncated(file: url.path, expected: 8, actual: count)) {
                    try SafeTensorsFile(url: url)
                }
            }
        }
    }

    @Test func headerTooLarge() throws {
        for declared: UInt64 in [UInt64.max, UInt64(Int.max), 100_000_001] {
            try withFile(Support.fileBytes(header: "{}", declaredLength: declared)) { url in
                #expect(throws: SafeTensorsError.headerTooLarge(file: url.path, headerLength: declared, limit: 100_000_000)) {
                    try SafeTensorsFile(url: url)
                }
            }
        }
    }

    @Test func headerPastEnd() throws {
        try withFile(Support.fileBytes(header: "{}", declaredLength: 3)) { url in
            #expect(throws: SafeTensorsError.headerPastEnd(file: url.path, headerLength: 3, fileSize: 10)) {
                try SafeTensorsFile(url: url)
            }
        }
    }

    @Test func invalidHeaderJSON() throws {
        let bad = [
            "not json", "", "   ", "[1, 2]", "\"text\"", "{\"a\": }", "{\"a\": 1,}", "{} x",
            "{\"a\":{\"dtype\":\"F32\"}, \"a\":{}}",          // duplicate key
            String(repeating: "[", count: 5000),              // deep nesting must not overflow the stack
            "{\"a\": \"\u{1}\"}",                             // raw control character
            "{\"a\": \"\\ud800\"}",                           // lone surrogate
        ]
        for header in bad {
            try withFile(Support.fileBytes(header: header)) { url in
                let error = #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: url) }
                guard case .invalidHeaderJSON(let file, _)? = error else {
                    Issue.record("\(header.prefix(20)): expected invalidHeaderJSON, got \(String(describing: error))")
                    return
                }
                #expect(file == url.path)
            }
        }
        // Invalid UTF-8.
        var bytes = Support.fileBytes(header: "{\"a\": \"xx\"}")
        bytes[15] = 0xFF
        try withFile(bytes) { url in
            #expect(throws: SafeTensorsError.invalidHeaderJSON(file: url.path, reason: "not valid UTF-8")) {
                try SafeTensorsFile(url: url)
            }
        }
    }

    @Test func headerPaddingAndEscapesAreAccepted() throws {
        let header = #"{"na\u00efve\n": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2], "extra": null}}"# + "      "
        try withFile(Support.fileBytes(header: header, data: [7, 9])) { url in
            let file = try SafeTensorsFile(url: url)
            #expect(file.names == ["naïve\n"])
            #expect(try file.int64s("naïve\n") == [7, 9])
        }
    }

    @Test func invalidEntry() throws {
        let cases: [(header: String, tensor: String, field: String)] = [
            (#"{"t": {"shape": [1], "data_offsets": [0, 4]}}"#, "t", "dtype"),
            (#"{"t": {"dtype": "F32", "data_offsets": [0, 4]}}"#, "t", "shape"),
            (#"{"t": {"dtype": "F32", "shape": [1]}}"#, "t", "data_offsets"),
            (#"{"t": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}}"#, "t", "dtype"),
            (#"{"t": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}}"#, "t", "shape"),
            (#"{"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, "t", "shape"),
            (#"{"t": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}"#, "t", "shape"),
            (#"{"t": {"dtype": "F32", "shape": [99999999999999999999], "data_offsets": [0, 4]}}"#, "t", "shape"),
            (#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}"#, "t", "data_offsets"),
            (#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}"#, "t", "data_offsets"),
            (#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}"#, "t", "data_offsets"),
            (#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}"#, "t", "data_offsets"),
            (#"{"t": [1, 2]}"#, "t", "entry"),
            (#"{"__metadata__": {"k": 1}}"#, "__metadata__", "k"),
            (#"{"__metadata__": [1]}"#, "__metadata__", "__metadata__"),
        ]
        for c in cases {
            try withFile(Support.fileBytes(header: c.header, data: [0, 0, 0, 0, 0, 0, 0, 0])) { url in
                let error = #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: url) }
                guard case let .invalidEntry(file, tensor, field, _)? = error else {
                    Issue.record("\(c.header): expected invalidEntry, got \(String(describing: error))")
                    return
                }
                #expect(file == url.path)
                #expect(tensor == c.tensor, "\(c.header)")
                #expect(field == c.field, "\(c.header)")
            }
        }
    }

    @Test func unknownDType() throws {
        try expectOpen(header: #"{"t": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}"#, data: Array(repeating: 0, count: 16)) {
            .unknownDType(file: $0, tensor: "t", dtype: "F128")
        }
    }

    @Test func offsetsOutOfRange() throws {
        try expectOpen(header: #"{"t": {"dtype": "U8", "shape": [2], "data_offsets": [4, 2]}}"#, data: [1, 2, 3, 4]) {
            .offsetsOutOfRange(file: $0, tensor: "t", begin: 4, end: 2, dataSize: 4)
        }
        try expectOpen(header: #"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, data: [1, 2, 3, 4]) {
            .offsetsOutOfRange(file: $0, tensor: "t", begin: 0, end: 8, dataSize: 4)
        }
        try expectOpen(header: #"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [9223372036854775800, 9223372036854775807]}}"#) {
            .offsetsOutOfRange(file: $0, tensor: "t", begin: 9_223_372_036_854_775_800, end: 9_223_372_036_854_775_807, dataSize: 0)
        }
    }

    @Test func overlappingOffsets() throws {
        let header = #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#
        try expectOpen(header: header, data: Array(repeating: 0, count: 12)) {
            .overlappingOffsets(file: $0, tensor: "b", other: "a")
        }
        // A range nested inside an earlier, longer one.
        let nested = #"{"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}, "b": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}, "c": {"dtype": "U8", "shape": [1], "data_offsets": [5, 6]}}"#
        try expectOpen(header: nested, data: Array(repeating: 0, count: 8)) {
            .overlappingOffsets(file: $0, tensor: "b", other: "a")
        }
        // Empty tensors may share an offset with anything.
        let empty = #"{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [0, 3], "data_offsets": [2, 2]}}"#
        try withFile(Support.fileBytes(header: empty, data: [1, 2, 3, 4])) { url in
            let file = try SafeTensorsFile(url: url)
            #expect(try file.floats("b").isEmpty)
        }
    }

    @Test func sizeMismatch() throws {
        try expectOpen(header: #"{"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, data: Array(repeating: 0, count: 8)) {
            .sizeMismatch(file: $0, tensor: "t", shape: [3], dtype: .f32, bytes: 8)
        }
        // Product of dimensions overflows Int.
        let huge = 1 << 62
        try expectOpen(header: #"{"t": {"dtype": "F32", "shape": [\#(huge), 4], "data_offsets": [0, 0]}}"#) {
            .sizeMismatch(file: $0, tensor: "t", shape: [huge, 4], dtype: .f32, bytes: 0)
        }
        // Would wrap to exactly the range length (0) if overflow were ignored: 2 * 2^62 * 4 * 2 == 2^66.
        try expectOpen(header: #"{"t": {"dtype": "BF16", "shape": [\#(huge), 4, 2], "data_offsets": [0, 0]}}"#) {
            .sizeMismatch(file: $0, tensor: "t", shape: [huge, 4, 2], dtype: .bf16, bytes: 0)
        }
    }

    @Test func unsupportedConversion() throws {
        let file = try SafeTensorsFile(url: Support.fixture("reference", "safetensors"))
        #expect(throws: SafeTensorsError.unsupportedConversion(file: file.url.path, tensor: "weight_f32", dtype: .f32)) {
            try file.int64s("weight_f32")
        }
        // U64 values above Int64.max.
        let header = #"{"u": {"dtype": "U64", "shape": [1], "data_offsets": [0, 8]}}"#
        try withFile(Support.fileBytes(header: header, data: Array(repeating: 0xFF, count: 8))) { url in
            let f = try SafeTensorsFile(url: url)
            #expect(throws: SafeTensorsError.unsupportedConversion(file: url.path, tensor: "u", dtype: .u64)) { try f.int64s("u") }
            #expect(try f.floats("u") == [Float(UInt64.max)])
        }
        // The writer only produces F32, F16 and BF16.
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("i64.safetensors")
        #expect(throws: SafeTensorsError.unsupportedConversion(file: url.path, tensor: "x", dtype: .i64)) {
            try SafeTensors.write([(name: "x", shape: [1], values: [1])], to: url, dtype: .i64)
        }
    }

    @Test func countMismatch() throws {
        let file = try SafeTensorsFile(url: Support.fixture("reference", "safetensors"))
        var buffer = [Float](repeating: 0, count: 5)
        #expect(throws: SafeTensorsError.countMismatch(file: file.url.path, tensor: "weight_f32", expected: 6, actual: 5)) {
            try buffer.withUnsafeMutableBufferPointer { try file.read("weight_f32", into: $0) }
        }
    }

    @Test func missingTensor() throws {
        let url = try Support.fixture("reference", "safetensors")
        let file = try SafeTensorsFile(url: url)
        #expect(file.entry("nope") == nil)
        #expect(throws: SafeTensorsError.missingTensor(file: url.path, tensor: "nope")) { try file.floats("nope") }
        #expect(throws: SafeTensorsError.missingTensor(file: url.path, tensor: "nope")) { try file.rawData("nope") }
        let checkpoint = try SafeTensorsCheckpoint(url: url)
        #expect(throws: SafeTensorsError.missingTensor(file: url.path, tensor: "nope")) { try checkpoint.floats("nope") }
    }

    /// Copies the sharded fixture to a temporary directory, rewrites the index with `index`,
    /// and returns the error from opening it.
    func openShardedCopy(index: String, removing: String? = nil) throws -> (URL, SafeTensorsError?) {
        let source = try Support.fixture("model.safetensors.index", "json", subdirectory: "sharded").deletingLastPathComponent()
        let dir = try Support.temporaryDirectory()
        let copy = dir.appendingPathComponent("ckpt")
        try FileManager.default.copyItem(at: source, to: copy)
        let indexURL = copy.appendingPathComponent("model.safetensors.index.json")
        try Data(index.utf8).write(to: indexURL)
        if let removing { try FileManager.default.removeItem(at: copy.appendingPathComponent(removing)) }
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try SafeTensorsCheckpoint(url: copy)
            return (indexURL, nil)
        } catch {
            return (indexURL, error)
        }
    }

    @Test func invalidIndex() throws {
        let shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors"
        let valid = #"{"weight_map": {"layer.0.weight": "\#(shard1)", "layer.0.bias": "\#(shard1)", "layer.1.weight": "\#(shard2)"}}"#
        #expect(try openShardedCopy(index: valid).1 == nil)

        var (url, error) = try openShardedCopy(index: valid, removing: shard2)
        #expect(error == .invalidIndex(file: url.path, reason: "tensor 'layer.1.weight' maps to shard '\(shard2)', which does not exist"))

        (url, error) = try openShardedCopy(index: #"{"weight_map": {"layer.9.weight": "\#(shard2)"}}"#)
        #expect(error == .invalidIndex(file: url.path, reason: "tensor 'layer.9.weight' is mapped to shard '\(shard2)', which has no such tensor"))

        for bad in ["{", "[]", #"{"metadata": {}}"#, #"{"weight_map": []}"#, #"{"weight_map": {"a": 1}}"#,
                    #"{"weight_map": {"a": "../x.safetensors"}}"#, #"{"weight_map": {"a": "/etc/passwd"}}"#,
                    #"{"metadata": 3, "weight_map": {}}"#] {
            (url, error) = try openShardedCopy(index: bad)
            guard case let .invalidIndex(file, _)? = error else {
                Issue.record("\(bad): expected invalidIndex, got \(String(describing: error))")
                continue
            }
            #expect(file == url.path)
        }
    }

    @Test func io() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.safetensors")
        var error = #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: missing) }
        guard case let .io(file, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(file == missing.path)

        error = #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: dir) }
        #expect(error == .io(file: dir.path, reason: "not a regular file"))

        error = #expect(throws: SafeTensorsError.self) { try SafeTensorsCheckpoint(url: dir) }
        guard case .io? = error else { Issue.record("got \(String(describing: error))"); return }

        let noDir = dir.appendingPathComponent("no/such/dir/x.safetensors")
        error = #expect(throws: SafeTensorsError.self) {
            try SafeTensors.write([(name: "x", shape: [1], values: [1])], to: noDir)
        }
        guard case let .io(writeFile, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(writeFile == noDir.path)
    }

    @Test func writerRejectsBadTensors() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("x.safetensors")
        let cases: [([(name: String, shape: [Int], values: [Float])], String)] = [
            ([(name: "a", shape: [1], values: [1]), (name: "a", shape: [1], values: [2])], "name"),
            ([(name: "__metadata__", shape: [1], values: [1])], "name"),
            ([(name: "a", shape: [-1], values: [])], "shape"),
            ([(name: "a", shape: [Int.max, 2], values: [])], "shape"),
            ([(name: "a", shape: [2, 2], values: [1, 2, 3])], "values"),
        ]
        for (tensors, field) in cases {
            let error = #expect(throws: SafeTensorsError.self) { try SafeTensors.write(tensors, to: url) }
            guard case let .invalidEntry(file, _, gotField, _)? = error else {
                Issue.record("expected invalidEntry, got \(String(describing: error))")
                continue
            }
            #expect(file == url.path)
            #expect(gotField == field)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func errorDescriptionsNameFileAndProblem() {
        let error = SafeTensorsError.sizeMismatch(file: "/m.safetensors", tensor: "w", shape: [3], dtype: .f32, bytes: 8)
        #expect(error.description.contains("/m.safetensors"))
        #expect(error.description.contains("'w'"))
        #expect(SafeTensorsError.invalidIndex(file: "/i.json", reason: "why").description.contains("why"))
    }
}
