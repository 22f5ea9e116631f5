// The loop around an offline trainer (SFT, reward model, DPO, KTO), which drives its own epochs
// through a `TrainingControl`: a fresh or resumed run directory, the optimizer restored on resume,
// Ctrl-C between steps, checkpoints, metrics, the progress bar and report.html.

import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport
import NudgeTensor

/// What sft, rm, dpo and kto do around their trainer: a fresh or resumed run directory, the
/// optimizer (restored on resume), Ctrl-C between steps, checkpoints/latest every `checkpoint.every`
/// steps and at the end, metrics, then report.html, also when a step fails (a NaN loss).
public struct OfflineSession {
    public let name: String
    public let directory: RunDirectory
    public let optimizer: Adam
    public let control: TrainingControl
    let display: OfflineProgress
    /// The first failed metrics write (a full disk): the loop stops at the next step and it is thrown.
    let logFailure = LogFailure()
    /// The model file or directory the run started from (nil for the fresh preset): saved models carry its tokenizer.
    public let sourceModel: URL?
    public var startStep: Int { control.startStep }

    /// Opens the run of `run`'s configuration for `model` (everything the checkpoint holds) trained by
    /// `optimizer`; with `resume`, restores both from checkpoints/latest first.
    public init(_ name: String, run: AlignRun, model: Module, optimizer: Adam, resume: Bool) throws {
        self.name = name
        self.optimizer = optimizer
        sourceModel = AlignRun.usesPreset(run.config) ? nil : URL(fileURLWithPath: run.config.string("model"))
        let latest = run.latestCheckpointURL
        var start = 0
        if resume {
            try Checkpoint.recoverInterruptedSwap(at: latest)
            guard FileManager.default.fileExists(atPath: latest.path) else {
                throw RunSetupError("--resume \(run.config.string("output")): no checkpoints/latest to continue from")
            }
            start = try Checkpoint.restore(model: model, optimizer: optimizer, from: latest)
            print("Resuming \(name) after step \(start) in \(run.config.string("output"))")
        }
        directory = try run.directory(resumingAfter: resume ? start : nil)
        let display = OfflineProgress(label: name, startStep: start)
        self.display = display
        let stop = StopSignal.install()
        let announced = Announcement("\nInterrupted: saving the checkpoint and the report")
        let failure = logFailure
        control = TrainingControl(startStep: start, shouldStop: {
            if failure.error != nil { return true }
            guard stop.requested else { return false }
            announced.print()
            return true
        }, checkpointEvery: run.config.int("checkpoint.every"), checkpoint: { step in
            try Checkpoint.save(model: model, optimizer: optimizer, step: step, to: latest)
        }, progress: display.update)
    }

    /// Logs one step's metrics.
    public func log(_ step: Int, _ metrics: [(String, Double)]) {
        do { try directory.log(step: step, metrics) } catch { if logFailure.error == nil { logFailure.error = error } }
        display.headline = metrics.filter { OfflineProgress.shown.contains($0.0) }
    }

    /// Runs `train` (given the control and the logger), then saves the model with `save`, closes
    /// the directory and writes report.html; on an error the report is still written.
    public func run<T>(_ train: (TrainingControl, @escaping (Int, [(String, Double)]) -> Void) throws -> T, save: () throws -> Void) throws -> T {
        func close() {
            display.finish()
            directory.close()
        }
        let result: T
        do {
            result = try train(control, log)
            if let failure = logFailure.error { throw failure }
            try save()
        } catch {
            close()
            try? HTMLReport.forRun(directory.url).write(to: directory.url.appendingPathComponent("report.html"))
            if let stop = error as? NonFiniteValueError {
                throw TrainingStopped(reason: "\(stop)", checkpoint: directory.checkpointURL(name: "latest"))
            }
            throw error
        }
        close()
        try HTMLReport.forRun(directory.url).write(to: directory.url.appendingPathComponent("report.html"))
        // 128 + SIGINT, so a scheduler tells an interrupted run from a finished one.
        if StopSignal.install().requested { throw TrainingInterrupted(directory: directory.url, step: display.lastStep) }
        return result
    }

    /// Says that a resumed run had no steps left (extend it with --epochs).
    public func reportNothingNew() {
        print("\(name): no steps left after step \(startStep); to train further, resume with a larger --epochs. Run in \(directory.url.path)")
    }

    /// Saves a language model as a Hugging Face directory in checkpoints/model.
    public func saveModel(_ model: any CausalLanguageModel) throws {
        try LanguageModelLoader.save(model, tokenizerFrom: sourceModel, to: directory.checkpointURL(name: "model"))
    }
}

/// The progress bar of an offline run, made when the trainer first reports its step count.
final class OfflineProgress {
    /// The metrics shown beside the bar.
    static let shown: Set<String> = ["loss", "eval_loss", "accuracy", "rewards/accuracies", "rewards/margins", "kl"]
    let label: String
    let startStep: Int
    var reporter: ProgressReporter?
    var headline: [(String, Double)] = []

    init(label: String, startStep: Int) {
        self.label = label
        self.startStep = startStep
    }

    /// The last step reported.
    var lastStep = 0

    func update(_ step: Int, _ total: Int) {
        lastStep = step
        if reporter == nil { reporter = ProgressReporter(total: total, label: label, initialCompleted: startStep) }
        reporter?.update(completed: step, metrics: headline)
    }

    func finish() { reporter?.finish() }
}

/// Where a non-throwing metrics callback leaves its first error.
final class LogFailure: @unchecked Sendable {
    var error: (any Error)?
}
