// Run control for long training loops: Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the
// current step, so it can write its checkpoint and report and exit cleanly; a second Ctrl-C exits at
// once. And an append-only JSON-lines file (samples.jsonl), one write per line so a killed run keeps
// every complete line.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Set by the signal handler; read by the training loop.
nonisolated(unsafe) private var stopRequests: sig_atomic_t = 0

/// A stop request from SIGINT or SIGTERM.
public final class StopSignal: Sendable {
    /// Installs the handlers (idempotent) and returns the flag to poll.
    public static func install() -> StopSignal {
        let handler: @convention(c) (Int32) -> Void = { _ in
            stopRequests += 1
            // A second request means "now": restore the default action, so the next one terminates.
            if stopRequests > 1 { signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL) }
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        return StopSignal()
    }

    /// Whether a stop was requested.
    public var requested: Bool { stopRequests > 0 }
    /// Whether a stop was requested, for code that polls without installing the handlers.
    public static var isRequested: Bool { stopRequests > 0 }
}

/// A JSON-lines file opened for appending.
public final class AppendOnlyLines: @unchecked Sendable {
    let handle: FileHandle
    public let url: URL

    /// Opens (creating if needed) `url` for appending.
    public init(url: URL) throws {
        self.url = url
        if !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
            }
        }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    /// Rewrites `url` atomically, keeping the lines whose JSON object passes `keep` (a missing file
    /// is left missing; a line that is not a JSON object is dropped, as a crash's partial line).
    public static func filter(_ url: URL, keep: ([String: Any]) -> Bool) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let text = try String(contentsOf: url, encoding: .utf8)
        let kept = text.split(separator: "\n").filter { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return false }
            return keep(object)
        }
        try AtomicFile.write(kept.map { $0 + "\n" }.joined(), to: url)
    }

    /// Appends one JSON object as a line (keys sorted).
    public func append(_ object: [String: Any]) throws {
        var line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        line.append(0x0A)
        try handle.write(contentsOf: line)
    }
}
