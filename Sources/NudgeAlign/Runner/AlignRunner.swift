// The loop around a post-training trainer, written once: held-out evaluation on a cadence, the best
// and latest checkpoints, samples.jsonl, metrics, a progress bar, Ctrl-C (finish the step, save,
// report) and report.html. `nudge grpo|rloo|ppo`, `nudge demo` and `nudge lab` call it, and so can a
// Swift program with its own trainer.

import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport
import NudgeTensor

/// Drives a `Trainer` through a run directory.
public struct AlignRunner {
    /// The run's name in messages and the progress bar (e.g. "GRPO").
    public var name: String
    public var directory: RunDirectory
    /// The model evaluated and saved (the trainer's policy).
    public var model: any CausalLanguageModel
    public var tokenizer: any Tokenizer
    /// The model file or directory the run started from (nil for a fresh model): saved models carry its tokenizer.
    public var sourceModel: URL?
    /// Verifiable rows for greedy exact-match accuracy (empty: no evaluation).
    public var heldOut: [DatasetRow] = []
    /// New tokens of an evaluation completion.
    public var maxNewTokens = 16
    /// Evaluate every this many steps (and after the last).
    public var evalEvery = 20
    /// Write the step's completions to samples.jsonl every this many steps (and after the first).
    public var samplesEvery = 10
    /// Write checkpoints/latest every this many steps (and at the end, and on Ctrl-C).
    public var checkpointEvery = 100
    /// The metrics shown beside the progress bar.
    public var headline: [String] = ["reward", "kl", "eval/accuracy"]
    /// Writes the trained model at the end, given checkpoints/; nil: `model` as a Hugging Face
    /// directory in checkpoints/model (a reward model saves its head too).
    public var saveModel: ((URL) throws -> Void)?

    public init(name: String, directory: RunDirectory, model: any CausalLanguageModel, tokenizer: any Tokenizer, sourceModel: URL? = nil) {
        self.name = name
        self.directory = directory
        self.model = model
        self.tokenizer = tokenizer
        self.sourceModel = sourceModel
    }

    /// checkpoints/latest: the resumable checkpoint.
    public var latestCheckpointURL: URL { directory.url.appendingPathComponent("checkpoints/latest") }

    /// Runs `trainer` from its current step to its `totalSteps`. Throws `TrainingStopped` on a
    /// non-finite value (the last finite checkpoint is kept) and `TrainingInterrupted` after Ctrl-C
    /// (the checkpoint and report are written first).
    @discardableResult
    public func run(_ trainer: any Trainer) throws -> RunOutcome {
        let started = Date()
        // Data parallel: every rank trains; rank 0 alone evaluates, prints, checkpoints and saves
        // (the others' directory is a scratch one, removed at the end).
        let root = Communicator.shared.isRoot
        defer { if !root { directory.close(); try? FileManager.default.removeItem(at: directory.url) } }
        let stop = StopSignal.install()
        let startStep = trainer.completedSteps, steps = trainer.totalSteps
        let samples = try AppendOnlyLines(url: directory.url.appendingPathComponent("samples.jsonl"))
        var accuracies: [(Int, Double)] = []
        if startStep > 0 {
            accuracies = try MetricsLog.read(directory.metricsURL).compactMap { row in row.values["eval/accuracy"].map { (row.step, $0) } }
            if root { print("Resuming \(name) after step \(startStep) in \(directory.url.path)") }
        } else if root, let a = try accuracy() {
            accuracies.append((0, a))
            try directory.log(step: 0, [("eval/accuracy", a)])
            print(String(format: "held-out accuracy before %@: %.3f", name, a))
        }
        if root && trainer.bf16 && !MixedPrecision.isSupported {
            // Said once, so a mixed-precision config run on such a CPU is not mistaken for one.
            FileHandle.standardError.write(Data("note: bf16 = true, but this CPU has no AVX512_BF16: \(name)'s products stay Float32\n".utf8))
        }
        var best = accuracies.map(\.1).max() ?? -.infinity
        let progress = ProgressReporter(total: steps, label: name, output: root ? .standardError : ProgressOutput(isTerminal: false) { _ in },
                                        initialCompleted: startStep)
        var completed = startStep
        var history: [[(String, Double)]] = []
        var interrupted = false
        func stopped(_ reason: String) -> TrainingStopped {
            progress.finish()
            directory.close()
            try? HTMLReport.forRun(directory.url).write(to: directory.url.appendingPathComponent("report.html"))
            return TrainingStopped(reason: reason, checkpoint: latestCheckpointURL)
        }
        for k in (startStep + 1)..<(max(steps, startStep) + 1) {
            let stepResult: StepResult?
            do {
                stepResult = try MixedPrecision.bf16(trainer.bf16) { try trainer.trainStep() }
            } catch let error as NonFiniteValueError {
                throw stopped("\(error)")
            } catch RewardError.interrupted {
                // Ctrl-C while the reward command ran: the step was rolled back, so save after the last one.
                print("\nInterrupted during step \(k): saving after step \(completed)")
                interrupted = true
                break
            }
            guard let result = stepResult else { continue }
            var metrics = result.metrics
            history.append(metrics)
            if root, k % evalEvery == 0 || k == steps, let a = try accuracy() {
                metrics.append(("eval/accuracy", a))
                accuracies.append((k, a))
                if a > best {
                    best = a
                    try LanguageModelLoader.save(model, tokenizerFrom: sourceModel, to: directory.checkpointURL(name: "best"))
                }
            }
            // The trainers refuse non-finite updates themselves; a non-finite loss metric that got
            // through (a trainer from outside this package) still stops the run before it is logged.
            if let bad = metrics.first(where: { !$0.1.isFinite && ["loss", "grad_norm", "loss/policy_avg", "loss/value_avg"].contains($0.0) }) {
                throw stopped("\(NonFiniteValueError(step: k, metric: bad.0, value: bad.1))")
            }
            try directory.log(step: k, metrics)
            if k % samplesEvery == 0 || k == 1 {
                for s in result.samples {
                    try samples.append(["step": k, "prompt": s.prompt, "completion": s.completion, "reward": s.reward ?? NSNull(),
                                        "advantage": s.advantage])
                }
            }
            progress.update(completed: k, metrics: headline.compactMap { h in metrics.first { $0.0 == h } })
            completed = k
            if stop.requested { print("\nInterrupted: saving after step \(k)"); interrupted = true; break }
            if root && k % checkpointEvery == 0 && k != steps { try trainer.saveCheckpoint(to: latestCheckpointURL) }
        }
        progress.finish()
        guard root else {
            return RunOutcome(directory: directory.url, steps: completed, seconds: Date().timeIntervalSince(started), accuracies: [],
                              history: history)
        }
        if completed > startStep || startStep == 0 { try trainer.saveCheckpoint(to: latestCheckpointURL) }
        if let saveModel {
            try saveModel(directory.checkpointsURL)
        } else {
            try LanguageModelLoader.save(model, tokenizerFrom: sourceModel, to: directory.checkpointURL(name: "model"))
        }
        directory.close()
        var page = try HTMLReport.forRun(directory.url)
        if let first = accuracies.first, let last = accuracies.last {
            page.notes.insert(String(format: "Held-out greedy exact-match accuracy: %.3f at step %d → %.3f at step %d.",
                                     first.1, first.0, last.1, last.0), at: 0)
        }
        try page.write(to: directory.url.appendingPathComponent("report.html"))
        if let first = accuracies.first, let last = accuracies.last {
            print(String(format: "%@: %d steps; held-out accuracy %.3f → %.3f; run in %@", name, completed, first.1, last.1, directory.url.path))
        } else {
            print("\(name): \(completed) steps; run in \(directory.url.path)")
        }
        let world = Communicator.shared
        if world.isDistributed && completed > startStep {
            print(String(format: "Data parallel: %d ranks (%@); rank 0 spent %.3f s in collectives, %.1f ms per step",
                         world.size, world.implementation ?? "MPI", world.communicationSeconds,
                         1000 * world.communicationSeconds / Double(completed - startStep)))
        }
        if interrupted { throw TrainingInterrupted(directory: directory.url, step: completed) }
        return RunOutcome(directory: directory.url, steps: completed, seconds: Date().timeIntervalSince(started), accuracies: accuracies,
                          history: history)
    }

    func accuracy() throws -> Double? {
        heldOut.isEmpty ? nil : try exactMatchAccuracy(model: model, tokenizer: tokenizer, rows: heldOut, maxNewTokens: maxNewTokens)
    }
}

/// What a run did.
public struct RunOutcome {
    public var directory: URL
    public var steps: Int
    public var seconds: Double
    /// Held-out accuracy by step (step 0: before training).
    public var accuracies: [(Int, Double)]
    /// Every step's metrics.
    public var history: [[(String, Double)]]

    /// A metric's values over the steps where it was logged.
    public func series(_ name: String) -> (x: [Double], y: [Double]) {
        var x: [Double] = [], y: [Double] = []
        for (k, m) in history.enumerated() { if let v = m.first(where: { $0.0 == name })?.1, v.isFinite { x.append(Double(k + 1)); y.append(v) } }
        return (x, y)
    }

    /// The mean of a metric over the first or last `count` steps.
    public func mean(_ name: String, first count: Int) -> Double { average(Array(series(name).y.prefix(count))) }
    public func mean(_ name: String, last count: Int) -> Double { average(Array(series(name).y.suffix(count))) }
    private func average(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }
}
