// RunDirectory.swift
//
// The directory a training run records itself into:
//
//     <run>/config.toml     resolved configuration, written atomically
//     <run>/metrics.jsonl   append-only, one JSON object per logged step (source of truth)
//     <run>/metrics.csv     the same rows as a table, kept in sync with the JSONL
//     <run>/checkpoints/    files named through `checkpointURL(name:)`
//     <run>/events.out.tfevents.*   the same scalars for TensorBoard (one file per process)
//
// Each JSONL line is written with one write() on an append-mode descriptor, so a
// process crash loses at most the line being written. The CSV is appended row by
// row while the set of metric names is stable; when a new name appears, it is
// rebuilt atomically from `metrics.jsonl` (columns: `step`, `wall_time`, then the
// sorted metric names). Opening a run to resume also rebuilds it.
//
// The TensorBoard events file is started on the first `log` of each `RunDirectory`
// (so resuming adds a new file, which TensorBoard reads after the old ones) and sits
// in the run's root, where `tensorboard --logdir` looks for one run per directory.
// `truncate(afterStep:)` appends a SessionLog START there, TensorBoard's signal to
// drop the steps being rolled back.

import Foundation
import NudgeConfig

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Errors raised by `RunDirectory`.
public enum RunDirectoryError: Error, CustomStringConvertible, Sendable {
    /// `create` with `.createNew` found an existing run (config.toml or metrics.jsonl).
    case alreadyExists(URL)
    /// The path exists and is not a directory.
    case notADirectory(URL)
    /// A metric name was empty, reserved (`step`, `wall_time`) or repeated in one step.
    case invalidMetricName(String)
    /// The run directory was closed.
    case closed
    /// The directory could not be created (the reason names the path and the system's error).
    case cannotCreate(URL, reason: String)
    /// Another process holds the run directory's lock (it is writing this run now).
    case locked(URL, holder: String)

    public var description: String {
        switch self {
        case .alreadyExists(let url): "run directory already holds a run: \(url.path)"
        case .notADirectory(let url): "not a directory: \(url.path)"
        case .invalidMetricName(let name): "invalid metric name: \"\(name)\""
        case .closed: "run directory is closed"
        case .cannotCreate(let url, let reason): "cannot create the run directory \(url.path): \(reason)"
        case .locked(let url, let holder):
            "\(url.path) is in use by another nudge process\(holder.isEmpty ? "" : " (\(holder))"); wait for it to finish, or choose another --output"
        }
    }
}

/// A run directory being written: config, metric logs and checkpoints. Thread-safe.
public final class RunDirectory: @unchecked Sendable {
    /// What `create` does when the directory already holds a run.
    public enum Mode: Sendable {
        /// Fail with `RunDirectoryError.alreadyExists`.
        case createNew
        /// Delete the previous run's config, metrics, TensorBoard events files and checkpoints,
        /// then start fresh.
        case overwrite
        /// Keep the metrics and append to them; `config.toml` is replaced by the new config.
        case resume
    }

    /// The run directory.
    public let url: URL
    /// `<run>/config.toml`.
    public var configURL: URL { url.appendingPathComponent("config.toml") }
    /// `<run>/metrics.jsonl`.
    public var metricsURL: URL { url.appendingPathComponent("metrics.jsonl") }
    /// `<run>/metrics.csv`.
    public var metricsCSVURL: URL { url.appendingPathComponent("metrics.csv") }
    /// `<run>/checkpoints/`.
    public var checkpointsURL: URL { url.appendingPathComponent("checkpoints", isDirectory: true) }

    private let lock = NSLock()
    private var jsonlFD: Int32 = -1
    /// `<run>/.lock`, held with flock for this object's lifetime (the kernel drops it when the process dies).
    private var lockFD: Int32 = -1
    private var csvFD: Int32 = -1
    private var csvColumns: [String] = []
    private var csvColumnSet: Set<String> = []
    /// wall_time = timeBase + (now - timeOrigin); on resume it continues from the last row.
    private var timeBase = 0.0
    private var timeOrigin = monotonicSeconds()
    /// Opened by the first `log` (not `create`), so a run that logs nothing leaves no events file.
    private var tensorBoard: TensorBoardWriter?

    private init(url: URL) { self.url = url }

    deinit {
        FileOps.close(jsonlFD)
        FileOps.close(csvFD)
        FileOps.close(lockFD)
    }

    /// Takes `<run>/.lock` exclusively, so two processes never write one run (the second would
    /// silently replace the first's files); a killed holder releases it with its descriptors.
    private func acquireLock() throws {
        let path = url.appendingPathComponent(".lock").path
        let fd = try FileOps.open(path, O_RDWR | O_CREAT)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            FileOps.close(fd)
            if code == EWOULDBLOCK { throw RunDirectoryError.locked(url, holder: holder) }
            throw FileIOError(operation: "flock", path: path, code: code)
        }
        _ = ftruncate(fd, 0)
        let text = "pid \(getpid())\n"
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        lockFD = fd
    }

    /// The TensorBoard events file this process writes, once the first step has been logged.
    public var tensorBoardEventsURL: URL? {
        lock.lock()
        defer { lock.unlock() }
        return tensorBoard?.fileURL
    }

    /// Creates (or reopens, per `mode`) the run directory at `url`, creating parent
    /// directories, writes `config` to `config.toml` and opens the metric logs.
    /// When resuming, a partial last JSONL line left by a crash is cut off and
    /// `wall_time` continues from the last logged row.
    public static func create(at url: URL, config: ConfigTable, mode: Mode = .createNew) throws -> RunDirectory {
        let run = RunDirectory(url: url)
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw RunDirectoryError.notADirectory(url)
        }
        let ownedFiles = [run.configURL, run.metricsURL, run.metricsCSVURL, run.checkpointsURL]
        do { try fm.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw RunDirectoryError.cannotCreate(url, reason: fileSystemMessage(error))
        }
        try run.acquireLock()
        switch mode {
        case .createNew:
            if fm.fileExists(atPath: run.configURL.path) || fm.fileExists(atPath: run.metricsURL.path) {
                throw RunDirectoryError.alreadyExists(url)
            }
        case .overwrite:
            for file in ownedFiles where fm.fileExists(atPath: file.path) { try fm.removeItem(at: file) }
            // Stale events files would otherwise show the old run's curves in TensorBoard.
            for file in try eventsFiles(in: url) { try fm.removeItem(at: file) }
        case .resume:
            break
        }
        try fm.createDirectory(at: run.checkpointsURL, withIntermediateDirectories: true)
        try AtomicFile.write(TOMLWriter.render(config), to: run.configURL)

        run.jsonlFD = try FileOps.openAppend(run.metricsURL.path)
        let data = try Data(contentsOf: run.metricsURL)
        if let last = data.last, last != UInt8(ascii: "\n") {
            let keep = data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 - data.startIndex } ?? 0
            try FileOps.truncate(run.jsonlFD, to: keep, path: run.metricsURL.path)
        }
        let rows = try MetricsLog.read(run.metricsURL)
        try run.rebuildCSV(rows)
        run.timeBase = rows.last?.wallTime ?? 0
        return run
    }

    /// Appends one step to `metrics.jsonl` and `metrics.csv` (`wall_time` is added), and to
    /// the TensorBoard events file (with the current Unix time as its wall time).
    public func log(step: Int, _ metrics: [(String, Double)]) throws {
        lock.lock()
        defer { lock.unlock() }
        guard jsonlFD >= 0 else { throw RunDirectoryError.closed }
        var seen = Set<String>()
        for (name, _) in metrics {
            guard !name.isEmpty, name != "step", name != "wall_time", seen.insert(name).inserted else {
                throw RunDirectoryError.invalidMetricName(name)
            }
        }
        let wallTime = ((timeBase + monotonicSeconds() - timeOrigin) * 1e6).rounded() / 1e6
        let line = MetricsLog.jsonLine(step: step, wallTime: wallTime, metrics: metrics)
        try FileOps.writeAll(jsonlFD, Data(line.utf8), path: metricsURL.path)

        if seen.isSubset(of: csvColumnSet) {
            let values = Dictionary(metrics, uniquingKeysWith: { a, _ in a })
            let row = MetricsLog.csvLine(step: step, wallTime: wallTime, values: values, columns: csvColumns)
            try FileOps.writeAll(csvFD, Data(row.utf8), path: metricsCSVURL.path)
        } else {
            try rebuildCSV(MetricsLog.read(metricsURL))
        }
        try openTensorBoard().add(step: step, scalars: metrics)
    }

    /// Appends one step (see `log(step:_:)`), e.g. `log(step: 3, ["losses/value_loss": 0.5])`.
    public func log(step: Int, _ metrics: KeyValuePairs<String, Double>) throws {
        try log(step: step, metrics.map { ($0.key, $0.value) })
    }

    /// The URL of the checkpoint file `name` inside `checkpoints/`.
    public func checkpointURL(name: String) -> URL {
        checkpointsURL.appendingPathComponent(name)
    }

    /// The rows logged so far, read back from `metrics.jsonl`.
    public func readMetrics() throws -> [MetricRow] {
        lock.lock()
        defer { lock.unlock() }
        return try MetricsLog.read(metricsURL)
    }

    /// Atomically drops every logged row with `step > step` (from both files), e.g. to
    /// resume from a checkpoint taken at `step`; later `wall_time`s continue from the
    /// last kept row.
    public func truncate(afterStep step: Int) throws {
        lock.lock()
        defer { lock.unlock() }
        guard jsonlFD >= 0 else { throw RunDirectoryError.closed }
        let records = try MetricsLog.records(in: Data(contentsOf: metricsURL), file: metricsURL.path)
            .filter { $0.row.step <= step }
        var kept = Data()
        for record in records {
            kept.append(record.line)
            kept.append(UInt8(ascii: "\n"))
        }
        try AtomicFile.write(kept, to: metricsURL)
        FileOps.close(jsonlFD)  // it refers to the replaced file
        jsonlFD = try FileOps.openAppend(metricsURL.path)
        try rebuildCSV(records.map(\.row))
        timeBase = records.last?.row.wallTime ?? 0
        timeOrigin = monotonicSeconds()
        // Events files cannot be cut in place; TensorBoard drops the events with step > `step`
        // when it reads this marker. Only needed when some events file already exists.
        let hasEvents = try tensorBoard != nil || !Self.eventsFiles(in: url).isEmpty
        if hasEvents { try openTensorBoard().addSessionStart(step: step + 1) }
    }

    /// Flushes both metric files to stable storage (fsync). Each logged line already
    /// survives a process crash without this; it guards against power loss.
    public func sync() throws {
        lock.lock()
        defer { lock.unlock() }
        guard jsonlFD >= 0 else { throw RunDirectoryError.closed }
        try FileOps.sync(jsonlFD, path: metricsURL.path)
        try FileOps.sync(csvFD, path: metricsCSVURL.path)
        try tensorBoard?.flush()
    }

    /// Closes the metric files and releases the lock; later `log` calls throw `RunDirectoryError.closed`.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        FileOps.close(jsonlFD)
        FileOps.close(csvFD)
        FileOps.close(lockFD)
        jsonlFD = -1
        csvFD = -1
        lockFD = -1
        tensorBoard?.close()
    }

    /// The TensorBoard writer, started on first use. Call with `lock` held.
    private func openTensorBoard() throws -> TensorBoardWriter {
        if let writer = tensorBoard { return writer }
        let writer = try TensorBoardWriter(directory: url)
        tensorBoard = writer
        return writer
    }

    /// The TensorBoard events files directly inside `directory`.
    private static func eventsFiles(in directory: URL) throws -> [URL] {
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("events.out.tfevents.") }
            .map { directory.appendingPathComponent($0) }
    }

    /// Rewrites `metrics.csv` atomically from `rows` and reopens it for appending.
    private func rebuildCSV(_ rows: [MetricRow]) throws {
        csvColumns = MetricsLog.sortedColumns(rows)
        csvColumnSet = Set(csvColumns)
        try AtomicFile.write(MetricsLog.csv(rows, columns: csvColumns), to: metricsCSVURL)
        FileOps.close(csvFD)
        csvFD = try FileOps.openAppend(metricsCSVURL.path)
    }
}
