// The HTTP judge. Failure paths (timeout, HTTP 500 then success, bad JSON, unparseable replies, a
// refused connection, a missing key) run against scripts/judge_fault_server.py, a real HTTP server
// started per test that injects each fault. The live suite runs against a real OpenAI-compatible
// server serving a real model: llama-cpp-python's server with SmolLM2-135M-Instruct, which `.ci/run`
// starts and names in NUDGE_JUDGE_URL (NUDGE_JUDGE_MODEL: its model alias, default smollm2). Without
// it those tests are skipped and say so; with CI=true a missing server is a failure.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeConfig

/// scripts/judge_fault_server.py, running for one test.
final class FaultServer {
    let process = Process()
    let input = Pipe()
    let port: Int

    init() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("scripts/judge_fault_server.py").path]
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line += byte
        }
        port = try #require(Int(String(decoding: line, as: UTF8.self)))
    }

    func url(_ mode: String) -> String { "http://127.0.0.1:\(port)/\(mode)/v1" }

    var stats: [String: Any] {
        get throws {
            let data = try Data(contentsOf: URL(string: "http://127.0.0.1:\(port)/stats")!)
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
    }

    func requests(_ mode: String) throws -> Int { ((try stats["requests"] as? [String: Int]) ?? [:])[mode] ?? 0 }

    deinit {
        try? input.fileHandleForWriting.close()
        process.terminate()
        process.waitUntilExit()
    }
}

func judgePairs(_ n: Int, tag: String = "") -> [JudgePair] {
    (0..<n).map { k in
        JudgePair(first: RewardSample(prompt: "What is \(k) + \(k)?\(tag)", completion: "\(2 * k)"),
                  second: RewardSample(prompt: "What is \(k) + \(k)?\(tag)", completion: "\(2 * k + 1)"))
    }
}

@Suite("HTTP judge: fault injection") struct HTTPJudgeFaultTests {
    func judge(_ server: FaultServer, _ mode: String, _ configure: (inout HTTPJudgeConfig) -> Void = { _ in }) throws -> HTTPJudge {
        var config = HTTPJudgeConfig(baseURL: server.url(mode), model: "fault")
        config.backoff = 0.01
        config.maxBackoff = 0.05
        configure(&config)
        return try HTTPJudge(config)
    }

    @Test func answersMapBackThroughTheShuffledOrder() throws {
        let server = try FaultServer()
        // The server always answers "0", the completion shown first: unshuffled that is always the
        // first; shuffled, it is the first exactly where the pair was not flipped.
        let plain = try judge(server, "ok") { $0.shuffleOrder = false }.judge(judgePairs(16))
        #expect(plain == Array(repeating: .first, count: 16))
        let shuffled = try judge(server, "ok") { $0.seed = 5 }.judge(judgePairs(16))
        #expect(shuffled.contains(.first) && shuffled.contains(.second))
        let again = try judge(server, "ok") { $0.seed = 5 }.judge(judgePairs(16))
        #expect(again == shuffled, "the order comes from the seed and the pair")
    }

    @Test func anHTTP500IsRetriedThenTheAnswerIsUsed() throws {
        let server = try FaultServer()
        let j = try judge(server, "flaky") { $0.shuffleOrder = false }
        #expect(j.judge(judgePairs(1)) == [.second])
        #expect(try server.requests("flaky") == 2)
        #expect(j.statistics.retries == 1)
    }

    @Test func aTimeoutIsRetriedThenReportedWithItsRow() throws {
        let server = try FaultServer()
        let j = try judge(server, "slow") { $0.timeout = 0.5; $0.retries = 1 }
        let start = Date()
        let verdicts = j.judge(judgePairs(1))
        guard case .failed(let failure) = verdicts[0] else { Issue.record("a timed-out row got \(verdicts[0])"); return }
        #expect(failure.row == 0 && failure.reason.contains("timed out") && failure.reason.contains("2 attempts"), "\(failure)")
        #expect(Date().timeIntervalSince(start) < 2.9, "each attempt stops at the timeout, not the server's 3 s")
        // The judge's own count: under load the server may not have read the second request yet.
        #expect(j.statistics.requests == 2 && j.statistics.retries == 1)
        #expect(try server.requests("slow") >= 1)
    }

    @Test func badJSONAndUnparseableRepliesAreRetriedThenReported() throws {
        let server = try FaultServer()
        let bad = try judge(server, "badjson") { $0.retries = 2 }.judge(judgePairs(2))
        for (row, verdict) in bad.enumerated() {
            guard case .failed(let failure) = verdict else { Issue.record("bad JSON got \(verdict)"); continue }
            #expect(failure.row == row && failure.reason.contains("bad JSON") && failure.reason.contains("this is not json"), "\(failure)")
        }
        #expect(try server.requests("badjson") == 6)
        let words = try judge(server, "words") { $0.retries = 1 }.judge(judgePairs(1))
        guard case .failed(let failure) = words[0] else { Issue.record("a sentence was taken as a verdict"); return }
        #expect(failure.reason.contains("unparseable reply") && failure.reason.contains("Model 0 is better."), "\(failure)")
        let scores = try judge(server, "words") { $0.retries = 0 }.judge([RewardSample(prompt: "p", completion: "c")])
        #expect((try? scores[0].get()) == nil, "a sentence is not a score")
    }

    @Test func aRefusedConnectionIsAFailureNotAScore() throws {
        var config = HTTPJudgeConfig(baseURL: "http://127.0.0.1:1/v1", model: "none")
        config.retries = 1
        config.backoff = 0.01
        let verdicts = try HTTPJudge(config).judge(judgePairs(1))
        guard case .failed(let failure) = verdicts[0] else { Issue.record("a refused connection got \(verdicts[0])"); return }
        #expect(failure.reason.contains("connection") && failure.row == 0, "\(failure)")
    }

    @Test func theAPIKeyComesFromTheNamedVariableAnd4xxIsNotRetried() throws {
        let server = try FaultServer()
        setenv("NUDGE_TEST_JUDGE_KEY", "sekrit", 1)
        #expect(try judge(server, "auth") { $0.apiKeyEnvironmentVariable = "NUDGE_TEST_JUDGE_KEY"; $0.shuffleOrder = false }.judge(judgePairs(1)) == [.first])
        let unkeyed = try judge(server, "auth").judge(judgePairs(1, tag: "b"))
        guard case .failed(let failure) = unkeyed[0] else { Issue.record("a 401 got \(unkeyed[0])"); return }
        #expect(failure.reason.hasPrefix("HTTP 401"), "\(failure)")
        #expect(try server.requests("auth") == 2, "a 401 is not retried")
        #expect(throws: RunSetupError.self) { try judge(server, "auth") { $0.apiKeyEnvironmentVariable = "NUDGE_TEST_UNSET_VARIABLE_42" } }
    }

    @Test func theConcurrencyLimitHoldsAndTheDiskCacheAvoidsEveryRequest() throws {
        let server = try FaultServer()
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("judge-cache-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: cache) }
        let j = try judge(server, "concurrent") { $0.concurrency = 3; $0.cacheFile = cache }
        let first = j.judge(judgePairs(12))
        #expect(first.allSatisfy { $0 == .first || $0 == .second })
        #expect(j.statistics.peakInFlight == 3)
        #expect((try server.stats["max_in_flight"] as? Int).map { $0 >= 1 && $0 <= 3 } == true)
        #expect(try server.requests("concurrent") == 12)
        // A new judge (a resumed run) reads the file and asks nothing.
        let resumed = try judge(server, "concurrent") { $0.concurrency = 3; $0.cacheFile = cache }
        #expect(resumed.judge(judgePairs(12)) == first)
        #expect(resumed.statistics.requests == 0 && resumed.statistics.cacheHits == 12)
        #expect(try server.requests("concurrent") == 12)
    }

    @Test func pointwiseScoresAreParsedStrictly() throws {
        let server = try FaultServer()
        let scores = try judge(server, "score").judge([RewardSample(prompt: "p", completion: "c")])
        #expect((try? scores[0].get()) == 7)
    }

    @Test func theFactoryNamesTheMissingKey() throws {
        let schema = ConfigSchema(JudgeKeys.fields("eval", choices: ["none"] + JudgeKeys.kinds, default: "none"))
        let http = try schema.resolve(overrides: ["eval.judge=http"])
        #expect(throws: RunSetupError.self) { try JudgeKeys.pairwise(http, section: "eval", seed: 0) }
        do { _ = try JudgeKeys.pairwise(http, section: "eval", seed: 0) } catch { #expect("\(error)".contains("eval.judge_url")) }
        let badURL = try schema.resolve(overrides: ["eval.judge=http", "eval.judge_url=ftp://x", "eval.judge_model=m"])
        do { _ = try JudgeKeys.pairwise(badURL, section: "eval", seed: 0); Issue.record("ftp accepted") } catch {
            #expect("\(error)".contains("eval.judge_url"))
        }
        let gold = try JudgeKeys.pairwise(try schema.resolve(overrides: ["eval.judge=gold"]), section: "eval", seed: 0)
        guard case .verifiable(let content, let answer) = AlignRun.task(named: "addition")!.verifiableRows(count: 1, seed: 0)[0] else {
            Issue.record("not a verifiable row"); return
        }
        let prompt = content.plainText
        let a = RewardSample(prompt: prompt, completion: answer), b = RewardSample(prompt: prompt, completion: answer + "9")
        let verdicts: [PairwiseVerdict] = gold.judge([JudgePair(first: a, second: b), JudgePair(first: b, second: a)])
        #expect(verdicts == [.first, .second])
    }

    @Test func winRateCountsTiesHalfAndFailuresApart() {
        let failure = JudgeFailure(judge: "j", row: 4, reason: "HTTP 500")
        let w = WinRate([.first, .first, .second, .tie, .failed(failure)])
        #expect(w.wins == 2 && w.losses == 1 && w.ties == 1 && w.failures == [failure] && w.judged == 4)
        #expect(w.winRate == 0.625)
    }
}

enum LiveJudgeServer {
    static var url: String? { ProcessInfo.processInfo.environment["NUDGE_JUDGE_URL"].flatMap { $0.isEmpty ? nil : $0 } }
    static var model: String { ProcessInfo.processInfo.environment["NUDGE_JUDGE_MODEL"].flatMap { $0.isEmpty ? nil : $0 } ?? "smollm2" }
    static var inCI: Bool { ["true", "1"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "") }
}

@Suite("HTTP judge: a real llama.cpp server", .serialized) struct LiveHTTPJudgeTests {
    @Test func theServerIsThereInCI() {
        if LiveJudgeServer.url == nil {
            if LiveJudgeServer.inCI {
                Issue.record("CI=true but NUDGE_JUDGE_URL is not set (.ci/run starts llama-cpp-python's server with SmolLM2 and sets it)")
            } else {
                print("note: live judge tests skipped: set NUDGE_JUDGE_URL to an OpenAI-compatible server (e.g. python -m llama_cpp.server)")
            }
        }
    }

    func judge(concurrency: Int = 2, cache: URL? = nil, constrained: Bool) throws -> HTTPJudge {
        var config = HTTPJudgeConfig(baseURL: try #require(LiveJudgeServer.url), model: LiveJudgeServer.model)
        config.timeout = 120
        config.retries = 1
        config.concurrency = concurrency
        config.cacheFile = cache
        // llama.cpp's GBNF grammar keeps a 135M model's reply to one of the two identifiers.
        if constrained { config.extraBody = #"{"grammar": "root ::= [01]"}"# }
        return try HTTPJudge(config)
    }

    @Test(.enabled(if: LiveJudgeServer.url != nil, "set NUDGE_JUDGE_URL to run the live judge tests"))
    func realVerdictsComeBackParsedAndTheCacheAvoidsASecondRequest() throws {
        let j = try judge(constrained: true)
        let pairs = judgePairs(4, tag: " (live)")
        let verdicts = j.judge(pairs)
        #expect(verdicts.allSatisfy { $0 == .first || $0 == .second }, "\(verdicts)")
        #expect(j.statistics.requests == 4)
        #expect(j.judge(pairs) == verdicts)
        #expect(j.statistics.requests == 4 && j.statistics.cacheHits == 4)
    }

    @Test(.enabled(if: LiveJudgeServer.url != nil, "set NUDGE_JUDGE_URL to run the live judge tests"))
    func theConcurrencyLimitHoldsAgainstTheServer() throws {
        let j = try judge(concurrency: 3, constrained: true)
        let verdicts = j.judge(judgePairs(6, tag: " (concurrency)"))
        #expect(verdicts.allSatisfy { $0.preferredIndex != nil }, "\(verdicts)")
        #expect(j.statistics.peakInFlight == 3)
    }

    @Test(.enabled(if: LiveJudgeServer.url != nil, "set NUDGE_JUDGE_URL to run the live judge tests"))
    func anUnconstrainedReplyIsParsedStrictlyNeverGuessed() throws {
        // Without the grammar the model may answer in words: each row is a verdict only if the reply was
        // exactly "0" or "1", and otherwise a failure quoting the reply.
        let j = try judge(constrained: false)
        for verdict in j.judge(judgePairs(2, tag: " (free)")) {
            if case .failed(let failure) = verdict { #expect(failure.reason.contains("unparseable reply"), "\(failure)") }
        }
    }
}
