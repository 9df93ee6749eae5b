import Glibc
import Postgres
import System

/// The PostgreSQL backend (`queue.backend: "postgres"`): the job table lives in PostgreSQL, shared by every node;
/// this node accepts jobs into it, claims runnable ones for its free workers, writes their outcomes back fenced
/// on its lease, rescues the jobs of nodes whose lease lapsed, and answers lookups from it.
///
/// The jobs this node runs pass through the same `JobLedger` as in single-host mode, from their claim (a snapshot
/// of the running job) to their outcome, so the record's transitions, history, metrics and log lines are the same;
/// the ledger's log is `PostgresEventLog`, which turns outcomes into fenced batch updates. Everything else (accept,
/// cancel, retry, pause, lookups) is a statement run from here, answered once its segment has committed.
final class PostgresQueue {
    /// A job claimed and not yet handed to a worker (more were claimed than workers came free).
    struct Claimed {
        var job: Job
        var epoch: Int64
    }

    /// An outcome waiting to be written.
    struct Completion {
        var id: String
        var attempt: Int
        var epoch: Int64
        var state: JobState
        var runAt: Int64?
        var lastError: String?
        var result: ByteString?
        var truncated: Bool
        var entry: String
        /// Written in a statement of its own: a batch holding it was refused.
        var alone = false
        /// Written without its result, error and history entry: refused alone with them.
        var isStripped = false

        /// The same outcome without what the database may refuse (the result, the error text, the history
        /// entry), saying why: the job still leaves `running`.
        func stripped(because failure: PostgresSession.Failure) -> Completion {
            var copy = self
            copy.lastError = PostgresRecords.storable("the database refused this attempt's outcome (\(failure)); its result and error were dropped")
            copy.truncated = result != nil || truncated
            copy.result = nil
            copy.entry = #"{"attempt":\#(attempt)}"#
            copy.isStripped = true
            return copy
        }
    }

    unowned let supervisor: Supervisor
    let session: PostgresSession
    /// This node's name in `prefork_nodes`.
    let nodeID: String
    /// The epoch of this node's current registration; 0 while unregistered.
    var epoch: Int64 = 0
    /// Monotonic time of the last renewal that succeeded (or of the registration).
    var lastRenewal: Milliseconds = 0
    var registering = false
    /// Dispatch is paused cluster-wide (read from `prefork_settings`).
    var paused = false
    /// Queued jobs cluster-wide, refreshed every second (`queue_size` is checked against it).
    var approximateQueued = 0
    /// Jobs this node created since that count (added to it until the next count).
    var accepted = 0
    var pendingInserts: [(spec: JobSpec, done: (Result<(Job, Bool), EnqueueFailure>) -> Void)] = []
    /// The long-polls were answered for a shutdown (or that lookup gave up); its deadline while it runs.
    var waitersAnsweredForShutdown = false
    var shutdownLookupTimer: TimerID?
    /// Enqueues that found the queue full while inserts were unanswered (see `enqueue`).
    var waitingForCapacity: [(spec: JobSpec, done: (Result<(Job, Bool), EnqueueFailure>) -> Void)] = []
    var insertFlushScheduled = false
    /// Insert segments sent and not yet answered. Capped, so that under load the requests arriving while the
    /// database commits one batch wait for the next: batches grow with the load and commits stay few.
    var insertsInFlight = 0
    /// Notifications that other nodes have runnable jobs, and of finished jobs (for their long-polls).
    var queuedNotify = NotifyLimiter(interval: PostgresQueue.notifyInterval)
    var finishedNotify = NotifyLimiter(interval: PostgresQueue.notifyInterval)
    var notifyTimer: TimerID?
    /// Jobs asked for by claims in flight (several may be: each outcome segment carries one for the workers its
    /// outcomes freed).
    var claiming = 0
    /// Something may have become claimable while claims in flight already asked for every idle worker.
    var claimAgain = false
    var backlog = Deque<Claimed>()
    /// The epoch each job this node runs was claimed under (completions are fenced on it).
    var claimedEpochs: [String: Int64] = [:]
    var completions: [Completion] = []
    var completionsInFlight = 0
    /// Statements giving back claimed jobs at the start of a drain, not yet answered.
    var releasesInFlight = 0
    var completionFlushScheduled = false
    var leaseTimer: TimerID?
    /// Fires 5/6 of a lease after the last renewal: the node fences itself before anyone may rescue its jobs.
    var fenceTimer: TimerID?
    var pollTimer: TimerID?
    var claimTimer: TimerID?
    /// Long-polls held by this node, answered from the database's records (not the ledger's: a result counts once
    /// it has committed).
    let waiters: JobWaiters
    /// Most outcomes kept while the database is unreachable; older ones are dropped (their jobs are rescued).
    static let maximumPendingCompletions = 100_000
    /// Most insert segments in flight: two keep the database busy while the node answers the last batch.
    static let maximumInsertsInFlight = 2
    /// Most outcome segments in flight.
    static let maximumCompletionsInFlight = 1
    /// Most jobs in one insert segment.
    static let maximumInsertBatch = 1000
    /// Least time between two notifications on the queued or the finished channel (see `NotifyLimiter`).
    static let notifyInterval: Milliseconds = 20

    /// Why an enqueue was refused.
    enum EnqueueFailure: Error {
        case refused(Supervisor.EnqueueRefusal)
        case unavailable(String)
    }

    init(supervisor: Supervisor, conninfo: String) {
        self.supervisor = supervisor
        waiters = JobWaiters(loop: supervisor.loop)
        let config = supervisor.config
        nodeID = config.postgresNodeID ?? "\(Posix.hostname())-\(Process.id)"
        session = PostgresSession(
            // A 202 means committed and durable: whatever the server's default, this session waits for its commits
            // to reach the WAL (synchronous_commit off acknowledges commits a crash can lose).
            conninfo: conninfo, statements: PostgresSchema.prepared,
            setupSQL: ["SET synchronous_commit TO on", PostgresSchema.migrate.sql],
            listenChannels: [
                PostgresSchema.queuedChannel, PostgresSchema.cancelChannel, PostgresSchema.settingsChannel,
                PostgresSchema.finishedChannel,
            ],
            connectTimeout: Milliseconds(config.postgresConnectTimeoutMs), loop: supervisor.loop,
            clock: supervisor.clock, logger: supervisor.logger)
    }

    var loop: EventLoop { supervisor.loop }
    var now: Int64 { supervisor.clock.wallMilliseconds() }
    var config: Config { supervisor.config }

    /// Connects; once ready it registers the node and starts the lease, poll and claim cycle.
    func start() {
        session.onReady = { [unowned self] in connected() }
        session.onNotification = { [unowned self] in notified($0) }
        session.onOperationTime = { [unowned self] seconds in supervisor.metrics.postgresQueryTime.observe(seconds) }
        session.onLost = { [unowned self] _ in supervisor.metrics.postgresReconnects += 1 }
        session.start()
        leaseTimer = loop.schedule(after: leaseInterval) { [unowned self] in leaseTick() }
        pollTimer = loop.schedule(after: 1000) { [unowned self] in pollTick() }
    }

    /// Whether lookups and enqueues can be answered now.
    var isReady: Bool { session.isReady && epoch != 0 }

    /// Outcomes not yet written (a drain waits for them).
    var hasUnwrittenOutcomes: Bool { !completions.isEmpty || completionsInFlight > 0 || releasesInFlight > 0 }

    /// Stops its timers and closes the connection (after the outcomes were written, or the drain gave up).
    func close() {
        loop.cancel(leaseTimer)
        loop.cancel(fenceTimer)
        loop.cancel(pollTimer)
        loop.cancel(claimTimer)
        loop.cancel(notifyTimer)
        loop.cancel(shutdownLookupTimer)
        waiters.answerAll(with: .error(.unavailable("shutting down", retryAfterSeconds: 5)))
        for (_, done) in waitingForCapacity { done(.failure(.unavailable("shutting down"))) }
        waitingForCapacity = []
        session.close()
    }

    var leaseInterval: Milliseconds { Milliseconds(max(100, config.postgresLeaseMs / 3)) }
}
