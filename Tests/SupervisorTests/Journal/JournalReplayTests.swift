import Testing

@testable import Supervisor

@Suite struct JournalReplayTests {
    private let now: Int64 = 10_000

    private func accepted(_ id: String, maxRetries: Int = 2, sequence: UInt64 = 1, at: Int64 = 100) -> JobEvent {
        .accepted(id: id, payload: "payload-\(id)", maxRetries: maxRetries, sequence: sequence, at: at)
    }

    /// Replays `records` and returns the single job they describe.
    private func replayOne(_ records: [JobEvent]) throws -> Job {
        let (jobs, problems) = JournalReplay.rebuild(records, now: now)
        #expect(problems.isEmpty)
        #expect(jobs.count == 1)
        return try #require(jobs.first)
    }

    @Test func acceptedJobIsQueued() throws {
        let job = try replayOne([accepted("a", maxRetries: 4, sequence: 7, at: 123)])
        #expect(job.id == "a")
        #expect(job.payload == "payload-a")
        #expect(job.maxRetries == 4)
        #expect(job.sequence == 7)
        #expect(job.createdAt == 123)
        #expect(job.state == .queued)
        #expect(job.attempts == 0)
        #expect(job.nextAttemptAt == nil)
        #expect(job.lastError == nil)
    }

    @Test func jobRunningAtTheEndIsInterruptedAndQueuedWithTheAttemptCounted() throws {
        let job = try replayOne([accepted("a"), .started(id: "a", attempt: 1, at: 200)])
        #expect(job.state == .queued)
        #expect(job.attempts == 1)
        #expect(job.nextAttemptAt == nil)
        #expect(job.lastError?.contains("supervisor stopped") == true)
        #expect(job.updatedAt == now)
    }

    @Test func attemptInterruptedByShutdownIsQueuedEvenWithoutRetriesLeft() throws {
        let error = "killed at shutdown after 30000 ms"
        let job = try replayOne([
            accepted("a", maxRetries: 0), .started(id: "a", attempt: 1, at: 200),
            .interrupted(id: "a", attempt: 1, error: error, at: 300),
        ])
        #expect(job.state == .queued)
        #expect(job.attempts == 1)
        #expect(job.lastError == error)
        #expect(job.updatedAt == 300)
    }

    @Test func secondInterruptionBeyondTheBudgetFails() throws {
        let job = try replayOne([
            accepted("a", maxRetries: 0), .started(id: "a", attempt: 1, at: 200),
            .interrupted(id: "a", attempt: 1, error: "killed at shutdown", at: 300),
            .started(id: "a", attempt: 2, at: 400),
            .interrupted(id: "a", attempt: 2, error: "killed at shutdown", at: 500),
        ])
        #expect(job.state == .failed)
        #expect(job.attempts == 2)
    }

    @Test func failedAttemptWithRetryTimeIsQueuedUntilThen() throws {
        let job = try replayOne([
            accepted("a"),
            .started(id: "a", attempt: 1, at: 200),
            .attemptFailed(id: "a", attempt: 1, error: "exit 3", retryAt: 450, at: 250),
        ])
        #expect(job.state == .queued)
        #expect(job.attempts == 1)
        #expect(job.nextAttemptAt == 450)
        #expect(job.lastError == "exit 3")
        #expect(job.updatedAt == 250)
    }

    @Test func failedAttemptWithoutRetryTimeIsFailed() throws {
        let job = try replayOne([
            accepted("a", maxRetries: 0),
            .started(id: "a", attempt: 1, at: 200),
            .attemptFailed(id: "a", attempt: 1, error: "exit 3", retryAt: nil, at: 250),
        ])
        #expect(job.state == .failed)
        #expect(job.attempts == 1)
        #expect(job.lastError == "exit 3")
        #expect(job.nextAttemptAt == nil)
    }

    @Test func lastOfSeveralAttemptsFailing() throws {
        let job = try replayOne([
            accepted("a", maxRetries: 1),
            .started(id: "a", attempt: 1, at: 200),
            .attemptFailed(id: "a", attempt: 1, error: "first", retryAt: 300, at: 250),
            .started(id: "a", attempt: 2, at: 300),
            .attemptFailed(id: "a", attempt: 2, error: "second", retryAt: nil, at: 350),
        ])
        #expect(job.state == .failed)
        #expect(job.attempts == 2)
        #expect(job.lastError == "second")
    }

    @Test func succeededJobIsDone() throws {
        let job = try replayOne([
            accepted("a"),
            .started(id: "a", attempt: 1, at: 200),
            .succeeded(id: "a", result: "out ✓", at: 300),
        ])
        #expect(job.state == .done)
        #expect(job.result == "out ✓")
        #expect(job.attempts == 1)
        #expect(job.updatedAt == 300)
    }

    @Test func canceledJobIsCanceledWhetherQueuedOrRunning() throws {
        let queued = try replayOne([accepted("a"), .canceled(id: "a", at: 150)])
        #expect(queued.state == .canceled)
        #expect(queued.lastError == "canceled")
        let running = try replayOne([
            accepted("b"), .started(id: "b", attempt: 1, at: 200), .canceled(id: "b", at: 250),
        ])
        #expect(running.state == .canceled)
        #expect(running.attempts == 1)
        #expect(running.updatedAt == 250)
    }

    @Test(arguments: JobState.allCases)
    func snapshotIsRestoredAsRecorded(_ state: JobState) throws {
        let snapshot = JournalRecordTests.job("s", state)
        let job = try replayOne([.snapshot(snapshot)])
        if state == .running {
            // A snapshot of a running job is a job that was running when the supervisor stopped.
            #expect(job.state == .queued)
            #expect(job.attempts == snapshot.attempts)
            #expect(job.lastError?.contains("supervisor stopped") == true)
        } else {
            #expect(job == snapshot)
        }
    }

    @Test func snapshotReplacesEarlierRecordsOfTheSameJob() throws {
        let snapshot = JournalRecordTests.job("a", .done, sequence: 1)
        let job = try replayOne([
            accepted("a", sequence: 1),
            .started(id: "a", attempt: 1, at: 200),
            .snapshot(snapshot),
        ])
        #expect(job == snapshot)
    }

    @Test func recordsAfterASnapshotApplyOnTopOfIt() throws {
        let job = try replayOne([
            .snapshot(
                Job(
                    restoring: "a", payload: "p", maxRetries: 2, sequence: 1, createdAt: 1, state: .queued, attempts: 1,
                    lastError: "x", result: nil, updatedAt: 2, nextAttemptAt: nil)),
            .started(id: "a", attempt: 2, at: 300),
            .succeeded(id: "a", result: "r", at: 400),
        ])
        #expect(job.state == .done)
        #expect(job.attempts == 2)
        #expect(job.result == "r")
    }

    @Test func jobInterruptedBeyondItsGraceAttemptFails() throws {
        // First crash: the job was running its only attempt.
        let (firstJobs, firstProblems) = JournalReplay.rebuild(
            [accepted("a", maxRetries: 0), .started(id: "a", attempt: 1, at: 200)], now: 1_000)
        #expect(firstProblems.isEmpty)
        let afterFirst = try #require(firstJobs.first)
        #expect(afterFirst.state == .queued)
        #expect(afterFirst.attempts == 1)

        // The restarted supervisor compacted it to a snapshot, started the grace attempt, and died again.
        let (secondJobs, secondProblems) = JournalReplay.rebuild(
            [.snapshot(afterFirst), .started(id: "a", attempt: 2, at: 2_000)], now: 3_000)
        #expect(secondProblems.isEmpty)
        let afterSecond = try #require(secondJobs.first)
        #expect(afterSecond.state == .failed)
        #expect(afterSecond.attempts == 2)
        #expect(afterSecond.lastError?.contains("supervisor stopped") == true)
    }

    @Test func interruptedJobWithRetriesLeftKeepsGoingUntilBudgetPlusOne() throws {
        var records: [JobEvent] = [accepted("a", maxRetries: 2)]
        var job: Job?
        for attempt in 1...4 {
            records.append(.started(id: "a", attempt: attempt, at: Int64(attempt * 100)))
            let (jobs, _) = JournalReplay.rebuild(records, now: Int64(attempt * 100 + 50))
            job = jobs.first
            records = [.snapshot(try #require(job))]
            if attempt < 4 {
                #expect(job?.state == .queued, "after interrupted attempt \(attempt)")
            }
        }
        #expect(job?.state == .failed)
        #expect(job?.attempts == 4)
    }

    @Test func recordsForUnknownJobsAreReportedNotFatal() {
        let (jobs, problems) = JournalReplay.rebuild(
            [
                .started(id: "ghost", attempt: 1, at: 1),
                .attemptFailed(id: "ghost", attempt: 1, error: "e", retryAt: nil, at: 2),
                .succeeded(id: "ghost", result: "", at: 3),
                .canceled(id: "ghost", at: 4),
                accepted("real"),
            ], now: now)
        #expect(jobs.map(\.id) == ["real"])
        #expect(problems.count == 4)
        #expect(problems.allSatisfy { $0.contains("ghost") })
    }

    @Test func recordsThatDoNotApplyToTheJobsStateAreReported() throws {
        let (jobs, problems) = JournalReplay.rebuild(
            [
                accepted("a"),
                .succeeded(id: "a", result: "early", at: 150),  // not running
                .started(id: "a", attempt: 1, at: 200),
                .succeeded(id: "a", result: "ok", at: 300),
                .canceled(id: "a", at: 400),  // already done
            ], now: now)
        #expect(problems.count == 2)
        let job = try #require(jobs.first)
        #expect(job.state == .done)
        #expect(job.result == "ok")
    }

    @Test func outputIsSortedBySequence() {
        let (jobs, problems) = JournalReplay.rebuild(
            [
                accepted("c", sequence: 30),
                .snapshot(JournalRecordTests.job("e", .done, sequence: 50)),
                accepted("a", sequence: 10),
                .snapshot(JournalRecordTests.job("b", .failed, sequence: 20)),
                accepted("d", sequence: 40),
            ], now: now)
        #expect(problems.isEmpty)
        #expect(jobs.map(\.id) == ["a", "b", "c", "d", "e"])
        #expect(jobs.map(\.sequence) == [10, 20, 30, 40, 50])
    }

    @Test func emptyJournalGivesNoJobs() {
        let (jobs, problems) = JournalReplay.rebuild([], now: now)
        #expect(jobs.isEmpty)
        #expect(problems.isEmpty)
    }

    @Test func reacceptedIdAfterFinishStartsAFreshJob() throws {
        let job = try replayOne([
            accepted("a", sequence: 1),
            .started(id: "a", attempt: 1, at: 200),
            .succeeded(id: "a", result: "r", at: 300),
            accepted("a", sequence: 2, at: 400),
        ])
        #expect(job.state == .queued)
        #expect(job.sequence == 2)
        #expect(job.attempts == 0)
    }
}
