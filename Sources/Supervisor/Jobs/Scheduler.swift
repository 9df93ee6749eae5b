/// The periodic jobs of `schedules`, as a state machine without I/O: it says which ticks are due at a time and
/// when the next one is; the supervisor enqueues them (each tick's id is `<name>@<minute>`, so a tick is
/// enqueued once even across a restart) and arms one timer.
///
/// Ticks missed while the service was down are not replayed, except the most recent one when it is within
/// `schedules_catch_up_ms`. A clock that jumps forward skips the ticks in between the same way.
struct Scheduler {
    /// One schedule and where it stands.
    struct Entry: Equatable {
        /// What it enqueues, and when.
        var spec: ScheduleSpec
        /// Its next tick (epoch milliseconds); nil when the expression never matches again.
        var nextRun: Int64?
        /// The id of the job its last tick enqueued (or found).
        var lastJobID: String?
    }

    /// A tick to enqueue.
    struct Tick: Equatable {
        /// The schedule's name.
        var name: String
        /// The tick's minute (epoch milliseconds).
        var at: Int64
        /// The job it enqueues.
        var job: JobSpec
    }

    /// Every schedule, in config order.
    private(set) var entries: [Entry]
    /// Minutes east of UTC the expressions are read in.
    let offsetMinutes: Int

    /// The schedules as of `now`, each waiting for its first tick after `now`.
    init(_ specs: [ScheduleSpec], offsetMinutes: Int, now: Int64) {
        self.offsetMinutes = offsetMinutes
        entries = specs.map { Entry(spec: $0, nextRun: $0.cron.nextFire(after: now, offsetMinutes: offsetMinutes)) }
    }

    /// The most recent tick at or before `now` that is at most `catchUp` milliseconds old, per schedule (at start).
    func catchUp(now: Int64, within catchUp: Int64) -> [Tick] {
        guard catchUp > 0 else { return [] }
        return entries.compactMap { entry in
            guard let at = lastTick(of: entry.spec, atOrBefore: now, notBefore: now - catchUp) else { return nil }
            return tick(entry.spec, at: at)
        }
    }

    /// The most recent tick of `spec` in `notBefore ... now`, nil when none.
    func lastTick(of spec: ScheduleSpec, atOrBefore now: Int64, notBefore: Int64) -> Int64? {
        var last: Int64?
        var cursor = notBefore - 1
        // Bounded: a minute cron over a long window is many ticks; past this the window is cut to its end.
        for _ in 0..<100_000 {
            guard let next = spec.cron.nextFire(after: cursor, offsetMinutes: offsetMinutes), next <= now else {
                return last
            }
            last = next
            cursor = next
        }
        return last
    }

    /// The ticks due at `now` (at most one per schedule: missed ones are skipped), each schedule then waiting
    /// for its first tick after `now`.
    mutating func due(now: Int64) -> [Tick] {
        var ticks: [Tick] = []
        for index in entries.indices {
            guard let at = entries[index].nextRun, at <= now else { continue }
            // Only the latest tick that has come: after a clock jump or a long stall the rest are not replayed.
            let latest = lastTick(of: entries[index].spec, atOrBefore: now, notBefore: at) ?? at
            ticks.append(tick(entries[index].spec, at: latest))
            entries[index].nextRun = entries[index].spec.cron.nextFire(after: now, offsetMinutes: offsetMinutes)
        }
        return ticks
    }

    /// When the next tick of any schedule is due.
    var nextWakeUp: Int64? { entries.compactMap(\.nextRun).min() }

    /// Notes the job a schedule's tick enqueued (for `GET /schedules`).
    mutating func enqueued(_ jobID: String, by name: String) {
        guard let index = entries.firstIndex(where: { $0.spec.name == name }) else { return }
        entries[index].lastJobID = jobID
    }

    /// The job a tick enqueues.
    private func tick(_ spec: ScheduleSpec, at: Int64) -> Tick {
        Tick(
            name: spec.name, at: at,
            job: JobSpec(
                id: spec.jobID(tick: at), payload: spec.payload, maxRetries: spec.maxRetries, priority: spec.priority,
                timeoutMilliseconds: spec.timeoutMilliseconds))
    }
}
