import IPC
import System

/// What the children say and do: frames, exits, deadlines, and the jobs handed to them.
extension WorkerPool {
    // MARK: Jobs

    /// Hands an attempt to an idle slot's child: a `run` frame, and its deadline (`timeoutMilliseconds` 0: none).
    mutating func assign(
        slot index: Int, jobID: String, attempt: Int, payload: [UInt8], timeoutMilliseconds: Int, jobsWaiting: Bool,
        maximumOutputBytes: Int
    ) -> [Action] {
        guard case .idle(let child) = slots[index].state else {
            preconditionFailure("assign to slot \(index) in state \(slots[index].state.name)")
        }
        let now = clock.monotonicMilliseconds()
        let deadline = timeoutMilliseconds > 0 ? now + Milliseconds(timeoutMilliseconds) : nil
        let assignment = WorkerSlot.Assignment(
            jobID: jobID, attempt: attempt, startedMicroseconds: clock.monotonicMicroseconds(), deadline: deadline,
            timeoutMilliseconds: timeoutMilliseconds)
        slots[index].state = .busy(child, assignment)
        let run = Message.Run(
            jobID: jobID, attempt: UInt32(attempt), payload: payload, timeoutMilliseconds: UInt64(timeoutMilliseconds),
            jobsWaiting: jobsWaiting, maximumOutputBytes: UInt32(clamping: maximumOutputBytes))
        return [.setTimer(slot: index, at: deadline), .send(slot: index, .run(run))]
    }

    /// A job was canceled: SIGKILL the child running it (the attempt is not charged).
    mutating func cancel(jobID: String) -> [Action] {
        guard let index = slotIndex(runningJob: jobID) else { return [] }
        return kill(index, reason: "job canceled", cause: .canceled)
    }

    // MARK: Frames

    /// A frame from the slot's child. `residentBytes` is the child's resident set, read by the caller only when
    /// `worker.max_rss_mb` is set (it decides recycling after a result).
    mutating func received(_ message: Message, slot index: Int, residentBytes: Int? = nil) -> [Action] {
        guard let child = slots[index].state.child, child.kill == nil else { return [] }
        switch (message, slots[index].state) {
        case (.ready(let ready), .starting(var child)):
            if let problem = versionProblem(ready) { return protocolError(slot: index, message: problem) }
            child.version = ready.version
            slots[index].state = .idle(child)
            return [.setTimer(slot: index, at: nil), .note(.ready(slot: index, pid: child.pid, version: ready.version)), .dispatch]
        case (.ready(let ready), .stopping(let child)) where !child.stopSent || child.version == nil:
            // Told to stop before it was ready: its `ready` crossed our `stop`.
            if let problem = versionProblem(ready) { return protocolError(slot: index, message: problem) }
            return [.note(.ready(slot: index, pid: child.pid, version: ready.version))]
        case (.result(let result), .busy(var child, let assignment))
        where result.jobID == assignment.jobID && Int(result.attempt) == assignment.attempt:
            child.jobsDone += 1
            slots[index].jobsRun += 1
            let kind: AttemptEnd.Kind =
                result.ok
                ? .succeeded(output: result.output, truncated: result.truncated, detail: result.detail)
                : .failed(.error, error: String(decoding: result.output, as: UTF8.self), detail: result.detail)
            let end = AttemptEnd(
                jobID: assignment.jobID, attempt: assignment.attempt, kind: kind,
                runMicroseconds: clock.monotonicMicroseconds() - assignment.startedMicroseconds, workerPID: child.pid)
            slots[index].state = .idle(child)
            var actions: [Action] = [.setTimer(slot: index, at: nil), .attemptEnded(end)]
            actions.reserveCapacity(3)
            if child.stopReason == nil, let reason = recycleReason(child, residentBytes: residentBytes) {
                actions += recycle(slot: index, reason: reason)
            }
            if case .idle(let child) = slots[index].state, let reason = child.stopReason {
                actions += stop(index, reason: reason)
            }
            actions.append(.dispatch)
            return actions
        case (.progress(let progress), .busy(_, let assignment))
        where progress.jobID == assignment.jobID && Int(progress.attempt) == assignment.attempt:
            return [
                .progress(
                    jobID: progress.jobID, attempt: assignment.attempt, percent: Int(progress.percent),
                    note: progress.note)
            ]
        case (.result(let result), _):
            return protocolError(
                slot: index, message: "result for \(result.jobID) attempt \(result.attempt) it was not running")
        case (.progress(let progress), _):
            return protocolError(
                slot: index, message: "progress for \(progress.jobID) attempt \(progress.attempt) it was not running")
        default:
            return protocolError(
                slot: index, message: "unexpected \(message.kind) message in state \(slots[index].state.name)")
        }
    }

    /// The child broke the protocol (a malformed frame, an unexpected message): kill it; its attempt fails.
    mutating func protocolError(slot index: Int, message: String) -> [Action] {
        guard let child = slots[index].state.child, child.kill == nil else { return [] }
        return [.note(.protocolError(slot: index, pid: child.pid, message: message))]
            + kill(index, reason: "protocol error: \(message)", cause: .protocolError)
    }

    private func versionProblem(_ ready: Message.Ready) -> String? {
        if ready.protocolVersion != FrameHeader.currentVersion {
            return "worker speaks protocol version \(ready.protocolVersion); this supervisor speaks "
                + "\(FrameHeader.currentVersion)"
        }
        if let required = settings.builtInWorkerVersion, ready.version.hasPrefix("prefork-worker "),
            ready.version != required
        {
            return "worker version \(ready.version) does not match this supervisor (\(required)); install matching binaries"
        }
        return nil
    }

    /// Why a child that just finished a job should be replaced, or nil.
    private func recycleReason(_ child: WorkerSlot.Child, residentBytes: Int?) -> String? {
        if settings.maximumJobs > 0 && child.jobsDone >= settings.maximumJobs {
            return "max_jobs: ran \(child.jobsDone) jobs (worker.max_jobs = \(settings.maximumJobs))"
        }
        if settings.maximumResidentBytes > 0, let rss = residentBytes, rss > settings.maximumResidentBytes {
            return "max_rss_mb: RSS \(rss >> 20) MiB over worker.max_rss_mb = \(settings.maximumResidentBytes >> 20)"
        }
        return nil
    }

    // MARK: Time

    /// The slot's timer went off: a respawn is due, a child did not start in time, or an attempt passed its
    /// deadline. Stale timers (the state moved on) do nothing.
    mutating func timerFired(slot index: Int) -> [Action] {
        let now = clock.monotonicMilliseconds()
        switch slots[index].state {
        case .restartPending(let at) where at <= now:
            slots[index].state = .vacant
            return [.spawn(slot: index)]
        case .starting(let child) where settings.startTimeout > 0 && now >= child.spawnedAt + settings.startTimeout:
            return [.note(.startTimeout(slot: index, pid: child.pid, timeout: settings.startTimeout))]
                + kill(
                    index,
                    reason: "worker did not say ready within \(settings.startTimeout) ms (worker.start_timeout_ms)",
                    cause: .startTimeout)
        case .busy(let child, let assignment) where child.kill == nil && assignment.deadline.map({ now >= $0 }) ?? false:
            return [.note(.jobTimeout(jobID: assignment.jobID, attempt: assignment.attempt, pid: child.pid))]
                + kill(index, reason: "timeout after \(assignment.timeoutMilliseconds) ms", cause: .timeout)
        default:
            return []
        }
    }

    // MARK: Exits

    /// A reaped child: charge its attempt, then respawn the slot (after a delay in a crash loop) or retire it.
    /// Returns nil for a pid that is not one of the pool's children.
    mutating func exited(pid: Int32, status: TerminationStatus) -> [Action]? {
        guard let index = slotIndex(pid: pid), let child = slots[index].state.child else { return nil }
        let assignment = slots[index].state.assignment
        let reason = child.kill?.reason ?? "worker \(status.description)"
        let recycleReason: String? = if case .recycle(let why)? = child.stopReason, child.kill == nil { why } else { nil }
        var actions: [Action] = [
            .setTimer(slot: index, at: nil),
            .note(
                .exited(
                    slot: index, pid: pid, status: status, reason: reason, job: assignment?.jobID,
                    expected: child.stopSent && child.kill == nil)),
        ]
        if let assignment {
            slots[index].jobsRun += 1
            let kind: AttemptEnd.Kind
            switch child.kill?.cause {
            case .shutdown?: kind = .interrupted(error: reason)
            case .canceled?: kind = .canceled
            case .timeout?: kind = .failed(.timeout, error: reason, detail: [])
            case .protocolError?: kind = .failed(.protocol, error: reason, detail: [])
            default: kind = .failed(.crash, error: reason, detail: [])
            }
            actions.append(
                .attemptEnded(
                    AttemptEnd(
                        jobID: assignment.jobID, attempt: assignment.attempt, kind: kind,
                        runMicroseconds: clock.monotonicMicroseconds() - assignment.startedMicroseconds,
                        workerPID: pid)))
        }
        let retiring: Bool
        switch child.stopReason {
        case .retire?, .drain?: retiring = true
        case .recycle?, nil: retiring = draining
        }
        if retiring {
            slots[index].state = .retired
            return actions
        }
        let now = clock.monotonicMilliseconds()
        let ranJob = assignment != nil || child.jobsDone > 0
        let diedAtStart =
            child.kill?.cause == .startTimeout
            || (!ranJob && child.kill == nil && recycleReason == nil && now - child.spawnedAt < settings.quickDeathWindow)
        slots[index].quickDeaths = diedAtStart ? slots[index].quickDeaths + 1 : 0
        let cause = recycleReason != nil ? .recycled : child.kill?.cause.restartCause ?? .crash
        slots[index].restarts += 1
        slots[index].lastRestartCause = cause
        if let recycleReason {
            slots[index].recycles += 1
            actions.append(.note(.recycled(slot: index, pid: pid, reason: recycleReason)))
        }
        actions.append(.note(.restarted(slot: index, cause: cause)))
        return actions + respawn(index)
    }
}
