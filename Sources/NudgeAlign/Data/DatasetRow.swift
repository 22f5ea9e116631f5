// DatasetRow.swift
//
// The rows of alignment datasets in TRL's standard shapes: language modeling
// conversations, prompt/completion pairs, preference pairs (explicit or with an
// implicit prompt), unpaired preference (KTO), prompts with verifiable answers
// (RLVR) and pre-tokenized rows. Text fields are either plain strings or
// conversations (`Content`). Also the typed errors the loader and tokenizer
// throw; every loader error names the file, the line and the field.

import NudgeLM

/// The text of a prompt or completion: a plain string or a list of chat messages.
public enum Content: Sendable, Hashable {
    /// Plain text (TRL's "standard" format).
    case text(String)
    /// Chat messages (TRL's "conversational" format).
    case messages([ChatMessage])

    /// Whether this is the conversational format.
    public var isConversational: Bool {
        if case .messages = self { return true }
        return false
    }

    /// The plain text, or the message contents joined without separators.
    public var plainText: String {
        switch self {
        case .text(let text): text
        case .messages(let messages): messages.map(\.content).joined()
        }
    }
}

/// The shape of a dataset row, detected from its keys.
public enum DatasetShape: String, Sendable, Hashable, CaseIterable {
    /// `messages`: a conversation, trained on its assistant turns.
    case conversation = "messages"
    /// `prompt`, `completion`.
    case promptCompletion = "prompt/completion"
    /// `prompt` alone (prompts for online methods).
    case promptOnly = "prompt"
    /// `prompt`, `chosen`, `rejected`; or `chosen`, `rejected` with an implicit prompt.
    case preference = "prompt/chosen/rejected"
    /// `prompt`, `completion`, `label` (KTO).
    case unpairedPreference = "prompt/completion/label"
    /// `prompt` with `answer` or `solution` (RLVR).
    case verifiable = "prompt/answer"
    /// `prompt_input_ids`, `chosen_input_ids`, `rejected_input_ids`.
    case tokenizedPreference = "prompt_input_ids/chosen_input_ids/rejected_input_ids"
    /// `input_ids` with optional `completion_mask`.
    case tokenizedLanguageModeling = "input_ids/completion_mask"
    /// `prompt`, `completions` (a list of steps), `labels` (one boolean per step): TRL's
    /// stepwise supervision, what a process reward model trains on.
    case stepwiseSupervision = "prompt/completions/labels"
}

/// One dataset row.
public enum DatasetRow: Sendable, Hashable {
    /// A conversation for supervised fine-tuning (loss on assistant turns).
    case conversation([ChatMessage])
    /// A prompt and its completion (both text or both conversational).
    case promptCompletion(prompt: Content, completion: Content)
    /// A prompt only.
    case promptOnly(Content)
    /// A preference pair. Implicit-prompt rows are stored with the extracted common prefix as prompt.
    case preference(prompt: Content, chosen: Content, rejected: Content)
    /// An unpaired completion labelled desirable (`true`) or not (KTO).
    case unpairedPreference(prompt: Content, completion: Content, label: Bool)
    /// A prompt with a verifiable reference answer (RLVR; TRL's `answer` or `solution`).
    case verifiable(prompt: Content, answer: String)
    /// Pre-tokenized preference ids, used as they are.
    case tokenizedPreference(promptIDs: [Int], chosenIDs: [Int], rejectedIDs: [Int])
    /// Pre-tokenized ids with the loss mask (1 = train on this token), used as they are.
    case tokenizedLanguageModeling(inputIDs: [Int], completionMask: [Int])
    /// A prompt, its completion as a list of steps, and whether each step is correct (TRL's
    /// stepwise supervision; plain text).
    case stepwiseSupervision(prompt: String, completions: [String], labels: [Bool])

    /// The row's shape.
    public var shape: DatasetShape {
        switch self {
        case .conversation: .conversation
        case .promptCompletion: .promptCompletion
        case .promptOnly: .promptOnly
        case .preference: .preference
        case .unpairedPreference: .unpairedPreference
        case .verifiable: .verifiable
        case .tokenizedPreference: .tokenizedPreference
        case .tokenizedLanguageModeling: .tokenizedLanguageModeling
        case .stepwiseSupervision: .stepwiseSupervision
        }
    }
}

/// A malformed or inconsistent line of a dataset file.
public struct DatasetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public enum Kind: Sendable, Equatable {
        /// The file could not be read.
        case unreadable(String)
        /// The line is not valid JSON.
        case invalidJSON
        /// The line is JSON but not an object.
        case notAnObject
        /// The keys match no known shape.
        case unknownShape(keys: [String])
        /// A required field is absent.
        case missingField
        /// A field has the wrong type; `expected` describes the accepted types.
        case wrongType(expected: String, found: String)
        /// A completion (or chosen/rejected) has no content.
        case emptyCompletion
        /// A message role is not one of system, user, assistant, tool.
        case invalidRole(String)
        /// The row's shape differs from the shape of the file's first row.
        case mixedShapes(expected: DatasetShape, found: DatasetShape, firstLine: Int)
        /// The row mixes (or differs from the file in) plain-text and conversational format.
        case mixedFormats
        /// The fields contradict each other (e.g. lengths differ); the text says how.
        case inconsistent(String)
        /// The file holds no rows.
        case noRows
        /// The bytes are not UTF-8 text; the text names what they look like.
        case notUTF8(String)
    }

    /// The file's name (last path component).
    public var file: String
    /// The 1-based line number, or 0 for whole-file errors.
    public var line: Int
    /// The offending field, e.g. `chosen` or `messages[2].role`, when there is one.
    public var field: String?
    /// What is wrong.
    public var kind: Kind
    /// Whether `line` counts rows of a Parquet file (1-based) rather than lines of text.
    public var isRow: Bool

    /// Creates an error.
    public init(file: String, line: Int, field: String?, kind: Kind, isRow: Bool = false) {
        self.file = file
        self.line = line
        self.field = field
        self.kind = kind
        self.isRow = isRow
    }

    /// `file:line: field "name": message` (`file: message` for the whole file, line 0).
    public var description: String {
        var text = line > 0 ? (isRow ? "\(file):row \(line): " : "\(file):\(line): ") : "\(file): "
        if let field { text += "field \"\(field)\": " }
        switch kind {
        case .unreadable(let reason): text += "cannot read the file: \(reason)"
        case .invalidJSON: text += "invalid JSON"
        case .notAnObject: text += "expected a JSON object"
        case .unknownShape(let keys):
            text += "keys [\(keys.sorted().joined(separator: ", "))] match no dataset shape"
        case .missingField: text += "missing"
        case .wrongType(let expected, let found): text += "expected \(expected), found \(found)"
        case .emptyCompletion: text += "empty completion"
        case .invalidRole(let role): text += "invalid role \"\(role)\" (expected system, user, assistant or tool)"
        case .mixedShapes(let expected, let found, let firstLine):
            text += "row shape \(found.rawValue) differs from the file's shape \(expected.rawValue) (line \(firstLine))"
        case .mixedFormats: text += "mixes plain-text and conversational format"
        case .inconsistent(let reason): text += reason
        case .noRows: text += "the file has no rows (a dataset needs at least one JSON object line)"
        case .notUTF8(let what): text += "not UTF-8 text (\(what)); save the file as UTF-8"
        }
        return text
    }
}

/// A row that cannot be tokenized as asked.
public enum TokenizationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The row's shape does not fit the requested output, e.g. a prompt-only row for SFT.
    case unsupportedShape(DatasetShape, expected: String)
    /// The row is conversational but no chat template was given.
    case missingChatTemplate
    /// The template's tokens for the prompt are not a prefix of those for prompt + completion.
    case promptNotPrefix

    /// A readable message.
    public var description: String {
        switch self {
        case .unsupportedShape(let shape, let expected): "a \(shape.rawValue) row cannot be tokenized as \(expected)"
        case .missingChatTemplate: "conversational row but no chat template"
        case .promptNotPrefix:
            "the chat template renders the prompt differently once the completion follows it (the templated prompt is not a prefix of prompt + completion); check the turns' roles and order"
        }
    }
}
