// ChatTemplateSource.swift
//
// Finds a model's chat template the way transformers does for a local directory:
// `chat_template.jinja` (the default) and `additional_chat_templates/<name>.jinja` (named
// ones) take priority; otherwise `tokenizer_config.json`'s `chat_template`, a string or a
// list of `{"name", "template"}`. The special tokens templates print (`bos_token`,
// `eos_token`, ...) come from `tokenizer_config.json`, where each is a string or an
// AddedToken object `{"content": ...}`, completed by the legacy `special_tokens_map.json`.
// GGUF files carry the template as metadata; `init(source:name:specialTokens:)` takes it from there.

import Foundation
import NudgeNN

/// Why a chat template could not be found or read.
public struct ChatTemplateLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file at fault (or the directory, when no template exists).
    public var path: String
    /// What is wrong.
    public var reason: String

    /// Creates an error.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// `path: reason`.
    public var description: String { "\(path): \(reason)" }
}

/// A chat template's source and the special tokens it uses.
public struct ChatTemplateSource: Sendable, Equatable {
    /// The template text.
    public var source: String
    /// The name errors use: the file the template came from (with the template's name, when one of several).
    public var name: String
    /// Special token strings by variable name (`bos_token`, `eos_token`, `unk_token`, `pad_token`, ...).
    public var specialTokens: [String: String]

    /// A template from a string, e.g. GGUF metadata `tokenizer.chat_template`.
    public init(source: String, name: String, specialTokens: [String: String] = [:]) {
        self.source = source
        self.name = name
        self.specialTokens = specialTokens
    }

    /// The special token variables transformers passes to templates.
    public static let specialTokenNames = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]

    /// Reads the chat template of a Hugging Face model directory.
    ///
    /// - Parameters:
    ///   - directory: the model directory.
    ///   - templateName: the name of one of several templates (e.g. `"tool_use"`); nil picks as transformers
    ///     does: `"tool_use"` when `forTools` and it exists, else `"default"`.
    ///   - forTools: whether the conversation passes tools.
    public static func load(directory: URL, templateName: String? = nil, forTools: Bool = false) throws(ChatTemplateLoadError)
        -> ChatTemplateSource
    {
        let fileManager = FileManager.default
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let config = try readJSONObject(configURL)

        var templates: [(name: String, source: String, file: String)] = []
        let defaultFile = directory.appendingPathComponent("chat_template.jinja")
        if fileManager.fileExists(atPath: defaultFile.path) {
            templates.append(("default", try readText(defaultFile), defaultFile.path))
        }
        let extraDirectory = directory.appendingPathComponent("additional_chat_templates")
        if let names = try? fileManager.contentsOfDirectory(atPath: extraDirectory.path) {
            for file in names.sorted() where file.hasSuffix(".jinja") {
                let url = extraDirectory.appendingPathComponent(file)
                templates.append((String(file.dropLast(".jinja".count)), try readText(url), url.path))
            }
        }
        if templates.isEmpty, let config {
            switch config["chat_template"] {
            case .string(let text):
                templates.append(("default", text, configURL.path))
            case .array(let entries):
                for (index, entry) in entries.enumerated() {
                    guard case .object(let object) = entry, case .string(let name) = object["name"] ?? .none,
                        case .string(let text) = object["template"] ?? .none
                    else {
                        throw ChatTemplateLoadError(
                            path: configURL.path, reason: "chat_template[\(index)]: expected an object with string \"name\" and \"template\"")
                    }
                    templates.append((name, text, configURL.path))
                }
            case nil, .some(.none):
                break
            case .some:
                throw ChatTemplateLoadError(
                    path: configURL.path, reason: "chat_template: expected a string or a list of {\"name\", \"template\"} objects")
            }
        }
        guard !templates.isEmpty else {
            throw ChatTemplateLoadError(
                path: directory.path,
                reason: "no chat template: expected chat_template.jinja or a \"chat_template\" entry in tokenizer_config.json")
        }

        let chosen: (name: String, source: String, file: String)
        if let templateName {
            guard let match = templates.first(where: { $0.name == templateName }) else {
                throw ChatTemplateLoadError(
                    path: directory.path,
                    reason: "no chat template named '\(templateName)'; available: \(templates.map(\.name).sorted().joined(separator: ", "))")
            }
            chosen = match
        } else if templates.count == 1 && templates[0].name == "default" {
            chosen = templates[0]
        } else if forTools, let toolUse = templates.first(where: { $0.name == "tool_use" }) {
            chosen = toolUse
        } else if let fallback = templates.first(where: { $0.name == "default" }) {
            chosen = fallback
        } else {
            throw ChatTemplateLoadError(
                path: directory.path,
                reason: "several chat templates and no default; choose one of: \(templates.map(\.name).sorted().joined(separator: ", "))")
        }

        var tokens: [String: String] = [:]
        if let config { tokens = try specialTokens(in: config, file: configURL.path) }
        let mapURL = directory.appendingPathComponent("special_tokens_map.json")
        if fileManager.fileExists(atPath: mapURL.path), let map = try readJSONObject(mapURL) {
            for (name, token) in try specialTokens(in: map, file: mapURL.path) where tokens[name] == nil { tokens[name] = token }
        }
        let name = templates.count == 1 ? chosen.file : "\(chosen.file) (\(chosen.name))"
        return ChatTemplateSource(source: chosen.source, name: name, specialTokens: tokens)
    }

    /// The chat template of a model path: a Hugging Face model directory (as `load(directory:…)`) or
    /// a .gguf file's `tokenizer.chat_template`.
    public static func load(model path: String, templateName: String? = nil, forTools: Bool = false) throws(ChatTemplateLoadError) -> ChatTemplateSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ChatTemplateLoadError(path: path, reason: "no such directory or file")
        }
        let url = URL(fileURLWithPath: path)
        if isDirectory.boolValue { return try load(directory: url, templateName: templateName, forTools: forTools) }
        guard LanguageModelLoader.isGGUF(url) else {
            throw ChatTemplateLoadError(path: path, reason: "expected a Hugging Face model directory or a .gguf file, got another file")
        }
        let info: GGUFModelInfo
        do { info = try LanguageModelLoader.info(gguf: try GGUFFile(url: url)) } catch { throw ChatTemplateLoadError(path: path, reason: "\(error)") }
        guard let source = info.templateSource else { throw ChatTemplateLoadError(path: path, reason: "no tokenizer.chat_template in the file") }
        return source
    }

    /// Reads a template file; special tokens come from a `tokenizer_config.json` (and
    /// `special_tokens_map.json`) in the same directory, when there is one.
    public static func load(templateFile: URL) throws(ChatTemplateLoadError) -> ChatTemplateSource {
        let directory = templateFile.deletingLastPathComponent()
        var tokens: [String: String] = [:]
        for file in ["tokenizer_config.json", "special_tokens_map.json"] {
            let url = directory.appendingPathComponent(file)
            if let object = try readJSONObject(url) {
                for (name, token) in try specialTokens(in: object, file: url.path) where tokens[name] == nil { tokens[name] = token }
            }
        }
        return ChatTemplateSource(source: try readText(templateFile), name: templateFile.path, specialTokens: tokens)
    }

    /// Parses the template into a renderer.
    public func renderer() throws(JinjaError) -> ChatTemplateRenderer {
        try ChatTemplateRenderer(source: source, name: name, specialTokens: specialTokens)
    }

    /// The special tokens of a tokenizer configuration: strings, or AddedToken objects with a `content` string.
    static func specialTokens(in object: JinjaObject, file: String) throws(ChatTemplateLoadError) -> [String: String] {
        var tokens: [String: String] = [:]
        for name in specialTokenNames {
            switch object[name] {
            case .string(let text):
                tokens[name] = text
            case .object(let added):
                guard case .string(let text) = added["content"] ?? .none else {
                    throw ChatTemplateLoadError(path: file, reason: "\(name): expected a string or an object with a \"content\" string")
                }
                tokens[name] = text
            case nil, .some(.none):
                break
            case .some:
                throw ChatTemplateLoadError(path: file, reason: "\(name): expected a string or an object with a \"content\" string")
            }
        }
        return tokens
    }

    private static func readText(_ url: URL) throws(ChatTemplateLoadError) -> String {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ChatTemplateLoadError(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ChatTemplateLoadError(path: url.path, reason: "not valid UTF-8")
        }
        return text
    }

    /// The JSON object in `url`, or nil when the file does not exist.
    private static func readJSONObject(_ url: URL) throws(ChatTemplateLoadError) -> JinjaObject? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let text = try readText(url)
        let value: JinjaValue
        do {
            value = try JinjaValue(json: text)
        } catch {
            throw ChatTemplateLoadError(path: url.path, reason: error.description)
        }
        guard case .object(let object) = value else { throw ChatTemplateLoadError(path: url.path, reason: "expected a JSON object") }
        return object
    }
}
