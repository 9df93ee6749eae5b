import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

/// Durability: a job that got 202 survives the supervisor being killed outright, a graceful stop, a torn
/// journal tail, and compaction; a second supervisor cannot share the data dir.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct JournalTests {
    @Test func acceptedJobsSurviveSIGKILL() async throws {
        let first = try await PreforkProcess.start(config: ["workers": 1, "job_timeout_ms": 10000])
        defer { first.terminateAndReap() }
        first.keepDirectoryOnTeardown()

        try first.enqueueAccepted(id: "done-before", payload: "@ok")
        try await first.waitForJob("done-before", state: "done")
        try first.enqueueAccepted(id: "running-at-kill", payload: "@sleep 5000", maxRetries: 1)
        _ = try await first.waitForWorker(runningJob: "running-at-kill")
        let ids = (1...5).map { "accepted-\($0)" }
        for id in ids { try first.enqueueAccepted(id: id, payload: "@ok") }
        first.terminateAndReap()  // SIGKILL: no chance to flush anything more

        let second = try await PreforkProcess.start(
            in: first.directory, configPath: first.configPath)
        defer { second.terminateAndReap() }
        let finished = try second.job("done-before")
        #expect(finished.string("state") == "done")
        #expect(finished.int("attempts") == 1)
        // The interrupted job is queued again (first in line: FIFO by acceptance) and keeps its attempt count.
        // Checked before waiting for the others, which run only after it on the single worker. A machine too
        // busy to look in time may find its second attempt already done: the history shows the same.
        let resumed = try await second.waitForJob("running-at-kill", "requeued after the restart") {
            ["queued", "running"].contains($0.string("state") ?? "") || $0.string("state") == "done"
        }
        #expect((resumed.int("attempts") ?? 0) >= 1)
        if resumed.string("state") == "done" {
            #expect(resumed.objects("history")?.first?.string("outcome") == "interrupted")
            #expect(resumed.int("attempts") == 2)
        } else {
            #expect(try second.request("DELETE", "/jobs/running-at-kill").status == 200)
        }
        for id in ids { try await second.waitForJob(id, state: "done") }
    }

    @Test func everyAcceptedJobSurvivesSIGKILLDuringConcurrentEnqueues() async throws {
        let first = try await PreforkProcess.start(config: ["workers": 2, "queue_size": 1000])
        defer { first.terminateAndReap() }
        first.keepDirectoryOnTeardown()

        let killSwitch = KillSwitch()
        let run = await enqueueConcurrently(on: first, prefix: "kill", clients: 4, perClient: 50) { accepted in
            guard accepted >= 60 else { return }
            killSwitch.kill(first, accepted: accepted)
        }
        let acceptedBeforeKill = try #require(killSwitch.acceptedAtKill, "the supervisor was never killed")
        #expect(run.accepted.count >= acceptedBeforeKill)
        #expect(run.accepted.count < 200, "requests after the kill cannot have been accepted")
        #expect(run.failures > 0)

        let second = try await first.restart()
        defer { second.terminateAndReap() }
        let replayed = try await second.waitForLog(event: "journal_replayed")
        #expect((replayed.int("jobs") ?? 0) >= run.accepted.count)
        try await expectAllDone(run.accepted, on: second)
    }

    @Test func everyAcceptedJobSurvivesSIGKILLWhileCompactingConstantly() async throws {
        let first = try await PreforkProcess.start(
            config: ["workers": 2, "queue_size": 1000, "journal": ["compact_bytes": 4096]])
        defer { first.terminateAndReap() }
        first.keepDirectoryOnTeardown()
        // An empty journal's startup compaction changes nothing and is not logged.
        try await first.waitForIdleWorkers(2)
        let startupCompactions = first.logLineCount(containing: "journal_compacted")
        #expect(startupCompactions == 0)

        let killSwitch = KillSwitch()
        let run = await enqueueConcurrently(on: first, prefix: "compact", clients: 4, perClient: 125) { accepted in
            guard accepted >= 100, first.logLineCount(containing: "journal_compacted") >= startupCompactions + 3
            else { return }
            killSwitch.kill(first, accepted: accepted)
        }
        let compactions = first.logLineCount(containing: "journal_compacted")
        let acceptedBeforeKill = try #require(
            killSwitch.acceptedAtKill, "never killed: \(compactions) compactions for \(run.accepted.count) jobs")
        #expect(run.accepted.count >= acceptedBeforeKill)
        #expect(first.logLineCount(containing: "journal_compacted") >= startupCompactions + 3)

        let second = try await first.restart()
        defer { second.terminateAndReap() }
        let replayed = try await second.waitForLog(event: "journal_replayed")
        #expect((replayed.int("jobs") ?? 0) >= run.accepted.count)
        // Whatever the kill interrupted, the journal reads back whole (a torn append is all it may lose).
        #expect(second.logEvents("journal_record_skipped").isEmpty)
        try await expectAllDone(run.accepted, on: second)
        #expect(!FileManager.default.fileExists(atPath: second.journalPath + ".compact"))
    }

    @Test func queuedJobsRunAfterAGracefulStopAndRestart() async throws {
        let first = try await PreforkProcess.start(config: ["workers": 1, "shutdown_timeout_ms": 5000])
        defer { first.terminateAndReap() }
        first.keepDirectoryOnTeardown()
        let ids = (1...4).map { "term-\($0)" }
        for id in ids { try first.enqueueAccepted(id: id, payload: "@sleep 200") }
        _ = try await first.waitForWorker(runningJob: ids[0])
        for id in ids.dropFirst() { #expect(try first.job(id).string("state") == "queued") }

        first.sendSignal(SIGTERM)
        #expect(try await first.waitForExit() == .exited(0))

        let second = try await first.restart()
        defer { second.terminateAndReap() }
        let replayed = try await second.waitForLog(event: "journal_replayed")
        #expect(replayed.int("jobs") == ids.count)
        for id in ids {
            let job = try await second.waitForJob(id, state: "done", timeout: .seconds(10))
            #expect(job.int("attempts") == 1, "\(id): \(job)")
        }
    }

    @Test func secondSupervisorOnTheSameDataDirRefusesToStart() async throws {
        let first = try await PreforkProcess.start()
        defer { first.terminateAndReap() }
        try first.enqueueAccepted(id: "before", payload: "@ok")

        let second = try await first.runAnotherSupervisor()
        #expect(second.status != .exited(0))
        #expect(second.status == .exited(2))
        #expect(second.stderr.lowercased().contains("lock"), "stderr: \(second.stderr)")

        // The first one is undisturbed and its journal intact.
        #expect(first.isRunning)
        try first.enqueueAccepted(id: "after", payload: "@ok")
        try await first.waitForJob("before", state: "done")
        try await first.waitForJob("after", state: "done")
        let third = try await first.restart()
        defer { third.terminateAndReap() }
        #expect(try third.job("before").string("state") == "done")
        #expect(try third.job("after").string("state") == "done")
    }

    @Test func restartSucceedsAfterABareSIGKILLWithoutWorkerCleanup() async throws {
        let first = try await PreforkProcess.start(config: ["workers": 1, "job_timeout_ms": 10000])
        defer { first.terminateAndReap() }
        first.keepDirectoryOnTeardown()
        try first.enqueueAccepted(id: "long", payload: "@sleep 3000")
        let worker = try await first.waitForWorker(runningJob: "long")
        // SIGKILL the supervisor alone (the harness does not kill its workers): whether or not the worker,
        // mid-job, outlives it for a moment, it must not keep the data dir locked (the lock fd is CLOEXEC).
        first.sendSignal(SIGKILL)
        _ = try await first.waitForExit()
        defer { if ProcessTable.isLiveWorker(worker) { kill(worker, SIGKILL) } }

        let second = try await first.restart()
        defer { second.terminateAndReap() }
        let job = try await second.waitForJob("long", "requeued after the restart") {
            ["queued", "running"].contains($0.string("state") ?? "")
        }
        #expect(job.int("attempts") ?? 0 >= 1)
        #expect(try second.request("DELETE", "/jobs/long").status == 200)
    }

    @Test func tornJournalTailIsTruncatedOnRestart() async throws {
        let first = try await PreforkProcess.start()
        defer { first.terminateAndReap() }
        first.keepDirectoryOnTeardown()
        let ids = (1...3).map { "torn-\($0)" }
        for id in ids {
            try first.enqueueAccepted(id: id, payload: "@ok")
            try await first.waitForJob(id, state: "done")
        }
        try first.enqueueAccepted(id: "torn-queued", payload: "@sleep 100")
        first.sendSignal(SIGTERM)
        #expect(try await first.waitForExit() == .exited(0))

        let intactSize = try fileSize(first.journalPath)
        #expect(intactSize > 0)
        // A header announcing a 64-byte body followed by 3 bytes: the kind of tail a crash mid-append leaves.
        let garbage: [UInt8] = [0x00, 0x00, 0x00, 0x40, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: first.journalPath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(garbage))
        try handle.close()

        let second = try await first.restart()
        defer { second.terminateAndReap() }
        let truncated = try await second.waitForLog(event: "journal_truncated")
        #expect(truncated.int("offset") == intactSize)
        #expect(truncated.int("dropped_bytes") == garbage.count)
        #expect(!(truncated.string("reason") ?? "").isEmpty)
        for id in ids {
            let job = try second.job(id)
            #expect(job.string("state") == "done")
            #expect(job.int("attempts") == 1)
        }
        try await second.waitForJob("torn-queued", state: "done")
        // The restart rewrote the journal: another restart finds nothing to truncate.
        let third = try await second.restart()
        defer { third.terminateAndReap() }
        try await third.waitForLog(event: "journal_replayed")
        #expect(third.logEvents("journal_truncated").isEmpty)
        #expect(try third.job("torn-queued").string("state") == "done")
    }

    // MARK: Helpers

    private func fileSize(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? NSNumber)?.intValue ?? -1
    }

    /// Waits until every id is `done` on `supervisor`.
    private func expectAllDone(_ ids: [String], on supervisor: PreforkProcess) async throws {
        for id in ids {
            try await supervisor.waitForJob(id, state: "done", timeout: .seconds(20))
        }
    }
}

/// SIGKILLs a supervisor (and its workers) once, remembering how many jobs had been accepted then.
private final class KillSwitch: Sendable {
    private let killedAt = Mutex<Int?>(nil)

    /// The accepted count at the kill, nil if it has not happened.
    var acceptedAtKill: Int? { killedAt.withLock { $0 } }

    /// Kills `supervisor` the first time it is called.
    func kill(_ supervisor: PreforkProcess, accepted: Int) {
        let first = killedAt.withLock { value -> Bool in
            guard value == nil else { return false }
            value = accepted
            return true
        }
        if first { supervisor.terminateAndReap() }
    }
}

/// The results of concurrent clients, shared between their threads.
private final class EnqueueRecorder: Sendable {
    private let run = Mutex(EnqueueRun(accepted: [], failures: 0))

    /// Records a 202 and returns the number accepted so far.
    func accepted(_ id: String) -> Int {
        run.withLock { run in
            run.accepted.append(id)
            return run.accepted.count
        }
    }

    /// Records a request that failed or was refused.
    func failed() { run.withLock { $0.failures += 1 } }

    /// Everything recorded so far.
    var result: EnqueueRun { run.withLock { $0 } }
}

/// What a burst of concurrent enqueues got.
private struct EnqueueRun {
    /// Ids answered `202`.
    var accepted: [String]
    /// Requests that failed or got another status.
    var failures: Int
}

/// `clients` threads each `POST /enqueue` `perClient` `@sleep 5` jobs with unique ids, one connection per
/// request; `afterAccept` runs on the client's thread after each `202` with the number accepted so far.
private func enqueueConcurrently(
    on supervisor: PreforkProcess, prefix: String, clients: Int, perClient: Int,
    afterAccept: @escaping @Sendable (Int) -> Void
) async -> EnqueueRun {
    let recorder = EnqueueRecorder()
    let group = DispatchGroup()
    for client in 0..<clients {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            for index in 0..<perClient {
                let id = "\(prefix)-\(client)-\(index)"
                let response = try? supervisor.enqueue(id: id, payload: "@sleep 5")
                if response?.status == 202 {
                    afterAccept(recorder.accepted(id))
                } else {
                    recorder.failed()
                }
            }
        }
    }
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        group.notify(queue: .global()) { continuation.resume() }
    }
    return recorder.result
}
