// Data-parallel training over MPI, opened at run time like BLAS: `dlopen` of Open MPI
// (libmpi.so.40) or an MPICH-ABI library (libmpi.so.12, libmpich.so.12) when the process was
// started by an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx) or NUDGE_DISTRIBUTED=mpi is
// set, so `swift build` needs no MPI package. The C shim (CNudgeSystem/mpi.c) hides the two ABIs'
// handle conventions. Without a launcher every process is a world of one and nothing is opened.

import CNudgeSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why the MPI world could not be started.
public struct DistributedError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The processes of one data-parallel job (MPI_COMM_WORLD), or a single process. Collective calls
/// must be made by every rank in the same order.
public final class Communicator: @unchecked Sendable {
    /// This process's index, 0..<size.
    public let rank: Int
    /// The number of processes.
    public let size: Int
    /// "Open MPI" or "MPICH" (nil: single process, no MPI opened).
    public let implementation: String?
    /// The library opened (nil: none).
    public let libraryPath: String?
    /// Seconds spent in allreduce and broadcast calls so far (the communication share of a step).
    public private(set) var communicationSeconds: Double = 0

    init(rank: Int, size: Int, implementation: String?, libraryPath: String?) {
        self.rank = rank
        self.size = size
        self.implementation = implementation
        self.libraryPath = libraryPath
    }

    /// A world of one: every collective is the identity.
    public static let single = Communicator(rank: 0, size: 1, implementation: nil, libraryPath: nil)

    /// Whether more than one process takes part.
    public var isDistributed: Bool { size > 1 }
    /// Rank 0: the one process that logs, writes checkpoints and reports.
    public var isRoot: Bool { rank == 0 }

    // MARK: - The process's world

    nonisolated(unsafe) private static var started: Communicator?
    private static let lock = NSLock()

    /// The world `start()` opened, else a single process.
    public static var shared: Communicator {
        lock.lock(); defer { lock.unlock() }
        return started ?? .single
    }

    /// The environment variables an MPI launcher sets (Open MPI's mpirun, MPICH's Hydra, PMIx/Slurm).
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS"]

    /// Whether this process should join an MPI job: NUDGE_DISTRIBUTED=mpi, or a launcher's
    /// variables without NUDGE_DISTRIBUTED=none.
    public static func requested(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        switch environment["NUDGE_DISTRIBUTED"]?.lowercased() {
        case "mpi": return true
        case "none", "off", "0": return false
        default: return launcherVariables.contains { environment[$0] != nil }
        }
    }

    /// The MPI libraries tried, in order: NUDGE_MPI when set, else Open MPI first under Open MPI's
    /// launcher and the MPICH ABI first otherwise.
    public static func candidates(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        if let path = environment["NUDGE_MPI"], !path.isEmpty { return [path] }
        let openMPI = ["libmpi.so.40"], mpich = ["libmpi.so.12", "libmpich.so.12"]
        return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["NUDGE_DISTRIBUTED_IMPL"] == "openmpi"
            ? openMPI + mpich : mpich + openMPI
    }

    /// Joins the MPI job when `requested()` (once per process; later calls return the same world),
    /// else returns a single process. Throws when MPI was asked for and cannot be opened or started.
    /// `silencingOtherRanks`: standard output of ranks other than 0 goes to /dev/null, so a job
    /// prints once (standard error, where failures go, is kept on every rank).
    @discardableResult
    public static func start(environment: [String: String] = ProcessInfo.processInfo.environment,
                             silencingOtherRanks: Bool = false) throws -> Communicator {
        lock.lock(); defer { lock.unlock() }
        if let started { return started }
        guard requested(environment: environment) else { return .single }
        let world = try open(candidates(environment: environment))
        started = world
        if silencingOtherRanks && !world.isRoot {
            fflush(nil)  // every stream, stdout included
            let null = Glibc.open("/dev/null", O_WRONLY)
            if null >= 0 { dup2(null, STDOUT_FILENO); close(null) }
        }
        return world
    }

    private static func open(_ paths: [String]) throws -> Communicator {
        let impl = withCStrings(paths) { nudge_mpi_open($0, Int32(paths.count)) }
        guard impl > 0 else {
            throw DistributedError("MPI was requested (an MPI launcher's variables or NUDGE_DISTRIBUTED=mpi) but cannot be opened: \(String(cString: nudge_mpi_error())). Install Open MPI (apt-get install openmpi-bin) or MPICH, or name the library with NUDGE_MPI=/path/libmpi.so")
        }
        guard nudge_mpi_init() == 0 else { throw DistributedError("MPI_Init_thread failed in \(String(cString: nudge_mpi_path()))") }
        var rank: Int32 = 0, size: Int32 = 1
        guard nudge_mpi_rank(&rank) == 0, nudge_mpi_size(&size) == 0 else { throw DistributedError("MPI_Comm_rank/MPI_Comm_size failed") }
        // A rank that leaves without `finish()` (an error, Ctrl-C) aborts the whole job, so the
        // others never wait in a collective for it.
        atexit { nudge_mpi_exit_handler() }
        return Communicator(rank: Int(rank), size: Int(size), implementation: impl == 1 ? "Open MPI" : "MPICH",
                            libraryPath: String(cString: nudge_mpi_path()))
    }

    /// Ends the MPI job cleanly (a barrier, then MPI_Finalize) after a successful command; without
    /// it, the process's exit aborts every rank.
    public static func finish() {
        lock.lock(); defer { lock.unlock() }
        guard started != nil else { return }
        _ = nudge_mpi_barrier()
        _ = nudge_mpi_finalize()
    }

    /// What `nudge doctor` prints: the MPI libraries found and which one a launched job opens,
    /// without starting MPI.
    public static func report(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let started = startedWorld() {
            return "MPI: \(started.implementation ?? "?") from \(started.libraryPath ?? "?"), rank \(started.rank) of \(started.size) — \(libraryVersion())"
        }
        let found = candidates(environment: environment).filter { path in
            guard let h = dlopen(path, RTLD_LAZY | RTLD_LOCAL) else { return false }
            dlclose(h)
            return true
        }
        let launched = requested(environment: environment) ? "started by an MPI launcher" : "not started by an MPI launcher (single process; mpirun -np N nudge … trains data-parallel)"
        guard !found.isEmpty else { return "MPI: none found (tried \(candidates(environment: environment).joined(separator: ", "))); \(launched)" }
        return "MPI: \(found.joined(separator: ", ")) found; \(launched)"
    }

    private static func startedWorld() -> Communicator? {
        lock.lock(); defer { lock.unlock() }
        return started
    }

    /// MPI_Get_library_version's first line (empty without MPI).
    public static func libraryVersion() -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        guard nudge_mpi_library_version(&buffer, Int32(buffer.count)) == 0 else { return "" }
        return String(cString: buffer).split(separator: "\n").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
    }

    // MARK: - Collectives

    private func check(_ code: Int32, _ call: String) {
        // MPI's default error handler (MPI_ERRORS_ARE_FATAL) aborts before a failure returns here.
        if code != 0 { abort(message: "\(call) failed with MPI error \(code) on rank \(rank)") }
    }

    private func timed(_ body: () -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Sums `values` over every rank, in place (every rank gets the same result).
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) {
        guard isDistributed, let base = values.baseAddress else { return }
        timed {
            // MPI counts are Int32: large buffers go in chunks of 2^30 values.
            var offset = 0
            while offset < values.count {
                let n = Swift.min(values.count - offset, 1 << 30)
                check(nudge_mpi_allreduce_sum_float(base + offset, Int32(n)), "MPI_Allreduce")
                offset += n
            }
        }
    }

    public func allreduceSum(_ values: inout [Float]) { values.withUnsafeMutableBufferPointer { allreduceSum($0) } }

    /// Sums `values` over every rank, in place.
    public func allreduceSum(_ values: inout [Double]) {
        guard isDistributed, !values.isEmpty else { return }
        timed { values.withUnsafeMutableBufferPointer { check(nudge_mpi_allreduce_sum_double($0.baseAddress, Int32($0.count)), "MPI_Allreduce") } }
    }

    /// The elementwise maximum of `values` over every rank, in place.
    public func allreduceMax(_ values: inout [Double]) {
        guard isDistributed, !values.isEmpty else { return }
        timed { values.withUnsafeMutableBufferPointer { check(nudge_mpi_allreduce_max_double($0.baseAddress, Int32($0.count)), "MPI_Allreduce") } }
    }

    /// The sum of one number over every rank.
    public func sum(_ value: Double) -> Double {
        var v = [value]
        allreduceSum(&v)
        return v[0]
    }

    /// Copies `root`'s bytes into every rank's `buffer` (the same byte count on every rank).
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int = 0) {
        guard isDistributed, let base = buffer.baseAddress else { return }
        timed {
            var offset = 0
            while offset < buffer.count {
                let n = Swift.min(buffer.count - offset, 1 << 30)
                check(nudge_mpi_broadcast(base + offset, Int32(n), Int32(root)), "MPI_Bcast")
                offset += n
            }
        }
    }

    public func broadcast(_ values: inout [Float], root: Int = 0) { values.withUnsafeMutableBytes { broadcast($0, root: root) } }
    public func broadcast(_ values: inout [Double], root: Int = 0) { values.withUnsafeMutableBytes { broadcast($0, root: root) } }

    /// Waits until every rank has arrived.
    public func barrier() {
        guard isDistributed else { return }
        check(nudge_mpi_barrier(), "MPI_Barrier")
    }

    /// Prints `message` (naming this rank) and ends every rank of the job (MPI_Abort).
    public func abort(message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("rank \(rank) of \(size): \(message)\n".utf8))
        if isDistributed { nudge_mpi_abort(code) }
        exit(code)
    }

    // MARK: - Sharding

    /// This rank's contiguous share of `count` items: the first `count % size` ranks take one more,
    /// so the shares differ by at most one and their concatenation in rank order is 0..<count.
    public func shard(_ count: Int) -> Range<Int> { Self.shard(count, rank: rank, size: size) }

    public static func shard(_ count: Int, rank: Int, size: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let start = rank * base + Swift.min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Sums every tensor of `tensors` over the ranks through one flat buffer (one allreduce in key
    /// order), in place.
    public func allreduceSum(_ tensors: NamedTensors) {
        guard isDistributed else { return }
        let total = tensors.tensors.reduce(0) { $0 + $1.count }
        var flat = [Float](repeating: 0, count: total)
        flat.withUnsafeMutableBufferPointer { buffer in
            var offset = 0
            for t in tensors.tensors {
                (buffer.baseAddress! + offset).update(from: t.data, count: t.count)
                offset += t.count
            }
            allreduceSum(buffer)
            offset = 0
            for t in tensors.tensors {
                t.data.update(from: buffer.baseAddress! + offset, count: t.count)
                offset += t.count
            }
        }
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer<CChar>($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
