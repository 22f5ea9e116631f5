// What every post-training command does with its resolved configuration before training: the
// model (a Hugging Face directory, a GGUF file or a fresh preset), the rows (a dataset file or a
// built-in task), and the run directory. `nudge sft|rm|dpo|kto|grpo|rloo|ppo`, `nudge demo` and
// `nudge lab` share it, and a Swift program can build the same runs from a `ResolvedConfig`.

import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport
import NudgeTensor

/// A configuration that cannot make a run (a file that is the wrong one, a value no trainer takes),
/// named by its key.
public struct RunSetupError: Error, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// `dataset.columns` and `dataset.answer` (beside the `data` path): a dataset's own column names and answer format.
public enum DataKeys {
    public static let fields: [ConfigField] = [
        .string("dataset.columns", "", help: "Rename the data's columns to TRL's fields, e.g. question=prompt (GSM8K) or problem=prompt,solution=answer (MATH)."),
        .choice("dataset.answer", ["none"] + AnswerExtractor.allCases.map(\.rawValue), default: "none",
                help: "Extract the answer column's final answer: gsm8k (after ####), boxed (the last \\boxed{}), last_number; none: as written."),
        .string("dataset.split", "train", help: "The split read when data is a Hub dataset directory (data/<split>-*.parquet)."),
    ]

    public static func options(_ config: ResolvedConfig) throws -> DatasetOptions {
        let columns: [String: String]
        do { columns = try DatasetOptions.parseColumns(config.string("dataset.columns")) } catch { throw RunSetupError("\(error)") }
        return DatasetOptions(columns: columns, answer: AnswerExtractor(rawValue: config.string("dataset.answer")),
                              split: config.string("dataset.split"))
    }
}

/// LoRA adapters (PEFT's LoraConfig names, under `lora`) for sft, rm, dpo, kto, grpo, rloo and ppo: with
/// `lora.r` > 0 the loaded model is frozen and only the adapters train; `lora.base` keeps the frozen
/// base in Float32, in bf16, quantized to Q8_0, or as a .gguf model's own Q4_1/Q8_0/BF16 tensors (QLoRA). The
/// reference of DPO/KTO/GRPO is the same base with the adapters off; saved models are merged.
public enum AdapterKeys {
    public static let fields: [ConfigField] = [
        .int("lora.r", 0, min: 0, help: "LoRA rank; 0: no adapters, every weight trains."),
        .double("lora.alpha", 16, above: 0, help: "LoRA α: the adapters' update is scaled by α/r (α/√r with lora.use_rslora)."),
        .double("lora.dropout", 0, min: 0, max: 0.99, help: "Dropout on the adapters' input."),
        .string("lora.target_modules", "q_proj,v_proj",
                help: "Comma-separated projections to adapt: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj (GPT-2: c_attn, c_proj, c_fc); all-linear: every one."),
        .bool("lora.use_rslora", false, help: "Rank-stabilized scaling α/√r."),
        .choice("lora.base", ["float32", "bf16", "q8_0", "q4_1", "gguf"], default: "float32",
                help: "The frozen base under the adapters: Float32; bf16 (rounded to nearest even, half the bytes); q8_0 or q4_1 (QLoRA, quantized here as llama.cpp does); gguf (QLoRA on a .gguf model's own Q4_1/Q8_0/BF16 tensors, no re-quantization). A quantized base of a Llama-family model is read from the file straight into that form."),
    ]

    /// Whether `config` asks for adapters.
    public static func enabled(_ config: ResolvedConfig) -> Bool {
        config.schema.field("lora.r") != nil && config.int("lora.r") > 0
    }

    /// The projections `lora.target_modules` may name (each model family has some of them).
    static let projections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "c_attn", "c_proj", "c_fc"]

    /// The targets `lora.target_modules` names (all-linear: every projection).
    static func targets(_ config: ResolvedConfig) -> [String] {
        let names = config.string("lora.target_modules").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return names == ["all-linear"] ? projections : names
    }

    /// Refuses `lora.*` settings that cannot work, naming the key, before any model is loaded or
    /// trained: no target, a target that is no projection (only projections are adaptable), or
    /// lora.base = gguf without a .gguf model.
    public static func validate(_ config: ResolvedConfig) throws {
        guard enabled(config) else { return }
        let targets = targets(config)
        guard !targets.isEmpty else { throw RunSetupError("lora.target_modules: name at least one projection (e.g. q_proj,v_proj)") }
        for target in targets where !projections.contains(String(target.split(separator: ".").last ?? "")) {
            throw RunSetupError("lora.target_modules: '\(target)' is not a projection; expected all-linear or names among \(projections.joined(separator: ", "))")
        }
        if config.string("lora.base") == "gguf" {
            let path = config.string("model")
            guard LanguageModelLoader.isGGUF(URL(fileURLWithPath: path)) else {
                throw RunSetupError("lora.base: gguf keeps a .gguf model's own blocks, but model is \(path.isEmpty ? "the fresh preset" : path)")
            }
        }
    }

    /// Applies `lora.*` to `model` (loaded from `model`, for lora.base = gguf): freezes it, adds the
    /// adapters and quantizes the base as asked. Returns the adapted layers' paths; none when lora.r = 0.
    /// - Parameters:
    ///   - seed: the adapters' seed (A's initialization, dropout masks); nil: `seed`.
    ///   - weightsFromModelFile: false for a model whose weights are no longer the .gguf file's (a
    ///     trained copy, e.g. PPO's value model): lora.base = gguf then quantizes it to Q8_0.
    @discardableResult
    public static func apply(_ config: ResolvedConfig, to model: any CausalLanguageModel, seed: UInt64? = nil,
                             weightsFromModelFile: Bool = true) throws -> [String] {
        guard enabled(config) else { return [] }
        try validate(config)
        let lora = LoRAConfiguration(rank: config.int("lora.r"), alpha: Float(config.double("lora.alpha")),
                                     dropout: Float(config.double("lora.dropout")), targetModules: targets(config),
                                     seed: seed ?? UInt64(config.int("seed")), useRSLoRA: config.bool("lora.use_rslora"))
        model.freeze()
        let paths: [String]
        do { paths = try applyLoRA(to: model, configuration: lora) } catch { throw RunSetupError("lora.target_modules: \(error)") }
        // A model from `loadModelForAdapters` already holds these projections quantized: nothing left to do.
        switch config.string("lora.base") {
        case "bf16": quantizeFrozenBase(of: model, to: .bf16)
        case "q8_0": quantizeFrozenBase(of: model, to: .q8_0)
        case "q4_1":
            try requireWholeQ4_1Blocks(model)
            quantizeFrozenBase(of: model, to: .q4_1)
        case "gguf" where !weightsFromModelFile: quantizeFrozenBase(of: model, to: .q8_0)
        case "gguf":
            let file: GGUFFile
            do { file = try GGUFFile(url: URL(fileURLWithPath: config.string("model"))) } catch { throw RunSetupError("model: \(error)") }
            quantizeFrozenBase(of: model, from: file)
        default: break
        }
        return paths
    }
}

extension AdapterKeys {
    /// Refuses lora.base = q4_1 for a model with a projection whose inputs are no whole number of
    /// Q4_1 blocks (the preset models' may not be), naming it.
    static func requireWholeQ4_1Blocks(_ model: Module) throws {
        for (key, tensor, _) in model.namedParameters() where tensor.rank == 2 && key.hasSuffix(".weight") {
            let module = key.split(separator: ".").dropLast().last.map(String.init) ?? ""
            if projections.contains(module) && !QuantizedMatrix.canQuantize(columns: tensor.shape[1], to: .q4_1) {
                throw RunSetupError("lora.base: q4_1 needs projections with a multiple of \(QuantizedMatrix.blockSize) inputs, but \(key) has \(tensor.shape[1]); use q8_0")
            }
        }
    }
}

/// The config keys and reading helpers shared by sft, rm and dpo.
public enum AlignConfig {
    /// The top-level keys. `trainer` has one allowed value so that a run's config.toml says
    /// which trainer wrote it and cannot be fed to another one by mistake.
    public static func common(trainer: String, task: String = "addition") -> [ConfigField] {
        [
            .choice("trainer", [trainer], default: trainer, help: "This trainer (fixed; recorded in config.toml)."),
            .string("model", "", help: "A Hugging Face model directory or a .gguf file; empty: a fresh 'tiny' byte-level Llama."),
            .string("data", "", help: "A JSONL or Parquet file (or a Hub dataset directory: data/train-*.parquet) in TRL's shapes; empty: the built-in task."),
        ] + DataKeys.fields + [
            .choice("task", AlignRun.taskNames, default: task, help: "The built-in task."),
            .int("rows", 256, min: 1, help: "Rows generated for the built-in task."),
            .int("seed", 0, min: 0, help: "Seed of the model initialization, the built-in task and batch order."),
            .string("output", "runs/\(trainer)", help: "Run directory (a previous run there is replaced)."),
            .int("checkpoint.every", 100, min: 1, help: "Write checkpoints/latest every this many steps (and at the end, and on Ctrl-C)."),
        ]
    }
}

/// A resolved sft/rm/dpo configuration, with what the three commands do with it.
public struct AlignRun {
    public let config: ResolvedConfig

    public init(config: ResolvedConfig) { self.config = config }

    /// The seed (validated non-negative by the schema).
    public var seed: UInt64 { UInt64(config.int("seed")) }

    /// Whether `config` trains the fresh preset model rather than a loaded one.
    public static func usesPreset(_ config: ResolvedConfig) -> Bool { config.string("model").isEmpty }

    public func loadModel() throws -> (any CausalLanguageModel, any Tokenizer) {
        if !Self.usesPreset(config) { return try Self.loadModel(directory: URL(fileURLWithPath: config.string("model"))) }
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        var configuration = TransformerConfiguration.preset("tiny", vocabularySize: tokenizer.vocabularySize)!
        configuration.eosTokenID = tokenizer.eosTokenID
        return (LlamaModel(configuration, seed: seed), tokenizer)
    }

    /// `loadModel()` for a run that applies `AdapterKeys` to the model before anything else uses it:
    /// with adapters over a quantized base (lora.r > 0, lora.base other than float32) a model file's
    /// frozen projections are read straight into that form (`LanguageModelLoader.loadWithTokenizer(path:frozenProjections:)`),
    /// so no Float32 copy of them is ever made; `AdapterKeys.apply` then has nothing left to
    /// quantize, and the model computes bit for bit what loading in Float32 and quantizing gives.
    public func loadModelForAdapters() throws -> (any CausalLanguageModel, any Tokenizer) {
        guard !Self.usesPreset(config), AdapterKeys.enabled(config) else { return try loadModel() }
        try AdapterKeys.validate(config)
        let frozen: FrozenProjections
        switch config.string("lora.base") {
        case "bf16": frozen = .quantized(.bf16)
        case "q8_0": frozen = .quantized(.q8_0)
        case "q4_1": frozen = .quantized(.q4_1)
        case "gguf": frozen = .fileBlocks(fallback: .q8_0)
        default: return try loadModel()
        }
        return try LanguageModelLoader.loadWithTokenizer(path: URL(fileURLWithPath: config.string("model")), frozenProjections: frozen)
    }

    /// A model directory and its tokenizer: tokenizer.json when present, else the byte tokenizer the
    /// fresh preset models are trained with.
    public static func loadModel(directory dir: URL) throws -> (any CausalLanguageModel, any Tokenizer) {
        try LanguageModelLoader.loadWithTokenizer(path: dir)
    }

    /// The built-in task (the schema limits `task` to these names).
    public var syntheticTask: SyntheticTask { Self.task(named: config.string("task")) ?? .addition(digits: 2) }

    /// The built-in tasks' names.
    public static let taskNames = ["addition", "multiplication", "reversal", "sorting", "carries"]

    /// The built-in task called `name` (nil for an unknown name).
    public static func task(named name: String) -> SyntheticTask? {
        switch name {
        case "addition": .addition(digits: 2)
        case "multiplication": .multiplication(digits: 1)
        case "reversal": .reversal(length: 5)
        case "sorting": .sorting(length: 5)
        case "carries": .carries(digits: 3)
        default: nil
        }
    }

    /// New tokens a completion of the built-in task `name` needs (the preset model's default
    /// max_completion_length): 6 for the one-line answers, 40 for `carries`' worked steps (at most 31
    /// bytes and EOS for 3 digits: three 9-byte column lines and a 4-digit answer).
    public static func completionLength(task name: String) -> Int { name == "carries" ? 40 : 6 }

    /// The JSONL file's rows, or the built-in task's SFT (or preference) rows.
    public func rows(preference: Bool) throws -> [DatasetRow] {
        let data = config.string("data")
        if !data.isEmpty { return try JSONLDataset.load(URL(fileURLWithPath: data), options: DataKeys.options(config)) }
        let count = config.int("rows")
        return preference ? syntheticTask.preferenceRows(count: count, seed: seed) : syntheticTask.sftRows(count: count, seed: seed)
    }

    /// The run directory at `output`, with the resolved configuration as its config.toml: replaced,
    /// or reopened to resume after `step` (later metrics and samples, left by a crash after the last
    /// checkpoint, are dropped).
    public func directory(resumingAfter step: Int? = nil) throws -> RunDirectory {
        let output = config.string("output")
        guard !output.isEmpty else { throw RunSetupError("output: expected a directory path, got an empty string") }
        let world = Communicator.shared
        guard world.isRoot else {
            // Data parallel: only rank 0 writes the run; the others log into a scratch directory
            // that the runner removes at the end (checkpoints are read from `output` by every rank).
            let scratch = FileManager.default.temporaryDirectory
                .appendingPathComponent("nudge-rank\(world.rank)-\(ProcessInfo.processInfo.processIdentifier)")
            return try RunDirectory.create(at: scratch, config: config.asConfigTable(), mode: .overwrite)
        }
        let url = URL(fileURLWithPath: output)
        guard let step else { return try RunDirectory.create(at: url, config: config.asConfigTable(), mode: .overwrite) }
        let directory = try RunDirectory.create(at: url, config: config.asConfigTable(), mode: .resume)
        try directory.truncate(afterStep: step)
        try AppendOnlyLines.filter(url.appendingPathComponent("samples.jsonl")) { (($0["step"] as? Int) ?? 0) <= step }
        return directory
    }

    /// checkpoints/latest of the run at `output`: the resumable checkpoint.
    public var latestCheckpointURL: URL { URL(fileURLWithPath: config.string("output")).appendingPathComponent("checkpoints/latest") }
}

extension AlignRun {
    /// The reference model of dpo and kto: the directory `path`, else nil (the trainer scores with the
    /// initial policy), except when resuming, where the policy holds trained weights and the initial
    /// ones are loaded again (the preset from its seed, or the model directory).
    public static func reference(_ path: String, run: AlignRun, resume: Bool) throws -> (any CausalLanguageModel)? {
        if !path.isEmpty { return try LanguageModelLoader.load(path: URL(fileURLWithPath: path)) }
        return resume ? try run.loadModel().0 : nil
    }
}
