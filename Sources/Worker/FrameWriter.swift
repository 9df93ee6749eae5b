import Glibc
import IPC

/// Writes whole frames to the result pipe, looping over short writes.
struct FrameWriter {
    /// The pipe to write.
    let descriptor: FileDescriptor

    /// Writes `message` as one frame.
    func write(_ message: Message) throws(WorkerError) {
        try write(bytes: message.encoded)
    }

    /// Writes all of `bytes`, whatever the pipe accepts per call. SIGPIPE is ignored, so a vanished reader
    /// shows up here as EPIPE.
    func write(bytes: [UInt8]) throws(WorkerError) {
        var remaining = bytes[...]
        while !remaining.isEmpty {
            do {
                let count = try Posix.write(descriptor, remaining)
                remaining = remaining.dropFirst(count)
            } catch  where error.errno == EPIPE {
                throw .supervisorGone
            } catch {
                throw .ioFailed(error)
            }
        }
    }
}
