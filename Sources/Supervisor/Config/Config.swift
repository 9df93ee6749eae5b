import IPC
import System

/// When the journal is flushed to disk.
enum FsyncMode: String, Equatable, CaseIterable {
    /// fsync once per event-loop batch, before answering the requests of that batch (group commit).
    case batch
    /// Never fsync; the kernel writes back when it likes.
    case none
}

/// Where the jobs are kept (`queue.backend`).
enum QueueBackend: String, Equatable, CaseIterable {
    /// The embedded journal in `data_dir`: one supervisor.
    case journal
    /// A PostgreSQL table shared by any number of supervisors (`postgres.*`).
    case postgres
}

/// Log severity, ordered from most to least verbose.
enum LogLevel: String, Comparable, CaseIterable {
    /// Everything, including per-frame detail.
    case debug
    /// Lifecycle events and requests.
    case info
    /// Things that went wrong but were handled.
    case warn
    /// Things that went wrong and were not.
    case error

    /// Orders by verbosity: `debug < info < warn < error`.
    static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The effective configuration: defaults, then the config file, environment and flags (see `Config.load`).
/// `Config+Parts` derives what each part of the supervisor needs from it.
struct Config: Equatable {
    /// `host:port` to listen on; port 0 picks a free port.
    var listen = "127.0.0.1:8080"
    /// Number of worker processes, 1...256.
    var workers = 4
    /// Maximum number of queued (not yet running) jobs, 1...10_000_000.
    var queueSize = 64
    /// Directory holding the journal.
    var dataDir = "data"
    /// When the journal is fsynced (`journal.fsync`).
    var journalFsync: FsyncMode = .batch
    /// The journal is compacted to its live records once it grows past this many bytes (and is mostly dead).
    var journalCompactBytes = 67_108_864
    /// A running job is killed after this long (`job_timeout_ms`); 0 is no timeout (a job's `timeout_ms` still
    /// applies).
    var jobTimeoutMs = 30_000
    /// How long a graceful shutdown waits for running jobs (`shutdown_timeout_ms`), >= 0.
    var shutdownTimeoutMs = 30_000
    /// First retry delay (`backoff.base_ms`), >= 0.
    var backoffBaseMs = 100
    /// Cap of the retry delay (`backoff.max_ms`), >= `backoffBaseMs`.
    var backoffMaxMs = 10_000
    /// Fraction of the retry delay that is randomized (`backoff.jitter`), 0...1.
    var backoffJitter = 0.5
    /// What the workers run.
    var handler: WorkerHandler = .simulate
    /// Path of the worker executable; nil means `prefork-worker` beside the supervisor.
    var workerPath: String? = nil
    /// Shortest simulated job (`simulate.min_ms`), >= 0.
    var simulateMinMs = 100
    /// Longest simulated job (`simulate.max_ms`), >= `simulateMinMs`.
    var simulateMaxMs = 500
    /// Probability that a simulated job fails (`simulate.fail_rate`), 0...1.
    var simulateFailRate = 0.2
    /// Whether payloads may steer the simulate handler (`simulate.directives`).
    var simulateDirectives = false
    /// Program and arguments for the exec handler (`exec.command`); required when `handler` is `.exec`.
    var execCommand: [String]? = nil
    /// `program` handler: the long-lived program each worker slot runs (`program.command`, looked up in PATH).
    var programCommand: [String]? = nil
    /// `program` handler: its working directory (`program.cwd`); nil keeps the supervisor's.
    var programCwd: String? = nil
    /// `program` handler: extra environment variables (`program.env`).
    var programEnv: [String: String] = [:]
    /// A worker that has not said `ready` this long after its spawn is killed (`worker.start_timeout_ms`); 0 waits.
    var workerStartTimeoutMs = 30_000
    /// Recycle a worker after this many jobs (`worker.max_jobs`); 0 is off.
    var workerMaxJobs = 0
    /// Recycle a worker whose resident size exceeds this (`worker.max_rss_mb`); 0 is off.
    var workerMaxRssMb = 0
    /// RLIMIT_AS of a worker in MiB (`worker.memory_limit_mb`); 0 is off.
    var workerMemoryLimitMb = 0
    /// RLIMIT_CPU of a worker in seconds (`worker.cpu_limit_s`); 0 is off.
    var workerCpuLimitS = 0
    /// Cap of the delay before restarting a crash-looping slot (`worker.restart_delay_max_ms`), >= 0.
    var workerRestartDelayMaxMs = 5_000
    /// Largest accepted job payload in bytes (`max_payload_bytes`), >= 0.
    var maxPayloadBytes = 262_144
    /// Most output kept as a job's result (`max_result_bytes`); longer output is cut and flagged.
    var maxResultBytes = 1_048_576
    /// Longest a long-poll may wait (`http.max_wait_ms`).
    var httpMaxWaitMs = 60_000
    /// Most jobs in one batch enqueue (`http.max_batch_jobs`).
    var httpMaxBatchJobs = 1000
    /// Most simultaneous `/events` clients (`http.max_event_clients`).
    var httpMaxEventClients = 64
    /// Hosts (or `host:port`) a `callback_url` may name (`callbacks.allowed_hosts`); empty refuses callbacks.
    var callbacksAllowedHosts: [String]? = []
    /// HMAC-SHA256 key of the `X-Prefork-Signature` header (`callbacks.secret`); nil sends no signature.
    var callbacksSecret: String? = nil
    /// A delivery attempt without an answer this long fails (`callbacks.timeout_ms`).
    var callbacksTimeoutMs = 5000
    /// Delivery attempts before a callback is given up (`callbacks.max_attempts`).
    var callbacksMaxAttempts = 10
    /// Most deliveries in flight at once (`callbacks.max_concurrent`).
    var callbacksMaxConcurrent = 64
    /// Periodic jobs (`schedules`).
    var schedules: [ScheduleSpec] = []
    /// A tick missed while the service was down is enqueued at start when it is at most this old
    /// (`schedules_catch_up_ms`); 0 replays none.
    var schedulesCatchUpMs = 0
    /// The offset schedules are evaluated in (`timezone_offset`: `Z`, `+02:00`, `-05:30`).
    var timezoneOffset = "Z"
    /// Largest accepted request body (`http.max_body_bytes`), >= 1.
    var httpMaxBodyBytes = 1_048_576
    /// Largest accepted request header block (`http.max_header_bytes`), >= 256.
    var httpMaxHeaderBytes = 16_384
    /// Most simultaneously open client connections (`http.max_connections`), >= 1.
    var httpMaxConnections = 1024
    /// A keep-alive connection idle this long is closed (`http.idle_timeout_ms`), >= 1.
    var httpIdleTimeoutMs = 60_000
    /// A request whose header block takes longer than this is dropped (`http.header_timeout_ms`), >= 1.
    var httpHeaderTimeoutMs = 10_000
    /// Finished jobs kept for lookup (`retention.max_finished`), >= 0.
    var retentionMaxFinished = 100_000
    /// Bytes of results and errors kept for finished jobs (`retention.max_result_bytes`), >= 0.
    var retentionMaxResultBytes = 268_435_456
    /// Request bytes buffered across all client connections (`http.max_buffered_bytes`), >= 65536.
    var httpMaxBufferedBytes = 67_108_864
    /// Bearer token required by every endpoint but the health checks; nil disables auth.
    var authToken: String? = nil
    /// Least severe log level that is written.
    var logLevel: LogLevel = .info
    /// `json`, `text`, or `auto` (text on a terminal, JSON otherwise) (`log_format`).
    var logFormat: LogFormat = .auto
    /// Whether each HTTP request is logged (`log_requests`); job and worker events are logged either way.
    var logRequests = true
    /// Where the supervisor writes its pid (`pidfile`); nil: `<data_dir>/prefork.pid`.
    var pidfile: String? = nil
    /// Where the jobs are kept (`queue.backend`).
    var queueBackend: QueueBackend = .journal
    /// libpq connection string or URI (`postgres.url`, or `PREFORK_POSTGRES_URL`).
    var postgresURL: String? = nil
    /// This node's name in the cluster (`postgres.node_id`); nil: hostname and pid.
    var postgresNodeID: String? = nil
    /// A node that has not renewed its lease this long is presumed dead and its jobs are rescued
    /// (`postgres.lease_ms`).
    var postgresLeaseMs = 15_000
    /// Most jobs claimed in one statement (`postgres.claim_batch`).
    var postgresClaimBatch = 50
    /// Jobs claimed ahead of free workers and held by this node until one frees (`postgres.prefetch`); 0 claims
    /// only for idle workers.
    var postgresPrefetch = 0
    /// A connection attempt that has not succeeded by then is abandoned and retried (`postgres.connect_timeout_ms`).
    var postgresConnectTimeoutMs = 5000

    /// The built-in defaults.
    init() {}
}

/// A configuration problem; every case names the key, environment variable or flag at fault.
enum ConfigError: Error, Equatable, CustomStringConvertible {
    /// A key the config file may not contain, dotted (`backoff.base`).
    case unknownKey(String)
    /// A key whose JSON value has the wrong type; `expected` is e.g. `integer`, `number`, `string`, `object`.
    case wrongType(key: String, expected: String)
    /// A value of the right type that is not allowed (range, relation, enum word, address form).
    case outOfRange(key: String, message: String)
    /// The config file is not valid JSON.
    case invalidJSON(path: String, JSONError)
    /// The config file could not be read.
    case unreadableFile(path: String, reason: String)
    /// An environment variable whose value cannot be parsed.
    case badEnvironment(name: String, value: String, reason: String)
    /// A flag whose value cannot be parsed.
    case badFlag(flag: String, value: String, reason: String)
    /// A flag or argument that Prefork does not know.
    case unknownFlag(String)
    /// A flag given without the value it needs.
    case missingFlagValue(String)

    /// One line for the user, naming what is at fault.
    var description: String {
        switch self {
        case .unknownKey(let key):
            return "config: unknown key \"\(key)\""
        case .wrongType(let key, let expected):
            return "config: \"\(key)\" has the wrong type, expected \(expected)"
        case .outOfRange(let key, let message):
            return "config: \"\(key)\" \(message)"
        case .invalidJSON(let path, let error):
            return "config file \(path): \(error)"
        case .unreadableFile(let path, let reason):
            return "cannot read config file \(path): \(reason)"
        case .badEnvironment(let name, let value, let reason):
            return "environment variable \(name)=\"\(value)\": \(reason)"
        case .badFlag(let flag, let value, let reason):
            return "flag \(flag) \"\(value)\": \(reason)"
        case .unknownFlag(let flag):
            return "unknown flag \"\(flag)\" (see --help)"
        case .missingFlagValue(let flag):
            return "flag \(flag) needs a value"
        }
    }
}

extension Config {
    /// Checks ranges and relations between keys; run after all layers are merged.
    func validate() throws(ConfigError) {
        guard listenAddress != nil else {
            throw .outOfRange(
                key: "listen", message: "must be host:port with port 0-65535, got \"\(listen)\"")
        }
        try Self.check("workers", workers, in: 1...256)
        try Self.check("queue_size", queueSize, in: 1...10_000_000)
        guard !dataDir.isEmpty else { throw .outOfRange(key: "data_dir", message: "must not be empty") }
        try Self.check("job_timeout_ms", jobTimeoutMs, atLeast: 0)
        try Self.check("shutdown_timeout_ms", shutdownTimeoutMs, atLeast: 0)
        try Self.check("backoff.base_ms", backoffBaseMs, atLeast: 0)
        guard backoffMaxMs >= backoffBaseMs else {
            throw .outOfRange(
                key: "backoff.max_ms", message: "must be >= backoff.base_ms (\(backoffBaseMs)), got \(backoffMaxMs)")
        }
        try Self.check("backoff.jitter", backoffJitter)
        if let workerPath, workerPath.isEmpty {
            throw .outOfRange(key: "worker_path", message: "must not be empty (use null for the default)")
        }
        try Self.check("simulate.min_ms", simulateMinMs, atLeast: 0)
        guard simulateMaxMs >= simulateMinMs else {
            throw .outOfRange(
                key: "simulate.max_ms", message: "must be >= simulate.min_ms (\(simulateMinMs)), got \(simulateMaxMs)")
        }
        try Self.check("simulate.fail_rate", simulateFailRate)
        if let execCommand, execCommand.first?.isEmpty ?? true {
            throw .outOfRange(key: "exec.command", message: "must start with a non-empty program name")
        }
        if handler == .exec && execCommand == nil {
            throw .outOfRange(key: "exec.command", message: "is required when handler is \"exec\"")
        }
        if let programCommand, programCommand.first?.isEmpty ?? true {
            throw .outOfRange(key: "program.command", message: "must start with a non-empty program name")
        }
        if handler == .program && programCommand == nil {
            throw .outOfRange(key: "program.command", message: "is required when handler is \"program\"")
        }
        if let programCwd, programCwd.isEmpty {
            throw .outOfRange(key: "program.cwd", message: "must not be empty (use null for the supervisor's)")
        }
        for name in programEnv.keys where name.isEmpty || name.contains("=") || name.utf8.contains(0) {
            throw .outOfRange(key: "program.env", message: "has an invalid variable name \"\(name)\"")
        }
        try Self.check("worker.start_timeout_ms", workerStartTimeoutMs, atLeast: 0)
        try Self.check("worker.max_jobs", workerMaxJobs, atLeast: 0)
        try Self.check("worker.max_rss_mb", workerMaxRssMb, atLeast: 0)
        try Self.check("worker.memory_limit_mb", workerMemoryLimitMb, atLeast: 0)
        // Below this the worker's own runtime cannot start, which would only be a crash loop.
        if workerMemoryLimitMb > 0 && workerMemoryLimitMb < 32 {
            throw .outOfRange(
                key: "worker.memory_limit_mb", message: "must be 0 (off) or at least 32, got \(workerMemoryLimitMb)")
        }
        try Self.check("worker.cpu_limit_s", workerCpuLimitS, atLeast: 0)
        try Self.check("worker.restart_delay_max_ms", workerRestartDelayMaxMs, atLeast: 0)
        // A payload travels in one `run` frame, and the worker refuses frames over the IPC limit.
        try Self.check("max_payload_bytes", maxPayloadBytes, in: 0...4_000_000)
        try Self.check("http.max_body_bytes", httpMaxBodyBytes, atLeast: 1)
        try Self.check("http.max_header_bytes", httpMaxHeaderBytes, atLeast: 256)
        try Self.check("http.max_connections", httpMaxConnections, atLeast: 1)
        try Self.check("http.idle_timeout_ms", httpIdleTimeoutMs, atLeast: 1)
        try Self.check("http.header_timeout_ms", httpHeaderTimeoutMs, atLeast: 1)
        try Self.check("retention.max_finished", retentionMaxFinished, atLeast: 0)
        try Self.check("retention.max_result_bytes", retentionMaxResultBytes, atLeast: 0)
        try Self.check("http.max_buffered_bytes", httpMaxBufferedBytes, atLeast: 65_536)
        try Self.check("journal.compact_bytes", journalCompactBytes, atLeast: 4096)
        // A result travels in one `result` frame, which the IPC layer caps at 8 MiB.
        try Self.check("max_result_bytes", maxResultBytes, in: 0...8_000_000)
        try Self.check("http.max_wait_ms", httpMaxWaitMs, in: 0...3_600_000)
        try Self.check("http.max_batch_jobs", httpMaxBatchJobs, in: 1...100_000)
        try Self.check("http.max_event_clients", httpMaxEventClients, in: 0...10_000)
        for host in callbacksAllowedHosts ?? [] where host.isEmpty || host.contains("/") || host.contains(" ") {
            throw .outOfRange(key: "callbacks.allowed_hosts", message: "has an invalid entry \"\(host)\" (host or host:port)")
        }
        if let callbacksSecret, callbacksSecret.isEmpty {
            throw .outOfRange(key: "callbacks.secret", message: "must not be empty (use null for unsigned deliveries)")
        }
        try Self.check("callbacks.timeout_ms", callbacksTimeoutMs, in: 1...600_000)
        try Self.check("callbacks.max_attempts", callbacksMaxAttempts, in: 1...1000)
        try Self.check("callbacks.max_concurrent", callbacksMaxConcurrent, in: 1...10_000)
        try Self.check("schedules_catch_up_ms", schedulesCatchUpMs, atLeast: 0)
        guard UTCOffset.minutes(timezoneOffset) != nil else {
            throw .outOfRange(key: "timezone_offset", message: "must be Z or +HH:MM / -HH:MM, got \"\(timezoneOffset)\"")
        }
        if queueBackend == .postgres {
            guard let postgresURL, !postgresURL.isEmpty else {
                throw .outOfRange(
                    key: "postgres.url", message: "is required when queue.backend is \"postgres\" (or PREFORK_POSTGRES_URL)")
            }
        }
        if let postgresNodeID, postgresNodeID.isEmpty || postgresNodeID.utf8.contains(where: { $0 < 0x20 }) {
            throw .outOfRange(key: "postgres.node_id", message: "must be a non-empty name without control characters")
        }
        try Self.check("postgres.lease_ms", postgresLeaseMs, in: 1000...3_600_000)
        try Self.check("postgres.claim_batch", postgresClaimBatch, in: 1...1000)
        try Self.check("postgres.prefetch", postgresPrefetch, in: 0...10_000)
        try Self.check("postgres.connect_timeout_ms", postgresConnectTimeoutMs, in: 100...600_000)
        var names = Set<String>()
        for schedule in schedules where !names.insert(schedule.name).inserted {
            throw .outOfRange(key: "schedules", message: "has two schedules named \"\(schedule.name)\"")
        }
        if let authToken, authToken.isEmpty {
            throw .outOfRange(key: "auth_token", message: "must not be empty (use null to disable auth)")
        }
    }

    /// The parsed `listen` address; nil when malformed.
    var listenAddress: SocketAddress? { SocketAddress(parsing: listen) }

    private static func check(_ key: String, _ value: Int, in range: ClosedRange<Int>) throws(ConfigError) {
        guard range.contains(value) else {
            throw .outOfRange(
                key: key, message: "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
    }

    private static func check(_ key: String, _ value: Int, atLeast minimum: Int) throws(ConfigError) {
        guard value >= minimum else { throw .outOfRange(key: key, message: "must be >= \(minimum), got \(value)") }
    }

    private static func check(_ key: String, _ fraction: Double) throws(ConfigError) {
        guard (0.0...1.0).contains(fraction) else {
            throw .outOfRange(key: key, message: "must be between 0 and 1, got \(fraction)")
        }
    }
}
