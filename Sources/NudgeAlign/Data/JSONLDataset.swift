// JSONLDataset.swift
//
// Loads JSON Lines datasets in TRL's standard shapes into `DatasetRow`s. The
// shape is detected from the keys of each line and must be the same on every
// line of a file, as must the format (plain text or conversational). Extra
// keys (ids, metadata) are ignored. Every problem is a `DatasetError` naming
// the file, the line and the field, e.g.
// `data.jsonl:17: field "chosen": expected a string or a list of messages, found a number`.
//
// Implicit-prompt preference rows (no `prompt`, `chosen`/`rejected` holding the
// whole text or conversation) get the longest common prefix as the prompt:
// whole messages for conversations, characters for text (a space right before
// the first difference goes with the completions, as in TRL).

import Foundation
import NudgeLM

/// Loads JSON Lines datasets.
public enum JSONLDataset {
    /// The roles a message may have.
    public static let validRoles: Set<String> = ["system", "user", "assistant", "tool"]

    /// The rows of the JSON Lines, Parquet (`.parquet`), CSV/TSV (with a header) or JSON (one top-level
    /// array of objects) file at `url`, or of a directory in the
    /// Hugging Face Hub's layout: the `split` shards `data/<split>-*.parquet` (or `.jsonl`), in name order.
    ///
    /// - Throws: `DatasetError` for an unreadable file or the first malformed line or row.
    public static func load(_ url: URL, split: String? = nil, options: DatasetOptions = DatasetOptions()) throws -> [DatasetRow] {
        var rows: [DatasetRow] = []
        try forEachRow(url, split: split, options: options) { _, row in
            rows.append(row)
            return true
        }
        return rows
    }

    /// Reads the dataset at `url` (as `load` does) row by row, calling `body` with each row's source
    /// object (before column mapping) and its parsed row, until `body` returns false. Parquet files are
    /// read page by page and decoded a batch of rows at a time, so only a page per column and one
    /// batch are held, plus whatever `body` keeps; other formats are read whole (they are parsed line by line, but from one buffer).
    ///
    /// - Throws: `DatasetError` for an unreadable file or the first malformed line or row, or what `body` throws.
    public static func forEachRow(_ url: URL, split: String? = nil, options: DatasetOptions = DatasetOptions(),
                                  _ body: (_ source: [String: JSONValue], _ row: DatasetRow) throws -> Bool) throws {
        let split = split ?? options.split
        let name = url.lastPathComponent
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError(file: name, line: 0, field: nil, kind: .unreadable("no such file"))
        }
        if isDirectory.boolValue {
            let shards = hubShards(in: url, split: split)
            guard !shards.isEmpty else {
                throw DatasetError(file: name, line: 0, field: nil, kind: .unreadable(
                    "it is a directory without \(split) shards (expected data/\(split)-*.parquet as on the Hugging Face Hub)"))
            }
            var going = true
            for shard in shards where going {
                try forEachRow(shard, options: options) { source, row in
                    going = try body(source, row)
                    return going
                }
            }
            return
        }
        // A FIFO or device would block or read as nothing; a dataset is a regular file.
        let type = (try? FileManager.default.attributesOfItem(atPath: path)[.type]) as? FileAttributeType
        guard type == .typeRegular || type == .typeSymbolicLink else {
            throw DatasetError(file: name, line: 0, field: nil, kind: .unreadable("not a regular file"))
        }
        var count = 0
        if url.pathExtension.lowercased() == "parquet" {
            let file: ParquetFile
            do {
                file = try ParquetFile(source: try ParquetSource(path: path), fileName: name)
            } catch let failure as ParquetFailure {
                throw DatasetError(file: name, line: 0, field: nil, kind: .unreadable(failure.message))
            } catch let error as ParquetError {
                throw datasetError(error)
            }
            var reader = RowReader(fileName: name, isRow: true, options: options)
            var iterator = file.makeRowIterator()
            while true {
                let next: [String: JSONValue]?
                do { next = try iterator.next() } catch let error as ParquetError { throw datasetError(error) }
                guard let object = next else { break }
                count += 1
                guard try body(object, try reader.row(number: count, object)) else { return }
            }
        } else if !["csv", "tsv", "json"].contains(url.pathExtension.lowercased()) {
            // JSON Lines, streamed line by line.
            var reader = RowReader(fileName: name, isRow: false, options: options)
            let decoder = JSONDecoder()
            var bodyError: (any Error)?
            do {
                let head = try FileHandle(forReadingFrom: url)
                let start = try head.read(upToCount: 4) ?? Data()
                try? head.close()
                if let problem = encodingProblem(start) { throw DatasetError(file: name, line: 0, field: nil, kind: .notUTF8(problem)) }
                try JSONLinesReader.forEachLine(ofFileAt: path) { line in
                    let object = try objectLine(line.bytes, number: line.number, fileName: name, decoder: decoder)
                    count += 1
                    let row = try reader.row(number: line.number, object)
                    // What `body` throws is passed on as it is, not as a read error.
                    do { return try body(object, row) } catch {
                        bodyError = error
                        return false
                    }
                }
            } catch let error as DatasetError {
                throw error
            } catch {
                let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
                throw DatasetError(file: name, line: 0, field: nil, kind: .unreadable(reason))
            }
            if let bodyError { throw bodyError }
            if count > 0 { return }
        } else {
            let data: Data
            do {
                data = try Data(contentsOf: url)
            } catch {
                let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
                throw DatasetError(file: name, line: 0, field: nil, kind: .unreadable(reason))
            }
            let objects: [(number: Int, object: [String: JSONValue])]
            var isRow = false
            switch url.pathExtension.lowercased() {
            case "csv": objects = try DelimitedText.objects(data, separator: UInt8(ascii: ","), fileName: name)
            case "tsv": objects = try DelimitedText.objects(data, separator: 0x09, fileName: name)
            case "json" where data.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "["):
                // One top-level array; a .json file of one object per line is read as JSON Lines.
                objects = try DelimitedText.arrayObjects(data, fileName: name)
                isRow = true
            default: objects = try jsonLinesObjects(data, fileName: name)  // a .json file of one object per line
            }
            var reader = RowReader(fileName: name, isRow: isRow, options: options)
            for (number, object) in objects {
                count += 1
                guard try body(object, try reader.row(number: number, object)) else { return }
            }
        }
        guard count > 0 else { throw DatasetError(file: name, line: 0, field: nil, kind: .noRows) }
    }

    /// A Parquet error as a dataset error naming the file.
    static func datasetError(_ error: ParquetError) -> DatasetError {
        DatasetError(file: error.file, line: 0, field: nil,
                     kind: .unreadable(error.location.isEmpty ? error.message : "\(error.location): \(error.message)"))
    }

    /// The files of one split in a Hub dataset directory: `data/<split>-00000-of-00002.parquet` and the
    /// like (also `<split>.jsonl`, and the same names at the top level), sorted by name.
    static func hubShards(in directory: URL, split: String) -> [URL] {
        for folder in [directory.appendingPathComponent("data"), directory] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            let shards = names.filter { name in
                let lower = name.lowercased()
                return (lower.hasSuffix(".parquet") || lower.hasSuffix(".jsonl"))
                    && (name.hasPrefix(split + "-") || name.hasPrefix(split + "."))
            }.sorted()
            if !shards.isEmpty { return shards.map { folder.appendingPathComponent($0) } }
        }
        return []
    }

    /// What a UTF-16 file looks like, or nil (invalid UTF-8 bytes are found line by line).
    static func encodingProblem(_ data: Data) -> String? {
        let head = Array(data.prefix(4))
        if head.starts(with: [0xFF, 0xFE]) { return "it starts with a UTF-16 little-endian byte-order mark" }
        if head.starts(with: [0xFE, 0xFF]) { return "it starts with a UTF-16 big-endian byte-order mark" }
        if head.count >= 2, head[1] == 0, head[0] != 0 { return "every other byte is 0, as in UTF-16" }
        return nil
    }

    /// The rows of JSON Lines `data`; `fileName` is used in errors.
    ///
    /// - Throws: `DatasetError` for the first malformed line.
    public static func parse(_ data: Data, fileName: String, options: DatasetOptions = DatasetOptions()) throws -> [DatasetRow] {
        try rows(try jsonLinesObjects(data, fileName: fileName), fileName: fileName, isRow: false, options: options)
    }

    /// One JSON Lines line as an object, or an error naming the file and line (invalid UTF-8, not
    /// JSON, not an object).
    static func objectLine<Bytes: Collection<UInt8>>(
        _ bytes: Bytes, number: Int, fileName: String, decoder: JSONDecoder
    ) throws -> [String: JSONValue] {
        let parser = LineParser(file: fileName, line: number)
        let value: JSONValue
        do {
            value = try decoder.decode(JSONValue.self, from: Data(bytes))
        } catch {
            if String(validating: bytes, as: UTF8.self) == nil { throw parser.error(nil, .notUTF8("invalid UTF-8 bytes on this line")) }
            throw parser.error(nil, .invalidJSON)
        }
        guard case .object(let object) = value else { throw parser.error(nil, .notAnObject) }
        return object
    }

    /// The objects of JSON Lines `data`, numbered by line.
    static func jsonLinesObjects(_ data: Data, fileName: String) throws -> [(number: Int, object: [String: JSONValue])] {
        if let problem = encodingProblem(data) { throw DatasetError(file: fileName, line: 0, field: nil, kind: .notUTF8(problem)) }
        var objects: [(number: Int, object: [String: JSONValue])] = []
        let decoder = JSONDecoder()
        for line in JSONLinesReader.lines(of: data) {
            objects.append((line.number, try objectLine(line.bytes, number: line.number, fileName: fileName, decoder: decoder)))
        }
        return objects
    }

    /// The rows of Parquet `data` (columns named as the JSON keys would be); `fileName` is used in errors,
    /// which name rows as `file.parquet:row N` (1-based).
    ///
    /// - Throws: `DatasetError` for an unreadable file or the first malformed row.
    public static func parseParquet(_ data: Data, fileName: String, options: DatasetOptions = DatasetOptions()) throws -> [DatasetRow] {
        let objects: [[String: JSONValue]]
        do {
            objects = try ParquetFile(data: data, fileName: fileName).rows()
        } catch let error as ParquetError {
            throw datasetError(error)
        }
        return try rows(objects.enumerated().map { ($0.offset + 1, $0.element) }, fileName: fileName, isRow: true, options: options)
    }

    /// Dataset rows from parsed objects, numbered by line (JSONL) or row (Parquet); every object must have the first one's shape and format.
    static func rows(_ objects: [(number: Int, object: [String: JSONValue])], fileName: String, isRow: Bool,
                     options: DatasetOptions = DatasetOptions()) throws -> [DatasetRow] {
        var reader = RowReader(fileName: fileName, isRow: isRow, options: options)
        return try objects.map { try reader.row(number: $0.number, $0.object) }
    }

    /// Turns a file's objects into rows one at a time, checking that each has the first one's shape and format.
    struct RowReader {
        let fileName: String
        let isRow: Bool
        let options: DatasetOptions
        var first: (shape: DatasetShape, conversational: Bool?, line: Int)?

        init(fileName: String, isRow: Bool, options: DatasetOptions) {
            self.fileName = fileName
            self.isRow = isRow
            self.options = options
        }

        /// The row of `raw`, the object on line (or row) `number`.
        mutating func row(number: Int, _ raw: [String: JSONValue]) throws -> DatasetRow {
            let parser = LineParser(file: fileName, line: number, isRow: isRow)
            let object = try options.apply(to: raw, parser: parser)
            let shape = try parser.shape(of: object)
            if let first, first.shape != shape {
                // A row that is the file's shape minus its distinguishing key lacks that key
                // (a prompt/completion file with a prompt-only row is missing "completion").
                if shape == .promptOnly && first.shape != .conversation {
                    throw parser.error(parser.distinguishingKey(of: first.shape), .missingField)
                }
                throw parser.error(
                    parser.distinguishingKey(of: shape), .mixedShapes(expected: first.shape, found: shape, firstLine: first.line))
            }
            let row = try parser.row(object, shape: shape)
            let conversational = row.isConversational
            if let first {
                if let expected = first.conversational, let conversational, expected != conversational {
                    throw parser.error(parser.distinguishingKey(of: shape), .mixedFormats)
                }
            } else {
                first = (shape, conversational, number)
            }
            return row
        }
    }

    /// The shape a row with these keys has, or nil when none fits.
    public static func detectShape(keys: some Collection<String>) -> DatasetShape? {
        let keys = Set(keys)
        if !keys.isDisjoint(with: ["prompt_input_ids", "chosen_input_ids", "rejected_input_ids"]) {
            return .tokenizedPreference
        }
        if keys.contains("input_ids") { return .tokenizedLanguageModeling }
        if keys.contains("completions") || keys.contains("labels") { return .stepwiseSupervision }
        if keys.contains("chosen") || keys.contains("rejected") { return .preference }
        if keys.contains("label") { return .unpairedPreference }
        if keys.contains("answer") || keys.contains("solution") { return .verifiable }
        if keys.contains("messages") { return .conversation }
        if keys.contains("completion") { return .promptCompletion }
        if keys.contains("prompt") { return .promptOnly }
        return nil
    }

    /// The common prefix of two texts as TRL's `extract_prompt` takes it: characters up to the first
    /// difference, giving a space just before the difference to the completions.
    public static func commonTextPrefix(_ a: String, _ b: String) -> String {
        let x = Array(a), y = Array(b)
        var index = 0
        while index < min(x.count, y.count) && x[index] == y[index] { index += 1 }
        if index < min(x.count, y.count) && index > 0 && x[index - 1] == " " { index -= 1 }
        return String(x[..<index])
    }

    /// The number of leading messages two conversations share.
    public static func commonMessagePrefixCount(_ a: [ChatMessage], _ b: [ChatMessage]) -> Int {
        var index = 0
        while index < min(a.count, b.count) && a[index] == b[index] { index += 1 }
        return index
    }
}

extension DatasetRow {
    /// Whether the row's text is conversational; nil for pre-tokenized rows.
    var isConversational: Bool? {
        switch self {
        case .conversation: true
        case .promptCompletion(let prompt, _), .promptOnly(let prompt), .preference(let prompt, _, _),
            .unpairedPreference(let prompt, _, _), .verifiable(let prompt, _):
            prompt.isConversational
        case .stepwiseSupervision: false
        case .tokenizedPreference, .tokenizedLanguageModeling: nil
        }
    }
}

/// Parses the fields of one line; knows the file and line for errors.
struct LineParser {
    var file: String
    var line: Int
    var isRow = false

    func error(_ field: String?, _ kind: DatasetError.Kind) -> DatasetError {
        DatasetError(file: file, line: line, field: field, kind: kind, isRow: isRow)
    }

    func shape(of object: [String: JSONValue]) throws -> DatasetShape {
        guard let shape = JSONLDataset.detectShape(keys: object.keys) else {
            throw error(nil, .unknownShape(keys: Array(object.keys)))
        }
        return shape
    }

    /// The key that names a shape in errors.
    func distinguishingKey(of shape: DatasetShape) -> String {
        switch shape {
        case .conversation: "messages"
        case .promptCompletion: "completion"
        case .promptOnly: "prompt"
        case .preference: "chosen"
        case .unpairedPreference: "label"
        case .verifiable: "answer"
        case .tokenizedPreference: "chosen_input_ids"
        case .tokenizedLanguageModeling: "input_ids"
        case .stepwiseSupervision: "completions"
        }
    }

    func row(_ object: [String: JSONValue], shape: DatasetShape) throws -> DatasetRow {
        switch shape {
        case .conversation:
            let messages = try self.messages(object, "messages")
            guard messages.contains(where: { $0.isAssistant && !$0.content.isEmpty }) else {
                throw error("messages", .emptyCompletion)
            }
            return .conversation(messages)
        case .promptOnly:
            return .promptOnly(try content(object, "prompt"))
        case .promptCompletion:
            let prompt = try content(object, "prompt")
            let completion = try completion(object, "completion", format: prompt)
            return .promptCompletion(prompt: prompt, completion: completion)
        case .unpairedPreference:
            let prompt = try content(object, "prompt")
            let completion = try completion(object, "completion", format: prompt)
            guard let labelValue = object["label"] else { throw error("label", .missingField) }
            guard case .bool(let label) = labelValue else {
                throw error("label", .wrongType(expected: "a boolean", found: labelValue.typeName))
            }
            return .unpairedPreference(prompt: prompt, completion: completion, label: label)
        case .verifiable:
            let prompt = try content(object, "prompt")
            let key = object["answer"] != nil ? "answer" : "solution"
            let answer: String
            switch object[key] {
            case .string(let text): answer = text
            case .int(let number): answer = String(number)
            case let other?: throw error(key, .wrongType(expected: "a string or an integer", found: other.typeName))
            case nil: throw error(key, .missingField)
            }
            return .verifiable(prompt: prompt, answer: answer)
        case .preference:
            return try preference(object)
        case .tokenizedPreference:
            let prompt = try ids(object, "prompt_input_ids")
            let chosen = try ids(object, "chosen_input_ids")
            let rejected = try ids(object, "rejected_input_ids")
            if chosen.isEmpty { throw error("chosen_input_ids", .emptyCompletion) }
            if rejected.isEmpty { throw error("rejected_input_ids", .emptyCompletion) }
            return .tokenizedPreference(promptIDs: prompt, chosenIDs: chosen, rejectedIDs: rejected)
        case .tokenizedLanguageModeling:
            let inputIDs = try ids(object, "input_ids")
            if inputIDs.isEmpty { throw error("input_ids", .inconsistent("empty token list")) }
            var mask = Array(repeating: 1, count: inputIDs.count)
            if object["completion_mask"] != nil {
                mask = try ids(object, "completion_mask")
                guard mask.count == inputIDs.count else {
                    throw error(
                        "completion_mask",
                        .inconsistent("has \(mask.count) entries but input_ids has \(inputIDs.count)"))
                }
                guard mask.allSatisfy({ $0 == 0 || $0 == 1 }) else {
                    throw error("completion_mask", .inconsistent("entries must be 0 or 1"))
                }
                guard mask.contains(1) else { throw error("completion_mask", .emptyCompletion) }
            }
            return .tokenizedLanguageModeling(inputIDs: inputIDs, completionMask: mask)
        case .stepwiseSupervision:
            return try stepwise(object)
        }
    }

    /// A stepwise-supervision row: a text prompt, a non-empty list of string steps, one boolean
    /// label per step (TRL's PRMTrainer reads `int(label)`, so 0 and 1 are taken too).
    func stepwise(_ object: [String: JSONValue]) throws -> DatasetRow {
        let prompt: String
        switch object["prompt"] {
        case .string(let text): prompt = text
        case let other?: throw error("prompt", .wrongType(expected: "a string", found: other.typeName))
        case nil: throw error("prompt", .missingField)
        }
        func list(_ key: String) throws -> [JSONValue] {
            switch object[key] {
            case .array(let items): return items
            case let other?: throw error(key, .wrongType(expected: "a list", found: other.typeName))
            case nil: throw error(key, .missingField)
            }
        }
        let steps = try list("completions").enumerated().map { k, item -> String in
            guard case .string(let step) = item else {
                throw error("completions[\(k)]", .wrongType(expected: "a string", found: item.typeName))
            }
            return step
        }
        guard !steps.isEmpty else { throw error("completions", .emptyCompletion) }
        let labels = try list("labels").enumerated().map { k, item -> Bool in
            switch item {
            case .bool(let label): return label
            case .int(let number) where number == 0 || number == 1: return number == 1
            default: throw error("labels[\(k)]", .wrongType(expected: "a boolean", found: item.typeName))
            }
        }
        guard labels.count == steps.count else {
            throw error("labels", .inconsistent("has \(labels.count) entries but completions has \(steps.count) steps"))
        }
        return .stepwiseSupervision(prompt: prompt, completions: steps, labels: labels)
    }

    func preference(_ object: [String: JSONValue]) throws -> DatasetRow {
        guard object["chosen"] != nil else { throw error("chosen", .missingField) }
        guard object["rejected"] != nil else { throw error("rejected", .missingField) }
        if object["prompt"] != nil {
            let prompt = try content(object, "prompt")
            let chosen = try completion(object, "chosen", format: prompt)
            let rejected = try completion(object, "rejected", format: prompt)
            return .preference(prompt: prompt, chosen: chosen, rejected: rejected)
        }
        // Implicit prompt: the shared prefix of the two full texts or conversations.
        let chosen = try content(object, "chosen")
        let rejected = try content(object, "rejected")
        switch (chosen, rejected) {
        case (.text(let a), .text(let b)):
            let prompt = JSONLDataset.commonTextPrefix(a, b)
            let chosenRest = String(a.dropFirst(prompt.count)), rejectedRest = String(b.dropFirst(prompt.count))
            if chosenRest.isEmpty { throw error("chosen", .emptyCompletion) }
            if rejectedRest.isEmpty { throw error("rejected", .emptyCompletion) }
            return .preference(prompt: .text(prompt), chosen: .text(chosenRest), rejected: .text(rejectedRest))
        case (.messages(let a), .messages(let b)):
            let shared = JSONLDataset.commonMessagePrefixCount(a, b)
            if shared == 0 {
                throw error("rejected", .inconsistent("implicit prompt: chosen and rejected share no leading message"))
            }
            let chosenRest = Array(a[shared...]), rejectedRest = Array(b[shared...])
            if !chosenRest.contains(where: { !$0.content.isEmpty }) { throw error("chosen", .emptyCompletion) }
            if !rejectedRest.contains(where: { !$0.content.isEmpty }) { throw error("rejected", .emptyCompletion) }
            try checkTurns(prompt: .messages(Array(a[..<shared])), completion: chosenRest, key: "chosen", offset: shared)
            try checkTurns(prompt: .messages(Array(a[..<shared])), completion: rejectedRest, key: "rejected", offset: shared)
            return .preference(
                prompt: .messages(Array(a[..<shared])), chosen: .messages(chosenRest), rejected: .messages(rejectedRest))
        default:
            throw error("rejected", .mixedFormats)
        }
    }

    /// A completion-like field: non-empty, in the same format as `format`.
    func completion(_ object: [String: JSONValue], _ key: String, format: Content) throws -> Content {
        let value = try content(object, key)
        guard value.isConversational == format.isConversational else { throw error(key, .mixedFormats) }
        switch value {
        case .text(let text) where text.isEmpty: throw error(key, .emptyCompletion)
        case .messages(let messages) where !messages.contains(where: { !$0.content.isEmpty }):
            throw error(key, .emptyCompletion)
        case .messages(let messages):
            try checkTurns(prompt: format, completion: messages, key: key)
            return value
        default: return value
        }
    }

    /// The completion is the model's answer: it starts with an assistant turn after a prompt that
    /// does not end with one (otherwise the template renders the pair as another conversation).
    func checkTurns(prompt: Content, completion: [ChatMessage], key: String, offset: Int = 0) throws {
        if let first = completion.first, !first.isAssistant {
            throw error("\(key)[\(offset)].role", .inconsistent("a completion starts with the assistant's turn, found role \"\(first.role)\""))
        }
        if case .messages(let turns) = prompt, let last = turns.last, last.isAssistant {
            throw error("prompt[\(turns.count - 1)].role",
                        .inconsistent("the prompt ends with an assistant turn; its answer belongs in the completion"))
        }
    }

    func content(_ object: [String: JSONValue], _ key: String) throws -> Content {
        switch object[key] {
        case .string(let text): return .text(text)
        case .array: return .messages(try messages(object, key))
        case let other?: throw error(key, .wrongType(expected: "a string or a list of messages", found: other.typeName))
        case nil: throw error(key, .missingField)
        }
    }

    func messages(_ object: [String: JSONValue], _ key: String) throws -> [ChatMessage] {
        guard let value = object[key] else { throw error(key, .missingField) }
        guard case .array(let items) = value else {
            throw error(key, .wrongType(expected: "a list of messages", found: value.typeName))
        }
        if key == "messages" && items.isEmpty { throw error(key, .emptyCompletion) }
        return try items.enumerated().map { index, item in
            let path = "\(key)[\(index)]"
            guard case .object(let fields) = item else {
                throw error(path, .wrongType(expected: "a message object {\"role\", \"content\"}", found: item.typeName))
            }
            let role = try string(fields, "role", path: path)
            guard JSONLDataset.validRoles.contains(role) else { throw error("\(path).role", .invalidRole(role)) }
            return ChatMessage(role: role, content: try string(fields, "content", path: path))
        }
    }

    func string(_ object: [String: JSONValue], _ key: String, path: String) throws -> String {
        switch object[key] {
        case .string(let text): return text
        case let other?: throw error("\(path).\(key)", .wrongType(expected: "a string", found: other.typeName))
        case nil: throw error("\(path).\(key)", .missingField)
        }
    }

    func ids(_ object: [String: JSONValue], _ key: String) throws -> [Int] {
        guard let value = object[key] else { throw error(key, .missingField) }
        guard case .array(let items) = value else {
            throw error(key, .wrongType(expected: "a list of integers", found: value.typeName))
        }
        return try items.enumerated().map { index, item in
            guard case .int(let id) = item, id >= 0 else {
                throw error("\(key)[\(index)]", .wrongType(expected: "a non-negative integer", found: item.typeName))
            }
            return id
        }
    }
}
