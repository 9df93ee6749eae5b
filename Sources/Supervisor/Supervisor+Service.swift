import System

/// What runs beside the jobs: periodic schedules, the once-a-second stats sample, and the observers that tell
/// waiters, event-stream clients and callbacks about each job change.
extension Supervisor {
    /// Hooks the waiters, the event stream and callbacks to every recorded event; starts the stats sampler and
    /// the schedules (catching up a tick missed while down, per `schedules_catch_up_ms`).
    func startServices() {
        ledger.observers.append { [unowned self] event, job in
            guard let job else { return }
            waiters.jobChanged(job)
            events.job(event, job)
            callbacks?.jobChanged(event, job)
        }
        statsTimer = loop.schedule(after: 1000) { [unowned self] in sampleStats() }
        let now = clock.wallMilliseconds()
        scheduler = Scheduler(config.schedules, offsetMinutes: UTCOffset.minutes(config.timezoneOffset) ?? 0, now: now)
        for tick in scheduler.catchUp(now: now, within: Int64(config.schedulesCatchUpMs)) {
            enqueueTick(tick, catchUp: true)
        }
        rememberLastTicks(now: now)
        armSchedules()
    }

    /// SIGHUP: the schedules as the new config has them (their next ticks from now).
    func reloadSchedules() {
        let now = clock.wallMilliseconds()
        let previous = Dictionary(scheduler.entries.map { ($0.spec.name, $0.lastJobID) }) { first, _ in first }
        scheduler = Scheduler(config.schedules, offsetMinutes: UTCOffset.minutes(config.timezoneOffset) ?? 0, now: now)
        for entry in scheduler.entries {
            if let last = previous[entry.spec.name] ?? nil { scheduler.enqueued(last, by: entry.spec.name) }
        }
        rememberLastTicks(now: now)
        armSchedules()
    }

    /// Arms the one timer for the next tick of any schedule.
    private func armSchedules() {
        loop.cancel(scheduleTimer)
        scheduleTimer = nil
        guard let at = scheduler.nextWakeUp else { return }
        // Never later than a minute: the wall clock may be set while the monotonic timer waits.
        let delay = min(60_000, max(0, at - clock.wallMilliseconds()))
        scheduleTimer = loop.schedule(after: delay) { [unowned self] in
            scheduleTimer = nil
            for tick in scheduler.due(now: clock.wallMilliseconds()) { enqueueTick(tick, catchUp: false) }
            armSchedules()
        }
    }

    /// Enqueues a tick's job (or finds it: the same tick after a restart, or from another node).
    private func enqueueTick(_ tick: Scheduler.Tick, catchUp: Bool) {
        if let postgres {
            postgres.enqueue(tick.job) { [unowned self] result in
                switch result {
                case .success(let (job, created)):
                    scheduler.enqueued(job.id, by: tick.name)
                    if created {
                        logger.info(
                            "schedule_enqueued",
                            ["schedule": .string(tick.name), "id": .string(job.id), "catch_up": .bool(catchUp)])
                    }
                case .failure(let failure):
                    let reason: String
                    switch failure {
                    case .refused(let refusal): reason = refusal.metricsReason.rawValue
                    case .unavailable(let why): reason = "database unavailable: \(why)"
                    }
                    logger.warn(
                        "schedule_skipped", ["schedule": .string(tick.name), "id": .string(tick.job.id), "reason": .string(reason)])
                }
            }
            return
        }
        do throws(EnqueueRefusal) {
            let (job, created) = try enqueue(tick.job)
            scheduler.enqueued(job.id, by: tick.name)
            if created {
                logger.info(
                    "schedule_enqueued",
                    ["schedule": .string(tick.name), "id": .string(job.id), "catch_up": .bool(catchUp)])
            }
        } catch {
            metrics.jobRejected(error.metricsReason)
            logger.warn(
                "schedule_skipped",
                [
                    "schedule": .string(tick.name), "id": .string(tick.job.id),
                    "reason": .string(error.metricsReason.rawValue),
                ])
        }
    }

    /// For `GET /schedules`: the job of each schedule's latest tick, when the store still has it.
    private func rememberLastTicks(now: Int64) {
        for entry in scheduler.entries where entry.lastJobID == nil {
            // The last tick within a day (bounded work for minute schedules).
            if let at = scheduler.lastTick(of: entry.spec, atOrBefore: now, notBefore: now - 86_400_000),
                ledger[entry.spec.jobID(tick: at)] != nil
            {
                scheduler.enqueued(entry.spec.jobID(tick: at), by: entry.spec.name)
            }
        }
    }

    // MARK: Stats

    /// The once-a-second sample for `/stats` and the `stats` event.
    private func sampleStats() {
        statsTimer = loop.schedule(after: 1000) { [unowned self] in sampleStats() }
        let now = clock.monotonicMilliseconds()
        let done = metrics.finished[.done]
        let failed = metrics.finished[.failed]
        let seconds = max(0.001, Double(now - lastStats.at) / 1000)
        let donePerSecond = Double(done - lastStats.done) / seconds
        let failedPerSecond = Double(failed - lastStats.failed) / seconds
        lastStats = (now, done, failed)
        events.stats(statsJSON(donePerSecond: donePerSecond, failedPerSecond: failedPerSecond))
        if notifier.sentReady { notifier.status(systemdStatus) }
    }

    /// One stats sample as JSON.
    func statsJSON(donePerSecond: Double, failedPerSecond: Double) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(320)
        body.appendASCII("{\"at\":")
        body.appendQuotedRFC3339(milliseconds: clock.wallMilliseconds())
        body.appendASCII(",\"queued\":")
        body.appendDecimal(postgres?.approximateQueued ?? ledger.store.queuedCount)
        body.appendASCII(",\"running\":")
        body.appendDecimal(ledger.store.runningCount)
        body.appendASCII(",\"done_per_s\":")
        body.append(contentsOf: rate(donePerSecond).utf8)
        body.appendASCII(",\"failed_per_s\":")
        body.append(contentsOf: rate(failedPerSecond).utf8)
        body.appendASCII(",\"accepted_total\":")
        body.appendDecimal(metrics.accepted)
        body.appendASCII(",\"done_total\":")
        body.appendDecimal(metrics.finished[.done])
        body.appendASCII(",\"failed_total\":")
        body.appendDecimal(metrics.finished[.failed])
        body.appendASCII(",\"canceled_total\":")
        body.appendDecimal(metrics.finished[.canceled])
        body.appendASCII(",\"workers_live\":")
        body.appendDecimal(pool.liveWorkerCount)
        body.appendASCII(",\"workers_target\":")
        body.appendDecimal(pool.target)
        body.appendASCII(",\"paused\":")
        body.appendASCII((postgres?.paused ?? ledger.paused) ? "true" : "false")
        body.appendASCII(",\"draining\":")
        body.appendASCII(pool.draining ? "true" : "false")
        body.append(UInt8(ascii: "}"))
        return body
    }

    private func rate(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    // MARK: Routes

    /// `GET /events`: the event stream (auth as other routes). `Last-Event-ID` resumes.
    func eventsRoute(_ request: HTTPRequest) -> HTTPReply {
        let lastEventID = request.header("last-event-id").flatMap { UInt64($0.trimmingSpaces) }
        return .deferred { [unowned self] exchange in
            events.add(exchange, lastEventID: lastEventID)
        }
    }

    /// `GET /stats`: the current sample and the last ten minutes, one a second.
    func statsRoute() -> HTTPResponse {
        var body: [UInt8] = []
        body.appendASCII("{\"now\":")
        body.append(contentsOf: statsJSON(donePerSecond: 0, failedPerSecond: 0))
        if let last = events.history.last {
            // The latest sample's rates are the current ones.
            body.removeAll()
            body.appendASCII("{\"now\":")
            body.append(contentsOf: last)
        }
        body.appendASCII(",\"history\":[")
        for (index, sample) in events.history.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: sample)
        }
        body.appendASCII("]}\n")
        return .json(200, body)
    }

    /// `GET /schedules`: each schedule with its expression, next run and the job of its last tick.
    func schedulesRoute() -> HTTPResponse {
        var body: [UInt8] = []
        body.appendASCII("{\"timezone_offset\":")
        body.appendJSONString(config.timezoneOffset)
        body.appendASCII(",\"schedules\":[")
        for (index, entry) in scheduler.entries.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.appendASCII("{\"name\":")
            body.appendJSONString(entry.spec.name)
            body.appendASCII(",\"cron\":")
            body.appendJSONString(entry.spec.cronText)
            body.appendASCII(",\"next_run_at\":")
            body.appendQuotedRFC3339(orNull: entry.nextRun)
            body.appendASCII(",\"last_job_id\":")
            body.appendJSONString(orNull: entry.lastJobID)
            body.appendASCII(",\"last_job_state\":")
            body.appendJSONString(orNull: entry.lastJobID.flatMap { ledger[$0]?.state.rawValue })
            body.appendASCII(",\"priority\":")
            body.appendDecimal(entry.spec.priority)
            body.appendASCII(",\"max_retries\":")
            body.appendDecimal(entry.spec.maxRetries)
            body.appendASCII(",\"timeout_ms\":")
            if let timeout = entry.spec.timeoutMilliseconds { body.appendDecimal(timeout) } else { body.appendASCII("null") }
            body.append(UInt8(ascii: "}"))
        }
        body.appendASCII("]}\n")
        return .json(200, body)
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return String(text)
    }
}
