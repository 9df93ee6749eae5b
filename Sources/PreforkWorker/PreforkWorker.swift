import Glibc
import IPC
import System

/// The worker side of the prefork protocol: announce readiness, then run one job at a time with your handler
/// until the supervisor says stop or goes away.
///
/// ```swift
/// struct Echo: JobHandler {
///     func handle(_ job: Job) throws -> JobResult { JobResult(job.payload) }
/// }
/// PreforkWorker.run(Echo())
/// ```
public enum PreforkWorker {
    /// The read end of the job pipe: frames from the supervisor.
    public static let jobPipe = FileDescriptor(rawValue: 3)
    /// The write end of the result pipe: frames to the supervisor.
    public static let resultPipe = FileDescriptor(rawValue: 4)

    /// Serves jobs with `handler` and exits the process when done: 0 after `stop` or end of file, 3 when the
    /// supervisor broke the protocol, 2 when started without the pipes. `version` names your worker in logs.
    public static func run<Handler: JobHandler>(_ handler: Handler, version: String = "prefork-swift \(PreforkVersion.current)") -> Never {
        prepareProcess()
        var loop = WorkerLoop(
            reader: FrameReader(descriptor: jobPipe), writer: FrameWriter(descriptor: resultPipe), handler: handler)
        Process.exit(loop.run(version: version).rawValue)
    }

    /// Checks the pipes, makes them close-on-exec (commands a handler starts must not inherit them) and ignores
    /// SIGPIPE (a vanished supervisor is EPIPE, then a quiet exit).
    static func prepareProcess() {
        Signal.ignore(SIGPIPE)
        for (descriptor, role) in [(jobPipe, "job pipe"), (resultPipe, "result pipe")] {
            do {
                try descriptor.setCloseOnExec()
            } catch {
                standardError(
                    "fd \(descriptor.rawValue) (\(role)) is unusable: \(error); start this program with prefork "
                        + "(handler \"program\"), which passes the pipes")
                Process.exit(WorkerExitCode.usage.rawValue)
            }
        }
    }

    /// Writes `line` and a newline to stderr (the supervisor logs it as `worker_output`); errors are ignored.
    public static func standardError(_ line: String) {
        try? FileDescriptor.standardError.writeAll(Array((line + "\n").utf8))
    }
}

/// The version of this build of Prefork, compiled in from the package's VERSION file by the `EmbedBuildInfo`
/// plugin: the same value the supervisor requires of a `prefork-worker` that says `ready`.
public enum PreforkVersion {
    /// "MAJOR.MINOR.PATCH".
    public static let current = GeneratedBuildInfo.version
    /// The first 7 hex digits of the git commit built, or "unknown" outside a git checkout.
    public static let commit = GeneratedBuildInfo.commit
}

/// The worker's life: announce readiness, then run one job at a time until told to stop or the pipe closes.
struct WorkerLoop<Handler: JobHandler> {
    private var reader: FrameReader
    private let writer: FrameWriter
    private var handler: Handler

    /// Creates a loop reading jobs with `reader`, answering with `writer`, running each with `handler`.
    init(reader: FrameReader, writer: FrameWriter, handler: Handler) {
        self.reader = reader
        self.writer = writer
        self.handler = handler
    }

    /// Runs until `stop`, end of file or an error; returns the status to exit with.
    mutating func run(version: String) -> WorkerExitCode {
        do throws(WorkerError) {
            try writer.write(.ready(Message.Ready(pid: Process.id, version: version)))
            while let message = try reader.next() {
                switch message {
                case .run(let run): try perform(run)
                case .stop: return .success
                case .ready, .result, .progress: throw .unexpectedMessage(message.kind)
                }
            }
            if reader.bufferedByteCount > 0 {
                PreforkWorker.standardError(
                    "prefork-worker: job pipe closed in the middle of a frame (\(reader.bufferedByteCount) bytes)")
            }
            return .success
        } catch {
            // A vanished supervisor is the ordinary way out of an orphaned worker: say nothing.
            if error != .supervisorGone { PreforkWorker.standardError("prefork-worker: \(error)") }
            return error.exitCode
        }
    }

    private mutating func perform(_ run: Message.Run) throws(WorkerError) {
        reader.looksBeforeSleeping = run.jobsWaiting
        let start = Time.monotonicMicroseconds()
        let outcome = Self.outcome { () throws in try handler.handle(Job(run, writer: writer)) }
        let duration = UInt64(max(0, Time.monotonicMicroseconds() - start))
        var result = Message.Result(
            jobID: run.jobID, attempt: run.attempt, ok: false, output: [], durationMicroseconds: duration)
        switch outcome {
        case .success(let value):
            result.ok = true
            result.output = value.output
            result.truncated = value.truncated
            result.detail = value.detail
        case .failure(let failure):
            result.output = Array(failure.message.utf8)
            result.detail = failure.detail
        }
        let limit = run.outputLimit
        if result.output.count > limit {
            result.output.removeSubrange(limit...)
            result.truncated = true
        }
        if result.detail.count > Message.maximumDetailBytes {
            result.detail = Array(result.detail.suffix(Message.maximumDetailBytes))
        }
        try writer.write(.result(result))
    }

    /// Runs the handler, turning a thrown error into the attempt's failure.
    private static func outcome(_ body: () throws -> JobResult) -> Result<JobResult, JobFailure> {
        do {
            return .success(try body())
        } catch let failure as JobFailure {
            return .failure(failure)
        } catch {
            return .failure(JobFailure("\(type(of: error)): \(error)"))
        }
    }
}
