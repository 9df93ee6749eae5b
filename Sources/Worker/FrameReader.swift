import IPC

/// Reads messages from the job pipe, however the supervisor's bytes are split across reads.
struct FrameReader {
    /// The pipe to read.
    let descriptor: FileDescriptor
    private var decoder = FrameDecoder()
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)

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
}
