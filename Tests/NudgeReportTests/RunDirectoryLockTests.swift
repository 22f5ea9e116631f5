// One process per run directory (a lock). (The malformed-TOML-header tests that lived here are in
// NudgeConfigTests/TOMLHeaderTests.swift.)

import Foundation
import Testing
@testable import NudgeReport

@Suite("Run directory lock") struct RunDirectoryLockTests {
    @Test func aSecondWriterIsRefusedUntilTheFirstCloses() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-lock-\(UUID().uuidString)")
        let first = try RunDirectory.create(at: url, config: [:], mode: .overwrite)
        try first.log(step: 1, [("loss", 1)])
        let error = try #require(throws: RunDirectoryError.self) {
            try RunDirectory.create(at: url, config: [:], mode: .overwrite)
        }
        #expect("\(error)".contains("in use by another nudge process") && "\(error)".contains("pid \(getpid())"))
        // The first run's metrics were not replaced.
        #expect(try first.readMetrics().count == 1)
        first.close()
        let second = try RunDirectory.create(at: url, config: [:], mode: .resume)
        #expect(try second.readMetrics().count == 1)
        second.close()
    }
}
