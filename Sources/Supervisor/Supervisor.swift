import CLinux
import Glibc
import IPC

/// The master process: one event loop that accepts jobs, hands them to workers and keeps the pool alive.
///
/// Like gunicorn's Arbiter, this file is the table of contents: run the loop, react to signals, reap
/// children, keep the worker count, stop gracefully. Each step delegates to an extension:
/// `Supervisor+Workers` (spawn, pipes, frames), `Supervisor+Jobs` (dispatch, outcomes, retries),
/// `Supervisor+API` (HTTP routes).
final class Supervisor {
    /// The effective configuration.
    var config: Config
    /// JSON-lines logger on stderr.
    let logger: Logger
    /// The event loop every descriptor and timer lives on.
    let loop: EventLoop
    /// Wall-clock source for records.
    let clock: Clock
    /// Every job.
    var store: JobStore
    /// Retry delays.
    var backoff: Backoff
    /// Counters and histograms for `/metrics`.
    var metrics = Metrics()
    /// The worker pool, one slot per position.
    var slots: [WorkerSlot] = []
    /// Slot of each live child.
    var slotByPID: [pid_t: WorkerSlot] = [:]
    /// Workers wanted (WORKERS, changed by SIGTTIN/SIGTTOU).
    var targetWorkers: Int
    /// Path of `prefork-worker`.
    var workerPath: String
    /// Command-line arguments and environment the process started with, to re-read the config on SIGHUP.
    let launchArguments: [String]
    let launchEnvironment: [String: String]
    /// /dev/null, the workers' stdin.
    let devNull: FileDescriptor
    /// The HTTP front end.
    var server: HTTPServer!
    /// The durable record of every job.
    let journal: Journal
    /// What the journal held at start.
    private var recovery: Journal.Recovery?
    /// The journal is compacted when it grows past this size.
    private var compactionThreshold: Int
    /// Backoff timers of retry-waiting jobs, to cancel them with the job.
    var retryTimers: [String: TimerID] = [:]
    /// Read buffer for the workers' pipes (results, stdout, stderr), reused by every read.
    var pipeBuffer = [UInt8](repeating: 0, count: 65536)
    /// SIGINT/SIGTERM received: no new jobs, finish running ones, exit.
    private(set) var draining = false
    /// The loop exits when this is set.
    private var finished = false
    private var signalFD: FileDescriptor?
    private var signalToken: EventToken = 0
    private var shutdownTimer: TimerID?

    /// Signals read from the signalfd instead of running handlers.
    static let handledSignals: [CInt] = [SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGTTIN, SIGTTOU]

    /// Builds the supervisor; nothing starts until `run()`.
    init(
        config: Config, workerPath: String, logger: Logger, journal: Journal, recovery: Journal.Recovery,
        launchArguments: [String] = [], launchEnvironment: [String: String] = [:], clock: Clock = SystemClock()
    ) throws(SystemError) {
        self.launchArguments = launchArguments
        self.launchEnvironment = launchEnvironment
        self.config = config
        self.logger = logger
        self.clock = clock
        self.loop = try EventLoop(clock: clock)
        self.store = JobStore(maximumFinished: config.retentionMaxFinished)
        self.backoff = Backoff(config: config)
        self.targetWorkers = config.workers
        self.workerPath = workerPath
        self.devNull = try Posix.open("/dev/null", O_RDWR)
        self.journal = journal
        self.recovery = recovery
        self.compactionThreshold = config.journalCompactBytes
    }

    /// Listens, starts the workers, and runs the loop until a graceful stop completes. Returns the exit code.
    func run(listenAddress: Socket.Address) throws(SystemError) -> Int32 {
        Posix.ignoreSIGPIPE()
        let signalFD = try SignalFD.create(Supervisor.handledSignals)
        self.signalFD = signalFD
        signalToken = try loop.register(signalFD, events: EventLoop.readable) { [unowned self] _ in
            self.handleSignals()
        }
        // Bind first so the first log line names the address; no request is read before the jobs are back.
        server = try HTTPServer(address: listenAddress, supervisor: self)
        logger.announce(
            "listening",
            [
                "addr": .string(server.boundAddress.description), "workers": .int(targetWorkers),
                "queue_size": .int(config.queueSize), "pid": .int(getpid()),
            ])
        try restoreJobs()
        var syncToken: EventToken = 0
        if let notification = journal.syncNotification {
            syncToken = try loop.register(notification, events: EventLoop.readable) { [unowned self] _ in
                // Send what the sync made durable, and start the next one, without waiting for the iteration to
                // end: the syncer runs back to back while replies wait. Everything pending is written first, so
                // no reply shows a state the file does not hold.
                do throws(SystemError) {
                    for seconds in try journal.finishSync() { metrics.journalSync.observe(seconds) }
                    try journal.commit()
                } catch {
                    journalFailed(error)
                }
                server.flush()
            }
        }
        manageWorkers()
        loop.afterIteration = { [unowned self] in self.endOfIteration() }
        while !finished {
            try loop.runOnce()
        }
        do throws(SystemError) {
            try journal.syncNow()
        } catch {
            journalFailed(error)
        }
        if let notification = journal.syncNotification { loop.unregister(notification, token: syncToken) }
        server.close()
        journal.close()
        loop.unregister(signalFD, token: signalToken)
        Posix.close(signalFD)
        logger.info("shutdown_complete", ["queued_jobs_left": .int(store.queuedCount)])
        return 0
    }

    /// Work batched per iteration: write this iteration's records (a background sync makes them durable, one
    /// for everything written while the previous one ran: group commit), then send the responses whose
    /// records are durable.
    private func endOfIteration() {
        updateUrgentPolling()
        do throws(SystemError) {
            try journal.commit()
            if journal.size > compactionThreshold && !journal.isCompacting { try beginCompaction() }
        } catch {
            journalFailed(error)
        }
        server.flush()
    }

    // MARK: Journal

    /// Rebuilds the jobs the journal holds, then rewrites it to just them (charging interrupted attempts).
    private func restoreJobs() throws(SystemError) {
        guard let recovery else { return }
        self.recovery = nil
        if let damage = recovery.damage {
            logger.warn(
                "journal_truncated",
                [
                    "reason": .string(damage), "offset": .int(recovery.damageOffset),
                    "dropped_bytes": .int(recovery.droppedBytes),
                ])
        }
        let (jobs, problems) = JournalReplay.rebuild(recovery.records, now: clock.wallMilliseconds())
        for problem in problems { logger.warn("journal_record_skipped", ["problem": .string(problem)]) }
        let now = clock.wallMilliseconds()
        for job in jobs {
            store.restore(job)
            if job.state == .queued, let retryAt = job.nextAttemptAt {
                scheduleRetry(jobID: job.id, delay: max(0, retryAt - now))
            }
        }
        logger.info(
            "journal_replayed",
            [
                "path": .string(journal.path), "records": .int(recovery.records.count), "jobs": .int(store.jobs.count),
                "queued": .int(store.queuedCount),
            ])
        try compactJournal()
        // Replay's buffers (the whole file, every record) are gone now; hand their pages back to the system.
        _ = c_malloc_trim()
    }

    /// Rewrites the journal to the live jobs. The next compaction waits until the file has doubled, so at
    /// least half of what it rewrites then is dead.
    private func compactJournal() throws(SystemError) {
        let started = monotonicMicroseconds()
        let before = journal.size
        try journal.rewrite(store.jobsInAcceptanceOrder.map(JournalRecord.snapshot))
        compactionThreshold = max(config.journalCompactBytes, 2 * journal.size)
        logger.info(
            "journal_compacted",
            [
                "bytes_before": .int(before), "bytes_after": .int(journal.size),
                "duration_ms": .double(Double(monotonicMicroseconds() - started) / 1000),
            ])
    }

    /// Starts rewriting the journal to the live jobs on a background thread; the loop keeps serving.
    private func beginCompaction() throws(SystemError) {
        let started = monotonicMicroseconds()
        let before = journal.size
        let done = try journal.beginCompaction(liveJobs: store.jobs)
        let encodeMicros = monotonicMicroseconds() - started
        var token: EventToken = 0
        token = try loop.register(done, events: EventLoop.readable) { [unowned self] _ in
            loop.unregister(done, token: token)
            do throws(SystemError) {
                try journal.finishCompaction(done)
            } catch {
                // The old journal is still whole and in use; try again once it has doubled.
                logger.error("journal_compaction_failed", ["error": .string(error.description)])
                compactionThreshold = max(compactionThreshold, 2 * journal.size)
                return
            }
            compactionThreshold = max(config.journalCompactBytes, 2 * journal.size)
            logger.info(
                "journal_compacted",
                [
                    "bytes_before": .int(before), "bytes_after": .int(journal.size),
                    "duration_ms": .double(Double(monotonicMicroseconds() - started) / 1000),
                    "loop_ms": .double(Double(encodeMicros) / 1000), "background": true,
                ])
        }
    }

    /// A reply now waits on a journal record: start its sync at once if none is running.
    func syncJournalSoon() {
        do throws(SystemError) {
            try journal.commitIfSyncIdle()
        } catch {
            journalFailed(error)
        }
    }

    /// The journal cannot be written: nothing more can be promised durable. Stop without sending the replies
    /// that wait on it (their clients see the connection drop, not a 202), kill the workers, exit 1.
    private func journalFailed(_ error: SystemError) -> Never {
        logger.error("journal_write_failed", ["error": .string(error.description), "path": .string(journal.path)])
        for slot in slots where slot.isAlive { kill(slot, reason: "journal failure") }
        while Posix.reapAny() != nil {}
        exit(1)
    }

    // MARK: Signals

    /// Drains the signalfd; Linux coalesces repeated signals, so each handler copes with "one or more".
    private func handleSignals() {
        guard let signalFD else { return }
        while let signal = try? SignalFD.read(signalFD) {
            switch signal {
            case SIGCHLD: reapChildren()
            case SIGINT, SIGTERM: stop(signal: signal)
            case SIGTTIN: scaleWorkers(by: 1)
            case SIGTTOU: scaleWorkers(by: -1)
            case SIGHUP: reloadConfiguration()
            default: break
            }
        }
    }

    // MARK: Children

    /// Reaps every exited child (`waitpid(-1, WNOHANG)` until none) and settles its slot.
    func reapChildren() {
        while let (pid, status) = Posix.reapAny() {
            guard let slot = slotByPID.removeValue(forKey: pid) else {
                logger.debug("reaped_unknown_child", ["pid": .int(pid), "status": .string(status.description)])
                continue
            }
            workerExited(slot, status: status)
        }
        manageWorkers()
        finishShutdownIfIdle()
    }

    /// Spawns workers until `targetWorkers` slots are active, reusing retired slots first.
    func manageWorkers() {
        guard !draining else { return }
        while activeSlots.count < targetWorkers {
            let slot = slots.first(where: { $0.state == .retired && !$0.isAlive }) ?? newSlot()
            slot.state = .restarting
            slot.retireOnExit = false
            slot.quickDeaths = 0
            spawnWorker(in: slot)
        }
    }

    /// Slots that are not retired or on their way out.
    private var activeSlots: [WorkerSlot] { slots.filter { !$0.retireOnExit && $0.state != .retired } }

    private func newSlot() -> WorkerSlot {
        let slot = WorkerSlot(index: slots.count)
        slots.append(slot)
        return slot
    }

    /// SIGTTIN / SIGTTOU: one worker more or fewer (never fewer than one).
    private func scaleWorkers(by change: Int) {
        guard !draining else { return }
        let target = max(1, targetWorkers + change)
        logger.info("workers_scaled", ["from": .int(targetWorkers), "to": .int(target)])
        if target < targetWorkers, let slot = activeSlots.last {
            retire(slot)
        }
        targetWorkers = target
        manageWorkers()
    }

    /// SIGHUP: re-read the config (file, environment and flags as at start) and apply what can change live.
    /// A bad file is logged and changes nothing; listen address, data dir and journal.fsync need a restart.
    private func reloadConfiguration() {
        guard !draining else { return }
        var next: Config
        do throws(ConfigError) {
            (next, _) = try Config.load(
                arguments: launchArguments, environment: launchEnvironment, readFile: Config.readFileFromDisk)
        } catch {
            logger.error("reload_failed", ["error": .string(error.description)])
            return
        }
        let nextWorkerPath = next.workerPath ?? defaultWorkerPath()
        guard access(nextWorkerPath, X_OK) == 0 else {
            logger.error("reload_failed", ["error": .string("worker executable \(nextWorkerPath) is not executable")])
            return
        }
        var ignored: [String] = []
        if next.listen != config.listen { ignored.append("listen") }
        if next.dataDir != config.dataDir { ignored.append("data_dir") }
        if next.journalFsync != config.journalFsync { ignored.append("journal.fsync") }
        (next.listen, next.dataDir, next.journalFsync) = (config.listen, config.dataDir, config.journalFsync)

        let workerSettingsChanged =
            Supervisor.handlerArguments(next) != Supervisor.handlerArguments(config) || nextWorkerPath != workerPath
        config = next
        workerPath = nextWorkerPath
        backoff = Backoff(config: next)
        logger.level = next.logLevel
        store.maximumFinished = next.retentionMaxFinished
        targetWorkers = next.workers
        if workerSettingsChanged {
            for slot in activeSlots { recycle(slot, reason: "config reloaded with new worker settings") }
        }
        for slot in activeSlots.suffix(max(0, activeSlots.count - targetWorkers)) { retire(slot) }
        manageWorkers()
        logger.info(
            "config_reloaded",
            [
                "workers": .int(targetWorkers), "workers_replaced": .bool(workerSettingsChanged),
                "ignored_until_restart": .string(ignored.joined(separator: ", ")),
            ])
    }

    // MARK: Stopping

    /// SIGINT/SIGTERM: the first starts a graceful drain, a second kills what still runs.
    private func stop(signal: CInt) {
        if draining {
            logger.warn("shutdown_forced", ["signal": .string(signalName(signal))])
            killAllWorkers(reason: "killed at shutdown (second \(signalName(signal)))")
            return
        }
        draining = true
        logger.info(
            "shutdown_started",
            [
                "signal": .string(signalName(signal)), "running_jobs": .int(store.runningCount),
                "timeout_ms": .int(config.shutdownTimeoutMs),
            ])
        for slot in slots { retire(slot) }
        shutdownTimer = loop.schedule(after: Milliseconds(config.shutdownTimeoutMs)) { [unowned self] in
            logger.warn("shutdown_timeout", ["timeout_ms": .int(config.shutdownTimeoutMs)])
            killAllWorkers(reason: "killed at shutdown after \(config.shutdownTimeoutMs) ms")
        }
        finishShutdownIfIdle()
    }

    /// Ends the loop once draining and every child has been reaped.
    private func finishShutdownIfIdle() {
        guard draining, !finished, slots.allSatisfy({ !$0.isAlive }) else { return }
        loop.cancel(shutdownTimer)
        finished = true
    }

    private func killAllWorkers(reason: String) {
        for slot in slots where slot.isAlive {
            slot.killedByShutdown = true
            kill(slot, reason: reason)
        }
    }

    /// Whether the service takes new jobs (not draining).
    var isAccepting: Bool { !draining }
}

extension Backoff {
    /// The backoff configured by `backoff.*`.
    init(config: Config) {
        self.init(
            baseMilliseconds: Milliseconds(config.backoffBaseMs),
            maximumMilliseconds: Milliseconds(config.backoffMaxMs),
            jitter: config.backoffJitter)
    }
}
