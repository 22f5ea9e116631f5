// TokenizerComponents.swift
//
// The pipeline stages of a Hugging Face `tokenizer.json` other than the model:
// the normalizer (NFC/NFD/NFKC/NFKD/Lowercase, Prepend, Replace and Sequence),
// the pre-tokenizer (ByteLevel, Split, Metaspace and Sequence), the
// post-processor (TemplateProcessing, ByteLevel, RobertaProcessing/BertProcessing
// and Sequence) and the decoder (ByteLevel, Fuse, Replace, ByteFallback, Strip,
// Metaspace and Sequence). Prepend/Replace/Metaspace and ByteFallback/Strip are
// the SentencePiece-style stages of Llama 2, Mistral, TinyLlama, Phi-3 and Gemma.
// Each stage parses its JSON description with path-aware errors and applies
// itself the way the Rust library does.

import Foundation

// MARK: - Normalizer

/// A `normalizer` from tokenizer.json.
indirect enum TextNormalizer: Sendable {
    case nfc
    case nfd
    case nfkc
    case nfkd
    case lowercase
    /// Puts a string in front of non-empty text (SentencePiece's dummy prefix `▁`).
    case prepend(String)
    /// Replaces every occurrence of a literal or a regex (e.g. `" "` → `"▁"`).
    case replace(ReplacePattern, String)
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
        case "Prepend": return .prepend(try field.required("prepend").string())
        case "Replace": return .replace(try ReplacePattern.parse(field), try field.required("content").string())
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
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content):
            return pattern.replacingMatches(in: text, with: content)
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
    /// SentencePiece spelling: spaces become `replacement`, which is also put in front of the text
    /// (`always`, or `first`: only at the start of the whole input), then optionally split before each.
    case metaspace(replacement: Unicode.Scalar, prepend: MetaspacePrepend, split: Bool)

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
        case "Metaspace":
            return [.metaspace(
                replacement: try MetaspacePrepend.replacement(field),
                prepend: try MetaspacePrepend.parse(field), split: try field.bool("split", default: true))]
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

    /// Applies the step to every piece; `atTextStart` says the first piece begins the input
    /// (no added token before it), which Metaspace's `first` scheme needs.
    func apply(_ pieces: [[Unicode.Scalar]], atTextStart: Bool = true) -> [[Unicode.Scalar]] {
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
        case .metaspace(let replacement, let prepend, let split):
            for (index, piece) in pieces.enumerated() {
                var spelled = piece.map { $0 == " " ? replacement : $0 }
                let prefixed: Bool
                switch prepend {
                case .always: prefixed = true
                case .first: prefixed = atTextStart && index == 0
                case .never: prefixed = false
                }
                if prefixed, spelled.first != replacement { spelled.insert(replacement, at: 0) }
                if split {
                    result += SplitBehavior.mergedWithNext.split(spelled, pattern: .literal([replacement]), invert: false)
                } else if !spelled.isEmpty {
                    result.append(spelled)
                }
            }
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
    /// Replaces a literal or regex in every token (e.g. `"▁"` → `" "`).
    case replace(ReplacePattern, String)
    /// Turns runs of `<0xAB>` byte tokens into their UTF-8 text (U+FFFD per byte when invalid).
    case byteFallback
    /// Removes up to `start` leading and `stop` trailing `content` characters from every token.
    case strip(content: Character, start: Int, stop: Int)
    /// `replacement` back to spaces, and the prefix space of the first token removed.
    case metaspace(replacement: Character, prepend: MetaspacePrepend)
    case sequence([TokenDecoder])

    /// Parses a decoder description; `null` yields nil.
    static func parse(_ field: JSONField?) throws(TokenizerLoadError) -> TokenDecoder? {
        guard let field else { return nil }
        let type = try field.required("type").string()
        switch type {
        case "ByteLevel": return .byteLevel
        case "Fuse": return .fuse
        case "Replace": return .replace(try ReplacePattern.parse(field), try field.required("content").string())
        case "ByteFallback": return .byteFallback
        case "Strip":
            let contentField = try field.required("content")
            let content = try contentField.string()
            guard content.count == 1, let character = content.first else {
                throw .invalidValue(field: contentField.path, reason: "must be one character")
            }
            return .strip(content: character, start: try field.int("start", default: 0), stop: try field.int("stop", default: 0))
        case "Metaspace":
            return .metaspace(
                replacement: Character(try MetaspacePrepend.replacement(field)), prepend: try MetaspacePrepend.parse(field))
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
        case .replace(let pattern, let content):
            return tokens.map { pattern.replacingMatches(in: $0, with: content) }
        case .byteFallback:
            var result: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let text = String(validating: pending, as: UTF8.self) {
                    result.append(text)
                } else {
                    result += Array(repeating: "\u{FFFD}", count: pending.count)
                }
                pending.removeAll()
            }
            for token in tokens {
                if let byte = Self.fallbackByte(token) {
                    pending.append(byte)
                } else {
                    flush()
                    result.append(token)
                }
            }
            flush()
            return result
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                var characters = Array(token)
                var leading = 0
                while leading < start, leading < characters.count, characters[leading] == content { leading += 1 }
                characters.removeFirst(leading)
                var trailing = 0
                while trailing < stop, let last = characters.last, last == content {
                    characters.removeLast()
                    trailing += 1
                }
                return String(characters)
            }
        case .metaspace(let replacement, let prepend):
            return tokens.enumerated().map { index, token in
                var text = String(token.map { $0 == replacement ? " " : $0 })
                if index == 0, prepend != .never, text.first == " " { text.removeFirst() }
                return text
            }
        case .sequence(let decoders):
            return decoders.reduce(tokens) { $1.decodeChain($0) }
        }
    }
}

// MARK: - SentencePiece-style helpers

/// Metaspace's `prepend_scheme` (older files: `add_prefix_space` true means `always`).
enum MetaspacePrepend: String, Sendable {
    case always
    case first
    case never

    static func parse(_ field: JSONField) throws(TokenizerLoadError) -> MetaspacePrepend {
        if let schemeField = try field.optional("prepend_scheme") {
            let name = try schemeField.string()
            guard let scheme = MetaspacePrepend(rawValue: name) else {
                throw .unsupported(field: schemeField.path, value: JSONField.quoted(name))
            }
            return scheme
        }
        return try field.bool("add_prefix_space", default: true) ? .always : .never
    }

    /// The one-character `replacement` (default `▁`).
    static func replacement(_ field: JSONField) throws(TokenizerLoadError) -> Unicode.Scalar {
        guard let replacementField = try field.optional("replacement") else { return "\u{2581}" }
        let text = try replacementField.string()
        guard text.unicodeScalars.count == 1, let scalar = text.unicodeScalars.first else {
            throw .invalidValue(field: replacementField.path, reason: "must be one character")
        }
        return scalar
    }
}

/// The `pattern` of a Replace normalizer or decoder: `{"String": ...}` or `{"Regex": ...}`.
enum ReplacePattern: @unchecked Sendable {
    case literal(String)
    // NSRegularExpression is immutable and documented as thread-safe.
    case regex(NSRegularExpression)

    static func parse(_ field: JSONField) throws(TokenizerLoadError) -> ReplacePattern {
        let patternField = try field.required("pattern")
        if let literal = try patternField.optional("String") {
            let text = try literal.string()
            guard !text.isEmpty else { throw .invalidValue(field: literal.path, reason: "must not be empty") }
            return .literal(text)
        }
        if let regexField = try patternField.optional("Regex") {
            let source = try regexField.string()
            do {
                return .regex(try NSRegularExpression(pattern: source))
            } catch {
                throw .invalidValue(field: regexField.path, reason: "not a valid regex: \(error.localizedDescription)")
            }
        }
        throw .wrongType(field: patternField.path, expected: #"{"String": ...} or {"Regex": ...}"#)
    }

    func replacingMatches(in text: String, with content: String) -> String {
        switch self {
        case .literal(let literal):
            // Scalar-wise like Rust's `str::replace` (Swift's String comparison would merge graphemes).
            let needle = Array(literal.unicodeScalars)
            let haystack = Array(text.unicodeScalars)
            guard haystack.count >= needle.count else { return text }
            var result = String.UnicodeScalarView()
            var index = 0
            while index < haystack.count {
                if haystack[index] == needle[0], index + needle.count <= haystack.count,
                   haystack[index..<(index + needle.count)].elementsEqual(needle) {
                    result.append(contentsOf: content.unicodeScalars)
                    index += needle.count
                } else {
                    result.append(haystack[index])
                    index += 1
                }
            }
            return String(result)
        case .regex(let regex):
            let template = NSRegularExpression.escapedTemplate(for: content)
            return regex.stringByReplacingMatches(
                in: text, range: NSRange(text.startIndex..., in: text), withTemplate: template)
        }
    }
}

extension TokenDecoder {
    /// The byte of a `<0xAB>` token, or nil.
    static func fallbackByte(_ token: String) -> UInt8? {
        let scalars = Array(token.unicodeScalars)
        guard scalars.count == 6, scalars[0] == "<", scalars[1] == "0", scalars[2] == "x", scalars[5] == ">" else {
            return nil
        }
        return UInt8(String(String.UnicodeScalarView(scalars[3...4])), radix: 16)
    }
}
