import Dispatch
import Foundation
import Glibc
import Testing

@testable import Supervisor
import System

@Suite struct JournalSyncerTests {
    /// How long any background sync may take before a test gives up.
    private static let deadlineMilliseconds = 5_000

    /// A fresh empty directory under /tmp; the caller removes it.
    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "prefork-syncer-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Opens `path` for appending and writes `count` bytes to it; the caller closes the descriptor.
    private func openFile(_ path: String, writing count: Int) throws -> FileDescriptor {
        let fd = try Posix.open(path, O_RDWR | O_CREAT | O_APPEND)
        try fd.writeAll([UInt8](repeating: 0x5A, count: count))
        return fd
    }

    /// Polls `condition` every millisecond until it holds or the deadline passes; returns its last value.
    private func waitUntil(_ condition: () throws -> Bool) rethrows -> Bool {
        for _ in 0..<Self.deadlineMilliseconds {
            if try condition() { return true }
            usleep(1_000)
        }
        return try condition()
    }

    /// Whether `fd` becomes readable within `timeout` milliseconds.
    private func isReadable(_ fd: FileDescriptor, within timeout: CInt) -> Bool {
        var entry = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
        while true {
            let result = poll(&entry, 1, timeout)
            if result == -1 && errno == EINTR { continue }
            return result == 1 && entry.revents & Int16(POLLIN) != 0
        }
    }

    /// A requested position becomes durable, the notification pipe wakes, and draining empties it.
    @Test func requestedPositionBecomesDurableAndNotifies() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fd = try openFile(directory + "/file", writing: 64)
        defer { fd.close() }
        let syncer = try JournalSyncer(file: fd.duplicate())
        defer { syncer.close() }

        #expect(syncer.progress.durable == 0)
        #expect(!isReadable(syncer.notification, within: 0))
        syncer.request(through: 64)
        #expect(waitUntil { syncer.progress.durable >= 64 })
        #expect(syncer.progress.durable == 64)
        #expect(syncer.progress.error == 0)
        #expect(isReadable(syncer.notification, within: CInt(Self.deadlineMilliseconds)))
        // One request, one sync, one byte: after draining, nothing is left to read.
        syncer.drainNotification()
        #expect(!isReadable(syncer.notification, within: 0))
        syncer.drainNotification()  // on an empty pipe: returns at once
    }

    /// Requests in a row end at the highest position asked for, and a later request starts a new sync.
    @Test func severalRequestsEndAtTheHighestPosition() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fd = try openFile(directory + "/file", writing: 30)
        defer { fd.close() }
        let syncer = try JournalSyncer(file: fd.duplicate())
        defer { syncer.close() }

        for position in [10, 30, 20, 5] { syncer.request(through: position) }
        #expect(waitUntil { syncer.progress.durable >= 30 })
        #expect(syncer.progress.durable == 30)

        try fd.writeAll([UInt8](repeating: 0x5A, count: 10))
        syncer.request(through: 40)
        #expect(waitUntil { syncer.progress.durable >= 40 })
        #expect(syncer.progress.durable == 40)
        #expect(syncer.progress.error == 0)
    }

    /// A request for nothing new syncs nothing: the one notification byte is that of the later, real request.
    @Test func requestForNothingNewSendsNoNotification() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fd = try openFile(directory + "/file", writing: 8)
        defer { fd.close() }
        let syncer = try JournalSyncer(file: fd.duplicate())
        defer { syncer.close() }

        syncer.request(through: 0)
        syncer.request(through: 8)
        #expect(waitUntil { syncer.progress.durable >= 8 })
        #expect(isReadable(syncer.notification, within: CInt(Self.deadlineMilliseconds)))
        var bytes = [UInt8](repeating: 0, count: 16)
        let result = try bytes.withUnsafeMutableBytes { buffer throws(SystemError) in
            try syncer.notification.read(into: buffer)
        }
        guard case .processed(let count) = result else {
            Issue.record("the notification pipe was readable but the read would block")
            return
        }
        #expect(count == 1)
    }

    /// Replacing the file raises the durable position at once, never lowers it, and later syncs use the new file.
    @Test func replaceFileRaisesDurableImmediately() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let old = try openFile(directory + "/old", writing: 16)
        defer { old.close() }
        let new = try openFile(directory + "/new", writing: 100)
        defer { new.close() }
        let syncer = try JournalSyncer(file: old.duplicate())
        defer { syncer.close() }

        syncer.replaceFile(with: try new.duplicate(), durableThrough: 100)
        #expect(syncer.progress.durable == 100)
        syncer.replaceFile(with: try new.duplicate(), durableThrough: 50)
        #expect(syncer.progress.durable == 100)

        try new.writeAll([UInt8](repeating: 0x5A, count: 50))
        syncer.request(through: 150)
        #expect(waitUntil { syncer.progress.durable >= 150 })
        #expect(syncer.progress.durable == 150)
        #expect(syncer.progress.error == 0)
    }

    /// `close` returns promptly and only after the sync a request started has finished.
    @Test func closeWaitsForARunningSyncWithoutHanging() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fd = try openFile(directory + "/file", writing: 4_096)
        defer { fd.close() }
        let syncer = try JournalSyncer(file: fd.duplicate())

        syncer.request(through: 4_096)
        let closed = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            syncer.close()
            closed.signal()
        }
        let result = closed.wait(timeout: .now() + .milliseconds(Self.deadlineMilliseconds))
        #expect(result == .success)
        // The sync was queued before `close` waited on the queue, so it has finished.
        #expect(syncer.progress.durable == 4_096)
    }

    /// Opens a journal in a fresh directory; the caller closes it and removes the directory.
    private func openJournal(_ mode: FsyncMode) throws -> (journal: Journal, directory: String) {
        let directory = try temporaryDirectory()
        do {
            let (journal, _) = try Journal.open(directory: directory + "/data", syncMode: mode)
            return (journal, directory)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    private let accepted = JobEvent.accepted(id: "job", payload: "@sleep 1", maxRetries: 0, sequence: 1, at: 7)

    /// With `batch`, a committed accept is not durable until the background sync reports and `finishSync` runs.
    @Test func batchJournalBecomesDurableAfterFinishSync() throws {
        let (journal, directory) = try openJournal(.batch)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        defer { journal.close() }

        journal.append(accepted)
        try journal.commit()
        #expect(journal.replyTicket == journal.size - JournalFile.header.count)
        #expect(journal.replyTicket > journal.durableThrough)
        #expect(journal.hasUndurableReplies)

        let durable = try journal.runLoop { journal.durableThrough >= journal.replyTicket }
        #expect(durable)
        #expect(journal.durableThrough == journal.replyTicket)
        #expect(!journal.hasUndurableReplies)
    }

    /// With `batch`, records no reply depends on leave the reply ticket alone and need no sync.
    @Test func batchJournalRecordsWithoutRepliesNeedNoSync() throws {
        let (journal, directory) = try openJournal(.batch)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        defer { journal.close() }

        journal.append(.started(id: "job", attempt: 1, at: 8))
        try journal.commit()
        #expect(journal.size > 0)
        #expect(journal.replyTicket == 0)
        #expect(!journal.hasUndurableReplies)
    }

    /// With `none`, a commit makes its records count as durable at once, and there is no syncer.
    @Test func unsyncedJournalIsDurableRightAfterCommit() throws {
        let (journal, directory) = try openJournal(.none)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        defer { journal.close() }

        journal.append(accepted)
        #expect(journal.replyTicket > journal.durableThrough)  // buffered, not written yet
        try journal.commit()
        #expect(journal.replyTicket > 0)
        #expect(journal.durableThrough == journal.replyTicket)
        #expect(!journal.hasUndurableReplies)
    }
}
