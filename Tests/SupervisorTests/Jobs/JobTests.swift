import Testing

@testable import Supervisor

/// What a failed or interrupted attempt led to, read off the job's state after the transition.
enum AttemptDisposition: Equatable {
    /// Queued again, runnable after `delay` milliseconds.
    case retry(delay: Milliseconds)
    /// No attempts left.
    case failed
}

extension Job {
    /// `failAttempt` with a retry `retryDelay` after `now`, as the supervisor asks whenever attempts may be left;
    /// the job decides whether there are.
    fileprivate mutating func failAttempt(
        error: String, retryDelay: Milliseconds, now: Int64
    ) throws(InvalidTransition) -> AttemptDisposition {
        try failAttempt(error: error, retryAt: now + retryDelay, now: now)
        return state == .queued ? .retry(delay: retryDelay) : .failed
    }

    /// `interrupt`, reporting where the job went.
    fileprivate mutating func interrupted(error: String, now: Int64) throws(InvalidTransition) -> AttemptDisposition {
        try interrupt(error: error, now: now)
        return state == .queued ? .retry(delay: 0) : .failed
    }
}

@Suite struct JobTests {
    /// A fresh queued job accepted at time 100.
    private func makeJob(maxRetries: Int = 2) -> Job {
        Job(id: "job-1", payload: "hello", maxRetries: maxRetries, sequence: 7, now: 100)
    }

    /// A job driven into `state` through allowed transitions.
    private func makeJob(in state: JobState) throws -> Job {
        var job = makeJob(maxRetries: 0)
        switch state {
        case .queued:
            break
        case .running:
            try job.start(now: 200)
        case .done:
            try job.start(now: 200)
            try job.succeed(result: "ok", now: 300)
        case .failed:
            try job.start(now: 200)
            _ = try job.failAttempt(error: "boom", retryDelay: 50, now: 300)
        case .canceled:
            try job.cancel(now: 300)
        }
        try #require(job.state == state)
        return job
    }

    @Test func freshJobIsQueuedWithNoAttempts() {
        let job = makeJob()
        #expect(job.state == .queued)
        #expect(job.attempts == 0)
        #expect(job.lastError == nil)
        #expect(job.result == nil)
        #expect(job.nextAttemptAt == nil)
        #expect(job.createdAt == 100)
        #expect(job.updatedAt == 100)
        #expect(job.sequence == 7)
    }

    @Test func aDelayCountsFromAcceptanceAndARunAtInThePastRunsAtOnce() {
        var spec = JobSpec(id: "a", payload: "p", maxRetries: 0)
        spec.delayMilliseconds = 200
        #expect(Job(spec: spec, sequence: 1, now: 1_000).nextAttemptAt == 1_200)
        spec.delayMilliseconds = nil
        spec.runAt = 999
        #expect(Job(spec: spec, sequence: 1, now: 1_000).nextAttemptAt == nil)
        spec.runAt = 1_001
        #expect(Job(spec: spec, sequence: 1, now: 1_000).nextAttemptAt == 1_001)
    }

    @Test func startMovesQueuedToRunningAndCountsAttempt() throws {
        var job = makeJob()
        try job.start(now: 200)
        #expect(job.state == .running)
        #expect(job.attempts == 1)
        #expect(job.nextAttemptAt == nil)
        #expect(job.updatedAt == 200)
        #expect(job.createdAt == 100)
    }

    @Test func startAfterRetryClearsNextAttemptAtAndIncrementsAttempts() throws {
        var job = makeJob(maxRetries: 2)
        try job.start(now: 200)
        _ = try job.failAttempt(error: "boom", retryDelay: 1_000, now: 300)
        #expect(job.nextAttemptAt == 1_300)
        try job.start(now: 1_400)
        #expect(job.state == .running)
        #expect(job.attempts == 2)
        #expect(job.nextAttemptAt == nil)
        #expect(job.updatedAt == 1_400)
    }

    @Test func succeedMovesRunningToDone() throws {
        var job = makeJob()
        try job.start(now: 200)
        try job.succeed(result: "the output", now: 300)
        #expect(job.state == .done)
        #expect(job.result == "the output")
        #expect(job.updatedAt == 300)
        #expect(job.attempts == 1)
        #expect(job.state.isFinished)
    }

    @Test func failedAttemptWithAttemptsLeftRequeuesWithBackoff() throws {
        var job = makeJob(maxRetries: 1)
        try job.start(now: 200)
        let outcome = try job.failAttempt(error: "worker exited on signal 11 (SIGSEGV)", retryDelay: 750, now: 300)
        #expect(outcome == .retry(delay: 750))
        #expect(job.state == .queued)
        #expect(job.nextAttemptAt == 1_050)
        #expect(job.lastError == "worker exited on signal 11 (SIGSEGV)")
        #expect(job.updatedAt == 300)
        #expect(job.attempts == 1)
        #expect(!job.state.isFinished)
    }

    @Test func maxRetriesTwoAllowsThreeAttemptsThenFails() throws {
        var job = makeJob(maxRetries: 2)
        var now: Int64 = 200
        var outcomes: [AttemptDisposition] = []
        for attempt in 1...3 {
            try job.start(now: now)
            #expect(job.attempts == attempt)
            now += 10
            outcomes.append(try job.failAttempt(error: "error \(attempt)", retryDelay: 100, now: now))
            now += 100
        }
        #expect(outcomes == [.retry(delay: 100), .retry(delay: 100), .failed])
        #expect(job.state == .failed)
        #expect(job.attempts == 3)
        #expect(job.lastError == "error 3")
        #expect(job.state.isFinished)
    }

    @Test func maxRetriesZeroFailsOnFirstFailedAttempt() throws {
        var job = makeJob(maxRetries: 0)
        try job.start(now: 200)
        let outcome = try job.failAttempt(error: "timeout after 30000 ms", retryDelay: 100, now: 300)
        #expect(outcome == .failed)
        #expect(job.state == .failed)
        #expect(job.lastError == "timeout after 30000 ms")
        #expect(job.updatedAt == 300)
    }

    @Test func interruptRequeuesRunningJobAtOnceKeepingTheAttempt() throws {
        var job = makeJob(maxRetries: 1)
        try job.start(now: 200)
        let outcome = try job.interrupted(error: "supervisor restarted", now: 300)
        #expect(outcome == .retry(delay: 0))
        #expect(job.state == .queued)
        #expect(job.nextAttemptAt == nil)
        #expect(job.attempts == 1)
        #expect(job.lastError == "supervisor restarted")
        #expect(job.updatedAt == 300)
    }

    @Test func interruptGivesOneGraceAttemptBeyondMaxRetries() throws {
        var job = makeJob(maxRetries: 0)
        try job.start(now: 200)
        #expect(try job.interrupted(error: "first", now: 210) == .retry(delay: 0))
        try job.start(now: 220)
        #expect(try job.interrupted(error: "second", now: 230) == .failed)
        #expect(job.state == .failed)
        #expect(job.attempts == 2)
        #expect(job.lastError == "second")
    }

    @Test func interruptAfterFailedAttemptsFailsOnceGraceIsUsed() throws {
        var job = makeJob(maxRetries: 2)
        for attempt in 1...3 {
            try job.start(now: Int64(attempt) * 100)
            let outcome = try job.interrupted(error: "crash \(attempt)", now: Int64(attempt) * 100 + 10)
            #expect(outcome == .retry(delay: 0))
        }
        try job.start(now: 1_000)
        #expect(try job.interrupted(error: "crash 4", now: 1_010) == .failed)
        #expect(job.attempts == 4)
    }

    @Test func cancelMovesQueuedToCanceled() throws {
        var job = makeJob()
        try job.cancel(now: 300)
        #expect(job.state == .canceled)
        #expect(job.lastError == "canceled")
        #expect(job.updatedAt == 300)
        #expect(job.attempts == 0)
        #expect(job.state.isFinished)
    }

    @Test func cancelOfRetryWaitingJobClearsNextAttemptAt() throws {
        var job = makeJob(maxRetries: 1)
        try job.start(now: 200)
        _ = try job.failAttempt(error: "boom", retryDelay: 500, now: 300)
        try job.cancel(now: 400)
        #expect(job.state == .canceled)
        #expect(job.nextAttemptAt == nil)
        #expect(job.lastError == "canceled")
    }

    @Test func cancelMovesRunningToCanceled() throws {
        var job = makeJob()
        try job.start(now: 200)
        try job.cancel(now: 300)
        #expect(job.state == .canceled)
        #expect(job.lastError == "canceled")
        #expect(job.updatedAt == 300)
        #expect(job.attempts == 1)
    }

    @Test func becomeRunnableClearsNextAttemptAtOnly() throws {
        var job = makeJob(maxRetries: 1)
        try job.start(now: 200)
        _ = try job.failAttempt(error: "boom", retryDelay: 500, now: 300)
        job.becomeRunnable()
        #expect(job.state == .queued)
        #expect(job.nextAttemptAt == nil)
        #expect(job.lastError == "boom")
        #expect(job.updatedAt == 300)
    }

    enum Event: String, CaseIterable, Sendable {
        case start, succeed, fail, interrupt, cancel
    }

    static let refusedTransitions: [(state: JobState, event: Event)] = [
        (.running, .start), (.done, .start), (.failed, .start), (.canceled, .start),
        (.queued, .succeed), (.done, .succeed), (.failed, .succeed), (.canceled, .succeed),
        (.queued, .fail), (.done, .fail), (.failed, .fail), (.canceled, .fail),
        (.queued, .interrupt), (.done, .interrupt), (.failed, .interrupt), (.canceled, .interrupt),
        (.done, .cancel), (.failed, .cancel), (.canceled, .cancel),
    ]

    @Test(arguments: refusedTransitions)
    func refusedTransitionThrowsAndLeavesJobUnchanged(state: JobState, event: Event) throws {
        var job = try makeJob(in: state)
        let before = job
        #expect(throws: InvalidTransition.notAllowed(from: state, event: event.rawValue)) {
            switch event {
            case .start: try job.start(now: 999)
            case .succeed: try job.succeed(result: "late", now: 999)
            case .fail: _ = try job.failAttempt(error: "late", retryDelay: 10, now: 999)
            case .interrupt: _ = try job.interrupted(error: "late", now: 999)
            case .cancel: try job.cancel(now: 999)
            }
        }
        #expect(job == before)
    }

    @Test func everyStateEventPairIsEitherAllowedOrRefused() throws {
        let allowed: Set<String> = [
            "queued.start", "running.succeed", "running.fail", "running.interrupt", "queued.cancel", "running.cancel",
        ]
        let refused = Set(Self.refusedTransitions.map { "\($0.state.rawValue).\($0.event.rawValue)" })
        #expect(allowed.isDisjoint(with: refused))
        #expect(allowed.count + refused.count == JobState.allCases.count * Event.allCases.count)
    }

    @Test func finishedStatesAreDoneFailedAndCanceled() {
        #expect(JobState.allCases.filter(\.isFinished) == [.done, .failed, .canceled])
    }

    static let contentComparisons: [(payload: String, maxRetries: Int, same: Bool)] = [
        ("hello", 2, true),
        ("hello", 3, false),
        ("hello", 0, false),
        ("Hello", 2, false),
        ("", 2, false),
        ("hello ", 2, false),
    ]

    @Test(arguments: contentComparisons)
    func hasSameContentComparesPayloadAndMaxRetries(payload: String, maxRetries: Int, same: Bool) {
        #expect(makeJob(maxRetries: 2).hasSameContent(payload: ByteString(payload), maxRetries: maxRetries) == same)
    }

    @Test func hasSameContentIgnoresStateAndHistory() throws {
        var job = makeJob(maxRetries: 2)
        try job.start(now: 200)
        try job.succeed(result: "ok", now: 300)
        #expect(job.hasSameContent(payload: "hello", maxRetries: 2))
    }
}

extension JobTests {
    @Test func failedAttemptWithoutARetryTimeFailsWhateverTheBudget() throws {
        var job = makeJob(maxRetries: 5)
        try job.start(now: 200)
        try job.failAttempt(error: "boom", retryAt: nil, now: 300)
        #expect(job.state == .failed)
        #expect(job.nextAttemptAt == nil)
    }

    @Test func copiesStayIndependentWhateverIsStoredOutOfLine() throws {
        var original = Job(
            spec: JobSpec(id: "j", payload: "p", maxRetries: 2, timeoutMilliseconds: 500, callbackURL: "http://h/c"),
            sequence: 1, now: 0)
        try original.start(now: 10, workerPID: 7)
        let copy = original
        try original.failAttempt(error: "boom", retryAt: 100, now: 20)
        try original.start(now: 100, workerPID: 8)
        // The copy still has one attempt running, no error, no retry time; the original two attempts.
        #expect(copy.state == .running && copy.lastError == nil && copy.nextAttemptAt == nil)
        #expect(copy.history.map(\.attempt) == [1] && copy.history[0].outcome == nil)
        #expect(original.history.map(\.attempt) == [1, 2] && original.history[0].outcome == .error)
        #expect(original.lastError == "boom" && original.timeoutMilliseconds == 500 && original.callbackURL == "http://h/c")
        // Defaults set back leave an equal record, and a snapshot restores an equal job.
        #expect(Job(restoring: original.snapshot) == original)
        try original.succeed(result: "ok", now: 120)
        #expect(Job(restoring: original.snapshot) == original)
        #expect(copy != original)
    }

    @Test func historyKeepsTheNewestTwentyAcrossTheInlineAndArrayForms() throws {
        var job = Job(spec: JobSpec(id: "j", payload: "p", maxRetries: 30), sequence: 1, now: 0)
        #expect(job.history.isEmpty)
        for attempt in 1...25 {
            try job.start(now: Int64(attempt * 10))
            #expect(job.history.last?.attempt == attempt)
            try job.failAttempt(error: "e\(attempt)", retryAt: Int64(attempt * 10 + 1), now: Int64(attempt * 10 + 5))
            job.becomeRunnable()
        }
        #expect(job.history.map(\.attempt) == Array(6...25))
        #expect(job.history.allSatisfy { $0.outcome == .error && $0.error == "e\($0.attempt)" })
    }
}
