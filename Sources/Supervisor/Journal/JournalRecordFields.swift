import IPC

// The pieces of journal record encoding that are not the record layout itself: the numbers of states and
// outcomes in records, and the tagged-field writer and reader.

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

extension CallbackStatus.State {
    /// The state's number in journal records.
    var code: UInt8 {
        switch self {
        case .pending: return 0
        case .delivered: return 1
        case .failed: return 2
        }
    }

    /// The state with this journal number.
    init?(code: UInt8) {
        guard let state = Self.allCases.first(where: { $0.code == code }) else { return nil }
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

/// Where a record's fields go: measured first, then written.
protocol FieldSink {
    mutating func kind(_ kind: JournalRecord.Kind)
    mutating func string(_ tag: JournalRecord.Tag, _ text: String)
    mutating func integer<T: FixedWidthInteger>(_ tag: JournalRecord.Tag, _ value: T)
    mutating func bytes(_ tag: JournalRecord.Tag, _ value: [UInt8])
}

/// Counts the bytes a record body takes.
struct FieldSizer: FieldSink {
    var count = 0

    mutating func kind(_ kind: JournalRecord.Kind) { count += 1 }
    mutating func string(_ tag: JournalRecord.Tag, _ text: String) { count += 5 + text.utf8.count }
    mutating func bytes(_ tag: JournalRecord.Tag, _ value: [UInt8]) { count += 5 + value.count }
    mutating func integer<T: FixedWidthInteger>(_ tag: JournalRecord.Tag, _ value: T) {
        count += 5 + MemoryLayout<T>.size
    }
}

/// Writes tagged fields into memory measured by `FieldSizer` (no bounds or capacity checks per byte).
struct FieldStorer: FieldSink {
    let base: UnsafeMutableRawPointer
    var offset: Int

    mutating func byte(_ value: UInt8) {
        base.storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
        offset += 1
    }

    mutating func bigEndian<T: FixedWidthInteger>(_ value: T) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
    }

    mutating func kind(_ kind: JournalRecord.Kind) { byte(kind.rawValue) }

    mutating func string(_ tag: JournalRecord.Tag, _ text: String) {
        byte(tag.rawValue)
        var text = text
        text.withUTF8 { utf8 in
            bigEndian(UInt32(utf8.count))
            if let source = utf8.baseAddress { (base + offset).copyMemory(from: source, byteCount: utf8.count) }
            offset += utf8.count
        }
    }

    mutating func integer<T: FixedWidthInteger>(_ tag: JournalRecord.Tag, _ value: T) {
        byte(tag.rawValue)
        bigEndian(UInt32(MemoryLayout<T>.size))
        bigEndian(value)
    }

    mutating func bytes(_ tag: JournalRecord.Tag, _ value: [UInt8]) {
        byte(tag.rawValue)
        bigEndian(UInt32(value.count))
        value.withUnsafeBytes { source in
            if let address = source.baseAddress { (base + offset).copyMemory(from: address, byteCount: source.count) }
        }
        offset += value.count
    }
}

extension [UInt8] {
    /// Appends one tagged field (used for the nested entries of a snapshot's history).
    mutating func appendField<T: FixedWidthInteger>(_ tag: JournalRecord.Tag, _ value: T) {
        append(tag.rawValue)
        appendBigEndian(UInt32(MemoryLayout<T>.size))
        appendBigEndian(value)
    }

    mutating func appendField(_ tag: JournalRecord.Tag, _ value: [UInt8]) {
        append(tag.rawValue)
        appendBigEndian(UInt32(value.count))
        append(contentsOf: value)
    }
}

/// Reads a record body's kind and its tagged fields.
struct FieldReader {
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

    /// Every field, by tag (the last of repeated tags wins); tags this version does not know are skipped.
    mutating func fields() throws(JournalRecord.DecodeError) -> RecordFields {
        var fields = RecordFields(body: body)
        while index < body.endIndex {
            guard body.endIndex - index >= 5 else { throw .malformed("field header past end of record") }
            let tag = Int(body[index])
            var length = 0
            for offset in 1...4 { length = length << 8 | Int(body[index + offset]) }
            index += 5
            guard body.endIndex - index >= length else { throw .malformed("field \(tag) past end of record") }
            if tag < RecordFields.tagLimit {
                fields.starts[tag] = index
                fields.ends[tag] = index + length
            }
            index += length
        }
        return fields
    }
}

/// A record body's fields by tag: where each one's value starts and ends in the body (-1: absent). Arrays by tag,
/// not a dictionary: every record of a replay is decoded through here.
struct RecordFields {
    /// Tags from 0 up to this are read; later versions may add higher ones, which are skipped.
    static let tagLimit = 64
    let body: ArraySlice<UInt8>
    var starts = [Int](repeating: -1, count: tagLimit)
    var ends = [Int](repeating: -1, count: tagLimit)

    init(body: ArraySlice<UInt8>) {
        self.body = body
    }

    private func value(_ tag: JournalRecord.Tag) -> ArraySlice<UInt8>? {
        let start = starts[Int(tag.rawValue)]
        return start < 0 ? nil : body[start..<ends[Int(tag.rawValue)]]
    }

    func string(_ tag: JournalRecord.Tag) throws(JournalRecord.DecodeError) -> String {
        guard let value = value(tag) else { throw .malformed("missing field \(tag)") }
        let text = value.withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) }
        guard let text else { throw .malformed("invalid UTF-8 in \(tag)") }
        return text
    }

    func bytes(_ tag: JournalRecord.Tag) throws(JournalRecord.DecodeError) -> [UInt8] {
        guard let value = value(tag) else { throw .malformed("missing field \(tag)") }
        return Array(value)
    }

    func bytes(_ tag: JournalRecord.Tag, default fallback: [UInt8]) throws(JournalRecord.DecodeError) -> [UInt8] {
        value(tag).map(Array.init) ?? fallback
    }

    func optionalBytes(_ tag: JournalRecord.Tag) throws(JournalRecord.DecodeError) -> ArraySlice<UInt8>? {
        value(tag)
    }

    func optionalBytes(_ tag: JournalRecord.Tag) throws(JournalRecord.DecodeError) -> [UInt8]? {
        value(tag).map(Array.init)
    }

    func optionalString(_ tag: JournalRecord.Tag) throws(JournalRecord.DecodeError) -> String? {
        starts[Int(tag.rawValue)] < 0 ? nil : try string(tag)
    }

    func integer<T: FixedWidthInteger>(_ tag: JournalRecord.Tag, as type: T.Type = T.self) throws(JournalRecord.DecodeError)
        -> T
    {
        guard let value = value(tag) else { throw .malformed("missing field \(tag)") }
        guard value.count == MemoryLayout<T>.size else { throw .malformed("field \(tag) has \(value.count) bytes") }
        var result: T = 0
        for byte in value { result = result << 8 | T(truncatingIfNeeded: byte) }
        return result
    }

    func integer<T: FixedWidthInteger>(_ tag: JournalRecord.Tag, default fallback: T) throws(JournalRecord.DecodeError)
        -> T
    {
        starts[Int(tag.rawValue)] < 0 ? fallback : try integer(tag, as: T.self)
    }

    func optionalInteger<T: FixedWidthInteger>(_ tag: JournalRecord.Tag) throws(JournalRecord.DecodeError) -> T? {
        starts[Int(tag.rawValue)] < 0 ? nil : try integer(tag, as: T.self)
    }
}
