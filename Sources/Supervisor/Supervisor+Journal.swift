import Glibc
import System

/// The supervisor and its journal: restoring the jobs it holds at start (or saying they are ignored under the
/// PostgreSQL backend), starting syncs, and stopping when it cannot be written.
extension Supervisor {
    /// With the PostgreSQL backend the local journal is not used; jobs left in it from the journal backend are
    /// said, not run (switch back to drain them).
    func ignoreJournal() {
        guard let recovery else { return }
        self.recovery = nil
        if !recovery.scan.events.isEmpty {
            logger.warn(
                "journal_ignored",
                [
                    "path": .string(journal.path), "records": .int(recovery.scan.events.count),
                    "reason": "queue.backend is postgres; these jobs run only with the journal backend",
                ])
        }
    }

    /// Rebuilds the jobs the journal holds, then rewrites it to just them (charging interrupted attempts).
    func restoreJobs() throws(SystemError) {
        guard let recovery else { return }
        self.recovery = nil
        let scan = recovery.scan
        if let torn = scan.tornTail {
            logger.warn(
                "journal_truncated",
                ["reason": .string(torn.reason), "offset": .int(torn.offset), "dropped_bytes": .int(torn.length)])
        }
        for damage in scan.damage {
            logger.error(
                "journal_damaged",
                [
                    "reason": .string(damage.reason), "offset": .int(damage.offset), "bytes": .int(damage.length),
                    "job_before": .optional(damage.jobBefore), "job_after": .optional(damage.jobAfter),
                    "kept_as": .optional(recovery.keptAside),
                ])
        }
        if scan.format == .legacy { logger.info("journal_upgraded", ["path": .string(journal.path), "from": "1", "to": "2"]) }
        let (store, problems) = JournalReplay.rebuild(
            scan.events, maximumFinished: config.retentionMaxFinished,
            maximumResultBytes: config.retentionMaxResultBytes, now: clock.wallMilliseconds())
        for problem in problems { logger.warn("journal_record_skipped", ["problem": .string(problem)]) }
        ledger.restore(store)
        logger.info(
            "journal_replayed",
            [
                "path": .string(journal.path), "records": .int(scan.events.count), "jobs": .int(store.jobs.count),
                "queued": .int(store.queuedCount),
            ])
        try journal.compactNow(jobsInAcceptanceOrder: store.jobsInAcceptanceOrder, paused: store.paused)
        // Replay's buffers (the whole file, every event) are gone now; hand their pages back to the system.
        Memory.trim()
    }

    /// A reply now waits on a journal event: start its sync at once if none is running.
    func syncJournalSoon() {
        do throws(SystemError) {
            try journal.commitIfSyncIdle()
        } catch {
            journalFailed(error)
        }
    }

    /// The journal cannot be written: nothing more can be promised durable. Stop without sending the replies
    /// that wait on it (their clients see the connection drop, not a 202), kill the workers, exit 1.
    func journalFailed(_ error: SystemError) -> Never {
        logger.error("journal_write_failed", ["error": .string(error.description), "path": .string(journal.path)])
        for slot in pool.slots {
            if let pid = slot.state.child?.pid {
                Process.killDescendants(of: pid)
                Process.killGroup(pid, SIGKILL)
            }
        }
        while Process.reapAny() != nil {}
        Process.exit(1)
    }
}
