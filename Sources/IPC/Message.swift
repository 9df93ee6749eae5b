/// The messages supervisor and worker exchange, one per frame (docs/worker-protocol.md).
public enum Message: Equatable, Sendable {
    /// Worker -> supervisor: warmed up and waiting for work.
    case ready(Ready)
    /// Supervisor -> worker: run one attempt of a job.
    case run(Run)
    /// Worker -> supervisor: how the attempt went.
    case result(Result)
    /// Supervisor -> worker: finish and exit.
    case stop
    /// Worker -> supervisor: how far the running attempt is.
    case progress(Progress)

    /// The kind byte of each message in the frame header.
    public enum Kind: UInt8, Sendable {
        case ready = 1
        case run = 2
        case result = 3
        case stop = 4
        case progress = 5
    }

    /// A worker announcing itself.
    public struct Ready: Equatable, Sendable {
        /// The worker's process id.
        public var pid: Int32
        /// The protocol version the worker speaks.
        public var protocolVersion: UInt8
        /// The worker software and its version, e.g. `prefork-worker 0.9.0` or `prefork-python 0.9.0 (CPython 3.11)`.
        public var version: String
        /// Creates a ready message.
        public init(pid: Int32, protocolVersion: UInt8 = FrameHeader.currentVersion, version: String) {
            self.pid = pid
            self.protocolVersion = protocolVersion
            self.version = version
        }
    }

    /// One attempt of a job.
    public struct Run: Equatable, Sendable {
        /// The job's id.
        public var jobID: String
        /// The attempt number, from 1.
        public var attempt: UInt32
        /// The job's payload bytes.
        public var payload: [UInt8]
        /// Time the attempt may take, in milliseconds (0: no limit); the supervisor kills the worker past it.
        public var timeoutMilliseconds: UInt64
        /// Jobs were queued behind this one when it was handed out, so the next `run` will follow this
        /// attempt's result at once: the worker may look for it before sleeping.
        public var jobsWaiting: Bool
        /// The most output the supervisor keeps; a worker cuts its output here and sets `truncated`. 0: no limit
        /// of its own (the frame's size still bounds it: see `outputLimit`).
        public var maximumOutputBytes: UInt32

        /// The output a worker may send: `maximumOutputBytes`, or with 0 what fits in a result frame beside its
        /// other fields (the detail, at most 4 KiB, and the job id).
        public var outputLimit: Int {
            let fitting = FrameHeader.defaultMaximumBodyLength - 64 * 1024
            return maximumOutputBytes == 0 ? fitting : min(Int(maximumOutputBytes), fitting)
        }
        /// Creates a run message.
        public init(
            jobID: String, attempt: UInt32, payload: [UInt8], timeoutMilliseconds: UInt64, jobsWaiting: Bool = false,
            maximumOutputBytes: UInt32 = 1 << 20
        ) {
            self.jobID = jobID
            self.attempt = attempt
            self.payload = payload
            self.timeoutMilliseconds = timeoutMilliseconds
            self.jobsWaiting = jobsWaiting
            self.maximumOutputBytes = maximumOutputBytes
        }
    }

    /// The outcome of one attempt.
    public struct Result: Equatable, Sendable {
        /// The job's id, echoed from `run`.
        public var jobID: String
        /// The attempt number, echoed from `run`.
        public var attempt: UInt32
        /// Whether the handler succeeded.
        public var ok: Bool
        /// The result on success, the error message on failure.
        public var output: [UInt8]
        /// How long the handler ran, in microseconds.
        public var durationMicroseconds: UInt64
        /// The output was cut at the run's `maximumOutputBytes`.
        public var truncated: Bool
        /// Diagnostics kept with the attempt (a command's stderr tail, a traceback), at most `maximumDetailBytes`.
        public var detail: [UInt8]
        /// Creates a result message.
        public init(
            jobID: String, attempt: UInt32, ok: Bool, output: [UInt8], durationMicroseconds: UInt64,
            truncated: Bool = false, detail: [UInt8] = []
        ) {
            self.jobID = jobID
            self.attempt = attempt
            self.ok = ok
            self.output = output
            self.durationMicroseconds = durationMicroseconds
            self.truncated = truncated
            self.detail = detail
        }
    }

    /// How far a running attempt has got.
    public struct Progress: Equatable, Sendable {
        /// The job's id, echoed from `run`.
        public var jobID: String
        /// The attempt number, echoed from `run`.
        public var attempt: UInt32
        /// 0 to 100.
        public var percent: UInt8
        /// A short note, at most `maximumNoteBytes`.
        public var note: String
        /// Creates a progress message.
        public init(jobID: String, attempt: UInt32, percent: UInt8, note: String) {
            self.jobID = jobID
            self.attempt = attempt
            self.percent = percent
            self.note = note
        }
    }

    /// Longest `detail` a result may carry.
    public static let maximumDetailBytes = 4096
    /// Longest progress note.
    public static let maximumNoteBytes = 200

    /// The message's kind.
    public var kind: Kind {
        switch self {
        case .ready: return .ready
        case .run: return .run
        case .result: return .result
        case .stop: return .stop
        case .progress: return .progress
        }
    }

    /// Appends the whole frame (header and body) to `buffer`.
    public func encode(into buffer: inout [UInt8]) {
        let headerStart = buffer.count
        FrameHeader(kind: kind.rawValue, length: 0).encode(into: &buffer)
        switch self {
        case .ready(let ready):
            buffer.appendBigEndian(ready.pid)
            buffer.append(ready.protocolVersion)
            buffer.appendLengthPrefixed(ready.version)
        case .run(let run):
            buffer.appendLengthPrefixed(run.jobID)
            buffer.appendBigEndian(run.attempt)
            buffer.appendBigEndian(run.timeoutMilliseconds)
            buffer.appendField(run.payload)
            buffer.append(run.jobsWaiting ? 1 : 0)
            buffer.appendBigEndian(run.maximumOutputBytes)
        case .result(let result):
            buffer.appendLengthPrefixed(result.jobID)
            buffer.appendBigEndian(result.attempt)
            buffer.append(result.ok ? 1 : 0)
            buffer.appendBigEndian(result.durationMicroseconds)
            buffer.appendField(result.output)
            buffer.append(result.truncated ? 1 : 0)
            buffer.appendField(result.detail)
        case .stop:
            break
        case .progress(let progress):
            buffer.appendLengthPrefixed(progress.jobID)
            buffer.appendBigEndian(progress.attempt)
            buffer.append(progress.percent)
            buffer.appendLengthPrefixed(progress.note)
        }
        FrameHeader.patchLength(in: &buffer, headerStart: headerStart)
    }

    /// The whole frame as a new array.
    public var encoded: [UInt8] {
        var buffer: [UInt8] = []
        encode(into: &buffer)
        return buffer
    }

    /// Decodes a frame body of the given kind.
    public static func decode(kind: UInt8, body: ArraySlice<UInt8>) throws(FrameError) -> Message {
        guard let kind = Kind(rawValue: kind) else { throw .unknownKind(kind) }
        var reader = BodyReader(body: body)
        let message: Message
        switch kind {
        case .ready:
            let pid: Int32 = try reader.integer("pid")
            let version = try reader.byte("protocol_version")
            message = .ready(Ready(pid: pid, protocolVersion: version, version: try reader.string("version")))
        case .run:
            let jobID = try reader.string("job_id")
            let attempt: UInt32 = try reader.integer("attempt")
            let timeout: UInt64 = try reader.integer("timeout_ms")
            let payload = try reader.field("payload")
            let waiting = try reader.flag("jobs_waiting")
            let limit: UInt32 = try reader.integer("max_output_bytes")
            message = .run(
                Run(
                    jobID: jobID, attempt: attempt, payload: payload, timeoutMilliseconds: timeout,
                    jobsWaiting: waiting, maximumOutputBytes: limit))
        case .result:
            let jobID = try reader.string("job_id")
            let attempt: UInt32 = try reader.integer("attempt")
            let ok = try reader.flag("ok")
            let duration: UInt64 = try reader.integer("duration_us")
            let output = try reader.field("output")
            let truncated = try reader.flag("flags")
            let detail = try reader.field("detail")
            guard detail.count <= maximumDetailBytes else {
                throw .invalidField("detail of \(detail.count) bytes (limit \(maximumDetailBytes))")
            }
            message = .result(
                Result(
                    jobID: jobID, attempt: attempt, ok: ok, output: output, durationMicroseconds: duration,
                    truncated: truncated, detail: detail))
        case .stop:
            message = .stop
        case .progress:
            let jobID = try reader.string("job_id")
            let attempt: UInt32 = try reader.integer("attempt")
            let percent = try reader.byte("percent")
            guard percent <= 100 else { throw .invalidField("percent \(percent) (0-100)") }
            let note = try reader.string("note")
            guard note.utf8.count <= maximumNoteBytes else {
                throw .invalidField("note of \(note.utf8.count) bytes (limit \(maximumNoteBytes))")
            }
            message = .progress(Progress(jobID: jobID, attempt: attempt, percent: percent, note: note))
        }
        guard reader.isAtEnd else { throw .invalidField("trailing bytes after \(kind)") }
        return message
    }
}

extension Array where Element == UInt8 {
    /// Appends a length-prefixed (UInt32) byte field.
    fileprivate mutating func appendField(_ bytes: [UInt8]) {
        appendBigEndian(UInt32(bytes.count))
        append(contentsOf: bytes)
    }
}

/// Reads fixed-width integers and length-prefixed fields from a frame body.
private struct BodyReader {
    let body: ArraySlice<UInt8>
    var index: Int

    init(body: ArraySlice<UInt8>) {
        self.body = body
        self.index = body.startIndex
    }

    var isAtEnd: Bool { index == body.endIndex }

    mutating func byte(_ field: String) throws(FrameError) -> UInt8 {
        guard index < body.endIndex else { throw .truncated(field: field) }
        defer { index += 1 }
        return body[index]
    }

    /// A byte that must be 0 or 1.
    mutating func flag(_ field: String) throws(FrameError) -> Bool {
        let value = try byte(field)
        guard value <= 1 else { throw .invalidField(field) }
        return value == 1
    }

    mutating func integer<T: FixedWidthInteger>(_ field: String) throws(FrameError) -> T {
        let size = MemoryLayout<T>.size
        guard body.endIndex - index >= size else { throw .truncated(field: field) }
        var value: T = 0
        for offset in 0..<size { value = value << 8 | T(truncatingIfNeeded: body[index + offset]) }
        index += size
        return value
    }

    /// The bytes of the length-prefixed (UInt32) field at the reading position, without copying them.
    private mutating func fieldBytes(_ field: String) throws(FrameError) -> ArraySlice<UInt8> {
        let length: UInt32 = try integer(field)
        guard body.endIndex - index >= Int(length) else { throw .truncated(field: field) }
        defer { index += Int(length) }
        return body[index..<(index + Int(length))]
    }

    mutating func field(_ field: String) throws(FrameError) -> [UInt8] {
        Array(try fieldBytes(field))
    }

    mutating func string(_ name: String) throws(FrameError) -> String {
        // Validated straight from the frame's bytes: no intermediate array.
        let text = try fieldBytes(name).withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) }
        guard let text else { throw .invalidField(name) }
        return text
    }
}
