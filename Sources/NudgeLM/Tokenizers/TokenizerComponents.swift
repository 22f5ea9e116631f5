// TokenizerComponents.swift
//
// The pipeline stages of a Hugging Face `tokenizer.json` other than the model:
// the normalizer (NFC/NFD/NFKC/NFKD/Lowercase and Sequence), the pre-tokenizer
// (ByteLevel, Split and Sequence), the post-processor (TemplateProcessing,
// ByteLevel, RobertaProcessing/BertProcessing and Sequence) and the decoder
// (ByteLevel, Fuse and Sequence). Each stage parses its JSON description with
// path-aware errors and applies itself the way the Rust library does.

import Foundation

// MARK: - Normalizer

/// A `normalizer` from tokenizer.json.
indirect enum TextNormalizer: Sendable {
    case nfc
    case nfd
    case nfkc
    case nfkd
    case lowercase
    case sequence([TextNormalizer])

    /// Parses a normalizer description; `null` yields nil.
    static func parse(_ field: JSONField?) throws(TokenizerLoadError) -> TextNormalizer? {
        guard let field else { return nil }
        let type = try field.required("type").string()
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Sequence":
            var normalizers: [TextNormalizer] = []
            for element in try field.required("normalizers").array() {
                guard let normalizer = try parse(element.isNull ? nil : element) else {
                    throw .wrongType(field: element.path, expected: "a normalizer object")
                }
                normalizers.append(normalizer)
            }
            return .sequence(normalizers)
        default:
            throw .unsupported(field: field.memberPath("type"), value: JSONField.quoted(type))
        }
    }

    /// The normalized text.
    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase:
            // Scalar by scalar, like Rust's `char::to_lowercase` (no context-dependent final sigma).
            var result = ""
            for scalar in text.unicodeScalars { result += scalar.properties.lowercaseMapping }
            return result
        case .sequence(let normalizers):
            return normalizers.reduce(text) { $1.apply($0) }
        }
    }
}

// MARK: - Pre-tokenizer

/// One step of a `pre_tokenizer` (a `Sequence` is flattened into its steps).
enum PreTokenizerStep: Sendable {
    /// Optionally prefix a space, optionally split with the GPT-2 regex, then spell bytes with `ByteLevelAlphabet`.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// Split around the matches of a pattern.
    case split(SplitPattern, SplitBehavior, invert: Bool)

    /// Parses a pre-tokenizer description into its flattened steps.
    static func parse(_ field: JSONField?) throws(TokenizerLoadError) -> [PreTokenizerStep] {
        guard let field else { return [] }
        let type = try field.required("type").string()
        switch type {
        case "ByteLevel":
            return [
                .byteLevel(
                    addPrefixSpace: try field.bool("add_prefix_space", default: true),
                    useRegex: try field.bool("use_regex", default: true))
            ]
        case "Split":
            let patternField = try field.required("pattern")
            let pattern: SplitPattern
            if let regex = try patternField.optional("Regex") {
                pattern = try SplitPattern.regex(try regex.string(), field: regex.path)
            } else if let literal = try patternField.optional("String") {
                pattern = .literal(Array(try literal.string().unicodeScalars))
            } else {
                throw .wrongType(field: patternField.path, expected: #"{"Regex": ...} or {"String": ...}"#)
            }
            let behaviorField = try field.required("behavior")
            let behaviorName = try behaviorField.string()
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw .unsupported(field: behaviorField.path, value: JSONField.quoted(behaviorName))
            }
            return [.split(pattern, behavior, invert: try field.bool("invert", default: false))]
        case "Sequence":
            var steps: [PreTokenizerStep] = []
            for element in try field.required("pretokenizers").array() {
                if element.isNull { throw .wrongType(field: element.path, expected: "a pre-tokenizer object") }
                steps += try parse(element)
            }
            return steps
        default:
            throw .unsupported(field: field.memberPath("type"), value: JSONField.quoted(type))
        }
    }

    /// Applies the step to every piece.
    func apply(_ pieces: [[Unicode.Scalar]]) -> [[Unicode.Scalar]] {
        var result: [[Unicode.Scalar]] = []
        result.reserveCapacity(pieces.count)
        switch self {
        case .byteLevel(let addPrefixSpace, let useRegex):
            for var piece in pieces {
                if addPrefixSpace, let first = piece.first, first != " " { piece.insert(" ", at: 0) }
                if useRegex {
                    for part in SplitBehavior.isolated.split(piece, pattern: .gpt2, invert: false) {
                        result.append(ByteLevelAlphabet.encode(part[...]))
                    }
                } else if !piece.isEmpty {
                    result.append(ByteLevelAlphabet.encode(piece[...]))
                }
            }
        case .split(let pattern, let behavior, let invert):
            for piece in pieces { result += behavior.split(piece, pattern: pattern, invert: invert) }
        }
        return result
    }
}

// MARK: - Post-processor

/// One element of a TemplateProcessing `single` template.
enum TemplateItem: Sendable, Equatable {
    /// The ids of a special token (`{"SpecialToken": {"id": ...}}`).
    case specialToken([Int])
    /// The encoded text (`{"Sequence": {"id": "A"}}`).
    case sequence
}

/// A `post_processor` from tokenizer.json, applied when special tokens are requested.
indirect enum PostProcessor: Sendable {
    /// ByteLevel only adjusts offsets: ids are unchanged.
    case byteLevel
    /// TemplateProcessing's `single` template.
    case template([TemplateItem])
    /// RobertaProcessing / BertProcessing: `cls` before and `sep` after the text.
    case wrap(prefix: [Int], suffix: [Int])
    case sequence([PostProcessor])

    /// Parses a post-processor description; `null` yields nil.
    static func parse(_ field: JSONField?) throws(TokenizerLoadError) -> PostProcessor? {
        guard let field else { return nil }
        let type = try field.required("type").string()
        switch type {
        case "ByteLevel":
            return .byteLevel
        case "TemplateProcessing":
            let specialTokens = try field.optional("special_tokens")
            var items: [TemplateItem] = []
            for element in try field.required("single").array() {
                if let special = try element.optional("SpecialToken") {
                    let name = try special.required("id").string()
                    guard let entry = try specialTokens?.optional(name) else {
                        throw .invalidValue(
                            field: special.memberPath("id"),
                            reason: "\(JSONField.quoted(name)) is not in \(field.memberPath("special_tokens"))")
                    }
                    var ids: [Int] = []
                    for idField in try entry.required("ids").array() { ids.append(try idField.tokenID()) }
                    items.append(.specialToken(ids))
                } else if let sequence = try element.optional("Sequence") {
                    let idField = try sequence.required("id")
                    let name = try idField.string()
                    guard name == "A" else {
                        throw .invalidValue(field: idField.path, reason: "a single-sequence template can only use sequence \"A\"")
                    }
                    items.append(.sequence)
                } else {
                    throw .wrongType(field: element.path, expected: #"{"SpecialToken": ...} or {"Sequence": ...}"#)
                }
            }
            return .template(items)
        case "RobertaProcessing", "BertProcessing":
            func tokenID(_ key: String) throws(TokenizerLoadError) -> Int {
                let pair = try field.required(key).array()
                guard pair.count == 2 else { throw .wrongType(field: field.memberPath(key), expected: #"["token", id]"#) }
                return try pair[1].tokenID()
            }
            return .wrap(prefix: [try tokenID("cls")], suffix: [try tokenID("sep")])
        case "Sequence":
            var processors: [PostProcessor] = []
            for element in try field.required("processors").array() {
                guard let processor = try parse(element.isNull ? nil : element) else {
                    throw .wrongType(field: element.path, expected: "a post-processor object")
                }
                processors.append(processor)
            }
            return .sequence(processors)
        default:
            throw .unsupported(field: field.memberPath("type"), value: JSONField.quoted(type))
        }
    }

    /// The final ids for a single sequence.
    func process(_ ids: [Int], addSpecialTokens: Bool) -> [Int] {
        guard addSpecialTokens else { return ids }
        switch self {
        case .byteLevel:
            return ids
        case .template(let items):
            var result: [Int] = []
            for item in items {
                switch item {
                case .specialToken(let special): result += special
                case .sequence: result += ids
                }
            }
            return result
        case .wrap(let prefix, let suffix):
            return prefix + ids + suffix
        case .sequence(let processors):
            return processors.reduce(ids) { $1.process($0, addSpecialTokens: true) }
        }
    }

    /// The ids the processor puts before the text, e.g. Llama 3's `<|begin_of_text|>`.
    var prefixIDs: [Int] {
        switch self {
        case .byteLevel: return []
        case .template(let items):
            var prefix: [Int] = []
            for item in items {
                guard case .specialToken(let ids) = item else { break }
                prefix += ids
            }
            return prefix
        case .wrap(let prefix, _): return prefix
        case .sequence(let processors): return processors.reduce([]) { $0 + $1.prefixIDs }
        }
    }
}

// MARK: - Decoder

/// A `decoder` from tokenizer.json: turns token strings back into text.
indirect enum TokenDecoder: Sendable {
    /// Maps byte-level scalars back to bytes and decodes UTF-8 (invalid bytes become U+FFFD).
    case byteLevel
    /// Concatenates the tokens.
    case fuse
    case sequence([TokenDecoder])

    /// Parses a decoder description; `null` yields nil.
    static func parse(_ field: JSONField?) throws(TokenizerLoadError) -> TokenDecoder? {
        guard let field else { return nil }
        let type = try field.required("type").string()
        switch type {
        case "ByteLevel": return .byteLevel
        case "Fuse": return .fuse
        case "Sequence":
            var decoders: [TokenDecoder] = []
            for element in try field.required("decoders").array() {
                guard let decoder = try parse(element.isNull ? nil : element) else {
                    throw .wrongType(field: element.path, expected: "a decoder object")
                }
                decoders.append(decoder)
            }
            return .sequence(decoders)
        default:
            throw .unsupported(field: field.memberPath("type"), value: JSONField.quoted(type))
        }
    }

    /// Rust's `decode_chain`: token strings in, token strings out.
    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                if let decoded = ByteLevelAlphabet.decode(token) {
                    bytes += decoded
                } else {
                    bytes += Array(token.utf8)
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .fuse:
            return [tokens.joined()]
        case .sequence(let decoders):
            return decoders.reduce(tokens) { $1.decodeChain($0) }
        }
    }
}
