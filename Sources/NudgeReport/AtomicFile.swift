// AtomicFile.swift
//
// Crash-safe file primitives: `AtomicFile` replaces a whole file so readers see
// either the old or the new contents, never a torn mix; `FileOps` holds the
// small POSIX file-descriptor helpers (append-mode logs, fsync) used by the run
// directory. Errors are reported as `FileIOError`, naming the path and errno.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed file-system call, with the operation, the path and the `errno` it set.
public struct FileIOError: Error, CustomStringConvertible, Sendable {
    /// The call that failed, e.g. `"open"`.
    public var operation: String
    /// The file it was applied to.
    public var path: String
    /// The `errno` value.
    public var code: Int32

    /// A readable message, e.g. `open /tmp/x: No such file or directory`.
    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(code)))"
    }
}

/// Whole-file replacement that survives crashes: a reader sees the old or the new file.
public enum AtomicFile {
    /// Replaces the file at `url` with `data`: writes a temporary file in the same
    /// directory, fsyncs it, renames it over `url`, then fsyncs the directory.
    public static func write(_ data: Data, to url: URL) throws {
        let directory = url.deletingLastPathComponent()
        let tmp = directory.appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: .min ... .max))")
        let fd = try FileOps.open(tmp.path, O_WRONLY | O_CREAT | O_EXCL)
        do {
            try FileOps.writeAll(fd, data, path: tmp.path)
            try FileOps.sync(fd, path: tmp.path)
            FileOps.close(fd)
            guard rename(tmp.path, url.path) == 0 else {
                throw FileIOError(operation: "rename", path: url.path, code: errno)
            }
        } catch {
            FileOps.close(fd)
            unlink(tmp.path)
            throw error
        }
        // Make the rename itself durable; best effort (not all file systems allow it).
        if let dirFD = try? FileOps.open(directory.path, O_RDONLY) {
            _ = fsync(dirFD)
            FileOps.close(dirFD)
        }
    }

    /// Replaces the file at `url` with the UTF-8 bytes of `string` (see `write(_:to:)`).
    public static func write(_ string: String, to url: URL) throws {
        try write(Data(string.utf8), to: url)
    }
}

/// Thin wrappers over POSIX file descriptors that throw `FileIOError`.
enum FileOps {
    /// Opens `path` with `flags` (plus close-on-exec), creating files with mode 0644.
    static func open(_ path: String, _ flags: Int32) throws -> Int32 {
        #if canImport(Darwin)
            let fd = Darwin.open(path, flags | O_CLOEXEC, 0o644)
        #elseif canImport(Musl)
            let fd = Musl.open(path, flags | O_CLOEXEC, 0o644)
        #else
            let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
        #endif
        guard fd >= 0 else { throw FileIOError(operation: "open", path: path, code: errno) }
        return fd
    }

    /// Opens `path` for appending, creating it if needed.
    static func openAppend(_ path: String) throws -> Int32 {
        try open(path, O_WRONLY | O_APPEND | O_CREAT)
    }

    /// Writes all of `data`: one write() call in practice, retried on EINTR or a short write.
    static func writeAll(_ fd: Int32, _ data: Data, path: String) throws {
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            guard var pointer = buffer.baseAddress else { return }
            var remaining = buffer.count
            while remaining > 0 {
                let n = write(fd, pointer, remaining)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileIOError(operation: "write", path: path, code: errno)
                }
                pointer += n
                remaining -= n
            }
        }
    }

    /// Flushes the file's data to stable storage.
    static func sync(_ fd: Int32, path: String) throws {
        guard fsync(fd) == 0 else { throw FileIOError(operation: "fsync", path: path, code: errno) }
    }

    /// Cuts the file to `length` bytes.
    static func truncate(_ fd: Int32, to length: Int, path: String) throws {
        guard ftruncate(fd, off_t(length)) == 0 else {
            throw FileIOError(operation: "ftruncate", path: path, code: errno)
        }
    }

    /// Closes `fd`, ignoring errors; negative descriptors are ignored.
    static func close(_ fd: Int32) {
        #if canImport(Darwin)
            if fd >= 0 { _ = Darwin.close(fd) }
        #elseif canImport(Musl)
            if fd >= 0 { _ = Musl.close(fd) }
        #else
            if fd >= 0 { _ = Glibc.close(fd) }
        #endif
    }
}

/// A file-system error as one line: the path and the system's reason, instead of Foundation's
/// `Error Domain=NSCocoaErrorDomain Code=… UserInfo={…}` dump.
public func fileSystemMessage(_ error: any Error) -> String {
    let ns = error as NSError
    guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain else { return "\(error)" }
    let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
    var reason = ns.localizedFailureReason ?? ns.localizedDescription
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(underlying.code)))
    } else if ns.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(ns.code)))
    }
    return path.map { "\($0): \(reason)" } ?? reason
}
