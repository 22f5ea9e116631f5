// `nudge lm logits` (parity checks against transformers), `nudge lm template` (a model's
// chat template applied to a conversation) and `nudge generate`.

import ArgumentParser
import Foundation
import Nudge

struct LM: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Language-model tools.", subcommands: [Logits.self, Init.self, Template.self, Export.self, Tokenize.self])

    struct Logits: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the last position's logits for token ids (compare with transformers).",
            discussion: "Example: nudge lm logits --model path/to/hf-dir --ids 1,2,3 --json")
        @Option(help: "A Hugging Face model directory (config.json + model.safetensors) or a .gguf file.") var model: String
        @Option(help: "Comma-separated token ids.") var ids: String
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let lm = try LanguageModelLoader.load(path: URL(fileURLWithPath: model))
            let tokens = try ids.split(separator: ",").map { item in
                let text = item.trimmingCharacters(in: .whitespaces)
                guard let id = Int(text) else { throw ValidationError("--ids: '\(text)' is not a token id (a non-negative integer)") }
                return id
            }
            guard !tokens.isEmpty else { throw ValidationError("--ids: expected at least one token id, e.g. --ids 1,2,3") }
            let logits = try usageErrors(TokenLimitError.self, prefix: "--ids: ") { try NextTokenLogits(model: lm, ids: tokens) }
            print(json ? try logits.json() : logits.summary)
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a freshly initialized model (preset tiny, S or M) as a Hugging Face directory.")
        @Option var preset = "tiny"
        @Option(name: .customLong("vocab-size"), help: "Vocabulary size (default: the byte tokenizer's \(LanguageModelLoader.byteTokenizer.vocabularySize), so the model trains without a tokenizer.json).")
        var vocabularySize: Int?
        @Option var seed: UInt64 = 0
        @Option var output: String
        func run() throws {
            if let vocabularySize, vocabularySize < 1 || vocabularySize > LanguageModelLoader.byteModelVocabularyLimit * 32 {
                throw ValidationError("--vocab-size: expected an integer between 1 and \(LanguageModelLoader.byteModelVocabularyLimit * 32), got \(vocabularySize)")
            }
            let destination = URL(fileURLWithPath: output)
            guard let model = try LanguageModelLoader.writeFreshModel(preset: preset, vocabularySize: vocabularySize, seed: seed, to: destination) else {
                throw ValidationError("--preset: expected tiny, S or M, got '\(preset)'")
            }
            print("\(preset): \(model.parameterCount) parameters written to \(output)")
        }
    }
}

extension LM {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a model as a GGUF file (llama.cpp, Ollama, transformers) or a Hugging Face directory.",
            discussion: """
            The tokenizer and chat template travel with the weights (from the source GGUF's metadata, or from
            tokenizer.json / tokenizer_config.json / chat_template.jinja beside a model directory).
            --adapter merges a LoRA adapter (a PEFT directory: adapter_config.json and
            adapter_model.safetensors) into the weights first, as PEFT's merge_and_unload does.
            Example: nudge lm export --model runs/sft/checkpoints/model --output model.gguf --type q8_0
            """)
        @Option(help: "A Hugging Face model directory or a .gguf file.") var model: String
        @Option(help: "A PEFT LoRA adapter directory to merge into the weights before writing.") var adapter: String?
        @Option(help: "OUT.gguf, or a directory for the Hugging Face layout.") var output: String
        @Option(help: "Storage of the matrices in a GGUF file: f32, f16, bf16 or q8_0 (norms and biases stay f32).") var type = "f16"
        @Option(help: "general.name in the GGUF file.") var name: String?
        func run() throws {
            guard let ggmlType = ModelExport.types[type.lowercased()] else { throw ValidationError("--type: expected f32, f16, bf16 or q8_0, got '\(type)'") }
            let destination = URL(fileURLWithPath: output)
            let export = try ModelExport(source: URL(fileURLWithPath: model))
            if let adapter {
                print("merged the LoRA adapter \(adapter) into \(try export.mergeAdapter(from: URL(fileURLWithPath: adapter))) layers")
            }
            try usageErrors(ModelLoadError.self) { try export.check(destination: destination) }
            try export.write(to: destination, type: ggmlType, name: name)
            print("\(export.model.parameterCount) parameters written to \(output)")
        }
    }

    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the token ids of a text.")
        @Option(help: "A Hugging Face model directory or a .gguf file.") var model: String
        @Option(help: "The text.") var text: String
        @Flag(name: .customLong("special"), help: "Add the tokenizer's sequence tokens (e.g. BOS).") var addSpecialTokens = false
        @Flag(help: "Print JSON (ids and the token strings).") var json = false
        func run() throws {
            let tokenizer = try LanguageModelLoader.tokenizer(path: URL(fileURLWithPath: model))
            let ids = tokenizer.encode(text, addSpecialTokens: addSpecialTokens)
            if json {
                let tokens = ids.map { tokenizer.decode([$0], skipSpecialTokens: false) }
                let data = try JSONSerialization.data(withJSONObject: ["ids": ids, "tokens": tokens])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(ids.map(String.init).joined(separator: " "))
            }
        }
    }

    struct Template: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render a conversation with a model's Jinja chat template (as transformers' apply_chat_template).",
            discussion: """
            Prints exactly the rendered text (no newline is added). The template comes from a model
            directory (chat_template.jinja, else tokenizer_config.json's chat_template) or a .jinja file;
            the special tokens (bos_token, eos_token, ...) from the directory's tokenizer_config.json.
            --messages is a JSON list of messages ({"role": ..., "content": ...}, plus keys such as
            tool_calls), or an object with a "messages" list. --var values are JSON when they parse
            (true, 3, [1], {"a": 1}), else strings. When the template raises (raise_exception), the
            command fails with the template's message.
            Example: nudge lm template --model path/to/hf-dir --messages chat.json --add-generation-prompt --var enable_thinking=false
            """)
        @Option(help: "A Hugging Face model directory.") var model: String?
        @Option(help: "A Jinja chat template file.") var template: String?
        @Option(name: .customLong("template-name"), help: "Which of several named templates (e.g. tool_use).") var templateName: String?
        @Option(help: "A JSON file with the messages.") var messages: String
        @Option(help: "A JSON file with a list of tool schemas.") var tools: String?
        @Option(help: "A JSON file with a list of documents ({\"title\", \"text\"}).") var documents: String?
        @Flag(name: .customLong("add-generation-prompt"), help: "End with the header of a new assistant turn.") var addGenerationPrompt = false
        @Option(name: .customLong("var"), help: "A template variable NAME=VALUE (repeatable).") var variables: [String] = []

        func validate() throws {
            guard (model == nil) != (template == nil) else { throw ValidationError("give either --model DIR or --template FILE.jinja") }
            if template != nil && templateName != nil { throw ValidationError("--template-name applies to --model only") }
        }

        func run() throws {
            let source = try loadSource()
            let (variableValues, malformed) = JinjaValue.variables(assignments: variables)
            if let malformed { throw ValidationError("--var: expected NAME=VALUE, got '\(malformed)'") }
            guard let messageList = ChatTemplateRenderer.messages(in: try readJSON(messages, option: "--messages")) else {
                throw ValidationError("--messages: expected a JSON list of messages or an object with a \"messages\" list")
            }
            let toolList = try tools.map { path in try list(readJSON(path, option: "--tools"), option: "--tools") }
            let documentList = try documents.map { path in try list(readJSON(path, option: "--documents"), option: "--documents") }
            do throws(JinjaError) {
                let rendering = try source.renderer().render(
                    messages: messageList, addGenerationPrompt: addGenerationPrompt, tools: toolList, documents: documentList,
                    variables: variableValues)
                FileHandle.standardOutput.write(Data(rendering.text.utf8))
            } catch {
                note("Error: " + error.userMessage)
                throw ExitCode(1)
            }
        }

        private func loadSource() throws -> ChatTemplateSource {
            do throws(ChatTemplateLoadError) {
                if let template { return try ChatTemplateSource.load(templateFile: URL(fileURLWithPath: template)) }
                return try ChatTemplateSource.load(model: model ?? "", templateName: templateName, forTools: tools != nil)
            } catch { throw ValidationError(template == nil ? "--model: \(error)" : error.description) }
        }

        private func readJSON(_ path: String, option: String) throws -> JinjaValue {
            do { return try JinjaValue(json: String(contentsOfFile: path, encoding: .utf8)) } catch { throw ValidationError("\(option): \(path): \(error)") }
        }

        private func list(_ value: JinjaValue, option: String) throws -> [JinjaValue] {
            guard let list = value.arrayValue else { throw ValidationError("\(option): expected a JSON list") }
            return list
        }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample a continuation from a model.",
        discussion: """
        The prompt is tokenized with the directory's tokenizer.json when present, else as UTF-8 bytes.
        With --chat the prompt is one user message (after --system, when given) rendered by the model's
        own chat template (from its directory or GGUF file) with the generation prompt, and only the
        reply is printed.
        Example: nudge generate --model path/to/hf-dir --prompt "Once upon" --max-new-tokens 32 --temperature 0.8
        Example: nudge generate --model SmolLM2-135M-Instruct.Q4_1.gguf --chat --prompt "What is 12 + 7?" --temperature 0
        """)
    @Option var model: String
    @Option var prompt: String
    @Option(name: .customLong("max-new-tokens")) var maxNewTokens = 64
    @Option var temperature: Float = 1
    @Option(name: .customLong("top-k")) var topK = 0
    @Option(name: .customLong("top-p")) var topP: Float = 1
    @Option(name: .customLong("min-p")) var minP: Float = 0
    @Option var seed: UInt64 = 0
    @Flag(help: "Render --prompt as a user message with the model's chat template.") var chat = false
    @Option(help: "A system message before the prompt (with --chat).") var system: String?
    func run() throws {
        let (lm, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: URL(fileURLWithPath: model))
        let config = GenerationConfig(maxNewTokens: maxNewTokens, temperature: temperature, topK: topK, topP: topP, minP: minP, seed: seed)
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
        guard let ids = try tokenizer.promptIDs(prompt, chat: chat, system: system) else {
            throw ValidationError("--chat: \(model) has no chat template (no chat_template.jinja, tokenizer_config.json chat_template or GGUF tokenizer.chat_template)")
        }
        let completion: TextCompletion
        do {
            completion = try TextCompletion(model: lm, tokenizer: tokenizer, prompt: ids, config: config)
        } catch let error as RowError {
            throw ValidationError("--prompt: \(error.underlying)")
        } catch TokenLimitError.invalidSetting(let name, let value, let expected) {
            throw ValidationError("--\(name.replacingOccurrences(of: "_", with: "-")): expected \(expected), got \(value)")
        }
        print(chat ? completion.text : prompt + completion.text)
        note(completion.statistics)
    }
}
