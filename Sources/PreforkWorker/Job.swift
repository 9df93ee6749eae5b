import IPC

/// One attempt of a job, as a handler sees it.
public struct Job: Sendable {
    /// The job's id.
    public let id: String
    /// The payload, as the client sent it.
    public let payload: [UInt8]
    /// This attempt's number, from 1.
    public let attempt: Int
    /// How long the attempt may run before the supervisor kills the worker; 0 when unlimited.
    public let timeoutMilliseconds: UInt64
    /// The most output the supervisor keeps; longer output is cut and flagged.
    public let maximumOutputBytes: Int
    let writer: FrameWriter

    init(_ run: Message.Run, writer: FrameWriter) {
        id = run.jobID
        payload = run.payload
        attempt = Int(run.attempt)
        timeoutMilliseconds = run.timeoutMilliseconds
        maximumOutputBytes = run.outputLimit
        self.writer = writer
    }

    /// The payload as text (invalid UTF-8 is replaced).
    public var text: String { String(decoding: payload, as: UTF8.self) }

    /// Reports how far the attempt is, 0-100 (clamped), with a short note (cut at 200 bytes): the job record
    /// shows it as `progress` while the attempt runs.
    public func progress(_ percent: Int, _ note: String = "") {
        let clamped = UInt8(min(100, max(0, percent)))
        let message = Message.Progress(
            jobID: id, attempt: UInt32(attempt), percent: clamped, note: note.prefix(utf8Bytes: Message.maximumNoteBytes))
        // A supervisor that is gone will be noticed when the result is written.
        try? writer.write(.progress(message))
    }

    /// Writes raw bytes to the result pipe instead of a frame: for testing how the supervisor handles a worker
    /// that breaks the protocol (the `@garbage` directive). Never use it in a real handler.
    @_spi(ProtocolTesting)
    public func writeRawBytesToSupervisor(_ bytes: [UInt8]) {
        try? writer.write(bytes: bytes)
    }
}

extension String {
    /// The longest prefix of at most `count` UTF-8 bytes that ends on a character boundary.
    func prefix(utf8Bytes count: Int) -> String {
        guard utf8.count > count else { return self }
        var end = utf8.index(utf8.startIndex, offsetBy: count)
        while end > startIndex && !(end.samePosition(in: unicodeScalars) != nil) {
            end = utf8.index(before: end)
        }
        return String(self[..<end])
    }
}
