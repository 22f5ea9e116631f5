// Shared by the fuzz targets: libFuzzer's driver, the input as Data, a private scratch directory
// for parsers that only read files, and the repository's test fixtures.

import CLibFuzzer
import Foundation

/// Runs libFuzzer on `testOneInput` with this process's command line (libFuzzer's flags and
/// corpus directories) and exits with its status. Called from each target's main.swift.
public func runFuzzer(_ testOneInput: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
}

/// The fuzzer's input bytes.
public func fuzzInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Data {
    Data(bytes: data, count: size)
}

/// A directory of this process's own, made once and reused by every input (libFuzzer runs the
/// inputs one after the other on one thread).
public let fuzzScratch: URL = {
    // /dev/shm when there is one: memory, not disk.
    var isDirectory: ObjCBool = false
    let shm = FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory) && isDirectory.boolValue
    let url = (shm ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory)
        .appendingPathComponent("nudge-fuzz-\(ProcessInfo.processInfo.processIdentifier)", isDirectory: true)
    try? FileManager.default.removeItem(at: url)
    do {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
        fatalError("cannot make the fuzz scratch directory \(url.path): \(error)")
    }
    atexit { try? FileManager.default.removeItem(at: fuzzScratch) }
    return url
}()

/// Writes `data` to `name` inside the scratch directory (replacing what was there) and returns its URL.
///
/// Plain POSIX writes: Foundation's `Data.write(to:)` fsyncs, which on a disk costs more than
/// the parse being fuzzed.
@discardableResult
public func writeScratch(_ data: Data, as name: String) -> URL {
    let url = fuzzScratch.appendingPathComponent(name)
    let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { fatalError("cannot write \(url.path): errno \(errno)") }
    defer { close(fd) }
    data.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            guard n > 0 else { fatalError("cannot write \(url.path): errno \(errno)") }
            offset += n
        }
    }
    return url
}

/// The repository root (Fuzz/..), for reading test fixtures.
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The bytes of a file under the repository root; stops the fuzzer when it is missing.
public func fixture(_ relativePath: String) -> Data {
    let url = repositoryRoot.appendingPathComponent(relativePath)
    guard let data = try? Data(contentsOf: url) else { fatalError("missing fixture \(url.path)") }
    return data
}

/// Whether NUDGE_FUZZ_VERBOSE is set: `rejected` then prints each error, e.g. to check that the
/// seeds of a corpus load (`NUDGE_FUZZ_VERBOSE=1 .build-fuzz/debug/FuzzJSONL -runs=0 Fuzz/corpus/FuzzJSONL`).
public let fuzzVerbose = ProcessInfo.processInfo.environment["NUDGE_FUZZ_VERBOSE"] != nil

/// An input the parser refused: renders the message a user would see (that code must not trap
/// either) and prints it when verbose.
public func rejected(_ error: any Error) {
    let message = String(describing: error)
    if fuzzVerbose { FileHandle.standardError.write(Data("rejected: \(message)\n".utf8)) }
}

/// An input the parser accepted, printed when verbose.
public func accepted(_ what: @autoclosure () -> String) {
    if fuzzVerbose { FileHandle.standardError.write(Data("accepted: \(what())\n".utf8)) }
}
