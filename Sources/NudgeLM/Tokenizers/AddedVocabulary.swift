// AddedVocabulary.swift
//
// Added tokens (`added_tokens` in tokenizer.json), which are cut out of the
// text before normalization and pre-tokenization, as the Hugging Face library
// does: tokens with `normalized: false` (all usual special tokens) are matched
// in the raw text, the remaining pieces are normalized, then tokens with
// `normalized: true` are matched in the normalized pieces. Matching is
// leftmost-longest over UTF-8 bytes (a byte trie), and honours `single_word`
// (no letter or digit may touch the match), `lstrip` and `rstrip` (the match
// absorbs adjacent whitespace).

/// A token added on top of the model vocabulary, e.g. `<|endoftext|>`.
public struct AddedToken: Sendable, Hashable {
    /// The token text.
    public var content: String
    /// The token id.
    public var id: Int
    /// Whether this is a special token (dropped by `decode(_:skipSpecialTokens: true)`).
    public var isSpecial: Bool
    /// Whether the match absorbs whitespace on its left.
    public var leftStrip: Bool
    /// Whether the match absorbs whitespace on its right.
    public var rightStrip: Bool
    /// Whether the token only matches as a whole word (no letter or digit right before or after).
    public var singleWord: Bool
    /// Whether the token is matched in the normalized text rather than the raw text.
    public var normalized: Bool

    /// Creates an added token; by default a special token matched exactly in the raw text.
    public init(
        content: String, id: Int, isSpecial: Bool = true, leftStrip: Bool = false, rightStrip: Bool = false,
        singleWord: Bool = false, normalized: Bool = false
    ) {
        self.content = content
        self.id = id
        self.isSpecial = isSpecial
        self.leftStrip = leftStrip
        self.rightStrip = rightStrip
        self.singleWord = singleWord
        self.normalized = normalized
    }
}

/// A trie over UTF-8 bytes for leftmost-longest, non-overlapping matching.
struct TokenTrie: Sendable {
    private var children: [[UInt8: Int32]] = [[:]]
    private var values: [Int32] = [-1]

    /// Whether no pattern was inserted.
    var isEmpty: Bool { children.count == 1 }

    /// Adds `pattern` (non-empty) with an associated value; a later insert of the same pattern wins.
    mutating func insert(_ pattern: [UInt8], value: Int) {
        guard !pattern.isEmpty else { return }
        var node = 0
        for byte in pattern {
            if let next = children[node][byte] {
                node = Int(next)
            } else {
                children.append([:])
                values.append(-1)
                children[node][byte] = Int32(children.count - 1)
                node = children.count - 1
            }
        }
        values[node] = Int32(value)
    }

    /// Leftmost-longest non-overlapping matches in `bytes`.
    func matches(in bytes: [UInt8]) -> [(range: Range<Int>, value: Int)] {
        var result: [(range: Range<Int>, value: Int)] = []
        guard !isEmpty else { return result }
        var start = 0
        while start < bytes.count {
            var node = 0
            var index = start
            var best: (end: Int, value: Int)?
            while index < bytes.count, let next = children[node][bytes[index]] {
                node = Int(next)
                index += 1
                if values[node] >= 0 { best = (index, Int(values[node])) }
            }
            if let best {
                result.append((start..<best.end, best.value))
                start = best.end
            } else {
                start += 1
            }
        }
        return result
    }
}

/// A piece of input after added tokens were cut out.
enum TextSegment: Sendable, Equatable {
    /// An added token, by id.
    case token(Int)
    /// Text to pre-tokenize and run through the model (UTF-8, already normalized).
    case text([UInt8])
}

/// The added tokens of a tokenizer and the tries that find them.
struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    private let rawTrie: TokenTrie
    private let normalizedTrie: TokenTrie

    init(tokens: [AddedToken], normalizer: TextNormalizer?) {
        self.tokens = tokens
        var rawTrie = TokenTrie()
        var normalizedTrie = TokenTrie()
        for (index, token) in tokens.enumerated() {
            if token.normalized {
                let content = normalizer?.apply(token.content) ?? token.content
                normalizedTrie.insert(Array(content.utf8), value: index)
            } else {
                rawTrie.insert(Array(token.content.utf8), value: index)
            }
        }
        self.rawTrie = rawTrie
        self.normalizedTrie = normalizedTrie
    }

    /// Cuts added tokens out of `text` and normalizes the rest.
    func segments(of text: String, normalizer: TextNormalizer?) -> [TextSegment] {
        let raw = Array(text.utf8)
        var result: [TextSegment] = []
        for split in splits(of: raw, trie: rawTrie) {
            if let index = split.tokenIndex {
                result.append(.token(tokens[index].id))
                continue
            }
            var piece = Array(raw[split.range])
            if let normalizer { piece = Array(normalizer.apply(String(decoding: piece, as: UTF8.self)).utf8) }
            for inner in splits(of: piece, trie: normalizedTrie) {
                if let index = inner.tokenIndex {
                    result.append(.token(tokens[index].id))
                } else if !inner.range.isEmpty {
                    result.append(.text(Array(piece[inner.range])))
                }
            }
        }
        return result
    }

    /// Rust's `AddedVocabulary::find_matches`: matches (with their strip/word rules) and the gaps between them.
    private func splits(of bytes: [UInt8], trie: TokenTrie) -> [(tokenIndex: Int?, range: Range<Int>)] {
        guard !trie.isEmpty, !bytes.isEmpty else { return [(nil, 0..<bytes.count)] }
        var result: [(tokenIndex: Int?, range: Range<Int>)] = []
        var offset = 0
        for match in trie.matches(in: bytes) {
            var start = match.range.lowerBound
            var stop = match.range.upperBound
            let token = tokens[match.value]
            if token.singleWord {
                let wordBefore = start > 0 && UTF8Scanning.scalar(before: start, in: bytes).map(Self.isWordScalar) == true
                let wordAfter = stop < bytes.count && UTF8Scanning.scalar(at: stop, in: bytes).map(Self.isWordScalar) == true
                if wordBefore || wordAfter { continue }
            }
            if token.leftStrip {
                var newStart = start
                while newStart > offset, let scalar = UTF8Scanning.scalar(before: newStart, in: bytes),
                    scalar.properties.isWhitespace
                {
                    newStart -= UTF8.width(scalar)
                }
                start = newStart
            }
            if token.rightStrip {
                while stop < bytes.count, let scalar = UTF8Scanning.scalar(at: stop, in: bytes), scalar.properties.isWhitespace {
                    stop += UTF8.width(scalar)
                }
            }
            // A previous match that absorbed trailing whitespace may overlap this one.
            guard stop > offset else { continue }
            start = max(start, offset)
            if offset < start { result.append((nil, offset..<start)) }
            result.append((match.value, start..<stop))
            offset = stop
        }
        if offset != bytes.count { result.append((nil, offset..<bytes.count)) }
        return result
    }

    /// Rust's `char::is_alphanumeric`: Alphabetic, or a number (Nd, Nl, No).
    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.properties.isAlphabetic { return true }
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }
}

/// Decoding single scalars from valid UTF-8 at byte offsets.
enum UTF8Scanning {
    /// The scalar starting at byte `offset`.
    static func scalar(at offset: Int, in bytes: [UInt8]) -> Unicode.Scalar? {
        guard offset >= 0, offset < bytes.count else { return nil }
        let lead = bytes[offset]
        let length: Int
        switch lead {
        case 0x00...0x7F: return Unicode.Scalar(lead)
        case 0xC0...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF7: length = 4
        default: return nil
        }
        guard offset + length <= bytes.count else { return nil }
        var value = UInt32(lead) & (0xFF >> UInt32(length + 1))
        for index in 1..<length { value = (value << 6) | (UInt32(bytes[offset + index]) & 0x3F) }
        return Unicode.Scalar(value)
    }

    /// The scalar that ends right before byte `offset`.
    static func scalar(before offset: Int, in bytes: [UInt8]) -> Unicode.Scalar? {
        guard offset > 0, offset <= bytes.count else { return nil }
        var start = offset - 1
        while start > 0, bytes[start] & 0xC0 == 0x80, offset - start < 4 { start -= 1 }
        return scalar(at: start, in: bytes)
    }
}
