// The external reward command against a hostile user, with real processes: a timeout or a stop request
// ends the command's whole process group (background grandchildren included), a command that never
// reads a large input still meets the deadline, a chatty stderr cannot stall the call, the CLI's
// `/bin/sh -c` form handles quoting and paths with spaces, and a zero timeout is rejected.

import Foundation
import Testing
@testable import NudgeAlign
#if canImport(Glibc)
import Glibc
#endif

@Suite("External command reward: process groups, deadlines, interrupts") struct ExternalCommandRewardTests {
    func sample(_ completion: String) -> RewardSample {
        RewardSample(prompt: "q", completion: completion, answer: "42", completionIDs: [1, 2, 3])
    }

    /// A fresh temporary directory, with a space in its name.
    func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge reward \(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// An executable /bin/sh script in `directory`.
    func script(_ body: String, in directory: URL, named name: String = "verify.sh") throws -> String {
        // Written through a close-on-exec descriptor, so a process that other tests spawn meanwhile does
        // not keep it open for writing (executing it would then fail with ETXTBSY).
        let url = directory.appendingPathComponent(name)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        let text = Array(("#!/bin/sh\n" + body).utf8)
        guard text.withUnsafeBytes({ write(fd, $0.baseAddress!, $0.count) }) == text.count else { throw CocoaError(.fileWriteUnknown) }
        return url.path
    }

    /// The pids a script wrote, one a line.
    func pids(_ path: String) throws -> [pid_t] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { pid_t($0) }
    }

    /// Whether `pid` is gone: no such process, or a zombie (orphans are not always collected in containers).
    func gone(_ pid: pid_t) -> Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// Whether all of `pids` are gone within `seconds`.
    func goneWithin(_ seconds: Double, _ pids: [pid_t]) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if pids.allSatisfy(gone) { return true }
            usleep(10_000)
        }
        return pids.allSatisfy(gone)
    }

    @Test func timeoutKillsTheWholeProcessGroup() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pidFile = dir.appendingPathComponent("pids").path
        // A background grandchild, then the command itself sleeps past the deadline.
        let path = try script("sleep 30 &\necho $! > '\(pidFile)'\necho $$ >> '\(pidFile)'\nsleep 30\n", in: dir)
        let reward = try ExternalCommandReward(command: [path], timeout: 0.5)
        let start = Date()
        #expect { try reward.scores([sample("a")]) } throws: { "\($0)".contains("did not answer within 0.5 s") }
        #expect(Date().timeIntervalSince(start) < 2.5)
        let started = try pids(pidFile)
        #expect(started.count == 2)
        #expect(goneWithin(2, started))
    }

    @Test func shellFormHandlesSpacesAndQuotes() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try script("""
        [ "$#" -eq 1 ] && [ "$1" = "half a point" ] || { echo "bad arguments: $# '$1'" >&2; exit 9; }
        while IFS= read -r line; do echo 0.5; done
        """, in: dir, named: "my verifier.sh")
        // As the CLI builds it from grpo.reward_command.
        let line = "'\(path)' \"half a point\""
        let reward = try ExternalCommandReward(command: ["/bin/sh", "-c", line], timeout: 10)
        #expect(try reward.scores([sample("a"), sample("b")]) == [0.5, 0.5])
        #expect(reward.shown == line)
        // A missing program through the shell: sh's status 127 and its message.
        let missing = try ExternalCommandReward(command: ["/bin/sh", "-c", "'\(dir.path)/no such verifier' x"], timeout: 10)
        #expect { try missing.scores([sample("a")]) } throws: { "\($0)".contains("status 127") }
    }

    @Test func commandThatNeverReadsALargeInputMeetsTheDeadline() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let reward = try ExternalCommandReward(command: [try script("sleep 30\n", in: dir)], timeout: 0.5)
        let big = String(repeating: "x", count: 64 << 10)
        let samples = (0..<16).map { _ in sample(big) }  // over 1 MB of JSON lines
        let start = Date()
        #expect { try reward.scores(samples) } throws: { "\($0)".contains("did not answer within 0.5 s") }
        #expect(Date().timeIntervalSince(start) < 2.5)
    }

    @Test func stopRequestKillsTheGroupAndThrowsInterrupted() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pidFile = dir.appendingPathComponent("pids").path
        let path = try script("sleep 30 &\necho $! > '\(pidFile)'\necho $$ >> '\(pidFile)'\nsleep 30\n", in: dir)
        var reward = try ExternalCommandReward(command: [path], timeout: 20)
        let start = Date()
        reward.stopRequested = { Date().timeIntervalSince(start) > 0.3 }
        #expect(throws: RewardError.interrupted) { try reward.scores([sample("a")]) }
        #expect(Date().timeIntervalSince(start) < 0.3 + 0.5)
        let started = try pids(pidFile)
        #expect(started.count == 2)
        #expect(goneWithin(0.2, started))
    }

    @Test func chattyStderrAndLeftoverBackgroundProcess() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pidFile = dir.appendingPathComponent("pids").path
        // 1 MB on stderr before reading anything, a background process left holding stdout, then the answer.
        let path = try script("""
        head -c 1000000 /dev/zero | tr '\\0' e >&2
        sleep 30 &
        echo $! > '\(pidFile)'
        cat > /dev/null
        echo 1
        """, in: dir)
        let reward = try ExternalCommandReward(command: [path], timeout: 10)
        let start = Date()
        #expect(try reward.scores([sample("a")]) == [1])
        #expect(Date().timeIntervalSince(start) < 2)
        #expect(goneWithin(0.2, try pids(pidFile)))
    }

    @Test func invalidConfigurationIsRejected() {
        #expect(throws: RewardError.self) { try ExternalCommandReward(command: ["true"], timeout: 0) }
        #expect(throws: RewardError.self) { try ExternalCommandReward(command: ["true"], timeout: -1) }
        #expect(throws: RewardError.self) { try ExternalCommandReward(command: ["true"], timeout: .nan) }
        #expect(throws: RewardError.self) { try ExternalCommandReward(command: [], timeout: 1) }
        #expect(throws: RewardError.self) { try ExternalCommandReward(command: [""], timeout: 1) }
    }
}
