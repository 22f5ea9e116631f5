// BPETokenizer.swift
//
// `BPETokenizer` loads a Hugging Face `tokenizer.json` describing a BPE
// tokenizer — byte-level (GPT-2, Llama 3, Qwen2 and similar) or SentencePiece-
// style with byte fallback (Llama 2, Mistral, TinyLlama, Phi-3, Gemma) — and encodes and decodes
// exactly as the Rust `tokenizers` library does: added tokens are cut out of
// the text first, the rest is normalized, pre-tokenized (ByteLevel / Split),
// run through the BPE model, and the post-processor adds sequence tokens such
// as Llama 3's `<|begin_of_text|>`; decoding maps ids back through the decoder.
// Loading never traps: a malformed file is a `TokenizerLoadError` naming the field.

import Foundation

/// A byte-level BPE tokenizer loaded from a Hugging Face `tokenizer.json`.
public final class BPETokenizer: Tokenizer {
    /// The added tokens (special and not), in file order.
    public let addedTokens: [AddedToken]
    /// One more than the largest model or added token id.
    public let vocabularySize: Int
    /// The special added tokens by text.
    public let specialTokens: [String: Int]
    /// The beginning-of-sequence token (given, or inferred at load time).
    public let bosTokenID: Int?
    /// The end-of-sequence / end-of-turn token (given, or inferred at load time).
    public let eosTokenID: Int?
    /// The padding token (given, or inferred at load time).
    public let padTokenID: Int?
    /// `.chatML` when the tokenizer has `<|im_start|>`/`<|im_end|>`, `.llama3` when it has the Llama 3 header tokens.
    public let defaultChatTemplate: ChatTemplate?

    let normalizer: TextNormalizer?
    let preTokenizer: [PreTokenizerStep]
    let model: BPEModel
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    private let addedVocabulary: AddedVocabulary
    private let addedTokenIDsByContent: [[UInt8]: Int]
    private let addedTokensByID: [Int: AddedToken]
    private let specialContents: Set<[UInt8]>

    /// Loads a tokenizer.json file.
    ///
    /// `bosToken`, `eosToken` and `padToken` name the role tokens; when nil they are inferred
    /// (see `init(data:bosToken:eosToken:padToken:)`).
    public convenience init(
        contentsOf url: URL, bosToken: String? = nil, eosToken: String? = nil, padToken: String? = nil
    ) throws(TokenizerLoadError) {
        try self.init(data: try Self.read(url), bosToken: bosToken, eosToken: eosToken, padToken: padToken)
    }

    /// Parses tokenizer.json contents.
    ///
    /// Role tokens left nil are inferred: BOS is the token the post-processor puts first (else
    /// `<|begin_of_text|>` or `<s>`); EOS is the end-of-turn token of the detected chat format
    /// (`<|im_end|>`, `<|eot_id|>`), else `<|endoftext|>`, `<|end_of_text|>` or `</s>`; padding is
    /// `<|pad|>`, `<pad>` or `<|finetune_right_pad_id|>`. Use `load(directory:)` to read them from
    /// a `tokenizer_config.json` instead.
    public init(
        data: Data, bosToken: String? = nil, eosToken: String? = nil, padToken: String? = nil
    ) throws(TokenizerLoadError) {
        let root = JSONField(root: try JSONValue.parse(Array(data)))
        guard case .object = root.value else { throw .wrongType(field: "(root)", expected: "an object") }

        let normalizer = try TextNormalizer.parse(try root.optional("normalizer"))
        let preTokenizer = try PreTokenizerStep.parse(try root.optional("pre_tokenizer"))
        let model = try BPEModel(try root.required("model"))
        let postProcessor = try PostProcessor.parse(try root.optional("post_processor"))
        let decoder = try TokenDecoder.parse(try root.optional("decoder"))

        var addedTokens: [AddedToken] = []
        if let list = try root.optional("added_tokens") {
            for element in try list.array() {
                let isSpecial = try element.bool("special", default: false)
                addedTokens.append(
                    AddedToken(
                        content: try element.required("content").string(),
                        id: try element.required("id").tokenID(),
                        isSpecial: isSpecial,
                        leftStrip: try element.bool("lstrip", default: false),
                        rightStrip: try element.bool("rstrip", default: false),
                        singleWord: try element.bool("single_word", default: false),
                        normalized: try element.bool("normalized", default: !isSpecial)))
            }
        }

        var addedTokenIDsByContent: [[UInt8]: Int] = [:]
        var addedTokensByID: [Int: AddedToken] = [:]
        var specialTokens: [String: Int] = [:]
        var specialContents = Set<[UInt8]>()
        for token in addedTokens {
            addedTokenIDsByContent[Array(token.content.utf8)] = token.id
            addedTokensByID[token.id] = token
            if token.isSpecial {
                specialTokens[token.content] = token.id
                specialContents.insert(Array(token.content.utf8))
            }
        }

        self.addedTokens = addedTokens
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.addedVocabulary = AddedVocabulary(tokens: addedTokens, normalizer: normalizer)
        self.addedTokenIDsByContent = addedTokenIDsByContent
        self.addedTokensByID = addedTokensByID
        self.specialTokens = specialTokens
        self.specialContents = specialContents
        self.vocabularySize = max(model.tokensByID.count, (addedTokens.map(\.id).max() ?? -1) + 1)

        func lookup(_ token: String) -> Int? {
            addedTokenIDsByContent[Array(token.utf8)] ?? model.vocabulary[Array(token.unicodeScalars)]
        }
        func resolve(_ explicit: String?, role: String, candidates: [String]) throws(TokenizerLoadError) -> Int? {
            if let explicit {
                guard let id = lookup(explicit) else {
                    throw .invalidValue(field: role, reason: "\(JSONField.quoted(explicit)) is not a token of this tokenizer")
                }
                return id
            }
            return candidates.lazy.compactMap(lookup).first
        }

        let template: ChatTemplate?
        if lookup("<|im_start|>") != nil && lookup("<|im_end|>") != nil {
            template = .chatML
        } else if lookup("<|start_header_id|>") != nil && lookup("<|end_header_id|>") != nil && lookup("<|eot_id|>") != nil {
            template = .llama3
        } else {
            template = nil
        }
        self.defaultChatTemplate = template

        let prefix = postProcessor?.prefixIDs ?? []
        if bosToken == nil, prefix.count == 1 {
            self.bosTokenID = prefix[0]
        } else {
            self.bosTokenID = try resolve(bosToken, role: "bos_token", candidates: ["<|begin_of_text|>", "<s>"])
        }
        let endOfTurn: [String] =
            switch template {
            case .chatML: ["<|im_end|>"]
            case .llama3: ["<|eot_id|>"]
            case nil: []
            }
        self.eosTokenID = try resolve(
            eosToken, role: "eos_token", candidates: endOfTurn + ["<|endoftext|>", "<|end_of_text|>", "</s>"])
        self.padTokenID = try resolve(
            padToken, role: "pad_token", candidates: ["<|pad|>", "<pad>", "<|finetune_right_pad_id|>"])
    }

    /// Loads `tokenizer.json` from a model directory, taking the BOS, EOS and padding tokens from
    /// its `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`) when that file exists.
    public static func load(directory: URL) throws(TokenizerLoadError) -> BPETokenizer {
        let tokenizerData = try read(directory.appendingPathComponent("tokenizer.json"))
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            return try BPETokenizer(data: tokenizerData)
        }
        let config = JSONField(value: try JSONValue.parse(Array(try read(configURL))), path: "tokenizer_config")
        func role(_ key: String) throws(TokenizerLoadError) -> String? {
            guard let field = try config.optional(key) else { return nil }
            if case .string(let content) = field.value { return content }
            if case .object = field.value { return try field.required("content").string() }
            throw .wrongType(field: field.path, expected: #"a string or {"content": ...}"#)
        }
        return try BPETokenizer(
            data: tokenizerData, bosToken: try role("bos_token"), eosToken: try role("eos_token"),
            padToken: try role("pad_token"))
    }

    private static func read(_ url: URL) throws(TokenizerLoadError) -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
    }

    // MARK: Tokenizer

    /// The token ids of `text`: added tokens are matched first, the rest is normalized, pre-tokenized and
    /// merged; `addSpecialTokens` applies the post-processor (e.g. Llama 3's leading `<|begin_of_text|>`).
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        var ids: [Int] = []
        var atTextStart = true
        for segment in addedVocabulary.segments(of: text, normalizer: normalizer) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let bytes):
                var pieces = [Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)]
                for step in preTokenizer { pieces = step.apply(pieces, atTextStart: atTextStart) }
                for piece in pieces { ids += model.tokenize(piece) }
            }
            atTextStart = false
        }
        return postProcessor?.process(ids, addSpecialTokens: addSpecialTokens) ?? ids
    }

    /// The text of `ids` through the decoder; unknown ids are ignored, special tokens dropped when
    /// `skipSpecialTokens`. Byte sequences that are not valid UTF-8 decode to U+FFFD.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let token = token(for: id) else { continue }
            if skipSpecialTokens, specialContents.contains(Array(token.utf8)) { continue }
            tokens.append(token)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }

    /// The id of an added token or of a model token spelled in the byte-level alphabet (e.g. `"Ġthe"`).
    public func tokenID(for token: String) -> Int? {
        addedTokenIDsByContent[Array(token.utf8)] ?? model.vocabulary[Array(token.unicodeScalars)]
    }

    /// The added token text or byte-level model token for `id`.
    public func token(for id: Int) -> String? {
        if let added = addedTokensByID[id] { return added.content }
        guard id >= 0, id < model.tokensByID.count else { return nil }
        return model.tokensByID[id]
    }
}
