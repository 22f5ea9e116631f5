// RunDirectoryTests.swift
//
// Tests of the run directory: config.toml, metrics.jsonl/metrics.csv contents,
// crash tolerance, resume, truncation and atomic writes. Each test uses its own
// temporary directory.

import Foundation
import Testing
@testable import NudgeReport

private func temporaryRunURL() -> URL {
    FileManager.default.temporaryDirectory
        .appendingPathComponent("nudge-report-tests-\(UUID().uuidString)", isDirectory: true)
        .appendingPathComponent("nested/run", isDirectory: true)
}

private func jsonlLines(_ run: RunDirectory) throws -> [[String: Any]] {
    let text = try String(contentsOf: run.metricsURL, encoding: .utf8)
    #expect(text.hasSuffix("\n"))
    return try text.split(separator: "\n").map {
        try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
}

@Test func createsLayoutAndConfig() throws {
    let url = temporaryRunURL()
    let run = try RunDirectory.create(at: url, config: ["seed": 1, "ppo": ["clip": 0.2]])
    #expect(try String(contentsOf: run.configURL, encoding: .utf8) == "seed = 1\n\n[ppo]\nclip = 0.2\n")
    #expect(FileManager.default.fileExists(atPath: run.checkpointsURL.path))
    #expect(run.checkpointURL(name: "step-100.safetensors").path
        == url.appendingPathComponent("checkpoints/step-100.safetensors").path)
    #expect(try String(contentsOf: run.metricsCSVURL, encoding: .utf8) == "step,wall_time\n")
    #expect(try run.readMetrics().isEmpty)
    #expect(throws: RunDirectoryError.self) { try RunDirectory.create(at: url, config: [:]) }
}

@Test func metricsJSONLLinesParseBack() throws {
    let run = try RunDirectory.create(at: temporaryRunURL(), config: [:])
    try run.log(step: 0, ["charts/episodic_return": 12.5, "losses/value_loss": 0.25])
    try run.log(step: 128, [("losses/value_loss", .nan), ("quote\"d\n", .infinity)])
    let lines = try jsonlLines(run)
    #expect(lines.count == 2)
    #expect(lines[0]["step"] as? Int == 0)
    #expect((lines[0]["wall_time"] as? Double).map { $0 >= 0 } == true)
    #expect(lines[0]["charts/episodic_return"] as? Double == 12.5)
    #expect(lines[0]["losses/value_loss"] as? Double == 0.25)
    #expect(lines[1]["step"] as? Int == 128)
    #expect(lines[1]["losses/value_loss"] is NSNull)
    #expect(lines[1]["quote\"d\n"] is NSNull)

    let rows = try run.readMetrics()
    #expect(rows.map(\.step) == [0, 128])
    #expect(rows[0].values == ["charts/episodic_return": 12.5, "losses/value_loss": 0.25])
    #expect(rows[1].values["losses/value_loss"]?.isNaN == true)
    #expect(rows[1].wallTime >= rows[0].wallTime)
}

@Test func rejectsInvalidMetricNamesAndClosedRuns() throws {
    let run = try RunDirectory.create(at: temporaryRunURL(), config: [:])
    #expect(throws: RunDirectoryError.self) { try run.log(step: 1, ["step": 1]) }
    #expect(throws: RunDirectoryError.self) { try run.log(step: 1, [("a", 1), ("a", 2)]) }
    #expect(throws: RunDirectoryError.self) { try run.log(step: 1, ["": 1]) }
    run.close()
    #expect(throws: RunDirectoryError.self) { try run.log(step: 1, ["a": 1]) }
    #expect(try run.readMetrics().isEmpty)
}

@Test func csvHeaderIsUnionAndEscaped() throws {
    let run = try RunDirectory.create(at: temporaryRunURL(), config: [:])
    try run.log(step: 1, ["b": 1])
    try run.log(step: 2, ["b": 2])
    try run.log(step: 3, ["a,x": 3, "b": 4])
    try run.log(step: 4, ["say \"q\"": -0.5])
    let csv = try String(contentsOf: run.metricsCSVURL, encoding: .utf8)
    #expect(csv.split(separator: "\n").first == "step,wall_time,\"a,x\",b,\"say \"\"q\"\"\"")
    #expect(csv.split(separator: "\n").count == 5)
    // Appended rows and a rebuild from metrics.jsonl agree exactly.
    #expect(csv == MetricsLog.csv(try run.readMetrics()))
    try run.log(step: 5, ["b": 5])
    #expect(try String(contentsOf: run.metricsCSVURL, encoding: .utf8)
        == MetricsLog.csv(try run.readMetrics()))
}

@Test func csvRenderingIsExact() {
    let rows = [
        MetricRow(step: 1, wallTime: 0.5, values: ["loss": 2, "z": .nan]),
        MetricRow(step: 2, wallTime: 1, values: ["acc,top1": 0.25]),
    ]
    #expect(MetricsLog.csv(rows) == """
        step,wall_time,"acc,top1",loss,z
        1,0.5,,2.0,nan
        2,1.0,0.25,,

        """)
    #expect(MetricsLog.csv([], columns: ["x"]) == "step,wall_time,x\n")
}

@Test func truncatedLastLineIsSkippedAndRepairedOnResume() throws {
    let url = temporaryRunURL()
    let run = try RunDirectory.create(at: url, config: ["seed": 1])
    for step in 1...3 { try run.log(step: step, ["loss": Double(step)]) }
    run.close()
    // Simulate a crash in the middle of writing step 4.
    let handle = try FileHandle(forWritingTo: run.metricsURL)
    try handle.seekToEnd()
    try handle.write(contentsOf: Data("{\"step\":4,\"wall_ti".utf8))
    try handle.close()

    #expect(try MetricsLog.read(run.metricsURL).map(\.step) == [1, 2, 3])

    let resumed = try RunDirectory.create(at: url, config: ["seed": 2], mode: .resume)
    try resumed.log(step: 4, ["loss": 4])
    let rows = try resumed.readMetrics()
    #expect(rows.map(\.step) == [1, 2, 3, 4])
    #expect(rows[3].wallTime >= rows[2].wallTime)
    #expect(try jsonlLines(resumed).count == 4)
    #expect(try String(contentsOf: resumed.configURL, encoding: .utf8) == "seed = 2\n")
    #expect(try String(contentsOf: resumed.metricsCSVURL, encoding: .utf8).split(separator: "\n").count == 5)
}

@Test func malformedMiddleLineNamesFileAndLine() throws {
    let dir = temporaryRunURL()
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent("metrics.jsonl")
    try Data("{\"step\":1,\"wall_time\":0.1}\n\nnot json\n{\"step\":2,\"wall_time\":0.2}\n".utf8).write(to: url)
    do {
        _ = try MetricsLog.read(url)
        Issue.record("expected an error")
    } catch let error as MetricsLogError {
        #expect(error.line == 3)
        #expect(error.file == url.path)
        #expect(error.description.hasPrefix("\(url.path):3: "))
    }
    // A complete last line without its newline is still accepted.
    try Data("{\"step\":1,\"wall_time\":0.1,\"x\":null}".utf8).write(to: url)
    #expect(try MetricsLog.read(url).map(\.step) == [1])
    try Data("{\"wall_time\":0.1}\n".utf8).write(to: url)
    #expect(throws: MetricsLogError.self) { try MetricsLog.read(url) }
}

@Test func truncateAfterStepDropsLaterRows() throws {
    let run = try RunDirectory.create(at: temporaryRunURL(), config: [:])
    for step in 1...5 { try run.log(step: step, [("loss", Double(step)), ("step\(step)", 1)]) }
    try run.truncate(afterStep: 2)
    #expect(try run.readMetrics().map(\.step) == [1, 2])
    let csv = try String(contentsOf: run.metricsCSVURL, encoding: .utf8)
    #expect(csv.split(separator: "\n").first == "step,wall_time,loss,step1,step2")
    #expect(csv == MetricsLog.csv(try run.readMetrics()))
    try run.log(step: 3, ["loss": 30])
    let rows = try run.readMetrics()
    #expect(rows.map(\.step) == [1, 2, 3])
    #expect(rows[2].values == ["loss": 30])
    #expect(rows[2].wallTime >= rows[1].wallTime)
    #expect(try jsonlLines(run).count == 3)
    try run.sync()
}

@Test func overwriteStartsFresh() throws {
    let url = temporaryRunURL()
    let first = try RunDirectory.create(at: url, config: ["a": 1])
    try first.log(step: 1, ["x": 1])
    try AtomicFile.write(Data([1, 2, 3]), to: first.checkpointURL(name: "ckpt"))
    first.close()
    let second = try RunDirectory.create(at: url, config: ["a": 2], mode: .overwrite)
    #expect(try second.readMetrics().isEmpty)
    #expect(!FileManager.default.fileExists(atPath: second.checkpointURL(name: "ckpt").path))
    #expect(FileManager.default.fileExists(atPath: second.checkpointsURL.path))
}

@Test func atomicWriteReplacesAndLeavesNoTemporaryFiles() throws {
    let dir = temporaryRunURL()
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent("state.bin")
    try AtomicFile.write(Data(repeating: 7, count: 100_000), to: url)
    try AtomicFile.write("short", to: url)
    #expect(try String(contentsOf: url, encoding: .utf8) == "short")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["state.bin"])
    // A failing write (missing directory) throws and leaves nothing behind.
    let missing = dir.appendingPathComponent("missing/file")
    #expect(throws: FileIOError.self) { try AtomicFile.write("x", to: missing) }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["state.bin"])
}
