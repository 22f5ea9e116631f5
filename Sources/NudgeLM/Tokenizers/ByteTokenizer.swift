// ByteTokenizer.swift
//
// `ByteTokenizer`, the simplest lossless tokenizer: ids 0...255 are the UTF-8
// bytes of the text, and configurable special tokens take the ids after them
// (256, 257, ...). Special tokens written in the text are matched
// (leftmost-longest) and emitted as their ids, so `decode(encode(x)) == x` for
// every string. Useful for small models and tests that need no vocabulary file.

/// A tokenizer whose tokens are UTF-8 bytes plus a few special tokens.
public struct ByteTokenizer: Tokenizer {
    /// The special tokens used when none are given.
    public static let defaultSpecialTokens = ["<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"]

    /// The special tokens in id order; the first has id 256.
    public let specialTokenList: [String]
    /// The special tokens by text.
    public let specialTokens: [String: Int]
    /// The beginning-of-sequence token, if configured.
    public let bosTokenID: Int?
    /// The end-of-sequence token, if configured.
    public let eosTokenID: Int?
    /// The padding token, if configured.
    public let padTokenID: Int?
    /// `.chatML` or `.llama3` when the special tokens of that format are present.
    public let defaultChatTemplate: ChatTemplate?
    private let trie: TokenTrie

    /// Creates a byte tokenizer.
    ///
    /// Duplicate and empty special tokens are ignored. A role token (`bosToken`, `eosToken`,
    /// `padToken`) that is not among the special tokens leaves that role unset. When a BOS token
    /// is set, `encode(_:addSpecialTokens: true)` puts it first.
    public init(
        specialTokens: [String] = ByteTokenizer.defaultSpecialTokens, bosToken: String? = nil,
        eosToken: String? = "<|endoftext|>", padToken: String? = "<|pad|>"
    ) {
        var list: [String] = []
        var ids: [String: Int] = [:]
        var seen = Set<[UInt8]>()
        var trie = TokenTrie()
        for token in specialTokens where !token.isEmpty && seen.insert(Array(token.utf8)).inserted {
            let id = 256 + list.count
            list.append(token)
            ids[token] = id
            trie.insert(Array(token.utf8), value: id)
        }
        self.specialTokenList = list
        self.specialTokens = ids
        self.trie = trie
        func roleID(_ token: String?) -> Int? {
            guard let token else { return nil }
            return list.firstIndex { Array($0.utf8) == Array(token.utf8) }.map { 256 + $0 }
        }
        self.bosTokenID = roleID(bosToken)
        self.eosTokenID = roleID(eosToken)
        self.padTokenID = roleID(padToken)
        if ids["<|im_start|>"] != nil && ids["<|im_end|>"] != nil {
            self.defaultChatTemplate = .chatML
        } else if ids["<|start_header_id|>"] != nil && ids["<|end_header_id|>"] != nil && ids["<|eot_id|>"] != nil {
            self.defaultChatTemplate = .llama3
        } else {
            self.defaultChatTemplate = nil
        }
    }

    /// 256 byte ids plus the special tokens.
    public var vocabularySize: Int { 256 + specialTokenList.count }

    /// The UTF-8 bytes of `text`, with special tokens (leftmost-longest) as their ids; BOS first when
    /// `addSpecialTokens` and a BOS token is configured.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        let bytes = Array(text.utf8)
        var ids: [Int] = []
        ids.reserveCapacity(bytes.count + 1)
        if addSpecialTokens, let bosTokenID { ids.append(bosTokenID) }
        var offset = 0
        for match in trie.matches(in: bytes) {
            for byte in bytes[offset..<match.range.lowerBound] { ids.append(Int(byte)) }
            ids.append(match.value)
            offset = match.range.upperBound
        }
        for byte in bytes[offset...] { ids.append(Int(byte)) }
        return ids
    }

    /// The text of `ids`; unknown ids are ignored and invalid UTF-8 decodes to U+FFFD.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count)
        for id in ids {
            if id >= 0 && id < 256 {
                bytes.append(UInt8(id))
            } else if id >= 256 && id < vocabularySize {
                if !skipSpecialTokens { bytes += Array(specialTokenList[id - 256].utf8) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A special token's id, a one-byte ASCII string's byte, or the byte named `<0xAB>`.
    public func tokenID(for token: String) -> Int? {
        let bytes = Array(token.utf8)
        if let index = specialTokenList.firstIndex(where: { Array($0.utf8) == bytes }) { return 256 + index }
        if bytes.count == 1 && bytes[0] < 128 { return Int(bytes[0]) }
        if bytes.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"), let byte = UInt8(token.dropFirst(3).dropLast(), radix: 16) {
            return Int(byte)
        }
        return nil
    }

    /// ASCII bytes are spelled as themselves, other bytes as `<0xAB>`, special tokens as their text.
    public func token(for id: Int) -> String? {
        if id >= 0 && id < 128 { return String(Unicode.Scalar(UInt8(id))) }
        if id >= 128 && id < 256 { return "<0x" + String(id, radix: 16, uppercase: true) + ">" }
        if id >= 256 && id < vocabularySize { return specialTokenList[id - 256] }
        return nil
    }
}
