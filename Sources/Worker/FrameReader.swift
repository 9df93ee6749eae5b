import IPC

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
                count = try Posix.read(descriptor, into: &chunk)
            } catch {
                throw .ioFailed(error)
            }
            if count == 0 { return nil }
            decoder.append(chunk[..<count])
        }
    }

    /// How long to look for the next frame before sleeping in `read`.
    static let spinMicroseconds: UInt64 = 10

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
            if Posix.isReadable(descriptor) { return }
        } while Time.monotonicMicroseconds() - start < Self.spinMicroseconds
    }
}
