import Glibc
import IPC

/// The worker's life: announce readiness, then run one job at a time until told to stop or the pipe closes.
struct WorkerLoop<Handler: JobHandler> {
    /// The bytes written instead of a result by `@garbage`: 16 bytes that are no frame (bad magic).
    static var garbage: [UInt8] { Array("this is garbage!".utf8) }

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
    mutating func run() -> ExitCode {
        do throws(WorkerError) {
            try writer.write(.ready(Message.Ready(pid: Posix.getpid())))
            while let message = try reader.next() {
                switch message {
                case .run(let job): try perform(job)
                case .stop: return .success
                case .ready, .result: throw .unexpectedMessage(message.kind)
                }
            }
            if reader.bufferedByteCount > 0 {
                Console.error("job pipe closed in the middle of a frame (\(reader.bufferedByteCount) bytes)")
            }
            return .success
        } catch {
            // A vanished supervisor is the ordinary way out of an orphaned worker: say nothing.
            if error != .supervisorGone { Console.error(error.description) }
            return error.exitCode
        }
    }

    private mutating func perform(_ job: Message.Run) throws(WorkerError) {
        reader.looksBeforeSleeping = job.jobsWaiting
        let start = Time.monotonicMicroseconds()
        let outcome = handler.run(job)
        let duration = Time.monotonicMicroseconds() - start
        switch outcome {
        case .finished(let ok, let output):
            let result = Message.Result(
                jobID: job.jobID, attempt: job.attempt, ok: ok, output: output, durationMicroseconds: duration)
            try writer.write(.result(result))
        case .garbage:
            try writer.write(bytes: Self.garbage)
        }
    }
}
