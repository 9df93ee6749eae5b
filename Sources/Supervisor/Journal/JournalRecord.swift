import IPC

/// How a job event is stored in the journal (format 2): a self-synchronising frame, so that a reader can find the
/// next intact record after damage, around a body of tagged fields, so that later versions can add fields that
/// earlier ones skip.
///
/// ```
/// record:  magic "PFR2" (4) | body length u32 (4) | CRC-32 of length and body u32 (4) | body
/// body:    kind u8, then fields: tag u8 | length u32 | value
/// values:  integers big-endian (u8, u32, u64, i64), strings UTF-8, bytes raw, nested fields for a whole job
/// ```
enum JournalRecord {
    /// The four bytes every record starts with.
    static let magic: [UInt8] = [0x50, 0x46, 0x52, 0x32]
    /// Bytes before each body: magic, length, checksum.
    static let headerSize = 12
    /// Largest body a reader accepts; anything larger is damage.
    static let maximumBodyLength = 64 << 20

    enum Kind: UInt8 {
        case accepted = 1
        case started = 2
        case attemptFailed = 3
        case succeeded = 4
        case canceled = 5
        case snapshot = 6
        case interrupted = 7
        case retried = 8
        case callback = 9
        case dispatchPaused = 10
    }

    /// Field tags. A reader skips tags it does not know; a missing field takes its default.
    enum Tag: UInt8 {
        case id = 1
        case payload = 2
        case maxRetries = 3
        case sequence = 4
        case at = 5
        case attempt = 6
        case error = 7
        case retryAt = 8
        case result = 9
        case outcome = 10
        case runMicroseconds = 11
        case state = 12
        case attempts = 13
        case createdAt = 14
        case updatedAt = 15
        case nextAttemptAt = 16
        case priority = 17
        case timeoutMilliseconds = 18
        case callbackURL = 19
        case runAt = 20
        case workerPID = 21
        case truncated = 22
        case detail = 23
        case attemptsBeforeRetry = 24
        /// The attempts of a snapshot: entries of [u32 length][fields], each with tags attempt, at (start),
        /// updatedAt (end), workerPID, outcome, error, detail.
        case history = 25
        case callbackState = 26
        case callbackAttempts = 27
        case callbackError = 28
        case callbackNextAt = 29
        case paused = 30
    }

    /// Why bytes at some offset are not a valid record.
    enum DecodeError: Error, Equatable, CustomStringConvertible {
        /// Fewer bytes than the header announces (a torn write, if nothing valid follows).
        case truncated
        /// No record magic at this offset.
        case badMagic
        /// The checksum does not match (corruption).
        case checksumMismatch
        /// The body checks out but does not decode (a bug or a foreign file).
        case malformed(String)

        /// One line for logs.
        var description: String {
            switch self {
            case .truncated: return "truncated record"
            case .badMagic: return "no record starts here"
            case .checksumMismatch: return "checksum mismatch"
            case .malformed(let why): return "malformed record: \(why)"
            }
        }
    }

    // MARK: Encoding

    /// Appends `event` as a framed record to `buffer`: the fields are measured, written into one scratch
    /// allocation (on the stack when small) with the header, checksummed there, and appended with one copy.
    static func encode(_ event: JobEvent, into buffer: inout [UInt8]) {
        var size = FieldSizer()
        fields(of: event, to: &size)
        let total = headerSize + size.count
        withUnsafeTemporaryAllocation(byteCount: total, alignment: 1) { scratch in
            var writer = FieldStorer(base: scratch.baseAddress!, offset: 0)
            for byte in magic { writer.byte(byte) }
            writer.bigEndian(UInt32(size.count))
            writer.bigEndian(UInt32(0))
            fields(of: event, to: &writer)
            let record = UnsafeRawBufferPointer(scratch)
            let checksum = CRC32.checksum(
                UnsafeRawBufferPointer(rebasing: record[4..<8]), UnsafeRawBufferPointer(rebasing: record[headerSize...]))
            scratch.storeBytes(of: checksum.bigEndian, toByteOffset: 8, as: UInt32.self)
            buffer.append(contentsOf: record)
        }
    }

    /// The event's kind and fields, in order, to a sink that measures or writes them.
    private static func fields<Sink: FieldSink>(of event: JobEvent, to sink: inout Sink) {
        switch event {
        case .accepted(let spec, let sequence, let at):
            sink.kind(.accepted)
            sink.string(.id, spec.id)
            sink.bytes(.payload, spec.payload.bytes)
            sink.integer(.maxRetries, UInt32(spec.maxRetries))
            sink.integer(.sequence, sequence)
            sink.integer(.at, at)
            if spec.priority != 0 { sink.integer(.priority, UInt8(spec.priority)) }
            if let timeout = spec.timeoutMilliseconds { sink.integer(.timeoutMilliseconds, UInt32(timeout)) }
            if let runAt = spec.runAt(acceptedAt: at) { sink.integer(.runAt, runAt) }  // a delay, as the time it names
            if let url = spec.callbackURL { sink.string(.callbackURL, url) }
        case .started(let id, let attempt, let workerPID, let at):
            sink.kind(.started)
            sink.string(.id, id)
            sink.integer(.attempt, UInt32(attempt))
            sink.integer(.at, at)
            if workerPID != 0 { sink.integer(.workerPID, workerPID) }
        case .attemptFailed(let id, let attempt, let outcome, let error, let detail, let runMicroseconds, let retryAt, let at):
            sink.kind(.attemptFailed)
            sink.string(.id, id)
            sink.integer(.attempt, UInt32(attempt))
            sink.integer(.outcome, outcome.code)
            sink.string(.error, error)
            sink.integer(.runMicroseconds, runMicroseconds)
            if let retryAt { sink.integer(.retryAt, retryAt) }
            sink.integer(.at, at)
            if !detail.isEmpty { sink.bytes(.detail, detail) }
        case .succeeded(let id, let attempt, let result, let truncated, let detail, let runMicroseconds, let at):
            sink.kind(.succeeded)
            sink.string(.id, id)
            sink.integer(.attempt, UInt32(attempt))
            sink.bytes(.result, result.bytes)
            sink.integer(.runMicroseconds, runMicroseconds)
            sink.integer(.at, at)
            if truncated { sink.integer(.truncated, UInt8(1)) }
            if !detail.isEmpty { sink.bytes(.detail, detail) }
        case .canceled(let id, let at):
            sink.kind(.canceled)
            sink.string(.id, id)
            sink.integer(.at, at)
        case .interrupted(let id, let attempt, let error, let at):
            sink.kind(.interrupted)
            sink.string(.id, id)
            sink.integer(.attempt, UInt32(attempt))
            sink.string(.error, error)
            sink.integer(.at, at)
        case .retried(let id, let at):
            sink.kind(.retried)
            sink.string(.id, id)
            sink.integer(.at, at)
        case .callback(let id, let status, let at):
            sink.kind(.callback)
            sink.string(.id, id)
            sink.integer(.at, at)
            callbackFields(status, to: &sink)
        case .dispatchPaused(let paused, let at):
            sink.kind(.dispatchPaused)
            sink.integer(.paused, UInt8(paused ? 1 : 0))
            sink.integer(.at, at)
        case .snapshot(let job):
            sink.kind(.snapshot)
            sink.string(.id, job.id)
            sink.bytes(.payload, job.payload.bytes)
            sink.integer(.maxRetries, UInt32(job.maxRetries))
            sink.integer(.sequence, job.sequence)
            sink.integer(.createdAt, job.createdAt)
            sink.integer(.state, job.state.code)
            sink.integer(.attempts, UInt32(job.attempts))
            if let lastError = job.lastError { sink.string(.error, lastError) }
            if let result = job.result { sink.bytes(.result, result.bytes) }
            sink.integer(.updatedAt, job.updatedAt)
            if let nextAttemptAt = job.nextAttemptAt { sink.integer(.nextAttemptAt, nextAttemptAt) }
            if job.priority != 0 { sink.integer(.priority, UInt8(job.priority)) }
            if let timeout = job.timeoutMilliseconds { sink.integer(.timeoutMilliseconds, UInt32(timeout)) }
            if let url = job.callbackURL { sink.string(.callbackURL, url) }
            if job.resultTruncated { sink.integer(.truncated, UInt8(1)) }
            if job.attemptsBeforeRetry != 0 { sink.integer(.attemptsBeforeRetry, UInt32(job.attemptsBeforeRetry)) }
            if !job.history.isEmpty { sink.bytes(.history, encodeHistory(job.history)) }
            if let callback = job.callback { callbackFields(callback, to: &sink) }
        }
    }

    private static func callbackFields<Sink: FieldSink>(_ status: CallbackStatus, to sink: inout Sink) {
        sink.integer(.callbackState, status.state.code)
        sink.integer(.callbackAttempts, UInt32(status.attempts))
        if let error = status.lastError { sink.string(.callbackError, error) }
        if let at = status.nextAttemptAt { sink.integer(.callbackNextAt, at) }
    }

    /// A job's attempts as one field value: per attempt, its length and its tagged fields.
    private static func encodeHistory(_ history: [AttemptRecord]) -> [UInt8] {
        var bytes: [UInt8] = []
        for entry in history {
            var fields: [UInt8] = []
            fields.appendField(.attempt, UInt32(entry.attempt))
            fields.appendField(.at, entry.startedAt)
            if let finishedAt = entry.finishedAt { fields.appendField(.updatedAt, finishedAt) }
            if entry.workerPID != 0 { fields.appendField(.workerPID, entry.workerPID) }
            if let outcome = entry.outcome { fields.appendField(.outcome, outcome.code) }
            if let error = entry.error { fields.appendField(.error, Array(error.utf8)) }
            if !entry.stderr.isEmpty { fields.appendField(.detail, entry.stderr) }
            bytes.appendBigEndian(UInt32(fields.count))
            bytes.append(contentsOf: fields)
        }
        return bytes
    }

    private static func decodeHistory(_ bytes: ArraySlice<UInt8>) throws(DecodeError) -> [AttemptRecord] {
        var history: [AttemptRecord] = []
        var index = bytes.startIndex
        while index < bytes.endIndex {
            guard bytes.endIndex - index >= 4 else { throw .malformed("history entry header past end") }
            var length = 0
            for offset in 0..<4 { length = length << 8 | Int(bytes[index + offset]) }
            index += 4
            guard bytes.endIndex - index >= length else { throw .malformed("history entry past end") }
            var reader = FieldReader(bytes[index..<(index + length)])
            let fields = try reader.fields()
            index += length
            var outcome: AttemptOutcome?
            if let code: UInt8 = try fields.optionalInteger(.outcome) {
                guard let known = AttemptOutcome(code: code) else { throw .malformed("unknown attempt outcome") }
                outcome = known
            }
            history.append(
                AttemptRecord(
                    attempt: Int(try fields.integer(.attempt, as: UInt32.self)), startedAt: try fields.integer(.at),
                    finishedAt: try fields.optionalInteger(.updatedAt), workerPID: try fields.integer(.workerPID, default: 0),
                    outcome: outcome, error: try fields.optionalString(.error), stderr: try fields.bytes(.detail, default: [])))
        }
        return history
    }

    private static func decodeCallback(_ fields: RecordFields) throws(DecodeError) -> CallbackStatus? {
        guard let code: UInt8 = try fields.optionalInteger(.callbackState) else { return nil }
        guard let state = CallbackStatus.State(code: code) else { throw .malformed("unknown callback state") }
        return CallbackStatus(
            state: state, attempts: Int(try fields.integer(.callbackAttempts, as: UInt32.self)),
            lastError: try fields.optionalString(.callbackError), nextAttemptAt: try fields.optionalInteger(.callbackNextAt))
    }

    // MARK: Decoding

    /// Decodes the record at `offset`; returns it and the offset after it.
    static func decode(_ bytes: [UInt8], at offset: Int) throws(DecodeError) -> (JobEvent, next: Int) {
        let available = bytes.count - offset
        for index in 0..<min(4, available) where bytes[offset + index] != magic[index] { throw .badMagic }
        guard available >= headerSize else { throw .truncated }
        let length = Int(bigEndian32(bytes, offset + 4))
        guard length <= maximumBodyLength else { throw .malformed("record length \(length)") }
        let bodyStart = offset + headerSize
        guard bytes.count - bodyStart >= length else { throw .truncated }
        let body = bytes[bodyStart..<(bodyStart + length)]
        guard CRC32.checksum(bytes[(offset + 4)..<(offset + 8)], body) == bigEndian32(bytes, offset + 8) else {
            throw .checksumMismatch
        }
        return (try decodeBody(body), bodyStart + length)
    }

    private static func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[offset + $1]) }
    }

    private static func decodeBody(_ body: ArraySlice<UInt8>) throws(DecodeError) -> JobEvent {
        var reader = FieldReader(body)
        guard let kind = Kind(rawValue: try reader.kind()) else { throw .malformed("unknown record kind") }
        let fields = try reader.fields()
        switch kind {
        case .accepted:
            let timeout: UInt32? = try fields.optionalInteger(.timeoutMilliseconds)
            let spec = JobSpec(
                id: try fields.string(.id), payload: ByteString(try fields.bytes(.payload)),
                maxRetries: Int(try fields.integer(.maxRetries, as: UInt32.self)),
                priority: try priority(fields), timeoutMilliseconds: timeout.map(Int.init),
                runAt: try fields.optionalInteger(.runAt), callbackURL: try fields.optionalString(.callbackURL))
            return .accepted(spec, sequence: try fields.integer(.sequence), at: try fields.integer(.at))
        case .started:
            return .started(
                id: try fields.string(.id), attempt: Int(try fields.integer(.attempt, as: UInt32.self)),
                workerPID: try fields.integer(.workerPID, default: 0), at: try fields.integer(.at))
        case .attemptFailed:
            guard let outcome = AttemptOutcome(code: try fields.integer(.outcome, default: AttemptOutcome.error.code))
            else { throw .malformed("unknown attempt outcome") }
            return .attemptFailed(
                id: try fields.string(.id), attempt: Int(try fields.integer(.attempt, as: UInt32.self)),
                outcome: outcome, error: try fields.string(.error), detail: try fields.bytes(.detail, default: []),
                runMicroseconds: try fields.integer(.runMicroseconds, default: 0),
                retryAt: try fields.optionalInteger(.retryAt), at: try fields.integer(.at))
        case .succeeded:
            return .succeeded(
                id: try fields.string(.id), attempt: Int(try fields.integer(.attempt, as: UInt32.self)),
                result: ByteString(try fields.bytes(.result)),
                truncated: try fields.integer(.truncated, default: UInt8(0)) != 0,
                detail: try fields.bytes(.detail, default: []),
                runMicroseconds: try fields.integer(.runMicroseconds, default: 0), at: try fields.integer(.at))
        case .canceled:
            return .canceled(id: try fields.string(.id), at: try fields.integer(.at))
        case .interrupted:
            return .interrupted(
                id: try fields.string(.id), attempt: Int(try fields.integer(.attempt, as: UInt32.self)),
                error: try fields.string(.error), at: try fields.integer(.at))
        case .retried:
            return .retried(id: try fields.string(.id), at: try fields.integer(.at))
        case .callback:
            guard let status = try decodeCallback(fields) else { throw .malformed("callback record without a state") }
            return .callback(id: try fields.string(.id), status, at: try fields.integer(.at))
        case .dispatchPaused:
            return .dispatchPaused(try fields.integer(.paused, as: UInt8.self) != 0, at: try fields.integer(.at))
        case .snapshot:
            guard let state = JobState(code: try fields.integer(.state)) else { throw .malformed("unknown job state") }
            let timeout: UInt32? = try fields.optionalInteger(.timeoutMilliseconds)
            let spec = JobSpec(
                id: try fields.string(.id), payload: ByteString(try fields.bytes(.payload)),
                maxRetries: Int(try fields.integer(.maxRetries, as: UInt32.self)), priority: try priority(fields),
                timeoutMilliseconds: timeout.map(Int.init), callbackURL: try fields.optionalString(.callbackURL))
            let result: [UInt8]? = try fields.optionalBytes(.result)
            return .snapshot(
                Job(
                    restoring: Job.Snapshot(
                        spec: spec, sequence: try fields.integer(.sequence), createdAt: try fields.integer(.createdAt),
                        state: state, attempts: Int(try fields.integer(.attempts, as: UInt32.self)),
                        attemptsBeforeRetry: Int(try fields.integer(.attemptsBeforeRetry, default: UInt32(0))),
                        lastError: try fields.optionalString(.error), result: result.map(ByteString.init),
                        resultTruncated: try fields.integer(.truncated, default: UInt8(0)) != 0,
                        updatedAt: try fields.integer(.updatedAt),
                        nextAttemptAt: try fields.optionalInteger(.nextAttemptAt),
                        history: try fields.optionalBytes(.history).map { (bytes: ArraySlice<UInt8>) throws(DecodeError) in
                            try decodeHistory(bytes)
                        } ?? [],
                        callback: try decodeCallback(fields))))
        }
    }

    private static func priority(_ fields: RecordFields) throws(DecodeError) -> Int {
        let priority = Int(try fields.integer(.priority, default: UInt8(0)))
        guard JobSpec.priorities.contains(priority) else { throw .malformed("priority \(priority)") }
        return priority
    }
}
