/// Counters, gauges and histograms for `GET /metrics`, in the Prometheus text exposition format (0.0.4).
///
/// Owned by the loop thread like all other state: plain integers, no atomics. One instance, shared by reference
/// between the job ledger, the worker pool and the HTTP server.
final class Metrics {
    /// Why `POST /enqueue` refused a job.
    enum Rejection: String, CaseIterable, TallyKey {
        case invalid, conflict
        case queueFull = "queue_full"
        case draining

        static let tallyCount = 4
        var tallyIndex: Int {
            switch self {
            case .invalid: 0
            case .conflict: 1
            case .queueFull: 2
            case .draining: 3
            }
        }
    }


    /// The `route` label of `prefork_http_requests_total`: the API's routes with ids left out, so the label
    /// set stays small.
    enum Route: Int, CaseIterable {
        case enqueue, jobs, job, healthz, readyz, workers, metrics, events, stats, schedules, pause, resume, jobRetry
        case bulk, dashboard, other

        /// The route a raw request path belongs to.
        init(path: String) {
            switch path {
            case "/enqueue": self = .enqueue
            case "/jobs": self = .jobs
            case "/healthz": self = .healthz
            case "/readyz": self = .readyz
            case "/workers": self = .workers
            case "/metrics": self = .metrics
            case "/events": self = .events
            case "/stats": self = .stats
            case "/schedules": self = .schedules
            case "/pause": self = .pause
            case "/resume": self = .resume
            case "/", "/index.html": self = .dashboard
            case _ where path.hasPrefix("/ui/"): self = .dashboard
            case _ where path.hasPrefix("/jobs/retry") || path.hasPrefix("/jobs/cancel"): self = .bulk
            case _ where path.hasPrefix("/jobs/") && path.hasSuffix("/retry"): self = .jobRetry
            case _ where path.hasPrefix("/jobs/"): self = .job
            default: self = .other
            }
        }

        /// The label value.
        var label: String {
            switch self {
            case .enqueue: "/enqueue"
            case .jobs: "/jobs"
            case .job: "/jobs/{id}"
            case .healthz: "/healthz"
            case .readyz: "/readyz"
            case .workers: "/workers"
            case .metrics: "/metrics"
            case .events: "/events"
            case .stats: "/stats"
            case .schedules: "/schedules"
            case .pause: "/pause"
            case .resume: "/resume"
            case .jobRetry: "/jobs/{id}/retry"
            case .bulk: "/jobs/retry|cancel"
            case .dashboard: "/"
            case .other: "other"
            }
        }
    }

    /// A cumulative histogram with fixed buckets (seconds).
    struct Histogram {
        /// Upper bounds, seconds.
        static let bounds: [Double] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300]
        /// Observations per bucket (not cumulative; summed when written).
        var counts = [Int](repeating: 0, count: bounds.count + 1)
        /// Sum of observations.
        var sum = 0.0

        /// Records one value.
        mutating func observe(_ seconds: Double) {
            let index = Self.bounds.firstIndex { seconds <= $0 } ?? Self.bounds.count
            counts[index] += 1
            sum += seconds
        }
    }

    /// The attempt outcomes `prefork_attempts_total` counts (an attempt cut short by a cancel is not counted).
    static let countedOutcomes: [AttemptOutcome] = [.ok, .error, .crash, .timeout, .protocol, .interrupted]

    /// How one callback delivery attempt ended: the `outcome` label of `prefork_callbacks_total`.
    enum CallbackOutcome: String, CaseIterable, TallyKey {
        /// A 2xx answer.
        case delivered
        /// Any other answer; retried.
        case rejected
        /// No answer within `callbacks.timeout_ms`; retried.
        case timeout
        /// The connection could not be made or broke; retried.
        case unreachable
        /// `callbacks.max_attempts` reached: no more attempts.
        case gaveUp = "gave_up"

        static let tallyCount = 5
        var tallyIndex: Int {
            switch self {
            case .delivered: 0
            case .rejected: 1
            case .timeout: 2
            case .unreachable: 3
            case .gaveUp: 4
            }
        }
    }

    private(set) var accepted = 0
    private(set) var requeued = 0
    private(set) var callbacks = Tally<CallbackOutcome>()
    /// Dispatch is paused (`prefork_paused`).
    var paused = false
    /// Seconds each callback delivery attempt took, to the answer or the failure.
    var callbackLatency = Histogram()
    /// PostgreSQL backend: seconds per pipeline segment (statements and their sync).
    var postgresQueryTime = Histogram()
    /// PostgreSQL backend: counts.
    var postgresClaimed = 0
    var postgresRescued = 0
    var postgresFenced = 0
    var postgresReconnects = 0
    /// PostgreSQL backend in use, and whether it is connected and registered now (nil: journal backend).
    var postgresReady: Bool?
    private(set) var rejected = Tally<Rejection>()
    private(set) var finished = Tally<JobState>()
    private(set) var retried = 0
    private(set) var attempts = Tally<AttemptOutcome>()
    private(set) var restarts = Tally<RestartCause>()
    /// Responses per route (indexed by `Route.rawValue`), each a short list of statuses seen and their counts:
    /// counted on every request, where a dictionary keyed by route and status cost two hashes and key compares.
    private(set) var requests = [[(status: Int, count: Int)]](repeating: [], count: Route.allCases.count)
    /// Seconds each attempt ran (dispatch to result or death).
    var runTime = Histogram()
    /// Seconds first attempts waited between acceptance and dispatch.
    var queueWait = Histogram()
    /// Seconds each background fdatasync of the journal took (`journal.fsync = "batch"`).
    var journalSync = Histogram()

    /// Counts an accepted job.
    func jobAccepted() { accepted += 1 }
    /// Counts a failed or canceled job queued again by hand.
    func jobRequeued() { requeued += 1 }
    /// Counts a callback delivery attempt's outcome.
    func callbackEnded(_ outcome: CallbackOutcome) { callbacks.add(outcome) }
    /// Counts a refused enqueue.
    func jobRejected(_ reason: Rejection) { rejected.add(reason) }
    /// Counts a job that reached a final state.
    func jobFinished(_ state: JobState) { finished.add(state) }
    /// Counts a retry scheduled after a failed attempt.
    func jobRetried() { retried += 1 }
    /// Counts an attempt's outcome.
    func attemptEnded(_ outcome: AttemptOutcome) { attempts.add(outcome) }
    /// Counts a respawn.
    func workerRestarted(_ cause: RestartCause) { restarts.add(cause) }
    /// Counts an HTTP response by route and status.
    func requestServed(route: Route, status: Int) {
        if let index = requests[route.rawValue].firstIndex(where: { $0.status == status }) {
            requests[route.rawValue][index].count += 1
        } else {
            requests[route.rawValue].append((status, 1))
        }
    }

    /// Values read from the supervisor at scrape time.
    struct Gauges {
        var queued: Int
        var running: Int
        var liveWorkers: Int
        var targetWorkers: Int
        var draining: Bool
        var retainedJobs: Int
        var journalBytes: Int
        /// Bytes of results and errors held for finished jobs.
        var retainedResultBytes: Int
        /// Finished jobs dropped by retention, past `retention.max_finished` and past `retention.max_result_bytes`.
        var evictedByCount: Int
        var evictedByBytes: Int
    }

    /// The whole exposition.
    func exposition(_ gauges: Gauges) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8192)
        counter(&out, "prefork_jobs_accepted_total", "Jobs accepted by POST /enqueue.", [("", accepted)])
        counter(
            &out, "prefork_jobs_rejected_total", "Enqueues refused, by reason.",
            Rejection.allCases.map { ("reason=\"\($0.rawValue)\"", rejected[$0]) })
        counter(
            &out, "prefork_jobs_total", "Jobs that reached a final state, by state.",
            [JobState.done, .failed, .canceled].map { ("state=\"\($0.rawValue)\"", finished[$0]) })
        counter(&out, "prefork_jobs_retried_total", "Retries scheduled after a failed attempt.", [("", retried)])
        counter(
            &out, "prefork_jobs_requeued_total", "Failed or canceled jobs queued again by hand (POST /jobs/{id}/retry).",
            [("", requeued)])
        counter(
            &out, "prefork_attempts_total", "Attempts by outcome.",
            Self.countedOutcomes.map { ("outcome=\"\($0.rawValue)\"", attempts[$0]) })
        counter(
            &out, "prefork_worker_restarts_total", "Worker respawns by cause.",
            RestartCause.allCases.map { ("cause=\"\($0.rawValue)\"", restarts[$0]) })
        var requestSamples: [(String, Int)] = []
        for route in Route.allCases.sorted(by: { $0.label < $1.label }) {
            for (status, count) in requests[route.rawValue].sorted(by: { $0.status < $1.status }) {
                requestSamples.append(("route=\"\(route.label)\",status=\"\(status)\"", count))
            }
        }
        counter(&out, "prefork_http_requests_total", "HTTP responses by route and status.", requestSamples)
        gauge(&out, "prefork_queue_depth", "Jobs queued (runnable or waiting for a retry).", gauges.queued)
        gauge(&out, "prefork_jobs_running", "Jobs running in a worker.", gauges.running)
        gauge(&out, "prefork_workers_live", "Workers alive and serving.", gauges.liveWorkers)
        gauge(&out, "prefork_workers_target", "Workers wanted.", gauges.targetWorkers)
        gauge(&out, "prefork_draining", "1 while shutting down.", gauges.draining ? 1 : 0)
        gauge(&out, "prefork_paused", "1 while dispatch is paused (POST /pause).", paused ? 1 : 0)
        gauge(&out, "prefork_jobs_retained", "Jobs held in memory (all states).", gauges.retainedJobs)
        gauge(&out, "prefork_journal_bytes", "Size of the journal file.", gauges.journalBytes)
        gauge(
            &out, "prefork_jobs_retained_result_bytes", "Bytes of results and errors held for finished jobs.",
            gauges.retainedResultBytes)
        counter(
            &out, "prefork_jobs_evicted_total", "Finished jobs dropped by retention, by the limit that dropped them.",
            [("reason=\"count\"", gauges.evictedByCount), ("reason=\"bytes\"", gauges.evictedByBytes)])
        counter(
            &out, "prefork_callbacks_total", "Callback delivery attempts by outcome.",
            CallbackOutcome.allCases.map { ("outcome=\"\($0.rawValue)\"", callbacks[$0]) })
        histogram(
            &out, "prefork_callback_seconds", "Time each callback delivery attempt took (to its answer or failure).",
            callbackLatency)
        if let ready = postgresReady {
            gauge(&out, "prefork_postgres_ready", "1 while connected to PostgreSQL with a current lease.", ready ? 1 : 0)
            counter(&out, "prefork_postgres_claimed_total", "Jobs claimed by this node.", [("", postgresClaimed)])
            counter(
                &out, "prefork_postgres_rescued_total", "Running jobs of lapsed nodes queued again by this node.",
                [("", postgresRescued)])
            counter(
                &out, "prefork_postgres_fenced_total",
                "Outcomes this node wrote after losing the job (its lease lapsed): dropped, never applied.",
                [("", postgresFenced)])
            counter(
                &out, "prefork_postgres_reconnects_total", "Times a working connection to PostgreSQL broke.",
                [("", postgresReconnects)])
            histogram(
                &out, "prefork_postgres_query_seconds", "Time each pipeline segment (statements and a sync) took.",
                postgresQueryTime)
        }
        histogram(&out, "prefork_job_run_seconds", "Time each attempt ran.", runTime)
        histogram(&out, "prefork_queue_wait_seconds", "Time from acceptance to the first attempt.", queueWait)
        histogram(
            &out, "prefork_journal_fsync_seconds", "Time each background fdatasync of the journal took.", journalSync)
        return out
    }

    private func header(_ out: inout [UInt8], _ name: String, _ help: String, _ type: String) {
        out.append(contentsOf: "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n".utf8)
    }

    private func counter(_ out: inout [UInt8], _ name: String, _ help: String, _ samples: [(String, Int)]) {
        header(&out, name, help, "counter")
        for (labels, value) in samples {
            out.append(contentsOf: (labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n").utf8)
        }
    }

    private func gauge(_ out: inout [UInt8], _ name: String, _ help: String, _ value: Int) {
        header(&out, name, help, "gauge")
        out.append(contentsOf: "\(name) \(value)\n".utf8)
    }

    private func histogram(_ out: inout [UInt8], _ name: String, _ help: String, _ histogram: Histogram) {
        header(&out, name, help, "histogram")
        var cumulative = 0
        for (index, bound) in Histogram.bounds.enumerated() {
            cumulative += histogram.counts[index]
            out.append(contentsOf: "\(name)_bucket{le=\"\(bound)\"} \(cumulative)\n".utf8)
        }
        cumulative += histogram.counts[Histogram.bounds.count]
        out.append(contentsOf: "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n".utf8)
        out.append(contentsOf: "\(name)_sum \(histogram.sum)\n\(name)_count \(cumulative)\n".utf8)
    }
}

/// A key of a `Tally`: a small enum that numbers its cases.
protocol TallyKey {
    /// How many cases there are.
    static var tallyCount: Int { get }
    /// This case's number, 0 ..< tallyCount.
    var tallyIndex: Int { get }
}

/// Counts by a small enum, in an array: counted on every job, where a dictionary hashed the key each time.
struct Tally<Key: TallyKey> {
    private var counts = [Int](repeating: 0, count: Key.tallyCount)

    /// The count of `key`.
    subscript(key: Key) -> Int { counts[key.tallyIndex] }

    /// Whether nothing was counted.
    var isEmpty: Bool { counts.allSatisfy { $0 == 0 } }

    /// Counts one more `key`.
    mutating func add(_ key: Key) { counts[key.tallyIndex] += 1 }
}

extension JobState: TallyKey {
    static let tallyCount = 5
    var tallyIndex: Int { Int(code) }
}

extension AttemptOutcome: TallyKey {
    static let tallyCount = 7
    var tallyIndex: Int { Int(code) }
}

extension RestartCause: TallyKey {
    static let tallyCount = 6
    var tallyIndex: Int {
        switch self {
        case .crash: 0
        case .timeout: 1
        case .protocol: 2
        case .canceled: 3
        case .recycled: 4
        case .spawnFailed: 5
        }
    }
}
