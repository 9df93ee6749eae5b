import IPC

/// One position in the worker pool: its state, which carries the live child and its job, and its history.
/// A slot outlives its children; only `WorkerPool` changes it.
struct WorkerSlot: Equatable {
    /// A live child process in the slot.
    struct Child: Equatable {
        /// Its pid, also its process group.
        var pid: Int32
        /// Monotonic spawn time.
        var spawnedAt: Milliseconds
        /// Wall-clock spawn time (for /workers).
        var startedAtWall: Int64
        /// Jobs this child finished (for `worker.max_jobs`).
        var jobsDone = 0
        /// Asked to exit once free (retire, drain, recycle); a `stop` frame is sent when it is.
        var stopReason: StopReason?
        /// SIGKILL sent, and what its job is charged with.
        var kill: Kill?
        /// A `stop` frame was sent: an exit now is expected.
        var stopSent = false
        /// What the worker said it is in `ready`.
        var version: String?
    }

    /// The attempt a busy child is running.
    struct Assignment: Equatable {
        /// The job's id.
        var jobID: String
        /// The attempt number.
        var attempt: Int
        /// Monotonic start, microseconds (run time).
        var startedMicroseconds: Int64
        /// When the job timeout kills it; nil without a timeout.
        var deadline: Milliseconds?
        /// The timeout in milliseconds, for the error message.
        var timeoutMilliseconds: Int
    }

    /// Why a child is asked to exit when free.
    enum StopReason: Equatable {
        /// Scale-down: the slot is retired.
        case retire
        /// Shutdown: the slot is retired.
        case drain
        /// Graceful replacement (max_jobs, max_rss_mb, reload): a fresh child takes the slot.
        case recycle(String)
    }

    /// Why the supervisor SIGKILLed a child.
    enum KillCause: Equatable {
        /// Its attempt passed the job timeout.
        case timeout
        /// It broke the protocol.
        case protocolError
        /// Its job was canceled.
        case canceled
        /// The shutdown deadline, or a second SIGINT/SIGTERM.
        case shutdown
        /// It did not say `ready` within `worker.start_timeout_ms`.
        case startTimeout
        /// The supervisor could not watch its pipes.
        case unwatchable

        /// How the respawn is counted.
        var restartCause: RestartCause {
            switch self {
            case .timeout: return .timeout
            case .protocolError: return .protocol
            case .canceled: return .canceled
            case .shutdown, .startTimeout: return .crash
            case .unwatchable: return .spawnFailed
            }
        }
    }

    /// A SIGKILL the supervisor sent, and what its job is charged with.
    struct Kill: Equatable {
        /// The attempt's error (e.g. "timeout after 300 ms").
        var reason: String
        /// Why, as a cause.
        var cause: KillCause
    }

    /// What the slot is doing.
    enum State: Equatable {
        /// No child; one is wanted now (the supervisor spawns it).
        case vacant
        /// No child; the next one is spawned at this monotonic time (crash-loop delay).
        case restartPending(at: Milliseconds)
        /// Spawned, `ready` not yet received.
        case starting(Child)
        /// Waiting for a job.
        case idle(Child)
        /// Running an attempt.
        case busy(Child, Assignment)
        /// Told to stop (or killed) and not yet reaped.
        case stopping(Child)
        /// No child and none wanted (scale-down, shutdown).
        case retired

        /// The state's name in /workers.
        var name: String {
            switch self {
            case .vacant, .restartPending: return "restarting"
            case .starting: return "starting"
            case .idle: return "idle"
            case .busy: return "busy"
            case .stopping: return "stopping"
            case .retired: return "retired"
            }
        }

        /// The live child, if any.
        var child: Child? {
            switch self {
            case .starting(let child), .idle(let child), .busy(let child, _), .stopping(let child): return child
            case .vacant, .restartPending, .retired: return nil
            }
        }

        /// The attempt running, if any.
        var assignment: Assignment? {
            if case .busy(_, let assignment) = self { return assignment }
            return nil
        }
    }

    /// Position in the pool, stable across restarts.
    let index: Int
    /// What it is doing now.
    var state: State = .vacant
    /// Attempts its children finished (any outcome).
    var jobsRun = 0
    /// Times its child was replaced.
    var restarts = 0
    /// Children replaced gracefully.
    var recycles = 0
    /// Why the child was last replaced.
    var lastRestartCause: RestartCause?
    /// Consecutive children that died right after start; drives the restart delay.
    var quickDeaths = 0

    /// Whether the child is idle and may be given a job.
    var isDispatchable: Bool {
        if case .idle(let child) = state { return child.stopReason == nil }
        return false
    }

    /// Whether a child process exists (spawned and not yet reaped).
    var isAlive: Bool { state.child != nil }

    /// Whether the child has said `ready` and can take or is running jobs.
    var isServing: Bool {
        switch state {
        case .idle, .busy: return true
        default: return false
        }
    }

    /// Not retired and not on its way out: counts toward the target.
    var isActive: Bool {
        switch state {
        case .retired: return false
        case .stopping(let child), .starting(let child), .idle(let child), .busy(let child, _):
            switch child.stopReason {
            case nil, .recycle?: return true
            case .retire?, .drain?: return false
            }
        case .vacant, .restartPending: return true
        }
    }
}
