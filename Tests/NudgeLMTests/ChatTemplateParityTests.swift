// ChatTemplateParityTests.swift
//
// Real chat templates (Fixtures/chat_templates/templates) rendered over several
// conversations must match, byte for byte, what transformers' own renderer produced
// (Fixtures/chat_templates/expected.json, written by scripts/make_chat_template_fixtures.py),
// and must raise where transformers raised, with the template's exact message for
// `raise_exception`.

import Foundation
import Testing

@testable import NudgeLM

@Suite("Chat template parity with transformers")
struct ChatTemplateParityTests {
    struct Outcome {
        var text: String?
        var error: JinjaError?
        var ranges: [Range<Int>] = []
    }

    static func render(_ testCase: JinjaObject, fixture: JinjaObject, templates: inout [String: ChatTemplateRenderer]) throws -> Outcome {
        let name = try #require(testCase["template"]?.stringValue)
        var renderer: ChatTemplateRenderer
        if let cached = templates[name] {
            renderer = cached
        } else {
            let source = try ChatTemplateFixtures.template(name)
            do {
                renderer = try ChatTemplateRenderer(source: source, name: name + ".jinja")
            } catch {
                return Outcome(error: error)
            }
            templates[name] = renderer
        }
        let conversations = try #require(fixture["conversations"]?.objectValue)
        let conversationName = try #require(testCase["conversation"]?.stringValue)
        let conversation = try #require(conversations[conversationName]?.arrayValue)
        let tools = testCase["tools"] == .bool(true) ? fixture["tools"]?.arrayValue : nil
        let documents = testCase["documents"] == .bool(true) ? fixture["documents"]?.arrayValue : nil
        var variables: [String: JinjaValue] = [:]
        for (key, value) in try #require(testCase["variables"]?.objectValue) { variables[key] = value }
        do {
            let rendering = try renderer.render(
                messages: conversation, addGenerationPrompt: testCase["add_generation_prompt"] == .bool(true), tools: tools,
                documents: documents, variables: variables, options: ChatTemplateFixtures.options)
            return Outcome(text: rendering.text, ranges: rendering.assistantRanges)
        } catch {
            return Outcome(error: error)
        }
    }

    @Test("every template and conversation renders as transformers renders it")
    func parity() throws {
        let fixture = try ChatTemplateFixtures.expected()
        let cases = try #require(fixture["cases"]?.arrayValue)
        var templates: [String: ChatTemplateRenderer] = [:]
        var failures: [String] = []
        var passedTemplates: [String: Bool] = [:]
        for entry in cases {
            let testCase = try #require(entry.objectValue)
            let label = "\(testCase["template"]?.stringValue ?? "?")/\(testCase["case"]?.stringValue ?? "?")"
            let outcome = try Self.render(testCase, fixture: fixture, templates: &templates)
            var failure: String?
            if case .string(let expected) = testCase["output"] {
                if let text = outcome.text {
                    if !sameBytes(text, expected) {
                        let prefix = zip(text.unicodeScalars, expected.unicodeScalars).prefix { $0 == $1 }.count
                        failure = "\(label): output differs at scalar \(prefix)\n  got:      \(escaped(String(text.unicodeScalars.dropFirst(max(0, prefix - 40)).prefix(120).map(Character.init))))\n  expected: \(escaped(String(expected.unicodeScalars.dropFirst(max(0, prefix - 40)).prefix(120).map(Character.init))))"
                    } else {
                        let expectedRanges = (testCase["generation"]?.arrayValue ?? []).compactMap { span -> Range<Int>? in
                            guard case .array(let bounds) = span, bounds.count == 2, case .int(let lower) = bounds[0], case .int(let upper) = bounds[1] else { return nil }
                            return lower..<upper
                        }
                        if outcome.ranges != expectedRanges {
                            failure = "\(label): generation ranges \(outcome.ranges) != \(expectedRanges)"
                        }
                    }
                } else {
                    failure = "\(label): raised \(outcome.error.map(String.init(describing:)) ?? "?") but transformers rendered"
                }
            } else if let error = testCase["error"]?.objectValue {
                let type = error["type"]?.stringValue ?? ""
                let message = error["message"]?.stringValue ?? ""
                if let thrown = outcome.error {
                    if type == "TemplateError" && (thrown.kind != .raised || thrown.message != message) {
                        failure = "\(label): expected raise_exception('\(message)'), got \(thrown)"
                    } else if type != "TemplateError" && thrown.kind == .raised {
                        failure = "\(label): expected \(type): \(message), got raise_exception \(thrown)"
                    } else if thrown.message != message {
                        failure = "\(label): \(type) message '\(message)' != '\(thrown.message)'"
                    }
                } else {
                    failure = "\(label): rendered, but transformers raised \(type): \(message)"
                }
            }
            let name = testCase["template"]?.stringValue ?? "?"
            passedTemplates[name] = (passedTemplates[name] ?? true) && failure == nil
            if let failure { failures.append(failure) }
        }
        let failedTemplates = passedTemplates.filter { !$0.value }.keys.sorted()
        #expect(
            failures.isEmpty,
            "\(failures.count) of \(cases.count) cases differ (templates: \(failedTemplates.joined(separator: ", "))):\n\(failures.joined(separator: "\n"))")
        #expect(passedTemplates.count >= 25)
    }
}
