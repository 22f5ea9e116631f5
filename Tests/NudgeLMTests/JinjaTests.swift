// JinjaTests.swift
//
// The template language: small templates that each exercise one feature, checked against
// what transformers' jinja2 environment renders for them (Fixtures/chat_templates/snippets.json,
// written by scripts/make_chat_template_fixtures.py), plus error positions, resource limits,
// robustness on mangled input, generation ranges, JSON reading and template loading.

import Foundation
import Testing

@testable import NudgeLM

@Suite("Jinja engine")
struct JinjaTests {
    static func render(_ source: String, _ variables: [String: JinjaValue] = [:], options: JinjaRenderOptions = ChatTemplateFixtures.options)
        throws(JinjaError) -> String
    {
        try JinjaTemplate(source: source, name: "test.jinja").render(variables, options: options).text
    }

    static func error(_ source: String, _ variables: [String: JinjaValue] = [:], options: JinjaRenderOptions = ChatTemplateFixtures.options)
        -> JinjaError?
    {
        do {
            _ = try render(source, variables, options: options)
            return nil
        } catch {
            return error
        }
    }

    @Test("language snippets render as jinja2 renders them")
    func snippets() throws {
        let url = try ChatTemplateFixtures.url("snippets", "json")
        let fixture = try #require(try JinjaValue(json: ChatTemplateFixtures.text(url)).objectValue)
        let cases = try #require(fixture["cases"]?.arrayValue)
        var failures: [String] = []
        for entry in cases {
            let testCase = try #require(entry.objectValue)
            let source = try #require(testCase["template"]?.stringValue)
            var variables: [String: JinjaValue] = [:]
            for (key, value) in testCase["variables"]?.objectValue ?? [:] { variables[key] = value }
            let label = escaped(String(source.prefix(60)))
            var text: String?
            var thrown: JinjaError?
            do { text = try Self.render(source, variables) } catch { thrown = error }
            if let expected = testCase["output"]?.stringValue {
                if let text, !sameBytes(text, expected) {
                    failures.append("\(label)\n  got:      \(escaped(text))\n  expected: \(escaped(expected))")
                } else if let thrown {
                    failures.append("\(label)\n  raised \(thrown), expected \(escaped(expected))")
                }
            } else if let error = testCase["error"]?.objectValue {
                let type = error["type"]?.stringValue ?? ""
                let message = error["message"]?.stringValue ?? ""
                guard let thrown else {
                    failures.append("\(label)\n  rendered \(escaped(text ?? "")), expected \(type): \(message)")
                    continue
                }
                let isSyntax = type == "TemplateSyntaxError" || type == "TemplateAssertionError"
                if (type == "TemplateError") != (thrown.kind == .raised) || isSyntax != (thrown.kind == .syntax) {
                    failures.append("\(label)\n  raised \(thrown.kind) \(thrown), expected \(type): \(message)")
                } else if !isSyntax && thrown.message != message {
                    // Runtime messages match Python's; syntax messages are our own wording.
                    failures.append("\(label)\n  message '\(thrown.message)' != '\(message)'")
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(cases.count) snippets differ:\n\(failures.joined(separator: "\n"))")
    }

    // MARK: Errors

    @Test("raise_exception carries exactly the template's message")
    func raiseException() {
        let error = Self.error("{% if messages[0]['role'] == 'system' %}\n  {{ raise_exception('System role not supported') }}\n{% endif %}",
            ["messages": [["role": "system", "content": "x"]]])
        #expect(error?.kind == .raised)
        #expect(error?.message == "System role not supported")
        #expect(error?.templateName == "test.jinja")
        #expect(error?.line == 2)
    }

    @Test("syntax errors name the template, line and column")
    func syntaxErrorPosition() throws {
        do {
            _ = try JinjaTemplate(source: "first line\n{{ messages[0] }}\n  {{ (1 }}", name: "chat_template.jinja")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.kind == .syntax)
            #expect(error.line == 3)
            #expect(error.column == 9)
            #expect(error.description == "chat_template.jinja:3:9: unexpected '}', expected ')'")
        }
        let unclosed = Self.error("{% for m in messages %}\n{{ m }}")
        #expect(unclosed?.kind == .syntax)
        #expect(unclosed?.message.contains("'endfor' or 'else'") == true)
        let unknownTag = Self.error("ok\n{% frobnicate %}")
        #expect(unknownTag?.message == "Encountered unknown tag 'frobnicate'.")
        #expect(unknownTag?.line == 2 && unknownTag?.column == 4)
        #expect(Self.error("{{ x | nosuch }}")?.message == "No filter named 'nosuch'.")
    }

    @Test("runtime errors point at the expression that failed")
    func runtimeErrorPosition() {
        let error = Self.error("line 1\nline 2 {{ 'text' + 1 }}", [:])
        #expect(error?.kind == .type)
        #expect(error?.line == 2)
        #expect(error?.column == 18)
        let undefined = Self.error("{% for m in messages %}\n  {{ m.content.strip() }}\n{% endfor %}", ["messages": [["role": "user"]]])
        #expect(undefined?.kind == .undefined)
        #expect(undefined?.message == "'dict object' has no attribute 'content'")
        #expect(undefined?.line == 2)
    }

    // MARK: Limits and robustness

    @Test("runaway templates stop with a limit error")
    func limits() throws {
        let small = JinjaRenderOptions(maximumOutputLength: 10_000, maximumLoopIterations: 5_000, maximumMacroDepth: 20)
        #expect(Self.error("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", options: small)?.kind == .limit)
        #expect(Self.error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", options: small)?.kind == .limit)
        #expect(Self.error("{{ 'x' * 1000000 }}", options: small)?.kind == .limit)
        #expect(Self.error("{% for i in range(3000) %}0123456789{% endfor %}", options: small)?.kind == .limit)
        #expect(Self.error("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", options: small)?.kind == .limit)
        #expect(Self.error("{{ range(1000000) }}")?.kind == .limit)
        // Sizes are checked before anything that big is allocated.
        for source in [
            "{{ 'x'.center(10 ** 12) }}", "{{ 'x' | center(10 ** 12) }}", "{{ 'x'.zfill(10 ** 12) }}", "{{ 'a\\nb' | indent(10 ** 12) }}",
            "{{ ('a' * 1000) | replace('a', 'b' * 100000) }}", "{{ ('a' * 1000).replace('a', 'b' * 100000) }}",
            "{{ range(100000) | join('x' * 100000) }}", "{{ ('x' * 100000).join(['a'] * 100000) }}", "{{ '%999999999999d' % 1 }}",
            "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
            "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
            "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l | tojson }}",
            "{{ [[[1]]] | tojson(indent='x' * 10000000) }}",
        ] {
            #expect(Self.error(source, options: small)?.kind == .limit, "\(source)")
        }
        #expect(try Self.render("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l == ns.l }}", options: small) == "True")
        // Values nested by a loop fail like Python's recursion limit instead of exhausting the stack.
        let nest = "{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}"
        #expect(Self.error(nest + "{{ ns.l }}")?.kind == .limit)
        #expect(Self.error(nest + "{{ ns.l | tojson }}")?.kind == .limit)
        let twoNests = "{% set ns = namespace(a=[], b=[]) %}{% for i in range(5000) %}{% set ns.a = [ns.a] %}{% set ns.b = [ns.b] %}{% endfor %}"
        #expect(Self.error(twoNests + "{{ ns.a < ns.b }}")?.kind == .limit)
        #expect(try Self.render(twoNests + "{{ ns.a == ns.b }}") == "False")
        #expect(try Self.render("{{ [1, 2, 3, 4][1::9223372036854775807] }} {{ [1, 2, 3][::-9223372036854775807] }} {{ range(-9223372036854775807, 9223372036854775807, 9223372036854775807) | length }}") == "[2] [3] 2")
        // The default limits hold on a test thread's stack.
        #expect(Self.error("{% macro r(n) %}{% if true %}{% for i in [1] %}{{ r(n + 1) }}{% endfor %}{% endif %}{% endmacro %}{{ r(0) }}")?.kind == .limit)
        let ninetyDeep = String(repeating: "(", count: 90) + "1" + String(repeating: ")", count: 90)
        #expect(try Self.render("{{ \(ninetyDeep) }}") == "1")
        let ifs = String(repeating: "{% if true %}", count: 150) + "deep" + String(repeating: "{% endif %}", count: 150)
        #expect(try Self.render(ifs) == "deep")
        // Python integers are unbounded; ours are 64-bit and overflow is an error, not a trap.
        #expect(Self.error("{{ 2 ** 64 }}")?.kind == .value)
        #expect(Self.error("{{ 9223372036854775807 + 1 }}")?.kind == .value)
        #expect(Self.error("{{ -(-9223372036854775807 - 1) }}")?.kind == .value)
        #expect(Self.error("{{ 99999999999999999999 }}")?.kind == .syntax)
        let deep = String(repeating: "(", count: 5_000) + "1" + String(repeating: ")", count: 5_000)
        #expect(Self.error("{{ \(deep) }}")?.kind == .syntax)
        let nested = String(repeating: "{% if true %}", count: 1_000) + String(repeating: "{% endif %}", count: 1_000)
        #expect(Self.error(nested)?.kind == .syntax)
    }

    @Test("mangled templates throw instead of trapping")
    func robustness() throws {
        let sources = try ["qwen3", "llama-3.1-instruct", "command-a", "minicpm3"].map(ChatTemplateFixtures.template)
        let messages: JinjaValue = [["role": "system", "content": "s"], ["role": "user", "content": "u"], ["role": "assistant", "content": "a"]]
        var generator = SystemRandomNumberGenerator()
        let fragments = ["{{", "}}", "{%", "%}", "{#", "#}", "-", "(", ")", "[", "]", "'", "\"", "|", ".", "**", "endfor", "\\", "\n", "é"]
        var rendered = 0
        for _ in 0..<300 {
            var scalars = Array(try #require(sources.randomElement(using: &generator)).unicodeScalars)
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0...scalars.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: scalars.insert(contentsOf: try #require(fragments.randomElement(using: &generator)).unicodeScalars, at: position)
                case 1: if position < scalars.count { scalars.removeSubrange(position..<min(scalars.count, position + Int.random(in: 1...20, using: &generator))) }
                default: scalars = Array(scalars.prefix(position))
                }
            }
            let source = String(scalars: scalars)
            if (try? JinjaTemplate(source: source).render(["messages": messages, "add_generation_prompt": true, "tools": [["type": "function"]]])) != nil {
                rendered += 1
            }
        }
        #expect(rendered >= 0)
    }

    // MARK: Features beyond the snippets

    @Test("generation blocks report assistant ranges in scalar offsets")
    func generationRanges() throws {
        let source = """
            {%- for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}</s>{% endgeneration %}{% else %}{{ m.content }}{% endif %}
            {% endfor %}
            """
        let renderer = try ChatTemplateRenderer(source: source, name: "gen.jinja")
        #expect(renderer.hasGenerationBlocks)
        let rendering = try renderer.render([.user("héllo 😀"), .assistant("ok"), .user("again"), .assistant("fine")])
        // trim_blocks removes the newline after `{% endif %}`; offsets count Unicode scalars, as Python does.
        #expect(rendering.text == "<user>héllo 😀<assistant>ok</s><user>again<assistant>fine</s>")
        #expect(rendering.assistantRanges == [24..<30, 52..<60])
        #expect(rendering.assistantStringRanges.map { String(rendering.text[$0]) } == ["ok</s>", "fine</s>"])
    }

    @Test("chat rendering drops null keys and aliases reasoning like transformers")
    func chatNormalization() throws {
        let renderer = try ChatTemplateRenderer(
            source: "{% for m in messages %}{{ m | tojson }}\n{% endfor %}{{ tools }} {{ documents }} {{ add_generation_prompt }} {{ bos_token }}",
            name: "n.jinja", specialTokens: ["bos_token": "<s>", "eos_token": "</s>"])
        let rendering = try renderer.render(
            messages: [["role": "assistant", "content": "hi", "tool_calls": nil, "reasoning": "because"]], variables: ["bos_token": "<override>"])
        #expect(rendering.text == "{\"thinking\": \"because\", \"role\": \"assistant\", \"content\": \"hi\", \"reasoning\": \"because\", \"reasoning_content\": \"because\"}\nNone None False <override>")
    }

    @Test("strftime_now uses the injected clock")
    func clock() throws {
        let options = JinjaRenderOptions(now: Date(timeIntervalSince1970: 0), timeZone: TimeZone(identifier: "UTC") ?? .current)
        #expect(try Self.render("{{ strftime_now('%d %B %Y, %H:%M') }}", options: options) == "01 January 1970, 00:00")
    }

    @Test("JSON keeps key order and the integer/float distinction")
    func json() throws {
        let value = try JinjaValue(json: #"{"z": 1, "a": [1.0, -2, 3e2, "\u00e9\ud83d\ude00\n"], "n": null, "t": true}"#)
        #expect(value.objectValue?.keys == ["z", "a", "n", "t"])
        #expect(value.objectValue?["a"] == [.float(1), .int(-2), .float(300), .string("é😀\n")])
        #expect(try Self.render("{{ v }}", ["v": value]) == "{'z': 1, 'a': [1.0, -2, 300.0, 'é😀\\n'], 'n': None, 't': True}")
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01x", "\"\\q\"", String(repeating: "[", count: 10_000)] {
            #expect(throws: JinjaJSONError.self) { try JinjaValue(json: bad) }
        }
    }

    // MARK: Loading

    static func modelDirectory(_ files: [String: String]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jinja-\(UUID().uuidString)")
        for (path, text) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        return directory
    }

    @Test("templates load from chat_template.jinja before tokenizer_config.json")
    func loadPriority() throws {
        let directory = try Self.modelDirectory([
            "chat_template.jinja": "{{ bos_token }}file\n",
            "tokenizer_config.json": #"{"chat_template": "config", "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": null}"#,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = try ChatTemplateSource.load(directory: directory)
        #expect(source.source == "{{ bos_token }}file\n")
        #expect(source.name.hasSuffix("chat_template.jinja"))
        #expect(source.specialTokens == ["bos_token": "<s>", "eos_token": "</s>"])
        #expect(try source.renderer().render([.user("x")]).text == "<s>file")
    }

    @Test("tokenizer_config.json templates: a string, or named templates")
    func loadFromConfig() throws {
        let named = try Self.modelDirectory([
            "tokenizer_config.json": #"{"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}], "unk_token": "<unk>"}"#,
            "special_tokens_map.json": #"{"bos_token": {"content": "<bos>"}, "unk_token": "ignored"}"#,
        ])
        defer { try? FileManager.default.removeItem(at: named) }
        #expect(try ChatTemplateSource.load(directory: named).source == "D")
        #expect(try ChatTemplateSource.load(directory: named, forTools: true).source == "T")
        #expect(try ChatTemplateSource.load(directory: named, templateName: "tool_use").source == "T")
        #expect(try ChatTemplateSource.load(directory: named).specialTokens == ["unk_token": "<unk>", "bos_token": "<bos>"])
        #expect(throws: ChatTemplateLoadError.self) { try ChatTemplateSource.load(directory: named, templateName: "rag") }

        let plain = try Self.modelDirectory(["tokenizer_config.json": #"{"chat_template": "S"}"#])
        defer { try? FileManager.default.removeItem(at: plain) }
        #expect(try ChatTemplateSource.load(directory: plain).source == "S")
    }

    @Test("a bad or missing template is reported with its file")
    func loadErrors() throws {
        let bad = try Self.modelDirectory(["tokenizer_config.json": #"{"chat_template": "x",}"#])
        defer { try? FileManager.default.removeItem(at: bad) }
        do {
            _ = try ChatTemplateSource.load(directory: bad)
            Issue.record("expected an error")
        } catch {
            #expect(error.path.hasSuffix("tokenizer_config.json"))
            #expect(error.reason.contains("invalid JSON"))
        }
        let missing = try Self.modelDirectory(["tokenizer_config.json": #"{"eos_token": "</s>"}"#])
        defer { try? FileManager.default.removeItem(at: missing) }
        do {
            _ = try ChatTemplateSource.load(directory: missing)
            Issue.record("expected an error")
        } catch {
            #expect(error.reason.contains("no chat template"))
        }
        let wrongType = try Self.modelDirectory(["tokenizer_config.json": #"{"chat_template": 3}"#])
        defer { try? FileManager.default.removeItem(at: wrongType) }
        #expect(throws: ChatTemplateLoadError.self) { try ChatTemplateSource.load(directory: wrongType) }
    }
}
