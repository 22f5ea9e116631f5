// ProgressReporterTests.swift
//
// Tests of the progress formatting helpers and of `ProgressReporter` in terminal
// and plain mode, with an injected clock and a captured output sink.

import Foundation
import Testing
import NudgeReport

/// A settable clock and an output recorder shared with the reporter under test.
private final class Harness: @unchecked Sendable {
    private let lock = NSLock()
    private var time = 0.0
    private var chunks: [String] = []

    var now: Double {
        get { lock.lock(); defer { lock.unlock() }; return time }
        set { lock.lock(); time = newValue; lock.unlock() }
    }

    /// Returns and clears what was written so far.
    func take() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        defer { chunks = [] }
        return chunks
    }

    func reporter(total: Int?, label: String, terminal: Bool) -> ProgressReporter {
        ProgressReporter(
            total: total, label: label,
            output: ProgressOutput(isTerminal: terminal) { text in
                self.lock.lock()
                self.chunks.append(text)
                self.lock.unlock()
            },
            barWidth: 10, clock: { self.now })
    }
}

@Test func formatDuration() {
    #expect(ProgressReporter.formatDuration(0) == "0s")
    #expect(ProgressReporter.formatDuration(59.4) == "59s")
    #expect(ProgressReporter.formatDuration(83) == "1m23s")
    #expect(ProgressReporter.formatDuration(600) == "10m00s")
    #expect(ProgressReporter.formatDuration(3600 + 125) == "1h02m05s")
    #expect(ProgressReporter.formatDuration(100 * 3600) == "100h00m00s")
    #expect(ProgressReporter.formatDuration(-1) == "?")
    #expect(ProgressReporter.formatDuration(.infinity) == "?")
}

@Test func formatRateAndMetricsAndBar() {
    #expect(ProgressReporter.formatRate(5) == "5.00 it/s")
    #expect(ProgressReporter.formatRate(12.345) == "12.3 it/s")
    #expect(ProgressReporter.formatRate(1234.4) == "1234 it/s")
    #expect(ProgressReporter.formatRate(45_678) == "45.7k it/s")
    #expect(ProgressReporter.formatRate(2.5e6, unit: "tok") == "2.5M tok/s")
    #expect(ProgressReporter.formatRate(0.4) == "2.50 s/it")
    #expect(ProgressReporter.formatRate(0) == "0.00 it/s")
    #expect(ProgressReporter.formatRate(.nan) == "? it/s")

    #expect(ProgressReporter.formatMetric(0.123456) == "0.1235")
    #expect(ProgressReporter.formatMetric(12345.6) == "1.235e+04")
    #expect(ProgressReporter.formatMetric(-2) == "-2")
    #expect(ProgressReporter.formatMetric(.nan) == "nan")

    #expect(ProgressReporter.renderBar(fraction: 0.5, width: 10) == "[#####-----]")
    #expect(ProgressReporter.renderBar(fraction: 0.99, width: 4) == "[###-]")
    #expect(ProgressReporter.renderBar(fraction: 1.5, width: 3) == "[###]")
    #expect(ProgressReporter.renderBar(fraction: -1, width: 3) == "[---]")
    #expect(ProgressReporter.renderBar(fraction: .nan, width: 2) == "[--]")
}

@Test func terminalModeRedrawsInPlaceAtMostEvery100ms() {
    let h = Harness()
    let progress = h.reporter(total: 100, label: "train", terminal: true)
    h.now = 1
    progress.update(completed: 10, metrics: [("loss", 0.5), ("charts/episodic_return", 123.456)])
    #expect(h.take() == [
        "\rtrain  [#---------]  10/100  10.0 it/s  ETA 9s  loss=0.5 charts/episodic_return=123.5\u{1B}[K"
    ])
    h.now = 1.05
    progress.update(completed: 20)
    #expect(h.take().isEmpty)
    h.now = 1.2
    progress.update(completed: 30)
    #expect(h.take() == [
        "\rtrain  [###-------]  30/100  25.0 it/s  ETA 3s  loss=0.5 charts/episodic_return=123.5\u{1B}[K"
    ])
    h.now = 2
    progress.update(completed: 40, metrics: [("loss", 0.25)])
    #expect(h.take() == ["\rtrain  [####------]  40/100  20.0 it/s  ETA 3s  loss=0.25\u{1B}[K"])
    h.now = 2.01
    progress.finish()
    #expect(h.take() == ["\rtrain  [####------]  40/100  19.9 it/s  elapsed 2s  loss=0.25\u{1B}[K", "\n"])
    progress.finish()
    progress.update(completed: 50)
    #expect(h.take().isEmpty)
}

@Test func plainModePrintsEveryIntervalAndAtFinish() {
    let h = Harness()
    let progress = h.reporter(total: 100, label: "train", terminal: false)
    h.now = 1
    progress.update(completed: 5, metrics: [("loss", 1)])
    #expect(h.take().isEmpty)
    h.now = 10
    progress.update(completed: 50)
    #expect(h.take() == ["train  50/100  50%  5.00 it/s  ETA 10s  loss=1\n"])
    h.now = 15
    progress.update(completed: 75)
    #expect(h.take().isEmpty)
    h.now = 20
    progress.update(completed: 100)
    progress.finish()
    #expect(h.take() == [
        "train  100/100  100%  5.00 it/s  ETA 0s  loss=1\n",
        "train  100/100  100%  5.00 it/s  elapsed 20s  loss=1\n",
    ])
}

@Test func unknownTotalShowsCountAndElapsed() {
    let h = Harness()
    let progress = h.reporter(total: nil, label: "gen", terminal: true)
    h.now = 4
    progress.update(completed: 2)
    #expect(h.take() == ["\rgen  2  2.00 s/it  elapsed 4s\u{1B}[K"])
    #expect(ProgressReporter.statusLine(
        label: "rl", completed: 7000, total: nil, done: 5000, elapsed: 100, metrics: [],
        barWidth: nil, finished: true) == "rl  7000  50.0 it/s  elapsed 1m40s")
}
