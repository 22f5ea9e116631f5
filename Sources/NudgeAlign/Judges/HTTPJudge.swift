// A judge behind an OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, llama.cpp's server,
// Ollama, hosted APIs), so labelling scales beyond this process. Pairwise it asks for "0" or "1"
// (TRL's OpenAIPairwiseJudge shape), pointwise for a score 1–10; replies are parsed strictly. Each
// request has a timeout and is retried with exponential backoff and seeded jitter on timeouts,
// connection errors, HTTP 429/5xx and unparseable replies; at most `concurrency` requests are in
// flight; answers are cached in memory and, optionally, in a JSONL file so a resumed run re-asks
// nothing. A row still without an answer after its retries is a failure naming the row and why.
//
// Foundation only (FoundationNetworking's URLSession on Linux); the public API is synchronous, as
// the judge protocols are: worker threads block on their own requests, never the caller's queue.

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How to reach and ask an OpenAI-compatible chat-completions judge.
public struct HTTPJudgeConfig: Sendable {
    /// The server's base URL: `http://host:port` or `http://host:port/v1` (both reach `/v1/chat/completions`).
    public var baseURL: String
    /// The `model` field of each request.
    public var model: String
    /// The environment variable holding the API key (sent as `Authorization: Bearer`); nil or empty: no key.
    public var apiKeyEnvironmentVariable: String?
    /// Seconds before one request counts as timed out.
    public var timeout: Double = 60
    /// Further attempts after a failed one (timeouts, connection errors, HTTP 429/5xx, unparseable replies).
    public var retries: Int = 3
    /// The first retry's backoff ceiling in seconds; it doubles per attempt up to `maxBackoff`, and the
    /// wait is drawn uniformly below it (full jitter).
    public var backoff: Double = 0.5
    public var maxBackoff: Double = 8
    /// Requests in flight at once.
    public var concurrency: Int = 4
    /// Seed of the pair order (position-bias shuffle) and of the backoff jitter.
    public var seed: UInt64 = 0
    /// Present each pair in a seeded random order and map the answer back (TRL's `shuffle_order`).
    public var shuffleOrder: Bool = true
    /// The pairwise prompt, with `{prompt}`, `{response0}`, `{response1}`; the reply must be "0" or "1".
    public var pairwiseTemplate: String = HTTPJudgeConfig.defaultPairwiseTemplate
    /// The pointwise prompt, with `{prompt}` and `{response}`; the reply must be an integer 1–10.
    public var pointwiseTemplate: String = HTTPJudgeConfig.defaultPointwiseTemplate
    /// Extra top-level request fields, as a JSON object (e.g. llama.cpp's `{"grammar": "root ::= [01]"}`
    /// or vLLM's `{"guided_choice": ["0", "1"]}` to constrain the reply); empty: none.
    public var extraBody: String = ""
    /// A JSONL file of cached answers, read at start and appended to; nil: memory only.
    public var cacheFile: URL?

    public init(baseURL: String, model: String, apiKeyEnvironmentVariable: String? = nil) {
        self.baseURL = baseURL
        self.model = model
        self.apiKeyEnvironmentVariable = apiKeyEnvironmentVariable
    }

    /// The default pairwise prompt: the instruction, the two outputs by identifier, and a one-character answer.
    public static let defaultPairwiseTemplate = """
        You are ranking the outputs of two language models for the same instruction. Pick the output a careful human \
        would prefer: correct, relevant and helpful.

        ## Instruction

        {prompt}

        ## Output of model 0

        {response0}

        ## Output of model 1

        {response1}

        ## Task

        Reply with the identifier of the better model, 0 or 1, and nothing else: one character, no quotation marks, \
        no spaces, no new lines.
        """

    /// The default pointwise prompt: the instruction, the output, and an integer score.
    public static let defaultPointwiseTemplate = """
        Rate the output of a language model for the instruction below on a scale from 1 (useless or wrong) to 10 \
        (correct, relevant and helpful).

        ## Instruction

        {prompt}

        ## Output

        {response}

        ## Task

        Reply with the score, an integer from 1 to 10, and nothing else.
        """
}

/// What an `HTTPJudge` did so far: requests sent, answers served from the cache, retries, the most in flight.
public struct HTTPJudgeStatistics: Sendable, Equatable {
    public var requests = 0
    public var cacheHits = 0
    public var retries = 0
    public var peakInFlight = 0
}

/// A pairwise and pointwise judge behind an OpenAI-compatible chat-completions endpoint.
public final class HTTPJudge: PairwiseJudge, PointwiseJudge, @unchecked Sendable {
    // @unchecked: every mutable member below is read and written only under `lock`.
    public let config: HTTPJudgeConfig
    public let name: String
    private let endpoint: URL
    private let apiKey: String?
    private let extra: [String: Any]
    private let session: URLSession
    private let lock = NSLock()
    private var cache: [String: String] = [:]
    private var stats = HTTPJudgeStatistics()
    private var inFlight = 0
    private var jitter: SplitMix64

    /// A judge for `config`; reads its cache file when there is one.
    ///
    /// - Throws: `RunSetupError` for a malformed URL, a named API-key variable that is unset, a bad
    ///   `extraBody`, a non-positive limit, or an unreadable cache file.
    public init(_ config: HTTPJudgeConfig) throws {
        self.config = config
        var base = config.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if !base.hasSuffix("/v1") { base += "/v1" }
        guard let url = URL(string: base + "/chat/completions"), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw RunSetupError("judge_url: expected an http(s) URL such as http://127.0.0.1:8080/v1, got '\(config.baseURL)'")
        }
        guard !config.model.isEmpty else { throw RunSetupError("judge_model: the model name the server expects is empty") }
        guard config.timeout > 0, config.retries >= 0, config.concurrency >= 1 else {
            throw RunSetupError("judge_timeout must be > 0, judge_retries ≥ 0 and judge_concurrency ≥ 1 (got \(config.timeout), \(config.retries), \(config.concurrency))")
        }
        endpoint = url
        name = "http:\(config.model)"
        if let variable = config.apiKeyEnvironmentVariable, !variable.isEmpty {
            guard let key = ProcessInfo.processInfo.environment[variable], !key.isEmpty else {
                throw RunSetupError("judge_api_key_env: the environment variable \(variable) is not set")
            }
            apiKey = key
        } else {
            apiKey = nil
        }
        if config.extraBody.trimmingCharacters(in: .whitespaces).isEmpty {
            extra = [:]
        } else {
            guard let object = try? JSONSerialization.jsonObject(with: Data(config.extraBody.utf8)) as? [String: Any] else {
                throw RunSetupError("judge_extra_body: expected a JSON object, got '\(config.extraBody)'")
            }
            extra = object
        }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = config.timeout
        configuration.timeoutIntervalForResource = config.timeout
        configuration.httpMaximumConnectionsPerHost = config.concurrency
        session = URLSession(configuration: configuration)
        jitter = SplitMix64(seed: config.seed ^ 0x6A75_6467_6521)
        if let file = config.cacheFile { try loadCache(file) }
    }

    deinit { session.invalidateAndCancel() }

    /// Requests, cache hits, retries and the most requests in flight so far.
    public var statistics: HTTPJudgeStatistics { lock.withLock { stats } }

    // MARK: Judging

    public func judge(_ pairs: [JudgePair]) -> [PairwiseVerdict] {
        let results = run(pairs.count) { row -> Result<PairwiseVerdict, JudgeFailure> in
            let pair = pairs[row]
            // The order each pair is shown in comes from the seed and the pair itself, so a resumed or
            // repeated run shows it the same way and finds its cached answer.
            let flipped = self.config.shuffleOrder && SplitMix64.first(seed: self.config.seed ^ fnv1a([pair.prompt, pair.first.completion, pair.second.completion])) & 1 == 1
            let (a, b) = flipped ? (pair.second.completion, pair.first.completion) : (pair.first.completion, pair.second.completion)
            let content = fillTemplate(self.config.pairwiseTemplate, ["prompt": pair.prompt, "response0": a, "response1": b])
            return self.ask(row: row, content: content, maxTokens: 1, cacheParts: ["pairwise", pair.prompt, a, b]) { reply in
                switch reply.trimmingCharacters(in: .whitespacesAndNewlines) {
                case "0": .some(flipped ? .second : .first)
                case "1": .some(flipped ? .first : .second)
                default: nil
                }
            }
        }
        return results.map { result in
            switch result {
            case .success(let verdict): verdict
            case .failure(let failure): .failed(failure)
            }
        }
    }

    public func judge(_ samples: [RewardSample]) -> [Result<Double, JudgeFailure>] {
        run(samples.count) { row in
            let sample = samples[row]
            let content = fillTemplate(self.config.pointwiseTemplate, ["prompt": sample.prompt, "response": sample.completion])
            return self.ask(row: row, content: content, maxTokens: 3, cacheParts: ["pointwise", sample.prompt, sample.completion]) { reply in
                guard let score = Int(reply.trimmingCharacters(in: .whitespacesAndNewlines)), (1...10).contains(score) else { return nil }
                return Double(score)
            }
        }
    }

    /// Runs `body` for rows 0..<count on `concurrency` worker threads, each taking the next row.
    private func run<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
        guard count > 0 else { return [] }
        let results = RowResults<T>(count: count)
        let group = DispatchGroup()
        for _ in 0..<min(config.concurrency, count) {
            group.enter()
            let thread = Thread {
                while let row = results.claim() { results.set(row, body(row)) }
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        return results.values
    }

    /// One row's answer: from the cache, else asked with retries; `parse` returns nil for a reply it rejects.
    private func ask<T>(row: Int, content: String, maxTokens: Int, cacheParts: [String], parse: (String) -> T?) -> Result<T, JudgeFailure> {
        let key = cacheKey(cacheParts)
        if let cached = lock.withLock({ cache[key] }), let value = parse(cached) {
            lock.withLock { stats.cacheHits += 1 }
            return .success(value)
        }
        var lastReason = ""
        for attempt in 0...config.retries {
            if attempt > 0 {
                let ceiling = min(config.maxBackoff, config.backoff * pow(2, Double(attempt - 1)))
                let wait = lock.withLock { () -> Double in
                    stats.retries += 1
                    return ceiling * Double(jitter.next() >> 11) / Double(1 << 53)
                }
                Thread.sleep(forTimeInterval: wait)
            }
            switch send(content: content, maxTokens: maxTokens) {
            case .success(let reply):
                if let value = parse(reply) {
                    store(key, reply)
                    return .success(value)
                }
                lastReason = "unparseable reply \(String(reply.prefix(200)).debugDescription)"
            case .failure(let failure):
                lastReason = failure.reason
                guard failure.retryable else { return .failure(JudgeFailure(judge: name, row: row, reason: lastReason)) }
            }
        }
        let attempts = config.retries + 1
        return .failure(JudgeFailure(judge: name, row: row, reason: "\(lastReason) (after \(attempts) attempt\(attempts == 1 ? "" : "s"))"))
    }

    private struct SendFailure: Error {
        var reason: String
        var retryable: Bool
    }

    /// One chat-completions request: the reply's `choices[0].message.content`, or why there is none.
    private func send(content: String, maxTokens: Int) -> Result<String, SendFailure> {
        var body: [String: Any] = [
            "model": config.model,
            "messages": [["role": "user", "content": content]],
            "max_tokens": maxTokens,
            "temperature": 0,
        ]
        for (k, v) in extra { body[k] = v }
        var request = URLRequest(url: endpoint, timeoutInterval: config.timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let apiKey { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        do {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        } catch {
            return .failure(SendFailure(reason: "could not encode the request: \(error)", retryable: false))
        }
        lock.withLock {
            stats.requests += 1
            inFlight += 1
            stats.peakInFlight = max(stats.peakInFlight, inFlight)
        }
        defer { lock.withLock { inFlight -= 1 } }
        let done = DispatchSemaphore(value: 0)
        let response = ResponseBox()
        let task = session.dataTask(with: request) { data, urlResponse, error in
            response.set(data, urlResponse as? HTTPURLResponse, error)
            done.signal()
        }
        task.resume()
        // The session's timeout should fire first; this bounds a request the transport never ends.
        if done.wait(timeout: .now() + config.timeout + 5) == .timedOut {
            task.cancel()
            return .failure(SendFailure(reason: "timed out after \(config.timeout) s", retryable: true))
        }
        let (data, http, error) = response.get()
        if let error {
            let code = (error as? URLError)?.code
            let reason = code == .timedOut ? "timed out after \(config.timeout) s"
                : code == .cannotConnectToHost ? "connection refused (\(endpoint.absoluteString))"
                : "connection error: \(error.localizedDescription)"
            return .failure(SendFailure(reason: reason, retryable: true))
        }
        guard let http else { return .failure(SendFailure(reason: "no HTTP response", retryable: true)) }
        let text = String(decoding: (data ?? Data()).prefix(300), as: UTF8.self)
        guard http.statusCode == 200 else {
            let retryable = http.statusCode == 429 || http.statusCode >= 500
            return .failure(SendFailure(reason: "HTTP \(http.statusCode): \(text)", retryable: retryable))
        }
        guard let data, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let choices = object["choices"] as? [[String: Any]], let message = choices.first?["message"] as? [String: Any],
              let reply = message["content"] as? String else {
            return .failure(SendFailure(reason: "bad JSON from the server (no choices[0].message.content): \(text.debugDescription)", retryable: true))
        }
        return .success(reply)
    }

    // MARK: Cache

    private func cacheKey(_ parts: [String]) -> String {
        let template = parts.first == "pairwise" ? config.pairwiseTemplate : config.pointwiseTemplate
        let all = [endpoint.absoluteString, config.model, String(fnv1a([template, config.extraBody]), radix: 16)] + parts
        let data = (try? JSONSerialization.data(withJSONObject: all)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private func store(_ key: String, _ reply: String) {
        lock.withLock {
            cache[key] = reply
            guard let file = config.cacheFile,
                  let line = try? JSONSerialization.data(withJSONObject: ["key": key, "reply": reply], options: [.sortedKeys]) else { return }
            if !FileManager.default.fileExists(atPath: file.path) {
                FileManager.default.createFile(atPath: file.path, contents: nil)
            }
            guard let handle = try? FileHandle(forWritingTo: file) else { return }
            defer { try? handle.close() }
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: line + Data("\n".utf8))
        }
    }

    private func loadCache(_ file: URL) throws {
        guard FileManager.default.fileExists(atPath: file.path) else { return }
        let data: Data
        do { data = try Data(contentsOf: file) } catch { throw RunSetupError("\(file.path): cannot read the judge cache: \(error.localizedDescription)") }
        // A line cut short by a crash is skipped: its row is asked again.
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: String],
                  let key = object["key"], let reply = object["reply"] else { continue }
            cache[key] = reply
        }
    }
}

/// One result slot per row, and the next row to claim, shared by the worker threads.
private final class RowResults<T>: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var slots: [T?]
    private var next = 0

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func claim() -> Int? {
        lock.withLock {
            guard next < slots.count else { return nil }
            defer { next += 1 }
            return next
        }
    }

    func set(_ row: Int, _ value: T) { lock.withLock { slots[row] = value } }

    var values: [T] { lock.withLock { slots.map { $0! } } }
}

/// A URLSession completion's three values, handed from its callback thread to the waiting one.
private final class ResponseBox: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var value: (Data?, HTTPURLResponse?, Error?) = (nil, nil, nil)
    func set(_ data: Data?, _ response: HTTPURLResponse?, _ error: Error?) { lock.withLock { value = (data, response, error) } }
    func get() -> (Data?, HTTPURLResponse?, Error?) { lock.withLock { value } }
}

/// SplitMix64: a small seeded generator for the pair order and the backoff jitter.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    /// The first draw of a generator seeded with `seed`.
    static func first(seed: UInt64) -> UInt64 {
        var g = SplitMix64(seed: seed)
        return g.next()
    }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// FNV-1a (64-bit) over the strings, each followed by a 0 byte so ("ab", "c") and ("a", "bc") differ.
func fnv1a(_ parts: [String]) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for part in parts {
        for byte in part.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        hash = (hash ^ 0) &* 0x100_0000_01B3
    }
    return hash
}
