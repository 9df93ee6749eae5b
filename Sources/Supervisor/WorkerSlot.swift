import Glibc
import IPC

/// One worker position in the pool: the live child in it (if any), its pipes, and its history.
///
/// A slot outlives its children: when a worker dies, the slot respawns it (after a delay if it keeps
/// dying right after start). Only the supervisor thread touches it.
final class WorkerSlot {
    /// What the slot's worker is doing.
    enum State: String {
        /// Spawned, `ready` not yet received.
        case starting
        /// Waiting for a job.
        case idle
        /// Running `job`.
        case busy
        /// Told to stop (drain, scale-down, recycle); exits when done.
        case stopping
        /// Dead; a respawn is scheduled.
        case restarting
        /// Dead and not coming back (shutdown, scale-down).
        case retired
    }

    /// The job attempt a busy worker is running.
    struct Assignment {
        /// The job's id.
        var jobID: String
        /// The attempt number.
        var attempt: Int
        /// Monotonic start time, microseconds.
        var startedAt: Int64
        /// Fires the job timeout.
        var deadlineTimer: TimerID?
    }

    /// The descriptors of a live child, supervisor side.
    struct Pipes {
        /// Write end of the job pipe (child's fd 3).
        var jobs: FileDescriptor?
        var jobsToken: EventToken = 0
        /// The job pipe was full: watched for writability until the pending frames are written.
        var waitingForRoom = false
        /// Read end of the result pipe (child's fd 4).
        var results: FileDescriptor?
        var resultsToken: EventToken = 0
        /// Read ends of the child's stdout and stderr.
        var output: [FileDescriptor?] = [nil, nil]
        var outputTokens: [EventToken] = [0, 0]
        /// Partial output lines per stream, logged once complete.
        var partialLines: [[UInt8]] = [[], []]
    }

    /// Position in the pool, stable across restarts.
    let index: Int
    /// Current state.
    var state: State = .restarting
    /// Live child's pid.
    var pid: pid_t?
    /// The child's descriptors.
    var pipes = Pipes()
    /// Frames received from the child.
    var decoder = FrameDecoder()
    /// Frames waiting for room in the job pipe.
    var pendingOutput: [UInt8] = []
    /// The job attempt in progress.
    var assignment: Assignment?
    /// Why the supervisor killed this child, charged to its job instead of the raw signal.
    var killReason: String?
    /// The same, as a restart cause for the metrics.
    var killCause: Metrics.RestartCause?
    /// Killed by the shutdown deadline (or a second signal): its attempt is an interruption, not a failure.
    var killedByShutdown = false
    /// Stop once the current job ends (scale-down, recycling).
    var stopWhenIdle = false
    /// Do not respawn after the child exits.
    var retireOnExit = false
    /// Jobs this slot's children have finished (any outcome).
    var jobsRun = 0
    /// Jobs the current child has finished (for `worker.max_jobs`).
    var childJobs = 0
    /// Set when the current child is being replaced gracefully, with why.
    var recycleReason: String?
    /// Children replaced gracefully (max_jobs, max_rss_mb, reload).
    var recycles = 0
    /// Why the slot's child was last replaced: "crash", "timeout", "recycled", ...
    var lastRestartCause: String?
    /// Times this slot's child was respawned.
    var restarts = 0
    /// Consecutive children that died right after start; drives the restart delay.
    var quickDeaths = 0
    /// Monotonic spawn time of the current child.
    var spawnedAt: Milliseconds = 0
    /// Wall-clock spawn time of the current child (for /workers).
    var startedAtWall: Int64?
    /// The pending respawn.
    var restartTimer: TimerID?

    /// Creates an empty slot.
    init(index: Int) {
        self.index = index
    }

    /// Whether a child process exists (spawned and not yet reaped).
    var isAlive: Bool { pid != nil }

    /// Whether the child has said `ready` and can take or is running jobs.
    var isServing: Bool { state == .idle || state == .busy }
}
