// A reward computed by another program, so a Python (or any) verifier plugs in. Each scoring call
// starts the command, writes one JSON object per sample to its standard input
// ({"prompt", "completion", "answer", "completion_tokens", "finish_reason"}), closes it, and reads one
// line per sample from its standard output: a number, null (does not apply), or {"reward": number|null}.
// The whole call has a deadline: past it the command is killed and training gets an error, so a stuck
// verifier never hangs a run. A wrong line count, an unparseable line or a nonzero exit is an error
// that quotes the command, the line and the tail of its standard error.
//
// The command runs in a process group of its own (posix_spawn with POSIX_SPAWN_SETPGROUP), so the
// terminal's Ctrl-C does not reach it and whatever it starts can be ended with it: on a timeout, on a
// stop request (StopSignal, polled about every 50 ms; the call then throws RewardError.interrupted so the
// training loop can save and exit) and after it exits (leftover background processes), the whole group
// gets SIGTERM and, after a short grace, SIGKILL. Its standard input is written without blocking and
// its standard output and error are read as they come, all in one poll loop, so neither a command
// that never reads its input nor one that writes a lot to either stream can stall the call past the
// deadline. The CLI runs the configured string as `/bin/sh -c <string>`; this type takes an argument
// vector.

import Foundation
import NudgeConfig
import NudgeReport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reward function that runs an external command speaking JSON lines.
public struct ExternalCommandReward: RewardFunction {
    public var name: String
    /// The program and its arguments (the program is looked up on PATH when it has no slash).
    public var command: [String]
    /// Seconds allowed for one scoring call (> 0).
    public var timeout: Double
    /// Seconds between SIGTERM and SIGKILL when the command's process group is ended.
    var killGrace: Double = 1
    /// Polled about every 50 ms while the command runs; true kills the command and throws
    /// `RewardError.interrupted`. Ctrl-C / SIGTERM by default (tests replace it).
    var stopRequested: @Sendable () -> Bool = { StopSignal.isRequested }

    /// Largest standard output accepted from one call; more is an error.
    static let outputLimit = 64 << 20
    /// Bytes of standard error kept (the tail; errors quote its last 500 bytes).
    static let errorTailLimit = 64 << 10

    /// Throws when `command` is empty or `timeout` is not a positive, finite number of seconds.
    public init(command: [String], name: String = "external", timeout: Double = 30) throws {
        guard let program = command.first, !program.isEmpty else {
            throw RewardError.command("external reward: the command is empty")
        }
        guard timeout > 0, timeout.isFinite else {
            throw RewardError.command("external reward: the timeout must be a positive number of seconds, got \(timeout)")
        }
        self.command = command
        self.name = name
        self.timeout = timeout
    }

    /// The command as errors quote it (the string itself for the CLI's `/bin/sh -c <string>` form).
    var shown: String {
        if command.count == 3 && command[0] == "/bin/sh" && command[1] == "-c" { return command[2] }
        return command.joined(separator: " ")
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
        let (exit, output, errors) = try run(input: input)
        let shown = self.shown
        let errorTail = String(decoding: errors.suffix(500), as: UTF8.self)
        switch exit {
        case .status(0): break
        case .status(let status):
            throw RewardError.command("reward command '\(shown)' exited with status \(status)\(errorTail.isEmpty ? "" : ": \(errorTail)")")
        case .signal(let signal):
            throw RewardError.command("reward command '\(shown)' was killed by signal \(signal)\(errorTail.isEmpty ? "" : ": \(errorTail)")")
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

    /// How the command ended.
    enum Exit: Equatable {
        case status(Int32)
        case signal(Int32)
    }

    /// Runs the command with `input` on stdin; returns how it ended, its stdout and (the tail of) its stderr.
    /// Throws on a start failure, the deadline, a stop request or too much output, after ending its group.
    func run(input: Data) throws -> (Exit, Data, Data) {
        // A verifier that exits without reading its input would otherwise kill this whole process with
        // SIGPIPE on our next write; ignored, the write fails with EPIPE and the exit status is reported.
        // (The child gets the default action back: POSIX_SPAWN_SETSIGDEF.)
        signal(SIGPIPE, SIG_IGN)
        let shown = self.shown
        let tooMuchOutput = RewardError.command("reward command '\(shown)' wrote more than \(Self.outputLimit >> 20) MiB to its standard output; it was killed")
        var child = try Child(command, shown: shown)
        // Normally done already (then free); on any other way out, nothing of the command outlives the call.
        defer {
            child.endGroup(grace: killGrace)
            _ = child.reap()
            child.closeAll()
        }
        let deadline = Self.now() + timeout
        let bytes = [UInt8](input)
        var written = 0
        var output = Data(), errors = Data()
        if bytes.isEmpty { closeDescriptor(&child.stdin) }

        while true {
            if child.hasExited() {
                // Done. End whatever it left running in its group (nothing, usually), then take what is
                // in the pipes: all of the command's own output is there, since it has exited.
                child.endGroup(grace: killGrace)
                // (Bounded, in case something that left the group still writes.)
                let chunks = (Self.outputLimit >> 16) + 2
                Self.drain(&child.stdout, into: &output, limit: Self.outputLimit + 1, keepTail: false, chunks: chunks)
                Self.drain(&child.stderr, into: &errors, limit: Self.errorTailLimit, keepTail: true, chunks: chunks)
                if output.count > Self.outputLimit { throw tooMuchOutput }
                break
            }
            if Self.now() >= deadline {
                child.endGroup(grace: killGrace)
                throw RewardError.command("reward command '\(shown)' did not answer within \(timeout) s; it was killed")
            }
            if stopRequested() {
                child.endGroup(grace: killGrace)
                throw RewardError.interrupted
            }
            if output.count > Self.outputLimit {
                child.endGroup(grace: killGrace)
                throw tooMuchOutput
            }
            var fds: [pollfd] = []
            if child.stdin >= 0 { fds.append(pollfd(fd: child.stdin, events: Int16(POLLOUT), revents: 0)) }
            if child.stdout >= 0 { fds.append(pollfd(fd: child.stdout, events: Int16(POLLIN), revents: 0)) }
            if child.stderr >= 0 { fds.append(pollfd(fd: child.stderr, events: Int16(POLLIN), revents: 0)) }
            // With every pipe closed only the exit is left to see: look often.
            let cap = fds.isEmpty ? 0.002 : 0.05
            let wait = max(0.001, min(cap, deadline - Self.now()))
            _ = poll(&fds, nfds_t(fds.count), Int32((wait * 1000).rounded(.up)))
            Self.writeSome(&child.stdin, bytes, &written)
            Self.drain(&child.stdout, into: &output, limit: Self.outputLimit + 1, keepTail: false, chunks: 16)
            Self.drain(&child.stderr, into: &errors, limit: Self.errorTailLimit, keepTail: true, chunks: 16)
        }
        return (child.reap(), output, errors)
    }

    /// Seconds on a monotonic clock.
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Writes what the pipe takes without blocking; closes stdin when everything is written or the
    /// command stopped reading (EPIPE: its exit status tells what happened).
    static func writeSome(_ fd: inout Int32, _ bytes: [UInt8], _ written: inout Int) {
        guard fd >= 0 else { return }
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n > 0 { written += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            break
        }
        closeDescriptor(&fd)
    }

    /// Reads what is available from `fd` without blocking (at most `chunks` reads of 64 KiB, so a
    /// chatty command cannot keep us from the deadline); closes it at end of file or on an error.
    /// Keeps at most `limit` bytes: the first ones (then it stops reading), or the last ones with `keepTail`.
    static func drain(_ fd: inout Int32, into data: inout Data, limit: Int, keepTail: Bool, chunks: Int) {
        guard fd >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var reads = 0
        while reads < chunks {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n > 0 {
                reads += 1
                if keepTail {
                    data.append(contentsOf: buffer[0..<n])
                    if data.count > limit { data = Data(data.suffix(limit)) }
                } else {
                    data.append(contentsOf: buffer[0..<min(n, limit - data.count)])
                    if data.count >= limit { return }
                }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            break
        }
        if reads < chunks { closeDescriptor(&fd) }
    }
}

/// Closes `fd` unless already closed (-1), and marks it closed.
func closeDescriptor(_ fd: inout Int32) {
    if fd >= 0 { _ = close(fd) }
    fd = -1
}

/// A spawned command: its pid (also its process group id) and the parent's ends of its pipes
/// (nonblocking; -1 once closed).
struct Child {
    let pid: pid_t
    var stdin: Int32 = -1, stdout: Int32 = -1, stderr: Int32 = -1
    /// Whether waitpid has collected the leader (its pid may then be reused once the group is empty).
    private(set) var reaped = false
    private var status: Int32 = 0

    /// Spawns `command` in a new process group, with default SIGPIPE/SIGINT/SIGTERM/SIGQUIT actions and
    /// an empty signal mask, stdin/stdout/stderr connected to pipes.
    init(_ command: [String], shown: String) throws {
        var opened: [Int32] = []
        defer { for fd in opened { _ = close(fd) } }
        func tracked() throws -> (Int32, Int32) {
            let ends = try Self.makePipe()
            opened += [ends.0, ends.1]
            return ends
        }
        let input = try tracked(), output = try tracked(), errors = try tracked()

        #if os(Linux)
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #else
        var actions: posix_spawn_file_actions_t? = nil
        var attributes: posix_spawnattr_t? = nil
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The pipes are close-on-exec; dup2 gives the child inheritable copies as 0, 1 and 2.
        posix_spawn_file_actions_adddup2(&actions, input.0, 0)
        posix_spawn_file_actions_adddup2(&actions, output.1, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.1, 2)
        // Nothing else of ours: a stray inheritable descriptor (another thread's file being written, say)
        // stays out of the command and whatever it leaves running.
        #if os(Linux)
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        #endif
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGINT, SIGTERM, SIGQUIT] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        var rc: Int32 = 0
        // ETXTBSY: the program is still open for writing somewhere (just written, and the descriptor
        // briefly inherited by a process spawned meanwhile); that passes within milliseconds.
        for attempt in 0..<20 {
            rc = argv.withUnsafeBufferPointer { posix_spawnp(&pid, $0[0]!, &actions, &attributes, $0.baseAddress!, environ) }
            guard rc == ETXTBSY && attempt < 19 else { break }
            usleep(5_000)
        }
        guard rc == 0 else {
            throw RewardError.command("reward command '\(shown)' could not start: \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        stdin = input.1
        stdout = output.0
        stderr = errors.0
        opened = [input.0, output.1, errors.1]
        for fd in [stdin, stdout, stderr] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    #if os(Linux)
    /// glibc's posix_spawn_file_actions_addclosefrom_np (2.34 and later), when the C library has it.
    static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32).self)
    }()
    #endif

    /// glibc's pipe2, when the C library has it.
    static let pipe2: (@convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32)? = {
        #if os(Linux)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2") else { return nil }  // RTLD_DEFAULT
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32).self)
        #else
        return nil
        #endif
    }()

    static func makePipe() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        // Close-on-exec from the start (pipe2), so no command spawned meanwhile by another thread keeps
        // our ends open (a kept stdin write end would hide the end of the input). Glibc's module does not
        // declare pipe2, so it is looked up; pipe and fcntl are the fallback.
        var rc: Int32
        if let pipe2 = Self.pipe2 {
            rc = pipe2(&fds, O_CLOEXEC)
        } else {
            rc = pipe(&fds)
            if rc == 0 { for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } }
        }
        guard rc == 0 else { throw RewardError.command("reward command: could not create a pipe: \(String(cString: strerror(errno)))") }
        return (fds[0], fds[1])
    }

    mutating func closeAll() {
        closeDescriptor(&stdin)
        closeDescriptor(&stdout)
        closeDescriptor(&stderr)
    }

    /// Whether the leader has exited, without collecting it (so its pid, the group id, stays taken).
    func hasExited() -> Bool {
        if reaped { return true }
        var info = siginfo_t()
        let rc = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
        if rc < 0 { return errno == ECHILD }
        return info.si_signo == SIGCHLD
    }

    /// Collects the leader's exit (blocking) and returns it.
    mutating func reap() -> ExternalCommandReward.Exit {
        if !reaped {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            self.status = status
            reaped = true
        }
        return status & 0x7f == 0 ? .status((status >> 8) & 0xff) : .signal(status & 0x7f)
    }

    /// Collects the leader if it has exited.
    mutating func reapIfExited() {
        guard !reaped else { return }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            self.status = status
            reaped = true
        }
    }

    /// Ends the command's process group: SIGTERM, then SIGKILL for whatever is left after `grace`
    /// seconds; returns once the group is empty (zombies aside) or SIGKILL was sent, the leader collected.
    mutating func endGroup(grace: Double) {
        defer { if hasExited() { _ = reap() } }
        guard groupAlive() else { return }
        _ = killpg(pid, SIGTERM)
        let end = ExternalCommandReward.now() + grace
        while ExternalCommandReward.now() < end {
            reapIfExited()
            if !groupAlive() { return }
            usleep(10_000)
        }
        _ = killpg(pid, SIGKILL)
        _ = reap()
    }

    /// Whether the group has a live member: the leader not yet collected, or another process in it
    /// that is not a zombie (an orphan's zombie lingers when init does not collect it, as in some
    /// containers; it needs no killing).
    mutating func groupAlive() -> Bool {
        reapIfExited()
        if !reaped && !hasExited() { return true }
        if killpg(pid, 0) != 0 && errno == ESRCH { return false }
        #if os(Linux)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return true }
        for entry in entries where entry.first?.isNumber == true && pid_t(entry) != pid {
            // /proc/N/stat: "N (name) S ppid pgrp …"; the name may hold spaces or parentheses.
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, pid_t(fields[2]) == pid, fields[0] != "Z" && fields[0] != "X" { return true }
        }
        return false
        #else
        return true
        #endif
    }
}
