import Glibc
import IPC
import System

/// Reads messages from the job pipe, however the supervisor's bytes are split across reads.
struct FrameReader {
    /// The pipe to read.
    let descriptor: FileDescriptor
    private var decoder = FrameDecoder()
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    /// Look for the next frame for a few microseconds before sleeping (`awaitInputBriefly`): set from the
    /// last `run` frame's `jobsWaiting`.
    var looksBeforeSleeping = false

    /// Creates a reader of `descriptor`.
    init(descriptor: FileDescriptor) {
        self.descriptor = descriptor
    }

    /// Bytes of an incomplete frame read so far; non-zero at end of file means the stream was cut mid-frame.
    var bufferedByteCount: Int { decoder.bufferedByteCount }

    /// Returns the next message, or `nil` once the pipe reaches end of file.
    mutating func next() throws(WorkerError) -> Message? {
        while true {
            do {
                if let message = try decoder.next() { return message }
            } catch {
                throw .malformedFrame(error)
            }
            if looksBeforeSleeping { awaitInputBriefly() }
            let count: Int
            do {
                count = try descriptor.readBlocking(into: &chunk)
            } catch {
                throw .ioFailed(error)
            }
            if count == 0 { return nil }
            decoder.append(chunk[..<count])
        }
    }

    /// How long to look for the next frame before sleeping in `read`.
    static let spinMicroseconds: Int64 = 10

    /// Checks the pipe without sleeping for a few microseconds. With jobs queued behind this one (the
    /// supervisor says so in `run`), it answers the result with the next job within that time, and a worker
    /// that is not asleep needs no wake-up: on a virtual machine a cross-CPU wake-up costs the supervisor
    /// as much as the rest of the hand-off, and the worker as much again. With none queued, the next job
    /// comes whenever a client sends one, so the worker sleeps at once: a look would find nothing and take
    /// CPU from the supervisor and the clients. It does not `sched_yield` in between: a yielding worker
    /// waits behind every other runnable task on its CPU.
    private func awaitInputBriefly() {
        let start = Time.monotonicMicroseconds()
        repeat {
            if descriptor.isReadableNow { return }
        } while Time.monotonicMicroseconds() - start < Self.spinMicroseconds
    }
}

/// Writes whole frames to the result pipe, looping over short writes.
struct FrameWriter: Sendable {
    /// The pipe to write.
    let descriptor: FileDescriptor

    /// Writes `message` as one frame.
    func write(_ message: Message) throws(WorkerError) {
        try write(bytes: message.encoded)
    }

    /// Writes all of `bytes`. SIGPIPE is ignored, so a vanished reader shows up here as EPIPE.
    func write(bytes: [UInt8]) throws(WorkerError) {
        do {
            try descriptor.writeAll(bytes)
        } catch where error.errno == EPIPE {
            throw .supervisorGone
        } catch {
            throw .ioFailed(error)
        }
    }
}

/// Why the worker stops before it is told to.
enum WorkerError: Error, Equatable, CustomStringConvertible {
    /// The result pipe's reader is gone (EPIPE): the supervisor died or closed it.
    case supervisorGone
    /// Reading the job pipe or writing the result pipe failed for another reason.
    case ioFailed(SystemError)
    /// The supervisor sent bytes that are not a valid frame.
    case malformedFrame(FrameError)
    /// The supervisor sent a message only a worker sends.
    case unexpectedMessage(Message.Kind)

    /// The status the worker exits with.
    var exitCode: WorkerExitCode {
        switch self {
        case .supervisorGone: return .success
        case .ioFailed: return .failure
        case .malformedFrame, .unexpectedMessage: return .protocolError
        }
    }

    /// A one-line reason for stderr.
    var description: String {
        switch self {
        case .supervisorGone: return "result pipe closed by the supervisor"
        case .ioFailed(let error): return "\(error)"
        case .malformedFrame(let error): return "malformed frame from the supervisor: \(error)"
        case .unexpectedMessage(let kind): return "unexpected \(kind) message from the supervisor"
        }
    }
}

/// A worker's exit statuses (docs/worker-protocol.md); the supervisor logs them and charges a death during a job
/// to that job.
public enum WorkerExitCode: CInt, Sendable {
    /// Told to stop, job pipe at end of file, or the supervisor went away.
    case success = 0
    /// An I/O error other than the supervisor going away.
    case failure = 1
    /// Bad command line, or started without the job and result pipes.
    case usage = 2
    /// The supervisor sent a malformed frame or a message the worker does not expect.
    case protocolError = 3
}
