// Parsing and validation of a safetensors header.
//
// The header is the JSON object that follows the 8-byte little-endian length prefix. Every key
// except `"__metadata__"` names a tensor and maps to `{"dtype", "shape", "data_offsets"}`;
// `data_offsets` is `[begin, end]` relative to the data buffer after the header. Validation
// checks field presence and JSON types, known dtypes, `begin <= end <= dataSize`,
// `product(shape) * dtype.byteSize == end - begin` (with overflow checks), and that no two
// non-empty tensors share bytes. Gaps between tensors and trailing bytes are tolerated.

/// A validated safetensors header.
struct SafeTensorsHeader: Sendable {
    /// The `__metadata__` map (empty when absent or null).
    var metadata: [String: String]
    /// Tensor entries sorted by name.
    var entries: [SafeTensorsEntry]

    /// Parses and validates header JSON bytes for a data buffer of `dataSize` bytes; `file`
    /// names the source in errors.
    static func parse(_ bytes: [UInt8], dataSize: Int, file: String) throws(SafeTensorsError) -> SafeTensorsHeader {
        let json: SafeTensorsJSON
        do {
            json = try SafeTensorsJSON.parse(bytes)
        } catch {
            throw .invalidHeaderJSON(file: file, reason: error.reason)
        }
        guard case let .object(members) = json else {
            throw .invalidHeaderJSON(file: file, reason: "header is \(json.typeName), not a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [SafeTensorsEntry] = []
        entries.reserveCapacity(members.count)
        for member in members {
            if member.key == "__metadata__" {
                metadata = try parseMetadata(member.value, file: file)
            } else {
                entries.append(try parseEntry(name: member.key, member.value, dataSize: dataSize, file: file))
            }
        }
        entries.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        try checkOverlaps(entries, file: file)
        return SafeTensorsHeader(metadata: metadata, entries: entries)
    }

    private static func parseMetadata(_ value: SafeTensorsJSON, file: String) throws(SafeTensorsError) -> [String: String] {
        switch value {
        case .null:
            return [:]
        case let .object(members):
            var result: [String: String] = [:]
            for member in members {
                guard case let .string(s) = member.value else {
                    throw .invalidEntry(file: file, tensor: "__metadata__", field: member.key,
                                        reason: "metadata values must be strings, found \(member.value.typeName)")
                }
                result[member.key] = s
            }
            return result
        default:
            throw .invalidEntry(file: file, tensor: "__metadata__", field: "__metadata__",
                                reason: "expected an object of strings, found \(value.typeName)")
        }
    }

    private static func nonNegativeInts(_ value: SafeTensorsJSON) -> [Int]? {
        guard case let .array(items) = value else { return nil }
        var result: [Int] = []
        result.reserveCapacity(items.count)
        for item in items {
            guard case let .integer(i) = item, i >= 0 else { return nil }
            result.append(i)
        }
        return result
    }

    private static func parseEntry(name: String, _ value: SafeTensorsJSON, dataSize: Int, file: String) throws(SafeTensorsError) -> SafeTensorsEntry {
        guard case let .object(members) = value else {
            throw .invalidEntry(file: file, tensor: name, field: "entry", reason: "expected an object, found \(value.typeName)")
        }
        var fields: [String: SafeTensorsJSON] = [:]
        for member in members { fields[member.key] = member.value }

        func require(_ field: String) throws(SafeTensorsError) -> SafeTensorsJSON {
            guard let v = fields[field] else {
                throw .invalidEntry(file: file, tensor: name, field: field, reason: "missing")
            }
            return v
        }

        let dtypeValue = try require("dtype")
        guard case let .string(dtypeName) = dtypeValue else {
            throw .invalidEntry(file: file, tensor: name, field: "dtype", reason: "expected a string, found \(dtypeValue.typeName)")
        }
        let shapeValue = try require("shape")
        guard let shape = nonNegativeInts(shapeValue) else {
            throw .invalidEntry(file: file, tensor: name, field: "shape", reason: "expected an array of non-negative integers")
        }
        let offsetsValue = try require("data_offsets")
        guard let offsets = nonNegativeInts(offsetsValue), offsets.count == 2 else {
            throw .invalidEntry(file: file, tensor: name, field: "data_offsets", reason: "expected an array of two non-negative integers")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw .unknownDType(file: file, tensor: name, dtype: dtypeName)
        }
        let begin = offsets[0], end = offsets[1]
        guard begin <= end, end <= dataSize else {
            throw .offsetsOutOfRange(file: file, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }
        var bytes = dtype.byteSize
        var overflow = false
        for dim in shape {
            let (product, o) = bytes.multipliedReportingOverflow(by: dim)
            if o { overflow = true; break }
            bytes = product
        }
        guard !overflow, bytes == end - begin else {
            throw .sizeMismatch(file: file, tensor: name, shape: shape, dtype: dtype, bytes: end - begin)
        }
        return SafeTensorsEntry(name: name, dtype: dtype, shape: shape, byteRange: begin ..< end)
    }

    private static func checkOverlaps(_ entries: [SafeTensorsEntry], file: String) throws(SafeTensorsError) {
        let byOffset = entries.filter { !$0.byteRange.isEmpty }.sorted {
            ($0.byteRange.lowerBound, $0.byteRange.upperBound, $0.name) < ($1.byteRange.lowerBound, $1.byteRange.upperBound, $1.name)
        }
        var reach = 0
        var reachOwner: String? = nil
        for entry in byOffset {
            if let owner = reachOwner, entry.byteRange.lowerBound < reach {
                throw .overlappingOffsets(file: file, tensor: entry.name, other: owner)
            }
            if entry.byteRange.upperBound > reach {
                reach = entry.byteRange.upperBound
                reachOwner = entry.name
            }
        }
    }
}
