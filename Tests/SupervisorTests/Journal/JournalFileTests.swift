import Foundation
import Glibc
import Testing

@testable import Supervisor

@Suite struct JournalFileTests {
    /// A fresh empty directory under /tmp; the caller removes it.
    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "prefork-journal-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Opens the journal, waiting out a lock that a previous `close()` in this test already released.
    ///
    /// The integration tests in this same process spawn children concurrently; a child forked while the lock
    /// file was open holds its open file description, and so the flock, until its exec closes it
    /// (close-on-exec). That window is a few milliseconds; the strict lock check is
    /// `secondOpenOfALockedDirectoryIsRefused`, which does not retry.
    private func open(_ directory: String, _ mode: FsyncMode = .batch) throws -> (Journal, JournalFile.Recovery) {
        for _ in 0..<200 {
            do throws(JournalFile.OpenError) {
                return try Journal.open(directory: directory, syncMode: mode)
            } catch {
                guard case .locked = error else { throw error }
                usleep(5_000)
            }
        }
        return try Journal.open(directory: directory, syncMode: mode)
    }

    private func fileSize(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? NSNumber)?.intValue ?? -1
    }

    private func appendBytes(_ bytes: [UInt8], to path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
    }

    private let records: [JobEvent] = [
        .accepted(id: "a", payload: "@sleep 5", maxRetries: 1, sequence: 1, at: 100),
        .accepted(id: "ü", payload: "", maxRetries: 0, sequence: 2, at: 101),
        .started(id: "a", attempt: 1, at: 102),
        .succeeded(id: "a", result: "ok", at: 103),
        .snapshot(JournalRecordTests.job("s", .failed, sequence: 3)),
    ]

    @Test func openingAnEmptyDirectoryCreatesAnEmptyJournal() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (journal, recovery) = try open(directory + "/nested/data")
        defer { journal.close() }
        #expect(recovery.records.isEmpty)
        #expect(recovery.scan.format == .empty)
        #expect(recovery.keptAside == nil)
        #expect(journal.size == JournalFile.header.count)
        #expect(journal.path == directory + "/nested/data/journal")
        #expect(FileManager.default.fileExists(atPath: directory + "/nested/data/journal"))
        #expect(FileManager.default.fileExists(atPath: directory + "/nested/data/lock"))
    }

    @Test(arguments: FsyncMode.allCases)
    func committedRecordsAreReadBackAfterReopening(_ mode: FsyncMode) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let (journal, _) = try open(directory, mode)
            for record in records { journal.append(record) }
            #expect(journal.hasPending)
            #expect(journal.size == JournalFile.header.count)
            try journal.commit()
            #expect(!journal.hasPending)
            #expect(journal.size == (try fileSize(journal.path)))
            #expect(journal.size > 0)
            journal.close()
        }
        let (reopened, recovery) = try open(directory, mode)
        defer { reopened.close() }
        #expect(recovery.records == records)
        #expect(!recovery.scan.isDamaged && recovery.scan.tornTail == nil)
        #expect(reopened.size == (try fileSize(reopened.path)))
    }

    @Test func commitsAccumulateAcrossBatches() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let (journal, _) = try open(directory)
            for record in records {
                journal.append(record)
                try journal.commit()
            }
            try journal.commit()  // nothing pending: a no-op
            journal.close()
        }
        do {
            let (journal, recovery) = try open(directory)
            #expect(recovery.records == records)
            journal.append(.canceled(id: "ü", at: 200))
            journal.close()  // flushes what is pending
        }
        let (journal, recovery) = try open(directory)
        defer { journal.close() }
        #expect(recovery.records == records + [.canceled(id: "ü", at: 200)])
    }

    /// Bytes after the last record that are the start of a record cut short: a torn write, cut off on open.
    @Test(arguments: [
        [UInt8]([0x50]),
        JournalRecord.magic + [0x00, 0x00],  // header torn
        JournalRecord.magic + [0x00, 0x00, 0x00, 0x05, 0x12, 0x34, 0x56, 0x78, 0x01],  // body torn
    ])
    func tornRecordAfterTheLastIsCutOffOnOpen(_ garbage: [UInt8]) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let intactSize = try writeRecords(in: directory)
        let path = directory + "/journal"
        try appendBytes(garbage, to: path)
        do {
            let (journal, recovery) = try open(directory)
            #expect(recovery.records == records)
            #expect(recovery.scan.tornTail?.offset == intactSize)
            #expect(recovery.scan.tornTail?.length == garbage.count)
            #expect(recovery.keptAside == nil)
            #expect(journal.size == intactSize)
            #expect(try fileSize(path) == intactSize)
            // New records go after the intact prefix, not after the torn one.
            journal.append(.canceled(id: "ü", at: 300))
            try journal.commit()
            journal.close()
        }
        let (journal, recovery) = try open(directory)
        defer { journal.close() }
        #expect(recovery.scan.tornTail == nil && !recovery.scan.isDamaged)
        #expect(recovery.records == records + [.canceled(id: "ü", at: 300)])
    }

    /// Bytes after the last record that are no torn write (a complete record that fails its checksum, an absurd
    /// length, text): damage. The file is kept aside whole and nothing is cut; records appended later still read.
    @Test(arguments: [
        JournalRecord.magic + [0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07],  // bad checksum
        JournalRecord.magic + [0xFF, 0xFF, 0xFF, 0xFF, 0xDE, 0xAD, 0xBE, 0xEF] + Array(repeating: 0xAB, count: 100),
        Array("this is not a journal record at all\n".utf8),
    ])
    func damageAfterTheLastRecordIsKeptAsideNotCut(_ garbage: [UInt8]) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let intactSize = try writeRecords(in: directory)
        let path = directory + "/journal"
        try appendBytes(garbage, to: path)
        do {
            let (journal, recovery) = try open(directory)
            #expect(recovery.records == records)
            #expect(recovery.scan.damage.first?.offset == intactSize)
            let aside = try #require(recovery.keptAside)
            #expect(try fileSize(aside) == intactSize + garbage.count)
            #expect(try fileSize(path) == intactSize + garbage.count)
            journal.append(.canceled(id: "ü", at: 300))
            try journal.commit()
            journal.close()
        }
        let (journal, recovery) = try open(directory)
        defer { journal.close() }
        #expect(recovery.records == records + [.canceled(id: "ü", at: 300)])
    }

    /// Writes `records` through a journal and returns the file's size.
    private func writeRecords(in directory: String) throws -> Int {
        let (journal, _) = try open(directory)
        defer { journal.close() }
        for record in records { journal.append(record) }
        try journal.commit()
        return journal.size
    }

    @Test func tornLastRecordIsDroppedAtEveryCut() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var intact = JournalFile.header
        for record in records { record.encode(into: &intact) }
        var full = intact
        JobEvent.accepted(id: "torn", payload: "xyz", maxRetries: 0, sequence: 9, at: 9).encode(into: &full)
        let path = directory + "/journal"
        for cut in stride(from: intact.count + 1, to: full.count, by: 3) {
            try Data(full[..<cut]).write(to: URL(fileURLWithPath: path))
            let (journal, recovery) = try open(directory)
            #expect(recovery.records == records, "cut \(cut)")
            #expect(recovery.scan.tornTail?.reason == "\(JournalRecord.DecodeError.truncated)", "cut \(cut)")
            #expect(try fileSize(path) == intact.count, "cut \(cut)")
            journal.close()
        }
    }

    @Test func corruptRecordInTheMiddleIsSkippedAndTheFileKeptAside() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var bytes = JournalFile.header
        var offsets: [Int] = []
        for record in records {
            offsets.append(bytes.count)
            record.encode(into: &bytes)
        }
        bytes[offsets[2] + JournalRecord.headerSize + 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/journal"))
        let (journal, recovery) = try open(directory)
        defer { journal.close() }
        var expected = records
        expected.remove(at: 2)
        #expect(recovery.records == expected)
        #expect(recovery.scan.damage.first?.reason == "\(JournalRecord.DecodeError.checksumMismatch)")
        #expect(recovery.scan.damage.first?.offset == offsets[2])
        #expect(recovery.scan.damage.first?.length == offsets[3] - offsets[2])
        let aside = try #require(recovery.keptAside)
        #expect(aside.hasPrefix(directory + "/journal.corrupt-"))
        #expect(FileManager.default.contents(atPath: aside) == Data(bytes))
        #expect(journal.size == bytes.count)
    }

    @Test func unreadableHeaderIsRefusedAndTheFileLeftAlone() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let text = Data("not a journal\n".utf8)
        try text.write(to: URL(fileURLWithPath: directory + "/journal"))
        do throws(JournalFile.OpenError) {
            let (journal, _) = try Journal.open(directory: directory, syncMode: .batch)
            journal.close()
            Issue.record("an unreadable journal was opened")
        } catch {
            guard case .unreadable = error else { return #expect(Bool(false), "\(error)") }
            #expect(error.description.contains("refusing to start"))
        }
        #expect(FileManager.default.contents(atPath: directory + "/journal") == text)
    }

    @Test func symbolicLinksAreRefusedNotFollowed() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let target = directory + "/precious"
        try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: target))
        for name in ["lock", "journal"] {
            try? FileManager.default.removeItem(atPath: directory + "/lock")
            try? FileManager.default.removeItem(atPath: directory + "/journal")
            try FileManager.default.createSymbolicLink(atPath: directory + "/" + name, withDestinationPath: target)
            do throws(JournalFile.OpenError) {
                let (journal, _) = try Journal.open(directory: directory, syncMode: .batch)
                journal.close()
                Issue.record("a symbolic \(name) was followed")
            } catch {
                guard case .symbolicLink(let path) = error else { return #expect(Bool(false), "\(error)") }
                #expect(path == directory + "/" + name)
            }
            #expect(FileManager.default.contents(atPath: target) == Data("keep me\n".utf8))
        }
    }

    @Test func secondOpenOfALockedDirectoryIsRefused() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (first, _) = try open(directory)
        do throws(JournalFile.OpenError) {
            let (second, _) = try Journal.open(directory: directory, syncMode: .batch)
            second.close()
            Issue.record("a second open of a locked data directory succeeded")
        } catch {
            guard case .locked(let path) = error else {
                Issue.record("expected .locked, got \(error)")
                first.close()
                return
            }
            #expect(path == directory + "/lock")
            #expect(error.description.contains("lock"))
        }
        first.close()
        // Released on close: the directory can be opened again.
        let (third, _) = try open(directory)
        third.close()
    }

    @Test func lockFileHoldsTheOwnersPID() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (journal, _) = try open(directory)
        defer { journal.close() }
        let content = try String(contentsOfFile: directory + "/lock", encoding: .utf8)
        #expect(content == "\(getpid())\n")
    }

    @Test func rewriteLeavesExactlyTheGivenRecords() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let live: [JobEvent] = [
            .snapshot(JournalRecordTests.job("a", .done, sequence: 1)),
            .snapshot(JournalRecordTests.job("b", .queued, sequence: 2)),
        ]
        do {
            let (journal, _) = try open(directory)
            for record in records { journal.append(record) }
            try journal.commit()
            let before = journal.size
            journal.append(.canceled(id: "pending", at: 1))  // pending at rewrite: committed first, then replaced
            try journal.rewrite(live)
            #expect(!journal.hasPending)
            #expect(journal.size < before)
            #expect(journal.size == (try fileSize(journal.path)))
            #expect(!FileManager.default.fileExists(atPath: directory + "/journal.compact"))
            // Appends after a rewrite go to the new file.
            journal.append(.canceled(id: "b", at: 500))
            try journal.commit()
            #expect(journal.size == (try fileSize(journal.path)))
            journal.close()
        }
        let (journal, recovery) = try open(directory)
        defer { journal.close() }
        #expect(!recovery.scan.isDamaged && recovery.scan.tornTail == nil)
        #expect(recovery.records == live + [.canceled(id: "b", at: 500)])
        #expect(!FileManager.default.fileExists(atPath: directory + "/journal.compact"))
    }

    @Test func rewriteToNothingEmptiesTheJournal() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let (journal, _) = try open(directory)
            for record in records { journal.append(record) }
            try journal.commit()
            try journal.rewrite([])
            #expect(journal.size == JournalFile.header.count)
            journal.close()
        }
        #expect(try fileSize(directory + "/journal") == JournalFile.header.count)
        let (journal, recovery) = try open(directory)
        defer { journal.close() }
        #expect(recovery.records.isEmpty)
    }

    @Test func leftoverCompactionFileIsIgnoredAndRemoved() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let (journal, _) = try open(directory)
            for record in records { journal.append(record) }
            try journal.commit()
            journal.close()
        }
        // A compaction that crashed before its rename left a half-written file behind.
        try Data([0x00, 0x00, 0x01]).write(to: URL(fileURLWithPath: directory + "/journal.compact"))
        let (journal, recovery) = try open(directory)
        defer { journal.close() }
        #expect(recovery.records == records)
        #expect(!recovery.scan.isDamaged && recovery.scan.tornTail == nil)
        #expect(!FileManager.default.fileExists(atPath: directory + "/journal.compact"))
    }
}

extension JournalFileTests {
    @Test func backgroundCompactionCarriesOverRecordsCommittedMeanwhile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (journal, _) = try Journal.open(directory: directory, syncMode: .batch, compactBytes: 4096)
        for index in 0..<100 {
            journal.append(.accepted(id: "dead-\(index)", payload: "p", maxRetries: 0, sequence: UInt64(index), at: 1))
        }
        try journal.commit()
        let job = Job(id: "live", payload: "p", maxRetries: 0, sequence: 200, now: 2)
        let live = JobEvent.snapshot(job)
        try journal.compactIfDue(jobs: ["live": job])
        #expect(journal.isCompacting)
        journal.append(.canceled(id: "live", at: 5))
        try journal.commit()
        #expect(try journal.runLoop { !journal.isCompacting })
        journal.append(.started(id: "after", attempt: 1, at: 6))
        journal.close()

        let (reopened, recovery) = try open(directory)
        defer { reopened.close() }
        #expect(recovery.records == [live, .canceled(id: "live", at: 5), .started(id: "after", attempt: 1, at: 6)])
        #expect(!recovery.scan.isDamaged && recovery.scan.tornTail == nil)
        #expect(!FileManager.default.fileExists(atPath: directory + "/journal.compact"))
    }
}
