import IPC

/// The journal's first format, read once when a journal written by an older Prefork is opened (the startup
/// compaction then rewrites it in the current format, `JournalRecord`).
///
/// On disk: `[UInt32 body length][UInt32 CRC-32 of body][body]`, big-endian, from the first byte of the file;
/// the body is a kind byte and the event's fields (strings as UInt32 length + UTF-8). Nothing marks where a
/// record starts, which is why a damaged record could not be skipped.
enum LegacyJournalRecord {
    private enum Kind: UInt8 {
        case accepted = 1
        case started = 2
        case attemptFailed = 3
        case succeeded = 4
        case canceled = 5
        case snapshot = 6
        case interrupted = 7
    }

    /// Header bytes before each body.
    static let headerSize = 8
    /// Largest body replay accepts; anything larger is corruption.
    static let maximumBodyLength = 64 << 20

    /// Appends `event` as a framed record to `buffer`.
    static func encode(_ event: JobEvent, into buffer: inout [UInt8]) {
        let headerStart = buffer.count
        buffer.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0])
        let bodyStart = buffer.count
        switch event {
        case .accepted(let spec, let sequence, let at):
            buffer.append(Kind.accepted.rawValue)
            buffer.appendLengthPrefixed(spec.id)
            buffer.appendLengthPrefixed(spec.payload.description)
            buffer.appendBigEndian(UInt32(spec.maxRetries))
            buffer.appendBigEndian(sequence)
            buffer.appendBigEndian(at)
        case .started(let id, let attempt, _, let at):
            buffer.append(Kind.started.rawValue)
            buffer.appendLengthPrefixed(id)
            buffer.appendBigEndian(UInt32(attempt))
            buffer.appendBigEndian(at)
        case .attemptFailed(let id, let attempt, _, let error, _, _, let retryAt, let at):
            buffer.append(Kind.attemptFailed.rawValue)
            buffer.appendLengthPrefixed(id)
            buffer.appendBigEndian(UInt32(attempt))
            buffer.appendLengthPrefixed(error)
            buffer.appendOptional(retryAt)
            buffer.appendBigEndian(at)
        case .succeeded(let id, _, let result, _, _, _, let at):
            buffer.append(Kind.succeeded.rawValue)
            buffer.appendLengthPrefixed(id)
            buffer.appendLengthPrefixed(result.description)
            buffer.appendBigEndian(at)
        case .canceled(let id, let at):
            buffer.append(Kind.canceled.rawValue)
            buffer.appendLengthPrefixed(id)
            buffer.appendBigEndian(at)
        case .interrupted(let id, let attempt, let error, let at):
            buffer.append(Kind.interrupted.rawValue)
            buffer.appendLengthPrefixed(id)
            buffer.appendBigEndian(UInt32(attempt))
            buffer.appendLengthPrefixed(error)
            buffer.appendBigEndian(at)
        case .retried, .callback, .dispatchPaused:
            preconditionFailure("the first journal format has no \(event.summary) record")
        case .snapshot(let job):
            buffer.append(Kind.snapshot.rawValue)
            buffer.appendLengthPrefixed(job.id)
            buffer.appendLengthPrefixed(job.payload.description)
            buffer.appendBigEndian(UInt32(job.maxRetries))
            buffer.appendBigEndian(job.sequence)
            buffer.appendBigEndian(job.createdAt)
            buffer.append(UInt8(JobState.allCases.firstIndex(of: job.state)!))
            buffer.appendBigEndian(UInt32(job.attempts))
            buffer.appendOptional(job.lastError)
            buffer.appendOptional(job.result?.description)
            buffer.appendBigEndian(job.updatedAt)
            buffer.appendOptional(job.nextAttemptAt)
        }
        FrameHeader.patchBigEndian(UInt32(buffer.count - bodyStart), in: &buffer, at: headerStart)
        FrameHeader.patchBigEndian(CRC32.checksum(buffer[bodyStart...]), in: &buffer, at: headerStart + 4)
    }

    /// Why bytes at some offset are not a valid record.
    enum DecodeError: Error, Equatable {
        /// Fewer bytes than the header announces (a torn write).
        case truncated
        /// The checksum does not match (corruption).
        case checksumMismatch
        /// The body checks out but does not decode (a bug or a foreign file).
        case malformed(String)
    }

    /// Decodes the record at `offset`; returns it and the offset after it.
    static func decode(_ bytes: [UInt8], at offset: Int) throws(DecodeError) -> (JobEvent, next: Int) {
        guard bytes.count - offset >= headerSize else { throw .truncated }
        var header = ByteReader(bytes[offset..<(offset + headerSize)])
        let length = Int(try header.integer(UInt32.self))
        let checksum = try header.integer(UInt32.self)
        guard length <= maximumBodyLength else { throw .malformed("record length \(length)") }
        let bodyStart = offset + headerSize
        guard bytes.count - bodyStart >= length else { throw .truncated }
        let body = bytes[bodyStart..<(bodyStart + length)]
        guard CRC32.checksum(body) == checksum else { throw .checksumMismatch }
        var reader = ByteReader(body)
        let record = try decodeBody(&reader)
        guard reader.isAtEnd else { throw .malformed("trailing bytes in record") }
        return (record, bodyStart + length)
    }

    private static func decodeBody(_ reader: inout ByteReader) throws(DecodeError) -> JobEvent {
        guard let kind = Kind(rawValue: try reader.integer(UInt8.self)) else { throw .malformed("unknown record kind") }
        switch kind {
        case .accepted:
            let spec = JobSpec(
                id: try reader.string(), payload: ByteString(try reader.string()),
                maxRetries: Int(try reader.integer(UInt32.self)))
            return .accepted(spec, sequence: try reader.integer(UInt64.self), at: try reader.integer(Int64.self))
        case .started:
            return .started(
                id: try reader.string(), attempt: Int(try reader.integer(UInt32.self)),
                at: try reader.integer(Int64.self))
        case .attemptFailed:
            // This format keeps neither the outcome nor the run time: replay needs neither.
            return .attemptFailed(
                id: try reader.string(), attempt: Int(try reader.integer(UInt32.self)), outcome: .error,
                error: try reader.string(), runMicroseconds: 0, retryAt: try reader.optionalInteger(),
                at: try reader.integer(Int64.self))
        case .succeeded:
            return .succeeded(
                id: try reader.string(), attempt: 0, result: ByteString(try reader.string()), runMicroseconds: 0,
                at: try reader.integer(Int64.self))
        case .canceled:
            return .canceled(id: try reader.string(), at: try reader.integer(Int64.self))
        case .interrupted:
            return .interrupted(
                id: try reader.string(), attempt: Int(try reader.integer(UInt32.self)), error: try reader.string(),
                at: try reader.integer(Int64.self))
        case .snapshot:
            let id = try reader.string()
            let payload = try reader.string()
            let maxRetries = Int(try reader.integer(UInt32.self))
            let sequence = try reader.integer(UInt64.self)
            let createdAt = try reader.integer(Int64.self)
            let stateIndex = Int(try reader.integer(UInt8.self))
            guard stateIndex < JobState.allCases.count else { throw .malformed("unknown job state") }
            return .snapshot(
                Job(
                    restoring: Job.Snapshot(
                        spec: JobSpec(id: id, payload: ByteString(payload), maxRetries: maxRetries), sequence: sequence,
                        createdAt: createdAt, state: JobState.allCases[stateIndex],
                        attempts: Int(try reader.integer(UInt32.self)), lastError: try reader.optionalString(),
                        result: try reader.optionalString().map { ByteString($0) }, updatedAt: try reader.integer(Int64.self),
                        nextAttemptAt: try reader.optionalInteger())))
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate mutating func appendOptional(_ text: String?) {
        append(text == nil ? 0 : 1)
        if let text { appendLengthPrefixed(text) }
    }

    fileprivate mutating func appendOptional(_ value: Int64?) {
        append(value == nil ? 0 : 1)
        if let value { appendBigEndian(value) }
    }
}

/// Reads big-endian integers and length-prefixed strings from a record body.
private struct ByteReader {
    let bytes: ArraySlice<UInt8>
    var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    var isAtEnd: Bool { index == bytes.endIndex }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws(LegacyJournalRecord.DecodeError) -> T {
        let size = MemoryLayout<T>.size
        guard bytes.endIndex - index >= size else { throw .malformed("field past end of record") }
        var value: T = 0
        for offset in 0..<size { value = value << 8 | T(truncatingIfNeeded: bytes[index + offset]) }
        index += size
        return value
    }

    mutating func string() throws(LegacyJournalRecord.DecodeError) -> String {
        let length = Int(try integer(UInt32.self))
        guard bytes.endIndex - index >= length else { throw .malformed("string past end of record") }
        defer { index += length }
        guard let text = String(validating: bytes[index..<(index + length)], as: UTF8.self) else {
            throw .malformed("invalid UTF-8")
        }
        return text
    }

    mutating func optionalString() throws(LegacyJournalRecord.DecodeError) -> String? {
        try integer(UInt8.self) == 0 ? nil : try string()
    }

    mutating func optionalInteger() throws(LegacyJournalRecord.DecodeError) -> Int64? {
        try integer(UInt8.self) == 0 ? nil : try integer(Int64.self)
    }
}
