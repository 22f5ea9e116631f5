// `nudge sft`, `nudge rm`, `nudge dpo`: the offline post-training trainers on a Hugging Face model
// directory or a from-scratch preset, on a JSONL file or a built-in synthetic task; each run writes
// a run directory (config, metrics) and the trained model.

import ArgumentParser
import Foundation
import Nudge

struct AlignOptions: ParsableArguments {
    @Option(help: "A Hugging Face model directory (default: a fresh 'tiny' Llama with the byte tokenizer).") var model: String?
    @Option(help: "A JSONL file in TRL's shapes (default: the built-in task).") var data: String?
    @Option(help: "Built-in task: addition, multiplication, reversal, sorting.") var task = "addition"
    @Option(help: "Rows generated for the built-in task.") var rows = 256
    @Option var epochs = 1
    @Option(name: .customLong("batch-size")) var batchSize = 8
    @Option(name: .customLong("learning-rate")) var learningRate: Float?
    @Option var seed: UInt64 = 0
    @Option(help: "Run directory.") var output: String?

    func loadModel() throws -> (any CausalLanguageModel, any Tokenizer) {
        if let model {
            let dir = URL(fileURLWithPath: model)
            let lm = try LanguageModelLoader.load(directory: dir)
            let tokenizer: any Tokenizer = FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path)
                ? try BPETokenizer.load(directory: dir) : ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
            return (lm, tokenizer)
        }
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        var config = TransformerConfiguration.preset("tiny", vocabularySize: tokenizer.vocabularySize)!
        config.eosTokenID = tokenizer.eosTokenID
        return (LlamaModel(config, seed: seed), tokenizer)
    }

    func syntheticTask() throws -> SyntheticTask {
        switch task {
        case "addition": return .addition(digits: 2)
        case "multiplication": return .multiplication(digits: 1)
        case "reversal": return .reversal(length: 5)
        case "sorting": return .sorting(length: 5)
        default: throw ValidationError("--task: expected addition, multiplication, reversal or sorting, got '\(task)'")
        }
    }

    func runDirectory(_ name: String, _ extra: [(String, ConfigValue)]) throws -> RunDirectory {
        let table = ConfigTable([("trainer", .string(name)), ("model", .string(model ?? "preset:tiny")),
                                 ("data", .string(data ?? "task:\(task)")), ("epochs", .int(epochs)), ("batch_size", .int(batchSize)),
                                 ("seed", .int(Int(seed)))] + extra)
        return try RunDirectory.create(at: URL(fileURLWithPath: output ?? "runs/\(name)"), config: table, mode: .overwrite)
    }
}

struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sft", abstract: "Supervised fine-tuning (completion-only loss).")
    @OptionGroup var options: AlignOptions
    func run() throws {
        let (model, tokenizer) = try options.loadModel()
        let rows = try options.data.map { try JSONLDataset.load(URL(fileURLWithPath: $0)) } ?? options.syntheticTask().sftRows(count: options.rows, seed: options.seed)
        var config = SFTConfig()
        config.epochs = options.epochs
        config.batchSize = options.batchSize
        config.learningRate = options.learningRate ?? (options.model == nil ? 3e-3 : 2e-5)
        let run = try options.runDirectory("sft", [("learning_rate", .double(Double(config.learningRate)))])
        let losses = try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: rows, config: config) { step, m in try? run.log(step: step, m) }
        try LanguageModelLoader.save(model, configJSON: model.configuration.configJSON(), to: run.checkpointURL(name: "model"))
        run.close()
        print(String(format: "SFT: %d steps, loss %.4f → %.4f; model in %@", losses.count, losses.first ?? .nan, losses.last ?? .nan,
                     run.checkpointURL(name: "model").path))
    }
}

struct RMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Train a Bradley–Terry reward model on preference pairs.")
    @OptionGroup var options: AlignOptions
    func run() throws {
        let (trunk, tokenizer) = try options.loadModel()
        let rows = try options.data.map { try JSONLDataset.load(URL(fileURLWithPath: $0)) } ?? options.syntheticTask().preferenceRows(count: options.rows, seed: options.seed)
        var config = RewardConfig()
        config.epochs = options.epochs
        config.batchSize = options.batchSize
        config.learningRate = options.learningRate ?? (options.model == nil ? 1e-3 : 1e-5)
        let run = try options.runDirectory("rm", [("learning_rate", .double(Double(config.learningRate)))])
        let model = ScalarHeadModel(trunk: trunk, seed: options.seed)
        let history = try RewardTrainer.train(model: model, tokenizer: tokenizer, rows: rows, config: config) { step, m in try? run.log(step: step, m) }
        try model.save(to: run.checkpointURL(name: "reward_model.safetensors"))
        run.close()
        let late = history.suffix(10)
        print(String(format: "RM: %d steps, final accuracy %.3f, margin %.3f; weights in %@", history.count,
                     late.map(\.accuracy).reduce(0, +) / Float(max(late.count, 1)), late.map(\.margin).reduce(0, +) / Float(max(late.count, 1)),
                     run.checkpointURL(name: "reward_model.safetensors").path))
    }
}

struct DPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo", abstract: "Direct preference optimization (and the IPO/hinge/robust/SimPO/CPO variants).",
        discussion: "Evaluate without training: nudge dpo --eval-only --model DIR --ref-model DIR --data FILE [--json]")
    @OptionGroup var options: AlignOptions
    @Option var beta: Float = 0.1
    @Option(help: "Loss: sigmoid, hinge, ipo, robust, simpo, cpo.") var loss = "sigmoid"
    @Flag(name: .customLong("eval-only"), help: "Compute the loss and metrics without training.") var evalOnly = false
    @Option(name: .customLong("ref-model"), help: "Reference model directory (default: the initial policy).") var referenceModel: String?
    @Flag(help: "Print metrics as JSON.") var json = false

    func lossKind() throws -> PreferenceLoss {
        switch loss {
        case "sigmoid": return .sigmoid()
        case "hinge": return .hinge
        case "ipo": return .ipo
        case "robust": return .robust(labelSmoothing: 0.1)
        case "simpo": return .simpo(gamma: 0.5)
        case "cpo": return .cpo(lambda: 1)
        default: throw ValidationError("--loss: expected sigmoid, hinge, ipo, robust, simpo or cpo, got '\(loss)'")
        }
    }

    func run() throws {
        let (policy, tokenizer) = try options.loadModel()
        let rows = try options.data.map { try JSONLDataset.load(URL(fileURLWithPath: $0)) } ?? options.syntheticTask().preferenceRows(count: options.rows, seed: options.seed)
        var config = DPOConfig()
        config.beta = beta
        config.loss = try lossKind()
        config.epochs = options.epochs
        config.batchSize = options.batchSize
        config.learningRate = options.learningRate ?? (options.model == nil ? 2e-3 : 1e-6)
        let reference = try referenceModel.map { try LanguageModelLoader.load(directory: URL(fileURLWithPath: $0)) }
        if evalOnly {
            guard let reference else { throw ValidationError("--eval-only needs --ref-model") }
            let m = try DPOTrainer.evaluate(policy: policy, reference: reference, tokenizer: tokenizer, rows: rows, config: config)
            if json {
                let data = try JSONSerialization.data(withJSONObject: Dictionary(uniqueKeysWithValues: m.named), options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                for (k, v) in m.named { print(String(format: "%@: %.5f", k, v)) }
            }
            return
        }
        let run = try options.runDirectory("dpo", [("beta", .double(Double(beta))), ("loss", .string(loss)),
                                                   ("learning_rate", .double(Double(config.learningRate)))])
        let history = try DPOTrainer.train(policy: policy, reference: reference, tokenizer: tokenizer, rows: rows, config: config) { step, m in
            try? run.log(step: step, m)
        }
        try LanguageModelLoader.save(policy, configJSON: policy.configuration.configJSON(), to: run.checkpointURL(name: "model"))
        run.close()
        if let last = history.last {
            print(String(format: "DPO: %d steps; last loss %.4f, rewards/margins %.4f, rewards/accuracies %.3f", history.count,
                         last.loss, last.rewardsMargins, last.rewardsAccuracies))
        }
    }
}
