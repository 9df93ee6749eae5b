import Glibc
import IPC
import System

/// The master process: one event loop that accepts jobs, hands them to workers and keeps the pool alive.
///
/// Like gunicorn's Arbiter, this file is the table of contents: run the loop, react to signals, reap children,
/// keep the worker count, stop gracefully. The state is owned by small parts it calls in turn: the `JobLedger`
/// (jobs and their durable events), the `WorkerPool` (slots, as a state machine), the `HTTPServer` (clients),
/// and the `Journal`. `Supervisor+Jobs` moves jobs through workers, `Supervisor+Workers` performs the pool's
/// actions, `Supervisor+Journal` restores and syncs the journal, `Supervisor+Reload` handles SIGHUP, and `API/`
/// answers requests.
final class Supervisor {
    /// The effective configuration.
    var config: Config
    /// JSON-lines logger on stderr.
    let logger: Logger
    /// The event loop every descriptor and timer lives on.
    let loop: EventLoop
    /// Wall-clock and monotonic time.
    let clock: Clock
    /// Counters and histograms for `/metrics`.
    let metrics: Metrics
    /// The durable log of every job event.
    let journal: Journal
    /// Every job, changed only through its events.
    let ledger: JobLedger
    /// The worker slots.
    var pool: WorkerPool
    /// The HTTP front end (set in `run`, once bound).
    private(set) var server: HTTPServer?
    /// Retry delays.
    var backoff: Backoff
    /// Path of `prefork-worker`.
    var workerPath: String
    /// Command-line arguments and environment the process started with, to re-read the config on SIGHUP.
    let launchArguments: [String]
    let launchEnvironment: [String: String]
    /// /dev/null, the workers' stdin.
    let devNull: FileDescriptor
    /// Each slot's live child's pipes.
    var channels = SlotTable<WorkerChannel>()
    /// Each slot's one timer (start, job or restart deadline), armed by the pool.
    var workerTimers = SlotTable<TimerID>()
    /// The timer of the earliest job waiting for its time, and that time.
    var wakeUpTimer: TimerID?
    var wakeUpAt: Int64?
    /// Read buffer for the workers' pipes (results, stdout, stderr), reused by every read.
    var pipeBuffer = [UInt8](repeating: 0, count: 65536)
    /// How processes that jobs start are contained (set in `run`).
    private(set) var containment: Containment?
    /// What the journal held at start, until `run` has replayed it.
    var recovery: JournalFile.Recovery?
    /// Long-polls waiting for their jobs.
    let waiters: JobWaiters
    /// The event stream's clients and the stats history.
    let events: EventHub
    /// Callback deliveries (nil until `run`).
    var callbacks: CallbackDispatcher?
    /// The PostgreSQL backend, when `queue.backend` is `postgres` (nil: the journal holds the jobs).
    private(set) var postgres: PostgresQueue?
    /// The ledger's log in the PostgreSQL backend.
    private let postgresLog: PostgresEventLog?
    /// Periodic jobs.
    var scheduler = Scheduler([], offsetMinutes: 0, now: 0)
    var scheduleTimer: TimerID?
    /// The stats sampler's timer and the counts at the previous sample.
    var statsTimer: TimerID?
    var lastStats: (at: Milliseconds, done: Int, failed: Int) = (0, 0, 0)
    /// sd_notify(3) to systemd, when it started us.
    let notifier: SystemdNotifier
    /// The pidfile written at start (removed at exit).
    private var pidfilePath: String?
    /// The loop exits when this is set.
    private var finished = false
    /// `shutdown_timeout_ms` passed during a drain.
    private var shutdownDeadlinePassed = false
    private var shutdownTimer: TimerID?

    /// Signals read from the signalfd instead of running handlers.
    static let handledSignals: [CInt] = [SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGTTIN, SIGTTOU, Signal.scale]

    /// Builds the supervisor around an opened journal and what it held; nothing starts until `run()`.
    init(
        config: Config, workerPath: String, logger: Logger, journal: Journal, recovery: JournalFile.Recovery,
        metrics: Metrics, launchArguments: [String] = [], launchEnvironment: [String: String] = [:],
        clock: Clock = SystemClock()
    ) throws(SystemError) {
        self.recovery = recovery
        self.launchArguments = launchArguments
        self.launchEnvironment = launchEnvironment
        self.config = config
        self.logger = logger
        self.clock = clock
        self.metrics = metrics
        self.loop = try EventLoop(clock: clock)
        self.journal = journal
        if config.queueBackend == .postgres {
            // The database holds the jobs; the ledger holds the attempts running here, and a few finished ones
            // for their callbacks and event-stream clients.
            let log = PostgresEventLog()
            postgresLog = log
            self.ledger = JobLedger(
                store: JobStore(maximumFinished: 1000, maximumResultBytes: 64 << 20), log: log, metrics: metrics,
                logger: logger)
            log.current = { [unowned ledger] id in ledger[id] }
        } else {
            postgresLog = nil
            self.ledger = JobLedger(
                store: JobStore(
                    maximumFinished: config.retentionMaxFinished, maximumResultBytes: config.retentionMaxResultBytes),
                log: journal, metrics: metrics, logger: logger)
        }
        self.pool = WorkerPool(target: config.workers, settings: config.poolSettings, clock: clock)
        self.backoff = Backoff(config: config)
        self.workerPath = workerPath
        self.devNull = try Posix.open("/dev/null", O_RDWR)
        self.waiters = JobWaiters(loop: loop)
        self.notifier = SystemdNotifier(environment: launchEnvironment, logger: logger)
        self.events = EventHub(maximumClients: config.httpMaxEventClients, clock: clock)
    }

    /// Listens, starts the workers, and runs the loop until a graceful stop completes. Returns the exit code.
    func run(listenAddress: SocketAddress) throws(SystemError) -> Int32 {
        Signal.ignore(SIGPIPE)
        let signalFD = try SignalFD.create(Supervisor.handledSignals)
        let signalToken = try loop.register(signalFD, events: Epoll.readable) { [unowned self] _ in
            handleSignals(signalFD)
        }
        let containment = Containment.start { [logger] path, processes in
            logger.warn("stale_cgroup_emptied", ["path": .string(path), "processes_killed": .int(processes)])
        }
        self.containment = containment
        raiseDescriptorLimit()
        let server = try HTTPServer(
            address: listenAddress, settings: clampedHTTPSettings(config), loop: loop, clock: clock, logger: logger,
            metrics: metrics, responder: self, gate: journal)
        self.server = server
        logger.announce(
            "listening",
            [
                "addr": .string(server.boundAddress.description), "workers": .int(pool.target),
                "queue_size": .int(config.queueSize), "pid": .int(Process.id), "version": .string(BuildInfo.version),
                "containment": .string(containment.mode.name),
            ])
        // Bound first so the first log line names the address; no request is read before the jobs are back.
        if config.queueBackend == .postgres {
            ignoreJournal()
            let queue = PostgresQueue(supervisor: self, conninfo: config.postgresURL ?? "")
            postgres = queue
            postgresLog?.queue = queue
            metrics.postgresReady = false
            queue.start()
        } else {
            try restoreJobs()
        }
        try journal.attach(to: loop, durable: { [unowned self] in self.server?.flush() }, failed: journalFailed)
        callbacks = CallbackDispatcher(supervisor: self)
        lastStats = (clock.monotonicMilliseconds(), metrics.finished[.done], metrics.finished[.failed])
        startServices()
        callbacks?.resumePending()
        writePidfile()
        startWatchdog()
        armWakeUp()
        manageWorkers()
        loop.afterIteration = { [unowned self] in endOfIteration() }
        while !finished {
            try loop.runOnce()
        }
        // Every long-poll gets its answer and every stream its end before the connections close.
        waiters.answerAll { [unowned self] id in ledger[id] }
        events.closeAll()
        callbacks?.close()
        loop.cancel(statsTimer)
        loop.cancel(scheduleTimer)
        postgres?.close()
        do throws(SystemError) {
            try journal.syncNow()
        } catch {
            journalFailed(error)
        }
        server.close()
        endStrays()
        containment.shutDown()
        journal.close()
        loop.unregister(signalFD, token: signalToken)
        signalFD.close()
        removePidfile()
        logger.info("shutdown_complete", ["queued_jobs_left": .int(ledger.store.queuedCount)])
        return 0
    }

    /// Writes our pid to `pidfile` (default `<data_dir>/prefork.pid`), so scripts can find the supervisor that owns
    /// a data directory (`prefork ctl` reads the lock, which holds the same pid and proves it is alive).
    private func writePidfile() {
        let path = config.pidfile ?? config.dataDir + "/prefork.pid"
        do throws(SystemError) {
            try Posix.writeFile(path, Array("\(Process.id)\n".utf8))
            pidfilePath = path
        } catch {
            logger.warn("pidfile_not_written", ["path": .string(path), "error": .string(error.description)])
        }
    }

    /// Removes the pidfile if it still names us.
    private func removePidfile() {
        guard let path = pidfilePath, let bytes = try? Posix.readFile(path, limit: 64),
            String(decoding: bytes, as: UTF8.self) == "\(Process.id)\n"
        else { return }
        try? Posix.unlink(path)
    }

    /// `WATCHDOG=1` at half of systemd's `WATCHDOG_USEC`, from the loop: a stuck loop stops it.
    private func startWatchdog() {
        guard let interval = notifier.watchdogInterval else { return }
        _ = loop.schedule(after: interval) { [unowned self] in
            notifier.watchdog()
            startWatchdog()
        }
    }

    /// `READY=1` once, when the journal is replayed (or the node registered with PostgreSQL) and every wanted
    /// worker is up.
    func notifyReadyIfUp() {
        guard !notifier.sentReady, notifier.isActive, pool.liveWorkerCount >= pool.target else { return }
        if let postgres, !postgres.isReady { return }
        notifier.ready(status: systemdStatus)
    }

    /// The one-line `STATUS=` systemd shows.
    var systemdStatus: String {
        "\(pool.liveWorkerCount)/\(pool.target) workers, \(ledger.store.queuedCount) queued, "
            + "\(ledger.store.runningCount) running\(ledger.paused ? ", paused" : "")"
    }

    /// Raises the soft limit on open descriptors to the hard one (a default of 1024 is common).
    private func raiseDescriptorLimit() {
        let (soft, hard) = Process.openFileLimit()
        let raised = Process.raiseOpenFileLimit(to: hard)
        if raised != soft { logger.info("descriptor_limit_raised", ["from": .int(soft), "to": .int(raised)]) }
    }

    /// The HTTP settings with `http.max_connections` clamped to what the descriptor limit leaves once the workers'
    /// pipes, the journal and spares are counted, so clients can never starve a worker respawn. Logs a clamp.
    func clampedHTTPSettings(_ config: Config) -> HTTPServer.Settings {
        var settings = config.httpSettings
        let limit = Process.openFileLimit().soft
        // Per worker: 4 pipe ends and a pidfd-free margin; plus the journal, lock, syncer, epoll, signalfd, spare.
        let reserved = 64 + 8 * max(config.workers, pool.target)
        let allowed = max(1, limit - reserved)
        if settings.maximumConnections > allowed {
            logger.warn(
                "max_connections_clamped",
                [
                    "configured": .int(settings.maximumConnections), "effective": .int(allowed),
                    "open_files_limit": .int(limit), "reserved_for_workers_and_journal": .int(reserved),
                ])
            settings.maximumConnections = allowed
        }
        return settings
    }

    /// Work batched per iteration: write this iteration's events (a background sync makes them durable, one for
    /// everything written while the previous one ran: group commit), compact the journal when it is due, then
    /// send the responses whose events are durable.
    private func endOfIteration() {
        updateUrgentPolling()
        do throws(SystemError) {
            try journal.commit()
            try journal.compactIfDue(jobs: ledger.store.jobs, paused: ledger.paused)
        } catch {
            journalFailed(error)
        }
        server?.flush()
    }

    // MARK: Signals

    /// Drains the signalfd; Linux coalesces repeated signals, so each handler copes with "one or more".
    private func handleSignals(_ signalFD: FileDescriptor) {
        while let (signal, value) = try? SignalFD.readWithValue(signalFD) {
            switch signal {
            case SIGCHLD: reapChildren()
            case SIGINT, SIGTERM: stop(signal: signal)
            case SIGTTIN: scaleWorkers(by: 1)
            case SIGTTOU: scaleWorkers(by: -1)
            case SIGHUP: reloadConfiguration()
            case Signal.scale: scaleWorkers(to: Int(value))
            default: break
            }
        }
    }

    // MARK: Children

    /// Reaps every exited child (`waitpid(-1, WNOHANG)` until none) and settles its slot.
    private func reapChildren() {
        var workerDied = false
        while let (pid, status) = Process.reapAny() {
            if workerExited(pid: pid, status: status) {
                workerDied = true
            } else {
                logger.debug("reaped_stray", ["pid": .int(pid), "status": .string(status.description)])
            }
        }
        // A dead worker's orphans were reparented to us (a subreaper): kill them.
        if workerDied { killStrays() }
        manageWorkers()
        finishShutdownIfIdle()
    }

    /// Kills every child that is not a worker: what dead workers left behind.
    private func killStrays() {
        let workers = Set(pool.slots.compactMap { $0.state.child?.pid })
        let killed = containment?.killStrays(workers: workers) ?? 0
        if killed > 0 { logger.warn("strays_killed", ["processes": .int(killed)]) }
    }

    /// At exit, with every worker gone: kill and reap whatever they left, so no process outlives the supervisor.
    private func endStrays() {
        for _ in 0..<100 {
            killStrays()
            while Process.reapAny() != nil {}
            if Process.children(of: Process.id).isEmpty { return }
            Time.sleep(milliseconds: 10)
        }
    }

    /// Spawns workers until the target is met.
    private func manageWorkers() {
        perform(pool.fill())
    }

    /// SIGTTIN / SIGTTOU: one worker more or fewer (never fewer than one).
    private func scaleWorkers(by change: Int) {
        scaleWorkers(to: pool.target + change)
    }

    /// `prefork ctl scale N` (SIGRTMIN+1 with N): that many workers, 1-256.
    private func scaleWorkers(to count: Int) {
        guard !pool.draining else { return }
        let target = min(256, max(1, count))
        logger.info("workers_scaled", ["from": .int(pool.target), "to": .int(target)])
        perform(pool.setTarget(target))
    }

    // MARK: Stopping

    /// SIGINT/SIGTERM: the first starts a graceful drain, a second kills what still runs.
    private func stop(signal: CInt) {
        if pool.draining {
            logger.warn("shutdown_forced", ["signal": .string(signalName(signal))])
            perform(pool.killAll(reason: "killed at shutdown (second \(signalName(signal)))"))
            return
        }
        logger.info(
            "shutdown_started",
            [
                "signal": .string(signalName(signal)), "running_jobs": .int(ledger.store.runningCount),
                "timeout_ms": .int(config.shutdownTimeoutMs),
            ])
        notifier.stopping(status: "draining: \(ledger.store.runningCount) running, \(ledger.store.queuedCount) queued")
        perform(pool.drain())
        postgres?.drainStarted()
        shutdownTimer = loop.schedule(after: Milliseconds(config.shutdownTimeoutMs)) { [unowned self] in
            shutdownDeadlinePassed = true
            logger.warn("shutdown_timeout", ["timeout_ms": .int(config.shutdownTimeoutMs)])
            perform(pool.killAll(reason: "killed at shutdown after \(config.shutdownTimeoutMs) ms"))
            finishShutdownIfIdle()
        }
        finishShutdownIfIdle()
    }

    /// Ends the loop once draining and every child has been reaped (and, with PostgreSQL, every outcome written
    /// or the shutdown deadline passed).
    func finishShutdownIfIdle() {
        guard pool.draining, !finished, pool.allDown else { return }
        if let postgres, postgres.hasUnwrittenOutcomes, postgres.session.isReady, !shutdownDeadlinePassed { return }
        if let postgres, !postgres.answerWaitersBeforeClosing() { return }
        loop.cancel(shutdownTimer)
        finished = true
    }
}
