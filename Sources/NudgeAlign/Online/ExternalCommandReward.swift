// A reward computed by another program, so a Python (or any) verifier plugs in. Each scoring call
// starts the command, writes one JSON object per sample to its standard input
// ({"prompt", "completion", "answer", "completion_tokens", "finish_reason"}), closes it, and reads one
// line per sample from its standard output: a number, null (does not apply), or {"reward": number|null}.
// The whole call has a deadline: past it the process is killed and training gets an error, so a stuck
// verifier never hangs a run. A wrong line count, an unparseable line or a nonzero exit is an error
// that quotes the command, the line and the tail of its standard error.

import Foundation

/// A reward function that runs an external command speaking JSON lines.
public struct ExternalCommandReward: RewardFunction {
    public var name: String
    /// The program and its arguments (the program is looked up on PATH when it has no slash).
    public var command: [String]
    /// Seconds allowed for one scoring call.
    public var timeout: Double

    public init(command: [String], name: String = "external", timeout: Double = 30) {
        precondition(!command.isEmpty, "ExternalCommandReward: empty command")
        self.command = command
        self.name = name
        self.timeout = timeout
    }

    public func scores(_ samples: [RewardSample]) throws -> [Double?] {
        let input = try samples.map { s -> Data in
            var object: [String: Any] = ["prompt": s.prompt, "completion": s.completion, "completion_tokens": s.completionIDs.count,
                                         "finish_reason": s.finishReason.rawValue]
            object["answer"] = s.answer ?? NSNull()
            var line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            line.append(0x0A)
            return line
        }.reduce(into: Data()) { $0.append($1) }
        let (status, output, errors) = try run(input: input)
        let shown = command.joined(separator: " ")
        let errorTail = String(decoding: errors.suffix(500), as: UTF8.self)
        guard status == 0 else {
            throw RewardError.command("reward command '\(shown)' exited with status \(status)\(errorTail.isEmpty ? "" : ": \(errorTail)")")
        }
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count == samples.count else {
            throw RewardError.command("reward command '\(shown)' answered \(lines.count) lines for \(samples.count) samples")
        }
        return try lines.enumerated().map { i, line in
            guard let value = Self.parse(String(line)) else {
                throw RewardError.command("reward command '\(shown)', output line \(i + 1): expected a number, null or {\"reward\": …}, got '\(line.prefix(200))'")
            }
            return value
        }
    }

    /// A line's reward: .some(nil) for null, nil when the line is not a valid answer.
    static func parse(_ line: String) -> Double?? {
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(line.utf8)) else { return nil }
        return .some(answer.reward)
    }

    /// A number, null, or {"reward": number|null}; booleans and strings are rejected.
    struct Answer: Decodable {
        var reward: Double?
        enum Keys: String, CodingKey { case reward }

        init(from decoder: any Decoder) throws {
            if let single = try? decoder.singleValueContainer() {
                if single.decodeNil() { reward = nil; return }
                if let value = try? single.decode(Double.self) { reward = value; return }
            }
            let keyed = try decoder.container(keyedBy: Keys.self)
            guard keyed.contains(.reward) else {
                throw DecodingError.keyNotFound(Keys.reward, .init(codingPath: [], debugDescription: "no reward"))
            }
            reward = try keyed.decodeIfPresent(Double.self, forKey: .reward)
        }
    }

    /// Runs the command with `input` on stdin; returns the exit status, stdout and stderr.
    func run(input: Data) throws -> (Int32, Data, Data) {
        let process = Process()
        if command[0].contains("/") {
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = command
        }
        // A verifier that exits without reading its input would otherwise kill this whole process with
        // SIGPIPE on our next write; ignored, the write fails with EPIPE and the exit status is reported.
        signal(SIGPIPE, SIG_IGN)
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        let shown = command.joined(separator: " ")
        do { try process.run() } catch {
            throw RewardError.command("reward command '\(shown)' could not start: \(error.localizedDescription)")
        }
        // Writing and reading happen on their own threads, so a verifier that answers before it has read
        // everything (or never reads) cannot deadlock us; the deadline covers all of it.
        let collected = Collected()
        let group = DispatchGroup()
        let writer = stdin.fileHandleForWriting, outReader = stdout.fileHandleForReading, errReader = stderr.fileHandleForReading
        group.enter()
        DispatchQueue.global().async {
            // A child that exits early makes this write fail (EPIPE); that is reported through its status.
            try? writer.write(contentsOf: input)
            try? writer.close()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            let data = outReader.readDataToEndOfFile()
            collected.set(output: data)
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            let data = errReader.readDataToEndOfFile()
            collected.set(errors: data)
            group.leave()
        }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            _ = group.wait(timeout: .now() + 2)
            throw RewardError.command("reward command '\(shown)' did not answer within \(timeout) s; it was killed")
        }
        process.waitUntilExit()
        let (output, errors) = collected.values
        return (process.terminationStatus, output, errors)
    }
}

/// Output gathered by reader threads.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var output = Data(), errors = Data()

    func set(output data: Data) { lock.withLock { output = data } }
    func set(errors data: Data) { lock.withLock { errors = data } }
    var values: (Data, Data) { lock.withLock { (output, errors) } }
}
