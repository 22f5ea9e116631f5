// ProgressReporter.swift
//
// Console progress for training loops. On an interactive terminal it redraws one
// line in place (`\r`, at most every `redrawInterval`):
//
//     train [######--------------]  300/1000  12.3 it/s  ETA 56s  loss=0.1234
//
// Elsewhere (logs, CI) it prints a plain line every `plainInterval` seconds and
// when finished. Output goes only to the injected `ProgressOutput`; the clock is
// injectable too, so tests are deterministic. The formatting helpers are public.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

private let processClockOrigin = ContinuousClock.now

/// Seconds on a monotonic clock (arbitrary origin).
func monotonicSeconds() -> Double {
    let elapsed = ContinuousClock.now - processClockOrigin
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// Where a `ProgressReporter` writes, and whether that is an interactive terminal.
public struct ProgressOutput: Sendable {
    /// Whether to redraw one line in place (`true`) or print plain periodic lines.
    public var isTerminal: Bool
    /// Receives the text to output, verbatim.
    public var write: @Sendable (String) -> Void

    /// An output sink; `write` receives the exact text (including `\r` and `\n`).
    public init(isTerminal: Bool, write: @escaping @Sendable (String) -> Void) {
        self.isTerminal = isTerminal
        self.write = write
    }

    /// Standard error; interactive when it is a TTY and `TERM` is not `dumb`.
    public static var standardError: ProgressOutput {
        let tty = isatty(STDERR_FILENO) != 0 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        return ProgressOutput(isTerminal: tty) { text in
            FileHandle.standardError.write(Data(text.utf8))
        }
    }
}

/// Reports the progress of a loop with a known or unknown number of items. Thread-safe.
public final class ProgressReporter: @unchecked Sendable {
    /// Total number of items, if known.
    public let total: Int?
    /// Text shown at the start of each line.
    public let label: String

    private let output: ProgressOutput
    private let clock: @Sendable () -> Double
    private let plainInterval: Double
    private let redrawInterval: Double
    private let barWidth: Int
    private let initialCompleted: Int
    private let startTime: Double
    private let lock = NSLock()
    private var completed: Int
    private var metrics: [(String, Double)] = []
    private var lastOutput: Double?
    private var finished = false

    /// A reporter for `total` items (nil if unknown) writing to `output`.
    /// - Parameters:
    ///   - initialCompleted: items already done when starting (e.g. on resume); excluded from the rate.
    ///   - plainInterval: seconds between lines when `output` is not a terminal.
    ///   - redrawInterval: minimum seconds between terminal redraws.
    ///   - barWidth: characters inside the terminal bar.
    ///   - clock: current time in seconds (monotonic); defaults to the system's monotonic clock.
    public init(
        total: Int?, label: String, output: ProgressOutput = .standardError,
        initialCompleted: Int = 0, plainInterval: Double = 10, redrawInterval: Double = 0.1,
        barWidth: Int = 20, clock: (@Sendable () -> Double)? = nil
    ) {
        self.total = total
        self.label = label
        self.output = output
        self.clock = clock ?? { monotonicSeconds() }
        self.plainInterval = plainInterval
        self.redrawInterval = redrawInterval
        self.barWidth = barWidth
        self.initialCompleted = initialCompleted
        self.completed = initialCompleted
        self.startTime = self.clock()
        if !output.isTerminal { lastOutput = startTime }
    }

    /// Records that `completed` items are done, with the latest `metrics` to show
    /// (an empty list keeps the previous ones); outputs a line when one is due.
    public func update(completed: Int, metrics: [(String, Double)] = []) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        self.completed = completed
        if !metrics.isEmpty { self.metrics = metrics }
        let now = clock()
        let interval = output.isTerminal ? redrawInterval : plainInterval
        if let last = lastOutput, now - last < interval { return }
        lastOutput = now
        emit(now: now)
    }

    /// Outputs the final line (total elapsed time instead of ETA); later calls do nothing.
    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        emit(now: clock())
        if output.isTerminal { output.write("\n") }
    }

    private func emit(now: Double) {
        let line = Self.statusLine(
            label: label, completed: completed, total: total,
            done: completed - initialCompleted, elapsed: now - startTime, metrics: metrics,
            barWidth: output.isTerminal ? barWidth : nil, finished: finished)
        output.write(output.isTerminal ? "\r" + line + "\u{1B}[K" : line + "\n")
    }

    /// One status line: label, bar (when `barWidth` is given and the total known),
    /// counts, rate, ETA (or elapsed time once finished or with no total) and metrics.
    public static func statusLine(
        label: String, completed: Int, total: Int?, done: Int, elapsed: Double,
        metrics: [(String, Double)], barWidth: Int?, finished: Bool
    ) -> String {
        var parts = [label]
        let rate = elapsed > 0 ? Double(done) / elapsed : .nan
        if let total {
            let fraction = total > 0 ? Double(completed) / Double(total) : 1
            if let barWidth { parts.append(renderBar(fraction: fraction, width: barWidth)) }
            parts.append("\(completed)/\(total)")
            if barWidth == nil { parts.append("\(Int((fraction * 100).rounded(.down)))%") }
        } else {
            parts.append("\(completed)")
        }
        parts.append(formatRate(rate))
        if !finished, let total, rate > 0 {
            parts.append("ETA " + formatDuration(Double(max(total - completed, 0)) / rate))
        } else {
            parts.append("elapsed " + formatDuration(elapsed))
        }
        if !metrics.isEmpty {
            parts.append(metrics.map { "\($0.0)=\(formatMetric($0.1))" }.joined(separator: " "))
        }
        return parts.joined(separator: "  ")
    }

    /// `seconds` as `45s`, `1m23s` or `2h05m09s` (rounded); `?` when negative or non-finite.
    public static func formatDuration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0, seconds < 1e15 else { return "?" }
        let total = Int(seconds.rounded())
        let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if h > 0 { return "\(h)h\(two(m))m\(two(s))s" }
        if m > 0 { return "\(m)m\(two(s))s" }
        return "\(s)s"
    }

    /// A rate as `123 it/s`, `45.7k it/s`, or `2.50 s/it` below one item per second;
    /// `? it/s` when unknown.
    public static func formatRate(_ itemsPerSecond: Double, unit: String = "it") -> String {
        guard itemsPerSecond.isFinite, itemsPerSecond >= 0 else { return "? \(unit)/s" }
        if itemsPerSecond > 0, itemsPerSecond < 1 { return compact(1 / itemsPerSecond) + " s/\(unit)" }
        return compact(itemsPerSecond) + " \(unit)/s"
    }

    /// `[#####-----]`: `width` characters filled in proportion to `fraction` (clamped to 0...1).
    public static func renderBar(fraction: Double, width: Int) -> String {
        let f = fraction.isNaN ? 0 : min(max(fraction, 0), 1)
        let filled = Int((f * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }

    /// A metric value to 4 significant digits, e.g. `0.1234`, `1235`, `1.235e+04`.
    public static func formatMetric(_ value: Double) -> String {
        String(format: "%.4g", value)
    }

    private static func compact(_ x: Double) -> String {
        switch x {
        case ..<10: String(format: "%.2f", x)
        case ..<100: String(format: "%.1f", x)
        case ..<10_000: String(format: "%.0f", x)
        case ..<1e6: String(format: "%.1fk", x / 1e3)
        default: String(format: "%.1fM", x / 1e6)
        }
    }
}
