// TokenizerLoadError.swift
//
// The typed error thrown while loading a tokenizer description such as a
// Hugging Face `tokenizer.json`. Every case that concerns the contents of the
// file names the offending field with a JSON path (`model.merges[12]`,
// `model.vocab["abc"]`, `pre_tokenizer.pretokenizers[0].pattern`), so that a
// malformed or unsupported file is reported precisely instead of crashing.

/// Why a tokenizer description could not be loaded.
public enum TokenizerLoadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read.
    case unreadableFile(path: String, reason: String)
    /// The bytes are not valid JSON; `offset` is the byte offset of the problem.
    case invalidJSON(offset: Int, reason: String)
    /// A required field is absent (or `null`), e.g. `model.vocab`.
    case missingField(field: String)
    /// A field has the wrong JSON type or shape, e.g. `model.merges[12]` expected `"a b" or ["a", "b"]`.
    case wrongType(field: String, expected: String)
    /// A field names a component or option this implementation does not support, e.g. `model.type` = `"WordPiece"`.
    case unsupported(field: String, value: String)
    /// A field is well-formed but its value is inconsistent, e.g. a merge whose token is not in the vocabulary.
    case invalidValue(field: String, reason: String)

    /// The JSON path of the field at fault, when the error concerns one.
    public var field: String? {
        switch self {
        case .unreadableFile, .invalidJSON: return nil
        case .missingField(let field), .wrongType(let field, _), .unsupported(let field, _),
            .invalidValue(let field, _):
            return field
        }
    }

    /// A one-line message that starts with the field, e.g. `model.merges[12]: expected "a b" or ["a", "b"]`.
    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason): return "cannot read \(path): \(reason)"
        case .invalidJSON(let offset, let reason): return "invalid JSON at byte \(offset): \(reason)"
        case .missingField(let field): return "\(field): missing required field"
        case .wrongType(let field, let expected): return "\(field): expected \(expected)"
        case .unsupported(let field, let value): return "\(field): unsupported value \(value)"
        case .invalidValue(let field, let reason): return "\(field): \(reason)"
        }
    }
}
