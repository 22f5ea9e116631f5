// BPEModel.swift
//
// The BPE `model` of a tokenizer.json: vocabulary, ranked merges and the merge
// loop. Words are sequences of Unicode scalars (for byte-level tokenizers, the
// `ByteLevelAlphabet` spelling of their bytes). Merges live in a dictionary
// keyed by the packed pair of symbol ids; each word is merged with a min-heap
// ordered by (rank, position), exactly like the Rust library's `Word::merge_all`,
// and results are kept in a bounded per-model word cache. Supports
// `ignore_merges`, `unk_token`/`fuse_unk`, `byte_fallback`,
// `continuing_subword_prefix` and `end_of_word_suffix`; merges may be written as
// "a b" strings or as ["a", "b"] pairs. BPE dropout is ignored: encoding is
// always deterministic.

import Foundation

/// A byte-pair-encoding model.
final class BPEModel: Sendable {
    /// Token (as scalars) → id.
    let vocabulary: [[Unicode.Scalar]: Int]
    /// Id → token text; nil for unused ids.
    let tokensByID: [String?]
    /// Fast path for single-scalar tokens below U+0200 (all of the byte-level alphabet); -1 when absent.
    private let smallScalarIDs: [Int32]
    /// Packed (left id, right id) → merge rank and merged id.
    private let merges: [UInt64: Merge]
    let ignoreMerges: Bool
    private let unknownTokenID: Int?
    private let fuseUnknown: Bool
    /// `<0xAB>` token ids by byte, when `byte_fallback` is on.
    private let byteFallbackIDs: [Int?]?
    private let continuingSubwordPrefix: [Unicode.Scalar]?
    private let endOfWordSuffix: [Unicode.Scalar]?
    private let cache = WordCache(capacity: 10_000)

    struct Merge: Sendable {
        let rank: Int32
        let id: Int32
    }

    /// Parses the `model` field of a tokenizer.json.
    init(_ model: JSONField) throws(TokenizerLoadError) {
        if let typeField = try model.optional("type") {
            let type = try typeField.string()
            guard type == "BPE" else { throw .unsupported(field: typeField.path, value: JSONField.quoted(type)) }
        }

        var vocabulary: [[Unicode.Scalar]: Int] = [:]
        var maximumID = -1
        let vocabMembers = try model.required("vocab").members()
        vocabulary.reserveCapacity(vocabMembers.count)
        for (token, field) in vocabMembers {
            let id = try field.tokenID()
            vocabulary[Array(token.unicodeScalars)] = id
            maximumID = max(maximumID, id)
        }
        // Ids index an array: refuse absurdly sparse ids rather than allocate for them.
        guard maximumID < 2 * vocabulary.count + 65_536 else {
            throw .invalidValue(
                field: model.memberPath("vocab"),
                reason: "token ids are too sparse (largest id \(maximumID) for \(vocabulary.count) tokens)")
        }
        var tokensByID = [String?](repeating: nil, count: maximumID + 1)
        var smallScalarIDs = [Int32](repeating: -1, count: 0x200)
        for (token, id) in vocabulary {
            tokensByID[id] = String(String.UnicodeScalarView(token))
            if token.count == 1, token[0].value < 0x200 { smallScalarIDs[Int(token[0].value)] = Int32(id) }
        }

        let mergesField = try model.required("merges")
        var merges: [UInt64: Merge] = [:]
        let mergeElements = try mergesField.array()
        merges.reserveCapacity(mergeElements.count)
        var rank: Int32 = 0
        for element in mergeElements {
            let pair: (String, String)
            switch element.value {
            case .string(let line):
                if line.hasPrefix("#version") { continue }
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw .wrongType(field: element.path, expected: #""a b" or ["a", "b"]"#)
                }
                pair = (String(parts[0]), String(parts[1]))
            case .array(let items):
                guard items.count == 2, case .string(let left) = items[0], case .string(let right) = items[1] else {
                    throw .wrongType(field: element.path, expected: #""a b" or ["a", "b"]"#)
                }
                pair = (left, right)
            default:
                throw .wrongType(field: element.path, expected: #""a b" or ["a", "b"]"#)
            }
            let leftScalars = Array(pair.0.unicodeScalars)
            let rightScalars = Array(pair.1.unicodeScalars)
            guard let left = vocabulary[leftScalars] else {
                throw .invalidValue(field: element.path, reason: "token \(JSONField.quoted(pair.0)) is not in \(model.memberPath("vocab"))")
            }
            guard let right = vocabulary[rightScalars] else {
                throw .invalidValue(field: element.path, reason: "token \(JSONField.quoted(pair.1)) is not in \(model.memberPath("vocab"))")
            }
            guard let merged = vocabulary[leftScalars + rightScalars] else {
                throw .invalidValue(
                    field: element.path, reason: "merged token \(JSONField.quoted(pair.0 + pair.1)) is not in \(model.memberPath("vocab"))")
            }
            merges[Self.key(left, right)] = Merge(rank: rank, id: Int32(merged))
            rank += 1
        }

        var unknownTokenID: Int?
        if let unknownField = try model.optional("unk_token") {
            let unknown = try unknownField.string()
            guard let id = vocabulary[Array(unknown.unicodeScalars)] else {
                throw .invalidValue(field: unknownField.path, reason: "\(JSONField.quoted(unknown)) is not in \(model.memberPath("vocab"))")
            }
            unknownTokenID = id
        }
        var byteFallbackIDs: [Int?]?
        if try model.bool("byte_fallback", default: false) {
            byteFallbackIDs = (0..<256).map { byte in
                let hex = String(byte, radix: 16, uppercase: true)
                return vocabulary[Array(("<0x" + (hex.count == 1 ? "0" : "") + hex + ">").unicodeScalars)]
            }
        }
        // BPE dropout is a training-time regularizer; encoding here is always deterministic.
        if let dropoutField = try model.optional("dropout") {
            switch dropoutField.value {
            case .integer, .double: break
            default: throw .wrongType(field: dropoutField.path, expected: "a number or null")
            }
        }

        self.vocabulary = vocabulary
        self.tokensByID = tokensByID
        self.smallScalarIDs = smallScalarIDs
        self.merges = merges
        self.ignoreMerges = try model.bool("ignore_merges", default: false)
        self.unknownTokenID = unknownTokenID
        self.fuseUnknown = try model.bool("fuse_unk", default: false)
        self.byteFallbackIDs = byteFallbackIDs
        self.continuingSubwordPrefix = try model.string("continuing_subword_prefix").map { Array($0.unicodeScalars) }
        self.endOfWordSuffix = try model.string("end_of_word_suffix").map { Array($0.unicodeScalars) }
    }

    @inline(__always)
    private static func key(_ left: Int, _ right: Int) -> UInt64 {
        (UInt64(UInt32(truncatingIfNeeded: left)) << 32) | UInt64(UInt32(truncatingIfNeeded: right))
    }

    /// The token ids for one pre-tokenized word.
    func tokenize(_ word: [Unicode.Scalar]) -> [Int] {
        if word.isEmpty { return [] }
        if ignoreMerges, let id = vocabulary[word] { return [id] }
        if let cached = cache.value(for: word) { return cached }
        let ids = mergeWord(word)
        if word.count < 256 { cache.store(ids, for: word) }
        return ids
    }

    /// The initial symbols of a word (Rust's `merge_word` before merging), then the merge loop.
    private func mergeWord(_ word: [Unicode.Scalar]) -> [Int] {
        var symbols: [Int] = []
        symbols.reserveCapacity(word.count)
        var pendingUnknown = false
        let plain = continuingSubwordPrefix == nil && endOfWordSuffix == nil
        for (index, scalar) in word.enumerated() {
            var id: Int?
            if plain {
                if scalar.value < 0x200 {
                    let small = smallScalarIDs[Int(scalar.value)]
                    id = small >= 0 ? Int(small) : nil
                } else {
                    id = vocabulary[[scalar]]
                }
            } else {
                var symbol = [scalar]
                if index > 0, let prefix = continuingSubwordPrefix { symbol = prefix + symbol }
                if index == word.count - 1, let suffix = endOfWordSuffix { symbol += suffix }
                id = vocabulary[symbol]
            }
            if let id {
                if pendingUnknown, let unknownTokenID { symbols.append(unknownTokenID) }
                pendingUnknown = false
                symbols.append(id)
                continue
            }
            if let byteFallbackIDs, let encoded = UTF8.encode(scalar) {
                let bytes = encoded.compactMap { byteFallbackIDs[Int($0)] }
                if bytes.count == encoded.count {
                    symbols += bytes
                    continue
                }
            }
            if let unknownTokenID {
                if pendingUnknown && !fuseUnknown { symbols.append(unknownTokenID) }
                pendingUnknown = true
            }
        }
        if pendingUnknown, let unknownTokenID { symbols.append(unknownTokenID) }
        return merge(symbols)
    }

    /// Applies the merges to a symbol sequence, lowest rank first, leftmost first among equal ranks.
    func merge(_ initial: [Int]) -> [Int] {
        let count = initial.count
        if count < 2 { return initial }
        var ids = initial
        var previous = [Int](repeating: -1, count: count)
        var next = [Int](repeating: -1, count: count)
        var alive = [Bool](repeating: true, count: count)
        for index in 0..<count {
            previous[index] = index - 1
            next[index] = index + 1 < count ? index + 1 : -1
        }
        var heap = MergeHeap()
        for index in 0..<(count - 1) {
            if let merge = merges[Self.key(ids[index], ids[index + 1])] {
                heap.push(MergeHeap.Entry(rank: merge.rank, position: Int32(index), id: merge.id))
            }
        }
        while let top = heap.pop() {
            let position = Int(top.position)
            guard alive[position] else { continue }
            let right = next[position]
            guard right >= 0 else { continue }
            // Skip stale entries: the pair at this position must still produce the same token.
            guard let current = merges[Self.key(ids[position], ids[right])], current.id == top.id else { continue }
            ids[position] = Int(top.id)
            alive[right] = false
            let afterRight = next[right]
            next[position] = afterRight
            if afterRight >= 0 { previous[afterRight] = position }
            let left = previous[position]
            if left >= 0, let merge = merges[Self.key(ids[left], ids[position])] {
                heap.push(MergeHeap.Entry(rank: merge.rank, position: Int32(left), id: merge.id))
            }
            if afterRight >= 0, let merge = merges[Self.key(ids[position], ids[afterRight])] {
                heap.push(MergeHeap.Entry(rank: merge.rank, position: Int32(position), id: merge.id))
            }
        }
        var result: [Int] = []
        result.reserveCapacity(count)
        var index = 0
        while index >= 0 {
            result.append(ids[index])
            index = next[index]
        }
        return result
    }
}

/// A binary min-heap of pending merges ordered by (rank, position).
struct MergeHeap {
    struct Entry {
        let rank: Int32
        let position: Int32
        let id: Int32

        @inline(__always)
        func precedes(_ other: Entry) -> Bool {
            rank != other.rank ? rank < other.rank : position < other.position
        }
    }

    private var entries: [Entry] = []

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let first = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < entries.count, entries[left].precedes(entries[smallest]) { smallest = left }
                if right < entries.count, entries[right].precedes(entries[smallest]) { smallest = right }
                if smallest == parent { break }
                entries.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first
    }
}

/// A bounded, thread-safe word → ids cache; cleared when full.
final class WordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [[Unicode.Scalar]: [Int]] = [:]
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func value(for word: [Unicode.Scalar]) -> [Int]? {
        lock.lock()
        defer { lock.unlock() }
        return storage[word]
    }

    func store(_ ids: [Int], for word: [Unicode.Scalar]) {
        lock.lock()
        defer { lock.unlock() }
        if storage.count >= capacity { storage.removeAll(keepingCapacity: true) }
        storage[word] = ids
    }
}
