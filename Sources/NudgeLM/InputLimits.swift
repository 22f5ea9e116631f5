// What a model can take as input, checked once where token ids meet a model: every id below the
// vocabulary size, and no sequence longer than a learned position table (GPT-2's `n_positions`;
// RoPE models have no hard limit). A trainer or sampler that skipped this would trap inside the
// embedding lookup with a backtrace instead of naming the row, so the checks run before any tensor
// is built. Also the one place a model directory's tokenizer is chosen and checked against it.

import Foundation

/// A token sequence a model cannot take.
public enum TokenLimitError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An id outside 0..<vocabularySize.
    case outOfVocabulary(id: Int, vocabularySize: Int)
    /// More tokens than the model's learned positions.
    case tooLong(tokens: Int, maxPositions: Int)
    /// A prompt with no tokens (nothing to condition generation on).
    case emptyPrompt
    /// A generation setting out of its range.
    case invalidSetting(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .outOfVocabulary(let id, let v): "token id \(id) is outside the model's vocabulary (ids 0..<\(v))"
        case .tooLong(let n, let p): "\(n) tokens exceed the model's \(p) positions (n_positions); shorten the prompt or the completion length"
        case .emptyPrompt: "the prompt has no tokens (an empty prompt gives the model nothing to continue)"
        case .invalidSetting(let name, let value, let expected): "\(name): expected \(expected), got \(value)"
        }
    }
}

/// The vocabulary and position limits of a model.
public struct TokenLimits: Sendable, Hashable {
    /// Every id must be below this.
    public var vocabularySize: Int
    /// The most tokens in one sequence (prompt + completion), or nil for no hard limit.
    public var maxPositions: Int?

    public init(vocabularySize: Int, maxPositions: Int? = nil) {
        self.vocabularySize = vocabularySize
        self.maxPositions = maxPositions
    }

    /// The limits of `configuration`: GPT-2's position table is learned, so it bounds the length.
    public init(_ configuration: TransformerConfiguration) {
        self.init(vocabularySize: configuration.vocabularySize,
                  maxPositions: configuration.family == .gpt2 ? configuration.maxPositions : nil)
    }

    /// The limits of `model`.
    public init(model: any CausalLanguageModel) { self.init(model.configuration) }

    /// Throws when an id of `ids` is outside the vocabulary or `ids` plus `extra` later tokens
    /// (e.g. the completion still to be generated) exceed the positions.
    public func check(_ ids: [Int], extra: Int = 0) throws(TokenLimitError) {
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocabularySize }) {
            throw .outOfVocabulary(id: bad, vocabularySize: vocabularySize)
        }
        if let maxPositions, ids.count + extra > maxPositions { throw .tooLong(tokens: ids.count + extra, maxPositions: maxPositions) }
    }
}

/// A problem with one row of a batch of inputs, numbered from 1.
public struct RowError: Error, CustomStringConvertible {
    public var row: Int
    public var underlying: any Error

    public init(row: Int, underlying: any Error) {
        self.row = row
        self.underlying = underlying
    }

    public var description: String { "row \(row): \(underlying)" }

    /// `transform` applied to each element, an error naming the first failing element's position (from 1).
    public static func map<T, U>(_ items: [T], _ transform: (T) throws -> U) throws -> [U] {
        var out: [U] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            do { out.append(try transform(item)) } catch let error as RowError { throw error } catch {
                throw RowError(row: i + 1, underlying: error)
            }
        }
        return out
    }
}

extension GenerationConfig {
    /// Throws unless the settings are in range and every prompt is non-empty, inside the model's
    /// vocabulary and leaves room for `maxNewTokens` in its positions.
    public func validate(prompts: [[Int]], limits: TokenLimits) throws {
        func bad(_ name: String, _ value: Any, _ expected: String) -> TokenLimitError {
            .invalidSetting(name: name, value: "\(value)", expected: expected)
        }
        guard maxNewTokens >= 0 else { throw bad("max_new_tokens", maxNewTokens, "an integer ≥ 0") }
        guard temperature.isFinite, temperature >= 0 else { throw bad("temperature", temperature, "a finite number ≥ 0 (0: greedy)") }
        guard topK >= 0 else { throw bad("top_k", topK, "an integer ≥ 0 (0: off)") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw bad("top_p", topP, "a number > 0 and ≤ 1 (1: off)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw bad("min_p", minP, "a number between 0 and 1 (0: off)") }
        for id in [eosTokenID].compactMap({ $0 }) + stopTokens where id < 0 || id >= limits.vocabularySize {
            throw bad("eos/stop token", id, "an id below the vocabulary size \(limits.vocabularySize)")
        }
        _ = try RowError.map(prompts) { ids in
            guard !ids.isEmpty else { throw TokenLimitError.emptyPrompt }
            try limits.check(ids, extra: maxNewTokens)
        }
    }
}

extension LanguageModelLoader {
    /// The tokenizer of a model directory — tokenizer.json when present, else the byte tokenizer
    /// the preset models use — checked against the model: every id it can emit must be inside the
    /// model's vocabulary.
    public static func tokenizer(directory: URL, for model: any CausalLanguageModel) throws -> any Tokenizer {
        let file = directory.appendingPathComponent("tokenizer.json")
        let vocabulary = model.configuration.vocabularySize
        if FileManager.default.fileExists(atPath: file.path) {
            let tokenizer = try BPETokenizer.load(directory: directory)
            if tokenizer.vocabularySize > vocabulary {
                let over = tokenizer.specialTokens.filter { $0.value >= vocabulary }.sorted { $0.value < $1.value }
                    .prefix(3).map { "\($0.key) = \($0.value)" }
                throw ModelLoadError.unsupported(
                    file: file.path, field: "vocabulary",
                    value: "ids up to \(tokenizer.vocabularySize - 1)\(over.isEmpty ? "" : " (\(over.joined(separator: ", ")))") but the model's config.json has vocab_size \(vocabulary)")
            }
            return try withChatTemplate(tokenizer, directory: directory)
        }
        let bytes = byteTokenizer
        guard bytes.vocabularySize <= vocabulary else {
            throw ModelLoadError.io(
                file: directory.path,
                reason: "no tokenizer.json, and the byte tokenizer used without one needs \(bytes.vocabularySize) ids (256 bytes and its special tokens) but the model's vocab_size is \(vocabulary); add the model's tokenizer.json, or make the model with `nudge lm init` (its default vocabulary fits the byte tokenizer)")
        }
        // A byte tokenizer leaves most of a large vocabulary unused: a real model missing its
        // tokenizer.json would be trained on byte ids it never saw.
        guard vocabulary <= byteModelVocabularyLimit else {
            throw ModelLoadError.io(
                file: directory.path,
                reason: "no tokenizer.json for a model with vocab_size \(vocabulary); a model that size needs its own tokenizer (copy tokenizer.json beside config.json); only small byte-level models (vocab_size ≤ \(byteModelVocabularyLimit)) are read with the byte tokenizer")
        }
        return bytes
    }

    /// The byte tokenizer the preset models use, and any model directory without a tokenizer.json.
    public static var byteTokenizer: ByteTokenizer { ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>") }

    /// The largest vocabulary read with the byte tokenizer when tokenizer.json is missing: above the
    /// presets' (≤ 2048), below any real model's (32k and up).
    public static let byteModelVocabularyLimit = 8192

    /// A model directory's model and its checked tokenizer.
    public static func loadWithTokenizer(directory: URL) throws -> (any CausalLanguageModel, any Tokenizer) {
        let model = try load(directory: directory)
        return (model, try tokenizer(directory: directory, for: model))
    }

    /// `tokenizer` paired with the directory's own Jinja chat template (chat_template.jinja or
    /// tokenizer_config.json's chat_template) when it has one.
    public static func withChatTemplate(_ tokenizer: any Tokenizer, directory: URL) throws -> any Tokenizer {
        let jinja = directory.appendingPathComponent("chat_template.jinja")
        let config = directory.appendingPathComponent("tokenizer_config.json")
        let hasTemplate = FileManager.default.fileExists(atPath: jinja.path)
            || ((try? Data(contentsOf: config)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }?["chat_template"] != nil)
        guard hasTemplate else { return tokenizer }
        let renderer = try ChatTemplateSource.load(directory: directory).renderer()
        return TemplatedTokenizer(tokenizer, format: JinjaChatFormat(renderer))
    }
}
