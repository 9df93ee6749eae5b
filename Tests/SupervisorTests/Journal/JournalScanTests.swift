import Testing

@testable import Supervisor

/// Damage anywhere in a journal costs only the records it hit: the reader finds the next intact record and
/// replays everything after it.
@Suite struct JournalScanTests {
    /// A journal of 20 finished jobs then 10 queued ones (in the current format), and each record's offset.
    private func makeJournal() -> (bytes: [UInt8], offsets: [Int], events: [JobEvent]) {
        var events: [JobEvent] = []
        for index in 0..<20 {
            let id = "done-\(index)"
            events.append(.accepted(id: id, payload: "p\(index)", maxRetries: 0, sequence: UInt64(index + 1), at: 1))
            events.append(.started(id: id, attempt: 1, at: 2))
            events.append(.succeeded(id: id, result: "r\(index)", at: 3))
        }
        for index in 0..<10 {
            events.append(
                .accepted(id: "queued-\(index)", payload: "q", maxRetries: 0, sequence: UInt64(100 + index), at: 4))
        }
        var bytes = JournalFile.header
        var offsets: [Int] = []
        for event in events {
            offsets.append(bytes.count)
            JournalRecord.encode(event, into: &bytes)
        }
        return (bytes, offsets, events)
    }

    private func jobs(_ scan: JournalScan) -> [String: Job] {
        JournalReplay.rebuild(scan.events, maximumFinished: .max, now: 10).store.jobs
    }

    @Test func intactJournalReadsWhole() throws {
        let (bytes, _, events) = makeJournal()
        let scan = try JournalScan.read(bytes)
        #expect(scan.format == .current)
        #expect(scan.events == events)
        #expect(scan.damage.isEmpty && scan.tornTail == nil && !scan.isDamaged)
    }

    /// Where a flip lands: in a record's magic, its length, its checksum or its body; in the first record, one in
    /// the middle, or the last.
    static let flips: [(name: String, record: Int, byte: Int)] = [
        ("first record, magic", 0, 1), ("first record, length", 0, 6), ("first record, checksum", 0, 9),
        ("first record, body", 0, 20), ("middle record, magic", 30, 0), ("middle record, length", 30, 4),
        ("middle record, length high byte", 30, 4), ("middle record, body", 30, 15), ("last record, body", 69, 14),
        ("last record, length", 69, 7),
    ]

    @Test(arguments: flips)
    func flippedByteLosesOnlyTheRecordItHit(name: String, record: Int, byte: Int) throws {
        let (intact, offsets, events) = makeJournal()
        var bytes = intact
        bytes[offsets[record] + byte] ^= 0x40
        let scan = try JournalScan.read(bytes)
        // Every event but the damaged one is read back, in order.
        var expected = events
        expected.remove(at: record)
        #expect(scan.events == expected, "\(name)")
        #expect(scan.isDamaged || scan.tornTail != nil, "\(name)")
        let replayed = jobs(scan)
        // Every queued job not hit by the damage is still there, queued.
        for index in 0..<10 where 60 + index != record {
            #expect(replayed["queued-\(index)"]?.state == .queued, "\(name): queued-\(index)")
        }
        // The damage is reported where it is.
        if let damage = scan.damage.first ?? scan.tornTail {
            #expect(damage.offset == offsets[record], "\(name)")
        }
    }

    @Test func damagedSpanNamesTheJobsAroundIt() throws {
        let (intact, offsets, _) = makeJournal()
        var bytes = intact
        bytes[offsets[30] + 20] ^= 0xFF
        let damage = try #require(try JournalScan.read(bytes).damage.first)
        #expect(damage.offset == offsets[30])
        #expect(damage.length == offsets[31] - offsets[30])
        #expect(damage.jobBefore == "done-9" && damage.jobAfter == "done-10")
        #expect(damage.reason == "checksum mismatch")
    }

    @Test func aBlockOfGarbageInTheMiddleIsSkipped() throws {
        let (intact, offsets, events) = makeJournal()
        var bytes = intact
        for index in offsets[10]..<offsets[13] { bytes[index] = 0xA5 }
        let scan = try JournalScan.read(bytes)
        #expect(scan.events == Array(events[0..<10] + events[13...]))
        #expect(scan.damage.count == 1)
        #expect(scan.damage.first?.length == offsets[13] - offsets[10])
    }

    @Test func incompleteLastRecordIsATornTailAtEveryCut() throws {
        let (intact, offsets, events) = makeJournal()
        for cut in (offsets[69] + 1)..<intact.count {
            let scan = try JournalScan.read(Array(intact[0..<cut]))
            #expect(scan.events == Array(events.dropLast()), "cut \(cut)")
            #expect(scan.tornTail?.offset == offsets[69], "cut \(cut)")
            #expect(!scan.isDamaged, "cut \(cut)")
            #expect(scan.intactEnd == offsets[69])
        }
    }

    @Test func completeLastRecordWithABadChecksumIsDamageNotATornWrite() throws {
        let (intact, offsets, _) = makeJournal()
        var bytes = intact
        bytes[bytes.count - 1] ^= 1
        let scan = try JournalScan.read(bytes)
        #expect(scan.isDamaged)
        #expect(scan.tornTail == nil)
        #expect(scan.damage.first?.offset == offsets[69])
    }

    @Test func damagedHeaderIsRefusedNeverEmptied() {
        let (intact, _, _) = makeJournal()
        for index in 0..<JournalFile.header.count {
            var bytes = intact
            bytes[index] ^= 0x01
            #expect(throws: JournalScan.Unreadable.self, "header byte \(index)") { try JournalScan.read(bytes) }
        }
        #expect(throws: JournalScan.Unreadable.self) { try JournalScan.read(Array("hello, world\n".utf8)) }
    }

    @Test func incompleteHeaderOfANewJournalIsATornTail() throws {
        let scan = try JournalScan.read(Array(JournalFile.header.prefix(5)))
        #expect(scan.events.isEmpty)
        #expect(scan.tornTail?.offset == 0)
    }

    @Test func emptyFileIsANewJournal() throws {
        #expect(try JournalScan.read([]).format == .empty)
    }

    @Test func journalOfTheFirstFormatIsReadForUpgrade() throws {
        let (_, _, events) = makeJournal()
        var bytes: [UInt8] = []
        for event in events { LegacyJournalRecord.encode(event, into: &bytes) }
        let scan = try JournalScan.read(bytes)
        #expect(scan.format == .legacy)
        #expect(scan.events.count == events.count)
        #expect(jobs(scan).count == 30)
    }
}
