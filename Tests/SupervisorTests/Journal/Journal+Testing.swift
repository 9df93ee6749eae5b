import Glibc
import System

@testable import Supervisor

/// Journal events in the shape the journal's first format kept them (no outcome, no run time), and the
/// journal opened the way `main` opens it.
extension JobEvent {
    /// An accepted job.
    static func accepted(id: String, payload: ByteString, maxRetries: Int, sequence: UInt64, at: Int64) -> JobEvent {
        .accepted(JobSpec(id: id, payload: payload, maxRetries: maxRetries), sequence: sequence, at: at)
    }

    /// A failed attempt counted as a handler error.
    static func attemptFailed(id: String, attempt: Int, error: String, retryAt: Int64?, at: Int64) -> JobEvent {
        .attemptFailed(
            id: id, attempt: attempt, outcome: .error, error: error, runMicroseconds: 0, retryAt: retryAt, at: at)
    }

    /// A success.
    static func succeeded(id: String, result: ByteString, at: Int64) -> JobEvent {
        .succeeded(id: id, attempt: 0, result: result, runMicroseconds: 0, at: at)
    }

    /// Appends the event as a journal record.
    func encode(into bytes: inout [UInt8]) {
        JournalRecord.encode(self, into: &bytes)
    }
}

extension JournalReplay {
    /// The jobs the events describe, in acceptance order, and the events that did not apply.
    static func rebuild(_ events: [JobEvent], now: Int64) -> (jobs: [Job], problems: [String]) {
        let (store, problems) = rebuild(events, maximumFinished: .max, now: now)
        return (store.jobsInAcceptanceOrder, problems)
    }
}

extension Journal {
    /// Opens and locks the journal in `directory` as `main` does.
    static func open(directory: String, syncMode: FsyncMode, compactBytes: Int = 1 << 30) throws(JournalFile.OpenError)
        -> (Journal, JournalFile.Recovery)
    {
        let opened = try JournalFile.open(directory: directory, now: 1_700_000_000_000)
        do throws(SystemError) {
            let journal = try Journal(
                directory: directory, opened: opened, syncMode: syncMode, compactBytes: compactBytes,
                logger: Logger(level: .error), metrics: Metrics())
            return (journal, opened.recovery)
        } catch {
            throw .system(error)
        }
    }

    /// Replaces the journal with these snapshots now.
    func rewrite(_ snapshots: [JobEvent]) throws(SystemError) {
        let jobs = snapshots.compactMap { event -> Job? in if case .snapshot(let job) = event { job } else { nil } }
        try compactNow(jobsInAcceptanceOrder: jobs)
    }
}

extension JournalFile.Recovery {
    /// The events read.
    var records: [JobEvent] { scan.events }
}

extension Journal {
    /// Watches the journal's background work on a fresh loop and runs it until `condition` holds (5 s at most);
    /// returns whether it did.
    func runLoop(until condition: () -> Bool) throws -> Bool {
        let loop = try EventLoop()
        try attach(to: loop, durable: {}, failed: { error in fatalError("journal failed: \(error)") })
        let deadline = loop.now + 5_000
        loop.schedule(at: deadline) {}
        while !condition() && loop.now < deadline {
            try loop.runOnce()
        }
        return condition()
    }
}
