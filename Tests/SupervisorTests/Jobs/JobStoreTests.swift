import Testing

@testable import Supervisor

@Suite struct JobStoreTests {
    /// Accepts each id with a fixed payload; the acceptance time is its index.
    private func makeStore(ids: [String], maximumFinished: Int = 100, maxRetries: Int = 0) -> JobStore {
        var store = JobStore(maximumFinished: maximumFinished)
        for (index, id) in ids.enumerated() {
            _ = store.accept(id: id, payload: "payload-\(id)", maxRetries: maxRetries, now: Int64(index))
        }
        return store
    }

    /// Starts every runnable job, returning their ids in start order.
    private func startAll(_ store: inout JobStore, now: Int64 = 1_000) -> [String] {
        var started: [String] = []
        while let job = store.startNext(now: now) { started.append(job.id) }
        return started
    }

    private func counts(_ store: JobStore) -> [Int] {
        [store.queuedCount, store.runningCount, store.finishedCount]
    }

    @Test func acceptRecordsQueuedJob() throws {
        var store = JobStore(maximumFinished: 10)
        let job = store.accept(id: "a", payload: "p", maxRetries: 3, now: 42)
        #expect(job.state == .queued)
        #expect(job.maxRetries == 3)
        #expect(job.createdAt == 42)
        let stored = try #require(store["a"])
        #expect(stored.payload == "p")
        #expect(stored.sequence == job.sequence)
        #expect(store.hasRunnable)
        #expect(counts(store) == [1, 0, 0])
        #expect(store["missing"] == nil)
    }

    @Test func sequencesIncreaseInAcceptanceOrder() {
        var store = JobStore(maximumFinished: 10)
        let first = store.accept(id: "a", payload: "", maxRetries: 0, now: 0)
        let second = store.accept(id: "b", payload: "", maxRetries: 0, now: 0)
        #expect(first.sequence < second.sequence)
    }

    @Test func startNextIsFIFO() throws {
        var store = makeStore(ids: ["c", "a", "b", "e", "d"])
        #expect(startAll(&store) == ["c", "a", "b", "e", "d"])
        #expect(store.startNext(now: 2_000) == nil)
        #expect(!store.hasRunnable)
    }

    @Test func startNextStartsTheJobInTheStore() throws {
        var store = makeStore(ids: ["a"])
        let next = store.startNext(now: 500)
        let started = try #require(next)
        #expect(started.state == .running)
        #expect(started.attempts == 1)
        #expect(store["a"]?.state == .running)
        #expect(store["a"]?.updatedAt == 500)
    }

    @Test func countsFollowAcceptStartAndSucceed() throws {
        var store = makeStore(ids: ["a", "b"])
        #expect(counts(store) == [2, 0, 0])
        _ = store.startNext(now: 10)
        #expect(counts(store) == [1, 1, 0])
        _ = store.startNext(now: 10)
        #expect(counts(store) == [0, 2, 0])
        let done = try store.succeed(id: "a", result: "r", now: 20)
        #expect(done.state == .done)
        #expect(done.result == "r")
        #expect(counts(store) == [0, 1, 1])
    }

    @Test func countsFollowRetryMakeRunnableAndRestart() throws {
        var store = makeStore(ids: ["a"], maxRetries: 1)
        _ = store.startNext(now: 10)
        #expect(counts(store) == [0, 1, 0])
        let outcome = try store.failAttempt(id: "a", error: "boom", retryDelay: 100, now: 20)
        #expect(outcome == .retry(delay: 100))
        #expect(store["a"]?.state == .queued)
        #expect(store["a"]?.nextAttemptAt == 120)
        #expect(counts(store) == [1, 0, 0])
        store.makeRunnable(id: "a")
        #expect(counts(store) == [1, 0, 0])
        #expect(store["a"]?.nextAttemptAt == nil)
        let next = store.startNext(now: 130)
        let restarted = try #require(next)
        #expect(restarted.attempts == 2)
        #expect(counts(store) == [0, 1, 0])
        #expect(try store.failAttempt(id: "a", error: "boom again", retryDelay: 100, now: 140) == .failed)
        #expect(store["a"]?.state == .failed)
        #expect(counts(store) == [0, 0, 1])
    }

    @Test func countsFollowCancelOfQueuedRunningAndRetryWaitingJobs() throws {
        var store = makeStore(ids: ["queued", "running", "waiting"], maxRetries: 1)
        // "queued" ends up plainly queued again, "waiting" waits for its retry, "running" stays running.
        #expect(startAll(&store) == ["queued", "running", "waiting"])
        _ = try store.failAttempt(id: "waiting", error: "boom", retryDelay: 100, now: 20)
        _ = try store.failAttempt(id: "queued", error: "boom", retryDelay: 100, now: 20)
        store.makeRunnable(id: "queued")
        #expect(counts(store) == [2, 1, 0])

        #expect(try store.cancel(id: "queued", now: 30).previous == .queued)
        #expect(counts(store) == [1, 1, 1])
        #expect(try store.cancel(id: "running", now: 30).previous == .running)
        #expect(counts(store) == [1, 0, 2])
        #expect(try store.cancel(id: "waiting", now: 30).previous == .queued)
        #expect(counts(store) == [0, 0, 3])
        for id in ["queued", "running", "waiting"] {
            #expect(store[id]?.state == .canceled)
        }
    }

    @Test func refusedCancelLeavesCountsAlone() throws {
        var store = makeStore(ids: ["a"])
        _ = store.startNext(now: 10)
        _ = try store.succeed(id: "a", result: "", now: 20)
        #expect(throws: InvalidTransition.notAllowed(from: .done, event: "cancel")) { _ = try store.cancel(id: "a", now: 30) }
        #expect(counts(store) == [0, 0, 1])
    }

    @Test func cancelOfUnknownIDThrows() {
        var store = JobStore(maximumFinished: 10)
        #expect(throws: InvalidTransition.self) { _ = try store.cancel(id: "nope", now: 0) }
    }

    @Test func outcomeForCanceledRunningJobIsRefusedAndCountsStay() throws {
        var store = makeStore(ids: ["a"])
        _ = store.startNext(now: 10)
        _ = try store.cancel(id: "a", now: 20)
        #expect(throws: InvalidTransition.notAllowed(from: .canceled, event: "succeed")) {
            _ = try store.succeed(id: "a", result: "late", now: 30)
        }
        #expect(throws: InvalidTransition.notAllowed(from: .canceled, event: "fail")) {
            _ = try store.failAttempt(id: "a", error: "late", retryDelay: 1, now: 30)
        }
        #expect(counts(store) == [0, 0, 1])
    }

    @Test func succeedOfQueuedJobIsRefusedAndCountsStay() {
        var store = makeStore(ids: ["a"])
        #expect(throws: InvalidTransition.notAllowed(from: .queued, event: "succeed")) {
            _ = try store.succeed(id: "a", result: "", now: 30)
        }
        #expect(counts(store) == [1, 0, 0])
    }

    @Test func retryWaitingJobIsNotStartedUntilMakeRunnable() throws {
        var store = makeStore(ids: ["a", "b"], maxRetries: 1)
        #expect(startAll(&store) == ["a", "b"])
        _ = try store.failAttempt(id: "a", error: "boom", retryDelay: 100, now: 20)
        #expect(store.startNext(now: 10_000) == nil)
        #expect(store["a"]?.state == .queued)
        _ = store.accept(id: "c", payload: "", maxRetries: 0, now: 30)
        #expect(startAll(&store, now: 10_000) == ["c"])
        store.makeRunnable(id: "a")
        #expect(store.hasRunnable)
        #expect(startAll(&store, now: 10_000) == ["a"])
    }

    @Test func madeRunnableJobGoesToTheBackOfTheFIFO() throws {
        var store = makeStore(ids: ["a"], maxRetries: 1)
        _ = store.startNext(now: 10)
        _ = try store.failAttempt(id: "a", error: "boom", retryDelay: 100, now: 20)
        _ = store.accept(id: "b", payload: "", maxRetries: 0, now: 30)
        store.makeRunnable(id: "a")
        _ = store.accept(id: "c", payload: "", maxRetries: 0, now: 40)
        #expect(startAll(&store) == ["b", "a", "c"])
    }

    @Test func makeRunnableIgnoresJobsNotWaitingForRetry() throws {
        var store = makeStore(ids: ["queued", "running", "canceled"], maxRetries: 1)
        _ = store.startNext(now: 10)  // the job named "queued" goes through a retry back to plainly queued
        _ = try store.failAttempt(id: "queued", error: "boom", retryDelay: 100, now: 20)
        store.makeRunnable(id: "queued")
        _ = store.startNext(now: 30)  // the job named "running"
        _ = try store.cancel(id: "canceled", now: 30)
        // Plainly queued (no nextAttemptAt), running, canceled and unknown ids are ignored: no duplicate FIFO entry.
        store.makeRunnable(id: "queued")
        store.makeRunnable(id: "running")
        store.makeRunnable(id: "canceled")
        store.makeRunnable(id: "unknown")
        #expect(startAll(&store) == ["queued"])
        #expect(counts(store) == [0, 2, 1])
    }

    @Test func makeRunnableAfterCancelOfRetryWaitingJobIsIgnored() throws {
        var store = makeStore(ids: ["a"], maxRetries: 1)
        _ = store.startNext(now: 10)
        _ = try store.failAttempt(id: "a", error: "boom", retryDelay: 100, now: 20)
        _ = try store.cancel(id: "a", now: 30)
        store.makeRunnable(id: "a")
        #expect(store.startNext(now: 200) == nil)
        #expect(store["a"]?.state == .canceled)
        #expect(counts(store) == [0, 0, 1])
    }

    @Test func canceledQueuedJobIsSkippedByStartNext() throws {
        var store = makeStore(ids: ["a", "b", "c"])
        _ = try store.cancel(id: "b", now: 10)
        #expect(startAll(&store) == ["a", "c"])
        #expect(store["b"]?.state == .canceled)
        #expect(store["b"]?.attempts == 0)
        #expect(counts(store) == [0, 2, 1])
    }

    @Test func retentionDropsOldestFinishedAndKeepsUnfinished() throws {
        var store = makeStore(ids: ["f1", "f2", "run", "f3", "f4", "f5", "wait"], maximumFinished: 3, maxRetries: 1)
        #expect(startAll(&store).count == 7)
        _ = store.accept(id: "queued", payload: "", maxRetries: 0, now: 50)
        #expect(try store.failAttempt(id: "wait", error: "boom", retryDelay: 1_000, now: 60) == .retry(delay: 1_000))
        for id in ["f1", "f2", "f3", "f4", "f5"] {
            _ = try store.succeed(id: id, result: ByteString(id), now: 100)
        }
        #expect(store["f1"] == nil)
        #expect(store["f2"] == nil)
        for id in ["f3", "f4", "f5"] { #expect(store[id]?.state == .done) }
        #expect(store["run"]?.state == .running)
        #expect(store["wait"]?.state == .queued)
        #expect(store["queued"]?.state == .queued)
        #expect(store.finishedCount == 3)
        #expect(counts(store) == [2, 1, 3])
        #expect(store.list(state: nil, limit: 100).map(\.id) == ["queued", "wait", "f5", "f4", "f3", "run"])
    }

    @Test func retentionCountsFailedAndCanceledJobsToo() throws {
        var store = makeStore(ids: ["done", "failed", "canceled", "last"], maximumFinished: 2)
        _ = try store.cancel(id: "canceled", now: 1)
        #expect(startAll(&store) == ["done", "failed", "last"])
        _ = try store.succeed(id: "done", result: "", now: 2)
        _ = try store.failAttempt(id: "failed", error: "e", retryDelay: 0, now: 3)
        // Finish order: canceled, done, failed -> canceled dropped.
        #expect(store["canceled"] == nil)
        #expect(store["done"]?.state == .done)
        #expect(store["failed"]?.state == .failed)
        _ = try store.succeed(id: "last", result: "", now: 4)
        #expect(store["done"] == nil)
        #expect(store.finishedCount == 2)
    }

    @Test
    func maximumFinishedZeroDropsJobsAsTheyFinish() throws {
        var store = makeStore(ids: ["a"], maximumFinished: 0)
        _ = store.startNext(now: 1)
        let done = try store.succeed(id: "a", result: "r", now: 2)
        #expect(done.state == .done)
        #expect(done.result == "r")
        #expect(store["a"] == nil)
        #expect(store.finishedCount == 0)
    }

    @Test func droppedIDCanBeAcceptedAgainAsANewJob() throws {
        var store = makeStore(ids: ["a", "x", "y"], maximumFinished: 1)
        #expect(startAll(&store) == ["a", "x", "y"])
        let old = try store.succeed(id: "a", result: "old", now: 10)
        _ = try store.succeed(id: "x", result: "", now: 11)
        #expect(store["a"] == nil)

        let new = store.accept(id: "a", payload: "new", maxRetries: 0, now: 20)
        #expect(new.sequence > old.sequence)
        #expect(store["a"]?.state == .queued)
        #expect(store["a"]?.payload == "new")
        #expect(store["a"]?.result == nil)
        #expect(counts(store) == [1, 1, 1])

        // The old job's finished entry must not evict the new job when retention moves on.
        _ = try store.succeed(id: "y", result: "", now: 21)
        #expect(store["x"] == nil)
        #expect(store["a"]?.state == .queued)
        #expect(startAll(&store) == ["a"])

        // Listing shows the new job once, not the old acceptance entry.
        #expect(store.list(state: nil, limit: 10).map(\.id) == ["a", "y"])
        let listed = try #require(store.list(state: nil, limit: 10).first)
        #expect(listed.sequence == new.sequence)
    }

    @Test
    func reacceptedIDAfterCanceledQueuedJobWasDroppedKeepsFIFOOrder() throws {
        var store = makeStore(ids: ["a", "b"], maximumFinished: 0)
        // "a" is canceled while queued: its FIFO entry stays behind, and retention drops the job at once.
        _ = try store.cancel(id: "a", now: 1)
        #expect(store["a"] == nil)
        _ = store.accept(id: "c", payload: "", maxRetries: 0, now: 2)
        _ = store.accept(id: "a", payload: "again", maxRetries: 0, now: 3)
        // The new "a" was accepted last, so it must start last.
        #expect(startAll(&store) == ["b", "c", "a"])
    }

    @Test func maximumFinishedZeroDropsFailedAndCanceledJobsAsTheyFinish() throws {
        var store = makeStore(ids: ["failed", "canceled"], maximumFinished: 0)
        _ = store.startNext(now: 1)
        #expect(try store.failAttempt(id: "failed", error: "e", retryDelay: 0, now: 2) == .failed)
        #expect(try store.cancel(id: "canceled", now: 3).previous == .queued)
        #expect(store["failed"] == nil)
        #expect(store["canceled"] == nil)
        #expect(counts(store) == [0, 0, 0])
    }

    @Test func reacceptedIDAfterCanceledQueuedJobIsStartedOnlyOnce() throws {
        var store = makeStore(ids: ["a", "b"], maximumFinished: 0)
        _ = try store.cancel(id: "a", now: 1)
        _ = store.accept(id: "a", payload: "again", maxRetries: 0, now: 3)
        let started = startAll(&store)
        #expect(started.sorted() == ["a", "b"])
        #expect(counts(store) == [0, 2, 0])
    }

    @Test func listIsNewestFirst() throws {
        let store = makeStore(ids: ["a", "b", "c", "d"])
        #expect(store.list(state: nil, limit: 10).map(\.id) == ["d", "c", "b", "a"])
    }

    @Test func listFiltersByStateAndLimits() throws {
        var store = makeStore(ids: ["a", "b", "c", "d", "e", "f"], maxRetries: 0)
        #expect(startAll(&store) == ["a", "b", "c", "d", "e", "f"])
        _ = try store.succeed(id: "a", result: "", now: 1)
        _ = try store.succeed(id: "c", result: "", now: 1)
        _ = try store.succeed(id: "e", result: "", now: 1)
        _ = try store.failAttempt(id: "b", error: "", retryDelay: 0, now: 1)
        _ = store.accept(id: "g", payload: "", maxRetries: 0, now: 2)
        _ = store.accept(id: "h", payload: "", maxRetries: 0, now: 2)
        _ = try store.cancel(id: "h", now: 3)

        let cases: [(state: JobState?, limit: Int, ids: [String])] = [
            (nil, 100, ["h", "g", "f", "e", "d", "c", "b", "a"]),
            (nil, 3, ["h", "g", "f"]),
            (.done, 100, ["e", "c", "a"]),
            (.done, 2, ["e", "c"]),
            (.done, 1, ["e"]),
            (.running, 100, ["f", "d"]),
            (.queued, 100, ["g"]),
            (.failed, 100, ["b"]),
            (.canceled, 100, ["h"]),
        ]
        for (state, limit, ids) in cases {
            #expect(
                store.list(state: state, limit: limit).map(\.id) == ids,
                "state \(String(describing: state)) limit \(limit)")
        }
    }

    @Test func listOfEmptyStoreIsEmpty() {
        #expect(JobStore(maximumFinished: 3).list(state: nil, limit: 10).isEmpty)
    }

    @Test func listOmitsJobsDroppedByRetention() throws {
        var store = makeStore(ids: ["a", "b", "c"], maximumFinished: 1)
        #expect(startAll(&store).count == 3)
        for id in ["a", "b", "c"] { _ = try store.succeed(id: id, result: "", now: 1) }
        #expect(store.list(state: nil, limit: 10).map(\.id) == ["c"])
    }

    @Test func retentionStaysBoundedUnderLongRunOfJobs() throws {
        var store = JobStore(maximumFinished: 5)
        for index in 0..<3_000 {
            let id = "job-\(index % 50)"  // ids recur once dropped
            if store[id] != nil { continue }
            _ = store.accept(id: id, payload: "", maxRetries: 0, now: Int64(index))
            let next = store.startNext(now: Int64(index))
            let started = try #require(next)
            _ = try store.succeed(id: started.id, result: "", now: Int64(index))
        }
        #expect(store.finishedCount == 5)
        #expect(store.jobs.count == 5)
        #expect(store.list(state: nil, limit: 100).count == 5)
        #expect(counts(store) == [0, 0, 5])
    }
}
