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

    fileprivate enum Kind: UInt8 {
        case accepted = 1
        case started = 2
        case attemptFailed = 3
        case succeeded = 4
        case canceled = 5
        case snapshot = 6
        case interrupted = 7
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

    /// Appends `event` as a framed record to `buffer`.
    static func encode(_ event: JobEvent, into buffer: inout [UInt8]) {
        let headerStart = buffer.count
        buffer.append(contentsOf: magic)
        buffer.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0])
        var fields = FieldWriter(buffer: buffer)
        switch event {
        case .accepted(let spec, let sequence, let at):
            fields.kind(.accepted)
            fields.string(.id, spec.id)
            fields.string(.payload, spec.payload)
            fields.integer(.maxRetries, UInt32(spec.maxRetries))
            fields.integer(.sequence, sequence)
            fields.integer(.at, at)
        case .started(let id, let attempt, let at):
            fields.kind(.started)
            fields.string(.id, id)
            fields.integer(.attempt, UInt32(attempt))
            fields.integer(.at, at)
        case .attemptFailed(let id, let attempt, let outcome, let error, let runMicroseconds, let retryAt, let at):
            fields.kind(.attemptFailed)
            fields.string(.id, id)
            fields.integer(.attempt, UInt32(attempt))
            fields.integer(.outcome, outcome.code)
            fields.string(.error, error)
            fields.integer(.runMicroseconds, runMicroseconds)
            if let retryAt { fields.integer(.retryAt, retryAt) }
            fields.integer(.at, at)
        case .succeeded(let id, let attempt, let result, let runMicroseconds, let at):
            fields.kind(.succeeded)
            fields.string(.id, id)
            fields.integer(.attempt, UInt32(attempt))
            fields.string(.result, result)
            fields.integer(.runMicroseconds, runMicroseconds)
            fields.integer(.at, at)
        case .canceled(let id, let at):
            fields.kind(.canceled)
            fields.string(.id, id)
            fields.integer(.at, at)
        case .interrupted(let id, let attempt, let error, let at):
            fields.kind(.interrupted)
            fields.string(.id, id)
            fields.integer(.attempt, UInt32(attempt))
            fields.string(.error, error)
            fields.integer(.at, at)
        case .snapshot(let job):
            fields.kind(.snapshot)
            fields.string(.id, job.id)
            fields.string(.payload, job.payload)
            fields.integer(.maxRetries, UInt32(job.maxRetries))
            fields.integer(.sequence, job.sequence)
            fields.integer(.createdAt, job.createdAt)
            fields.integer(.state, job.state.code)
            fields.integer(.attempts, UInt32(job.attempts))
            if let lastError = job.lastError { fields.string(.error, lastError) }
            if let result = job.result { fields.string(.result, result) }
            fields.integer(.updatedAt, job.updatedAt)
            if let nextAttemptAt = job.nextAttemptAt { fields.integer(.nextAttemptAt, nextAttemptAt) }
        }
        buffer = fields.buffer
        let bodyLength = UInt32(buffer.count - headerStart - headerSize)
        FrameHeader.patchBigEndian(bodyLength, in: &buffer, at: headerStart + 4)
        let checksum = CRC32.checksum(buffer[(headerStart + 4)..<(headerStart + 8)], buffer[(headerStart + headerSize)...])
        FrameHeader.patchBigEndian(checksum, in: &buffer, at: headerStart + 8)
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
            let spec = JobSpec(
                id: try fields.string(.id), payload: try fields.string(.payload),
                maxRetries: Int(try fields.integer(.maxRetries, as: UInt32.self)))
            return .accepted(spec, sequence: try fields.integer(.sequence), at: try fields.integer(.at))
        case .started:
            return .started(
                id: try fields.string(.id), attempt: Int(try fields.integer(.attempt, as: UInt32.self)),
                at: try fields.integer(.at))
        case .attemptFailed:
            guard let outcome = AttemptOutcome(code: try fields.integer(.outcome, default: AttemptOutcome.error.code))
            else { throw .malformed("unknown attempt outcome") }
            return .attemptFailed(
                id: try fields.string(.id), attempt: Int(try fields.integer(.attempt, as: UInt32.self)),
                outcome: outcome, error: try fields.string(.error), runMicroseconds: try fields.integer(.runMicroseconds, default: 0),
                retryAt: try fields.optionalInteger(.retryAt), at: try fields.integer(.at))
        case .succeeded:
            return .succeeded(
                id: try fields.string(.id), attempt: Int(try fields.integer(.attempt, as: UInt32.self)),
                result: try fields.string(.result), runMicroseconds: try fields.integer(.runMicroseconds, default: 0),
                at: try fields.integer(.at))
        case .canceled:
            return .canceled(id: try fields.string(.id), at: try fields.integer(.at))
        case .interrupted:
            return .interrupted(
                id: try fields.string(.id), attempt: Int(try fields.integer(.attempt, as: UInt32.self)),
                error: try fields.string(.error), at: try fields.integer(.at))
        case .snapshot:
            guard let state = JobState(code: try fields.integer(.state)) else { throw .malformed("unknown job state") }
            return .snapshot(
                Job(
                    restoring: try fields.string(.id), payload: try fields.string(.payload),
                    maxRetries: Int(try fields.integer(.maxRetries, as: UInt32.self)),
                    sequence: try fields.integer(.sequence), createdAt: try fields.integer(.createdAt), state: state,
                    attempts: Int(try fields.integer(.attempts, as: UInt32.self)),
                    lastError: try fields.optionalString(.error), result: try fields.optionalString(.result),
                    updatedAt: try fields.integer(.updatedAt), nextAttemptAt: try fields.optionalInteger(.nextAttemptAt)))
        }
    }
}

extension JobState {
    /// The state's number in journal records.
    var code: UInt8 {
        switch self {
        case .queued: return 0
        case .running: return 1
        case .done: return 2
        case .failed: return 3
        case .canceled: return 4
        }
    }

    /// The state with this journal number.
    init?(code: UInt8) {
        guard let state = JobState.allCases.first(where: { $0.code == code }) else { return nil }
        self = state
    }
}

extension AttemptOutcome {
    /// The outcome's number in journal records.
    var code: UInt8 {
        switch self {
        case .ok: return 0
        case .error: return 1
        case .crash: return 2
        case .timeout: return 3
        case .protocol: return 4
        case .interrupted: return 5
        case .canceled: return 6
        }
    }

    /// The outcome with this journal number.
    init?(code: UInt8) {
        guard let outcome = AttemptOutcome.allCases.first(where: { $0.code == code }) else { return nil }
        self = outcome
    }
}

/// Appends tagged fields to a record body.
private struct FieldWriter {
    var buffer: [UInt8]

    mutating func kind(_ kind: JournalRecord.Kind) {
        buffer.append(kind.rawValue)
    }

    mutating func string(_ tag: JournalRecord.Tag, _ text: String) {
        buffer.append(tag.rawValue)
        buffer.appendLengthPrefixed(text)
    }

    mutating func integer<T: FixedWidthInteger>(_ tag: JournalRecord.Tag, _ value: T) {
        buffer.append(tag.rawValue)
        buffer.appendBigEndian(UInt32(MemoryLayout<T>.size))
        buffer.appendBigEndian(value)
    }
}

/// Reads a record body's kind and its tagged fields.
private struct FieldReader {
    let body: ArraySlice<UInt8>
    var index: Int

    init(_ body: ArraySlice<UInt8>) {
        self.body = body
        self.index = body.startIndex
    }

    mutating func kind() throws(JournalRecord.DecodeError) -> UInt8 {
        guard index < body.endIndex else { throw .malformed("empty record") }
        defer { index += 1 }
        return body[index]
    }

    /// Every field, by tag (the last of repeated tags wins); unknown tags are kept and ignored.
    mutating func fields() throws(JournalRecord.DecodeError) -> RecordFields {
        var values: [UInt8: ArraySlice<UInt8>] = [:]
        while index < body.endIndex {
            guard body.endIndex - index >= 5 else { throw .malformed("field header past end of record") }
            let tag = body[index]
            let length = Int((1...4).reduce(UInt32(0)) { $0 << 8 | UInt32(body[index + $1]) })
            index += 5
            guard body.endIndex - index >= length else { throw .malformed("field \(tag) past end of record") }
            values[tag] = body[index..<(index + length)]
            index += length
        }
        return RecordFields(values: values)
    }
}

/// A record body's fields by tag.
private struct RecordFields {
    let values: [UInt8: ArraySlice<UInt8>]

    func string(_ tag: JournalRecord.Tag) throws(JournalRecord.DecodeError) -> String {
        guard let value = values[tag.rawValue] else { throw .malformed("missing field \(tag)") }
        guard let text = String(validating: value, as: UTF8.self) else { throw .malformed("invalid UTF-8 in \(tag)") }
        return text
    }

    func optionalString(_ tag: JournalRecord.Tag) throws(JournalRecord.DecodeError) -> String? {
        values[tag.rawValue] == nil ? nil : try string(tag)
    }

    func integer<T: FixedWidthInteger>(_ tag: JournalRecord.Tag, as type: T.Type = T.self) throws(JournalRecord.DecodeError)
        -> T
    {
        guard let value = values[tag.rawValue] else { throw .malformed("missing field \(tag)") }
        guard value.count == MemoryLayout<T>.size else { throw .malformed("field \(tag) has \(value.count) bytes") }
        return value.reduce(T(0)) { $0 << 8 | T(truncatingIfNeeded: $1) }
    }

    func integer<T: FixedWidthInteger>(_ tag: JournalRecord.Tag, default fallback: T) throws(JournalRecord.DecodeError)
        -> T
    {
        values[tag.rawValue] == nil ? fallback : try integer(tag, as: T.self)
    }

    func optionalInteger<T: FixedWidthInteger>(_ tag: JournalRecord.Tag) throws(JournalRecord.DecodeError) -> T? {
        values[tag.rawValue] == nil ? nil : try integer(tag, as: T.self)
    }
}
