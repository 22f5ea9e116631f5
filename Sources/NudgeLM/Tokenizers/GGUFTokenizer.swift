// GGUFTokenizer.swift
//
// A GGUF file carries no tokenizer.json: llama.cpp stores the vocabulary, merges or scores, token
// types and role ids under `tokenizer.ggml.*`. `GGUFTokenizer` rebuilds the tokenizer.json the
// model's Hugging Face checkout carries, so the same `BPETokenizer` code serves both, and a run
// started from a GGUF can save a tokenizer.json next to its checkpoint.
//
// - `tokenizer.ggml.model = gpt2`: byte-level BPE; `tokenizer.ggml.pre` names the split regexes
//   (llama.cpp's `llm_tokenizer_bpe` table, which copies them from each model's tokenizer.json).
// - `tokenizer.ggml.model = llama`: SentencePiece BPE (Llama 2, Mistral, TinyLlama, Phi-3, Gemma).
//   The file has scores instead of merges; the merges are recovered as transformers'
//   `generate_merges` does (every split of a token into two vocabulary tokens, best score first),
//   which gives SentencePiece's own "merge the best-scoring pair" order. Text is spelled the way
//   those models' original tokenizer.json files and llama.cpp do it: a `▁` prefix
//   (`add_space_prefix`, default on) and spaces as `▁`, unknown characters as `<0xAB>` bytes.
//   Gemma files list their tokens in merge order and spell multi-space tokens with real spaces,
//   both handled as transformers' Gemma builder does.

import Foundation
import NudgeNN

/// Tokenizers rebuilt from GGUF metadata.
public enum GGUFTokenizer {
    /// The `tokenizer.ggml.pre` values understood, for error messages.
    static let supportedPreTokenizers = [
        "default", "gpt-2", "gpt2", "mpt", "olmo", "smollm", "starcoder", "refact", "codeshell", "llama-bpe",
        "llama3", "dbrx", "smaug-bpe", "qwen2", "deepseek-r1-qwen", "deepseek-llm", "deepseek-coder", "falcon",
    ]

    /// The pre-tokenizer (tokenizer.json form) that llama.cpp's `tokenizer.ggml.pre` names.
    static func preTokenizer(_ pre: String, file: String) throws -> (pre: [String: Any], ignoreMerges: Bool) {
        func split(_ regex: String) -> [String: Any] {
            ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false]
        }
        func splits(_ regexes: [String]) -> [String: Any] {
            ["type": "Sequence", "pretokenizers": regexes.map(split) + [byteLevel]]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false]
        let gpt2: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        switch pre {
        case "default", "gpt-2", "gpt2", "mpt", "olmo":
            return (gpt2, false)
        case "smollm", "starcoder", "refact", "codeshell":
            // Digits one by one, then GPT-2's split (the Hugging Face pre-tokenizer of SmolLM and StarCoder).
            return (["type": "Sequence", "pretokenizers": [split("\\p{N}"), gpt2]], false)
        case "llama-bpe", "llama3", "dbrx", "smaug-bpe":
            let regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
            return (["type": "Sequence", "pretokenizers": [split(regex), byteLevel]], true)
        case "qwen2", "deepseek-r1-qwen":
            let regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
            return (["type": "Sequence", "pretokenizers": [split(regex), byteLevel]], false)
        case "deepseek-coder":
            // Non-ASCII as escapes: the ranges must stay un-normalized (U+1FD3 is not U+0390 here).
            return (splits(["[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+", "\\p{N}"]), false)
        case "deepseek-llm":
            return (splits([
                "[\\r\\n]",
                "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",
                "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
                "\\s+$",
                "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
                "\\p{N}+",
            ]), false)
        case "falcon":
            return (splits([
                "[\\p{P}\\$\\+<=>\\^~\\|`]+",
                "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
                "[0-9][0-9][0-9]",
            ]), false)
        default:
            throw ModelLoadError.io(
                file: file,
                reason: "tokenizer.ggml.pre '\(pre)' is not supported (supported: \(supportedPreTokenizers.joined(separator: ", ")))")
        }
    }

    /// The tokenizer a GGUF file describes.
    public static func make(_ file: GGUFFile) throws -> BPETokenizer {
        let (data, roles) = try tokenizerJSON(file, sortedKeys: false)
        do {
            return try BPETokenizer(data: data, bosToken: roles.bos, eosToken: roles.eos, padToken: roles.pad)
        } catch {
            throw ModelLoadError.io(file: file.url.path, reason: "its tokenizer metadata: \(error)")
        }
    }

    /// The Hugging Face tokenizer.json equivalent of a GGUF file's tokenizer metadata, and its role
    /// tokens. `sortedKeys` makes the bytes the same from run to run (for a file on disk); sorting a
    /// 49k-entry vocabulary's keys was most of a model load (`nudge lm tokenize` on SmolLM2's
    /// GGUF: 3.5–5.0 s with it, 0.9–1.1 s without), so `make` skips it.
    public static func tokenizerJSON(_ file: GGUFFile, sortedKeys: Bool = true) throws -> (json: Data, roles: (bos: String?, eos: String?, pad: String?)) {
        let path = file.url.path
        let model = try file.string("tokenizer.ggml.model")
        guard let model else { throw GGUFError.missingKey(file: path, key: "tokenizer.ggml.model") }
        guard model == "gpt2" || model == "llama" else {
            throw ModelLoadError.io(
                file: path,
                reason: "tokenizer.ggml.model '\(model)' is not supported; byte-level BPE ('gpt2') and SentencePiece BPE ('llama') are")
        }
        guard var tokens = try file.strings("tokenizer.ggml.tokens") else { throw GGUFError.missingKey(file: path, key: "tokenizer.ggml.tokens") }
        let types = try file.numbers("tokenizer.ggml.token_type") ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw GGUFError.invalid(file: path, reason: "tokenizer.ggml.token_type has \(types.count) entries for \(tokens.count) tokens")
        }
        let isGemma = (try file.string("general.architecture"))?.hasPrefix("gemma") == true

        var json: [String: Any] = ["version": "1.0", "normalizer": NSNull(), "pre_tokenizer": NSNull()]
        var modelJSON: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(),
        ]
        if model == "gpt2" {
            let (pre, ignoreMerges) = try preTokenizer(try file.string("tokenizer.ggml.pre") ?? "default", file: path)
            json["pre_tokenizer"] = pre
            json["decoder"] = ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true]
            modelJSON["merges"] = try file.strings("tokenizer.ggml.merges") ?? []
            modelJSON["ignore_merges"] = ignoreMerges
            modelJSON["byte_fallback"] = false
            modelJSON["fuse_unk"] = false
        } else {
            if isGemma {
                // Gemma stores runs of spaces as spaces; its tokenizer.json spells them with ▁.
                tokens = tokens.map { token in
                    !token.isEmpty && token.allSatisfy({ $0 == " " }) ? String(repeating: "\u{2581}", count: token.count) : token
                }
            }
            let scores: [Double]
            if isGemma {
                // Gemma's scores do not follow its merge order; its token order does.
                scores = (0..<tokens.count).map { -Double($0) }
            } else {
                guard let fileScores = try file.numbers("tokenizer.ggml.scores") else {
                    throw GGUFError.missingKey(file: path, key: "tokenizer.ggml.scores")
                }
                guard fileScores.count == tokens.count else {
                    throw GGUFError.invalid(file: path, reason: "tokenizer.ggml.scores has \(fileScores.count) entries for \(tokens.count) tokens")
                }
                scores = fileScores
            }
            modelJSON["merges"] = try file.strings("tokenizer.ggml.merges").map { $0 as [Any] }
                ?? sentencePieceMerges(tokens: tokens, scores: scores).map { [$0.left, $0.right] }
            modelJSON["ignore_merges"] = false
            modelJSON["byte_fallback"] = true
            modelJSON["fuse_unk"] = true
            let addSpacePrefix = try file.bool("tokenizer.ggml.add_space_prefix") ?? !isGemma
            let replace: [String: Any] = ["type": "Replace", "pattern": ["String": " "], "content": "\u{2581}"]
            json["normalizer"] = addSpacePrefix
                ? ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "\u{2581}"], replace]] as [String: Any]
                : replace
            var decoders: [[String: Any]] = [
                ["type": "Replace", "pattern": ["String": "\u{2581}"], "content": " "], ["type": "ByteFallback"], ["type": "Fuse"],
            ]
            if addSpacePrefix { decoders.append(["type": "Strip", "content": " ", "start": 1, "stop": 0]) }
            json["decoder"] = ["type": "Sequence", "decoders": decoders]
        }

        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(tokens.count)
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() {
            if vocab[token] == nil { vocab[token] = id }
            // llama.cpp's token types: 2 unknown, 3 control (special added tokens), 4 user-defined (added, not special).
            let type = types.isEmpty ? 1 : Int(types[id])
            if type == 2 || type == 3 || type == 4 {
                added.append(["id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": type == 4 && model == "gpt2", "special": type != 4])
            }
        }
        modelJSON["vocab"] = vocab
        json["added_tokens"] = added
        json["model"] = modelJSON

        func token(_ key: String) throws -> String? {
            guard let id = try file.int(key) else { return nil }
            guard id >= 0, id < tokens.count else {
                throw GGUFError.invalid(file: path, reason: "\(key) is \(id), outside the \(tokens.count) tokens")
            }
            return tokens[id]
        }
        if model == "llama", let unknown = try token("tokenizer.ggml.unknown_token_id") { modelJSON["unk_token"] = unknown }
        json["model"] = modelJSON
        let bos = try token("tokenizer.ggml.bos_token_id")
        let eos = try token("tokenizer.ggml.eos_token_id")
        // SentencePiece vocabularies add BOS unless the file says otherwise (llama.cpp and transformers agree).
        let addBOS = try file.bool("tokenizer.ggml.add_bos_token") ?? (model == "llama")
        let addEOS = try file.bool("tokenizer.ggml.add_eos_token") ?? false
        var single: [[String: Any]] = [["Sequence": ["id": "A", "type_id": 0]]]
        var specials: [String: Any] = [:]
        if addBOS, let bos, let id = vocab[bos] {
            single.insert(["SpecialToken": ["id": bos, "type_id": 0]], at: 0)
            specials[bos] = ["id": bos, "ids": [id], "tokens": [bos]]
        }
        if addEOS, let eos, let id = vocab[eos] {
            single.append(["SpecialToken": ["id": eos, "type_id": 0]])
            specials[eos] = ["id": eos, "ids": [id], "tokens": [eos]]
        }
        if !specials.isEmpty {
            json["post_processor"] = ["type": "TemplateProcessing", "single": single, "pair": single, "special_tokens": specials]
        }
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: json, options: sortedKeys ? [.sortedKeys] : [])
        } catch {
            throw GGUFError.invalid(file: path, reason: "the tokenizer metadata cannot be assembled: \(error)")
        }
        return (data, (bos, eos, try token("tokenizer.ggml.padding_token_id")))
    }

    /// BPE merges implied by a SentencePiece vocabulary: for every token, each split into two
    /// vocabulary tokens, ordered best score first (then longer left piece, longer right piece,
    /// then token order and the pieces' ids), as transformers' `generate_merges` orders them.
    static func sentencePieceMerges(tokens: [String], scores: [Double]) -> [(left: String, right: String)] {
        var ids: [[Unicode.Scalar]: Int] = [:]
        ids.reserveCapacity(tokens.count)
        var scoreOf: [[Unicode.Scalar]: Double] = [:]
        var order: [[Unicode.Scalar]] = []
        for (id, token) in tokens.enumerated() {
            let scalars = Array(token.unicodeScalars)
            if ids[scalars] == nil { order.append(scalars) }
            ids[scalars] = id  // a repeated token keeps its last id and score, as a Python dict would
            scoreOf[scalars] = scores[id]
        }
        struct Candidate {
            let left: ArraySlice<Unicode.Scalar>
            let right: ArraySlice<Unicode.Scalar>
            let score: Double
            let sequence: Int
        }
        var candidates: [Candidate] = []
        for token in order {
            guard token.count > 1, let score = scoreOf[token] else { continue }
            var local: [(Candidate, Int, Int)] = []
            for index in 1..<token.count {
                let left = token[..<index], right = token[index...]
                if let leftID = ids[Array(left)], let rightID = ids[Array(right)] {
                    local.append((Candidate(left: left, right: right, score: score, sequence: 0), leftID, rightID))
                }
            }
            local.sort { ($0.1, $0.2) < ($1.1, $1.2) }
            for (candidate, _, _) in local {
                candidates.append(Candidate(left: candidate.left, right: candidate.right, score: score, sequence: candidates.count))
            }
        }
        // Python's sorted(..., reverse=True) is stable: equal keys keep their order.
        candidates.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.left.count != b.left.count { return a.left.count > b.left.count }
            if a.right.count != b.right.count { return a.right.count > b.right.count }
            return a.sequence < b.sequence
        }
        return candidates.map {
            (String(String.UnicodeScalarView($0.left)), String(String.UnicodeScalarView($0.right)))
        }
    }
}
