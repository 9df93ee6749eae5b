import IPC

/// Reads messages from the job pipe, however the supervisor's bytes are split across reads.
struct FrameReader {
    /// The pipe to read.
    let descriptor: FileDescriptor
    private var decoder = FrameDecoder()
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    /// The last frame came soon after the worker started waiting for it: look before sleeping next time.
    private var answersAreQuick = true

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
            let waitStarted = Time.monotonicMicroseconds()
            if answersAreQuick { awaitInputBriefly() }
            let count: Int
            do {
                count = try Posix.read(descriptor, into: &chunk)
            } catch {
                throw .ioFailed(error)
            }
            answersAreQuick = Time.monotonicMicroseconds() - waitStarted <= Self.quickAnswerMicroseconds
            if count == 0 { return nil }
            decoder.append(chunk[..<count])
        }
    }

    /// How long to look for the next frame before sleeping in `read`.
    static let spinMicroseconds: UInt64 = 10
    /// A wait up to this long (including the wake-up when the worker slept) counts as a quick answer.
    static let quickAnswerMicroseconds: UInt64 = 30

    /// Checks the pipe without sleeping for a few microseconds. With jobs queued and the supervisor free, it
    /// answers a result with the next job within that time, and a worker that is not asleep needs no
    /// wake-up: on a virtual machine a cross-CPU wake-up costs the supervisor as much as the rest of the
    /// hand-off. Only done while answers come that quickly (`answersAreQuick`): when the supervisor is busy
    /// (HTTP load) the look would find nothing and only burn CPU. It does not `sched_yield` in between: a
    /// yielding worker waits behind every other runnable task on its CPU, and under load its jobs then
    /// finish far more slowly than they are accepted.
    private func awaitInputBriefly() {
        let start = Time.monotonicMicroseconds()
        repeat {
            if Posix.isReadable(descriptor) { return }
        } while Time.monotonicMicroseconds() - start < Self.spinMicroseconds
    }
}
