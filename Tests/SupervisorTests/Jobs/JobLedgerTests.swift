import Testing

@testable import Supervisor

/// A log that keeps what it is given.
private final class RecordingLog: JobEventLog {
    var events: [JobEvent] = []
    func append(_ event: JobEvent) { events.append(event) }
}

/// Every recorded event goes to the store, the log, the metrics and the observers, in that one place.
@Suite struct JobLedgerTests {
    private func makeLedger() -> (JobLedger, RecordingLog, Metrics) {
        let log = RecordingLog()
        let metrics = Metrics()
        let ledger = JobLedger(
            store: JobStore(maximumFinished: 10), log: log, metrics: metrics, logger: Logger(level: .error))
        return (ledger, log, metrics)
    }

    private func accept(_ ledger: JobLedger, _ id: String, maxRetries: Int = 0) throws {
        try ledger.record(
            .accepted(JobSpec(id: id, payload: "p", maxRetries: maxRetries), sequence: ledger.takeSequence(), at: 1))
    }

    @Test func recordedEventsReachTheLogInOrderAndTheStore() throws {
        let (ledger, log, metrics) = makeLedger()
        try accept(ledger, "a")
        #expect(ledger.nextRunnable()?.id == "a")
        try ledger.record(.started(id: "a", attempt: 1, at: 2))
        try ledger.record(.succeeded(id: "a", attempt: 1, result: "r", runMicroseconds: 10, at: 3))
        #expect(log.events.map(\.summary) == ["accepted(a)", "started(a, 1)", "succeeded(a)"])
        #expect(ledger["a"]?.state == .done)
        #expect(metrics.accepted == 1)
        #expect(metrics.finished[.done] == 1)
        #expect(metrics.attempts[.ok] == 1)
    }

    @Test func refusedEventChangesNothingAndIsNotLogged() throws {
        let (ledger, log, metrics) = makeLedger()
        try accept(ledger, "a")
        #expect(throws: InvalidTransition.notAllowed(from: .queued, event: "succeed of attempt 1 (attempt 0 runs)")) {
            try ledger.record(.succeeded(id: "a", attempt: 1, result: "", runMicroseconds: 0, at: 2))
        }
        #expect(throws: InvalidTransition.unknownJob("ghost")) { try ledger.record(.canceled(id: "ghost", at: 2)) }
        #expect(log.events.count == 1)
        #expect(metrics.finished.isEmpty)
        #expect(ledger["a"]?.state == .queued)
    }

    @Test func failedAttemptCountsARetryOrAFailureByWhereTheJobWent() throws {
        let (ledger, _, metrics) = makeLedger()
        try accept(ledger, "a", maxRetries: 1)
        _ = ledger.nextRunnable()
        try ledger.record(.started(id: "a", attempt: 1, at: 2))
        try ledger.record(
            .attemptFailed(id: "a", attempt: 1, outcome: .crash, error: "x", runMicroseconds: 1, retryAt: 50, at: 3))
        #expect(metrics.retried == 1)
        #expect(metrics.attempts[.crash] == 1)
        #expect(ledger.nextWakeUp == 50)
        #expect(ledger.promoteDue(now: 50) == 1)
        _ = ledger.nextRunnable()
        try ledger.record(.started(id: "a", attempt: 2, at: 51))
        try ledger.record(
            .attemptFailed(id: "a", attempt: 2, outcome: .timeout, error: "t", runMicroseconds: 1, retryAt: nil, at: 60))
        #expect(metrics.finished[.failed] == 1)
        #expect(metrics.attempts[.timeout] == 1)
    }

    @Test func observersSeeEachEventWithTheJobAfterIt() throws {
        let (ledger, _, _) = makeLedger()
        var seen: [String] = []
        ledger.observers.append { event, job in seen.append("\(event.summary) -> \(job?.state.rawValue ?? "-")") }
        try accept(ledger, "a")
        try ledger.record(.canceled(id: "a", at: 2))
        #expect(seen == ["accepted(a) -> queued", "canceled(a) -> canceled"])
    }

    @Test func progressIsKeptOnlyWhileItsAttemptRuns() throws {
        let (ledger, _, _) = makeLedger()
        try accept(ledger, "a")
        ledger.progress(id: "a", attempt: 1, percent: 10, note: "early")
        #expect(ledger.progress["a"] == nil, "not running yet")
        _ = ledger.nextRunnable()
        try ledger.record(.started(id: "a", attempt: 1, at: 2))
        ledger.progress(id: "a", attempt: 1, percent: 50, note: "half")
        #expect(ledger.progress["a"] == JobProgress(percent: 50, note: "half"))
        ledger.progress(id: "a", attempt: 2, percent: 90, note: "wrong attempt")
        #expect(ledger.progress["a"]?.percent == 50)
        try ledger.record(.succeeded(id: "a", attempt: 1, result: "", runMicroseconds: 0, at: 3))
        #expect(ledger.progress["a"] == nil)
    }
}
