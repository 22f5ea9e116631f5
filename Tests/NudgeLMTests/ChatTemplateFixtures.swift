// ChatTemplateFixtures.swift
//
// Loading of the chat template fixtures in Fixtures/chat_templates (templates/*.jinja from
// public model repositories; expected.json and snippets.json rendered by transformers with
// scripts/make_chat_template_fixtures.py).

import Foundation
import Testing

@testable import NudgeLM

enum ChatTemplateFixtures {
    static let subdirectory = "Fixtures/chat_templates"

    static func url(_ name: String, _ ext: String, in folder: String = subdirectory) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: folder), "missing fixture \(folder)/\(name).\(ext)")
    }

    static func text(_ url: URL) throws -> String { String(decoding: try Data(contentsOf: url), as: UTF8.self) }

    /// expected.json, read with the engine's order-preserving JSON reader.
    static func expected() throws -> JinjaObject {
        let value = try JinjaValue(json: try text(try url("expected", "json")))
        return try #require(value.objectValue)
    }

    static func template(_ name: String) throws -> String {
        try text(try url(name, "jinja", in: subdirectory + "/templates"))
    }

    /// The script's fixed clock: 2025-03-07 09:05:03, formatted in UTC.
    static var options: JinjaRenderOptions {
        JinjaRenderOptions(now: Date(timeIntervalSince1970: 1_741_338_303), timeZone: TimeZone(identifier: "UTC") ?? .current)
    }
}
