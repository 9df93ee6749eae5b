// libFuzzer target: the journal reader and replay (fuzz/README.md).
//
// The input is a whole journal file. It is scanned as at startup (`JournalScan.read`), and the events it holds
// are replayed into a job table (`JournalReplay.rebuild`), with no retention and with tight retention. Every
// event read must re-encode (current format) to a record that decodes to an equal event. The same bytes are
// also decoded as one record of each format at offset 0.
//
// Records carry a CRC-32, which a mutation almost always breaks, so that the record bodies would hardly ever be
// decoded. Each input is therefore run twice: as it is, and with the checksum of every record that can be
// found by walking the lengths put right (`withChecksumsFixed`).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: count))
    check(bytes)
    let fixed = withChecksumsFixed(bytes)
    if fixed != bytes { check(fixed) }
    return 0
}

/// `bytes` with the checksum of each record patched to match: in the current format every record whose
/// magic is found where the previous record ended (or, after bytes that are no record, further on), in the
/// first format each record from byte 0 while the lengths fit.
func withChecksumsFixed(_ bytes: [UInt8]) -> [UInt8] {
    var bytes = bytes
    func bigEndian32(_ offset: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(bytes[offset + $1]) } }
    func patch(_ value: UInt32, at offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
    }
    let header = JournalFile.header
    if bytes.count >= header.count && bytes.starts(with: header[0..<8]) {
        var offset = header.count
        while offset + JournalRecord.headerSize <= bytes.count {
            guard bytes[offset..<offset + 4].elementsEqual(JournalRecord.magic) else {
                offset += 1
                continue
            }
            let length = bigEndian32(offset + 4)
            let end = offset + JournalRecord.headerSize + length
            guard end <= bytes.count else { break }
            patch(CRC32.checksum(bytes[(offset + 4)..<(offset + 8)], bytes[(offset + 12)..<end]), at: offset + 8)
            offset = end
        }
    } else {
        var offset = 0
        while offset + LegacyJournalRecord.headerSize <= bytes.count {
            let end = offset + LegacyJournalRecord.headerSize + bigEndian32(offset)
            guard end <= bytes.count else { break }
            patch(CRC32.checksum(bytes[(offset + 8)..<end]), at: offset + 4)
            offset = end
        }
    }
    return bytes
}

private func check(_ bytes: [UInt8]) {
    _ = try? JournalRecord.decode(bytes, at: 0)
    _ = try? LegacyJournalRecord.decode(bytes, at: 0)

    let scan: JournalScan
    do throws(JournalScan.Unreadable) {
        scan = try JournalScan.read(bytes)
    } catch {
        return
    }
    precondition(scan.intactEnd >= 0 && scan.intactEnd <= bytes.count, "intactEnd \(scan.intactEnd)")
    for span in scan.damage + (scan.tornTail.map { [$0] } ?? []) {
        precondition(span.offset >= 0 && span.length >= 0 && span.offset + span.length <= bytes.count)
    }
    for event in scan.events {
        var record: [UInt8] = []
        JournalRecord.encode(event, into: &record)
        guard let (decoded, next) = try? JournalRecord.decode(record, at: 0) else {
            fatalError("re-encoded \(event.summary) does not decode")
        }
        precondition(decoded == event && next == record.count, "re-encoded \(event.summary) decodes differently")
    }
    check(JournalReplay.rebuild(scan.events, maximumFinished: .max, now: 0).store)
    check(JournalReplay.rebuild(scan.events, maximumFinished: 1, maximumResultBytes: 16, now: 0).store)
}

/// The store's counts agree with the jobs it holds; nothing is running after a replay.
private func check(_ store: JobStore) {
    var counts: [JobState: Int] = [:]
    for job in store.jobs.values { counts[job.state, default: 0] += 1 }
    precondition(store.runningCount == 0 && counts[.running] == nil, "a job is still running after replay")
    precondition(store.queuedCount == counts[.queued, default: 0], "queuedCount \(store.queuedCount)")
    let finished = counts[.done, default: 0] + counts[.failed, default: 0] + counts[.canceled, default: 0]
    precondition(store.finishedCount == finished, "finishedCount \(store.finishedCount), \(finished) finished")
    precondition(store.finishedCount <= store.maximumFinished)
    precondition(store.jobsInAcceptanceOrder.count >= store.jobs.count)
}
