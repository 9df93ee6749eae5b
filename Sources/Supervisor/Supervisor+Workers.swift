import Glibc
import IPC

/// Spawning workers, talking to them over their pipes, and settling their exits.
extension Supervisor {
    /// A worker that dies within this long of its spawn, without having run a job, counts as a crash loop.
    static let quickDeathWindow: Milliseconds = 1000
    /// First delay of a crash-looping slot's respawn; doubles per further quick death up to the configured cap.
    static let restartDelayBase: Milliseconds = 50

    /// Starts a child in `slot` with fresh pipes.
    func spawnWorker(in slot: WorkerSlot) {
        loop.cancel(slot.restartTimer)
        slot.restartTimer = nil
        var created: [FileDescriptor] = []
        do throws(SystemError) {
            let jobs = try Posix.pipe2()
            created += [jobs.read, jobs.write]
            let results = try Posix.pipe2()
            created += [results.read, results.write]
            let stdout = try Posix.pipe2()
            created += [stdout.read, stdout.write]
            let stderr = try Posix.pipe2()
            created += [stderr.read, stderr.write]
            for ours in [jobs.write, results.read, stdout.read, stderr.read] { try Posix.setNonBlocking(ours) }

            let pid = try Spawn.spawn(
                path: workerPath, arguments: workerArguments(slot: slot),
                descriptors: [devNull, stdout.write, stderr.write, jobs.read, results.write])
            for theirs in [jobs.read, results.write, stdout.write, stderr.write] { Posix.close(theirs) }
            created = []

            slot.pid = pid
            slot.state = .starting
            slot.spawnedAt = loop.now
            slot.startedAtWall = clock.wallMilliseconds()
            slot.decoder = FrameDecoder()
            slot.pendingOutput = []
            slot.assignment = nil
            slot.killReason = nil
            slot.killCause = nil
            slot.stopWhenIdle = false
            slot.childJobs = 0
            slot.recycleReason = nil
            slot.pipes = WorkerSlot.Pipes()
            slot.pipes.jobs = jobs.write
            slot.pipes.results = results.read
            slot.pipes.output = [stdout.read, stderr.read]
            slotByPID[pid] = slot

            // Registration cannot fail for fresh pipes short of running out of memory.
            slot.pipes.jobsToken = try loop.register(jobs.write, events: 0) { [unowned self] events in
                self.jobPipeEvent(slot, events: events)
            }
            slot.pipes.resultsToken = try loop.register(results.read, events: EventLoop.readable, urgent: true) {
                [unowned self] _ in self.readResults(slot)
            }
            for stream in 0..<2 {
                slot.pipes.outputTokens[stream] = try loop.register(
                    slot.pipes.output[stream]!, events: EventLoop.readable
                ) { [unowned self] _ in self.readOutput(slot, stream: stream) }
            }
            logger.info("worker_spawned", ["slot": .int(slot.index), "pid": .int(pid)])
        } catch {
            created.forEach(Posix.close)
            if slot.isAlive {
                // Spawned but could not be watched: kill it, the reap settles the slot.
                kill(slot, reason: "supervisor could not watch the worker: \(error)", cause: .spawnFailed)
                return
            }
            logger.error("worker_spawn_failed", ["slot": .int(slot.index), "error": .string(error.description)])
            metrics.workerRestarted(.spawnFailed)
            slot.quickDeaths += 1
            scheduleRespawn(slot)
        }
    }

    /// The worker's command line, from the handler settings.
    func workerArguments(slot: WorkerSlot) -> [String] {
        ["--slot", String(slot.index)] + Supervisor.handlerArguments(config)
    }

    /// The part of a worker's command line that comes from the config: when it changes, workers are replaced.
    static func handlerArguments(_ config: Config) -> [String] {
        var arguments = [
            "--handler", config.handler.rawValue,
            "--min-ms", String(config.simulateMinMs), "--max-ms", String(config.simulateMaxMs),
            "--fail-rate", String(config.simulateFailRate),
        ]
        if config.simulateDirectives { arguments.append("--directives") }
        for argument in config.execCommand ?? [] { arguments += ["--exec", argument] }
        if config.workerMemoryLimitMb > 0 { arguments += ["--memory-limit-mb", String(config.workerMemoryLimitMb)] }
        if config.workerCpuLimitS > 0 { arguments += ["--cpu-limit-s", String(config.workerCpuLimitS)] }
        return arguments
    }

    /// Asks the worker to exit when it is free: now if idle, after its job if busy.
    func retire(_ slot: WorkerSlot) {
        slot.retireOnExit = true
        switch slot.state {
        case .idle, .starting: sendStop(slot)
        case .busy: slot.stopWhenIdle = true
        case .restarting:
            loop.cancel(slot.restartTimer)
            slot.restartTimer = nil
            slot.state = .retired
        case .stopping, .retired: break
        }
    }

    /// SIGKILLs the worker's whole process group; `reason` is what its job's attempt is charged with,
    /// `cause` what its respawn is counted as.
    func kill(_ slot: WorkerSlot, reason: String, cause: Metrics.RestartCause? = nil) {
        guard let pid = slot.pid else { return }
        if slot.killReason == nil {
            slot.killReason = reason
            slot.killCause = cause
        }
        Posix.kill(-pid, SIGKILL)
        Posix.kill(pid, SIGKILL)
    }

    /// Queues a frame for the worker's job pipe and writes what fits.
    func send(_ message: Message, to slot: WorkerSlot) {
        message.encode(into: &slot.pendingOutput)
        flushJobPipe(slot)
    }

    /// Tells the worker to exit once it has read everything before this frame.
    func sendStop(_ slot: WorkerSlot) {
        slot.state = .stopping
        send(.stop, to: slot)
    }

    private func flushJobPipe(_ slot: WorkerSlot) {
        guard let fd = slot.pipes.jobs else {
            slot.pendingOutput.removeAll()
            return
        }
        while !slot.pendingOutput.isEmpty {
            let result = try? slot.pendingOutput.withUnsafeBytes { bytes throws(SystemError) in
                try Posix.write(fd, bytes)
            }
            switch result {
            case .processed(let written)?:
                slot.pendingOutput.removeFirst(written)
            case .wouldBlock?:
                if !slot.pipes.waitingForRoom {
                    slot.pipes.waitingForRoom = true
                    loop.modify(fd, token: slot.pipes.jobsToken, events: EventLoop.writable)
                }
                return
            case nil:
                // EPIPE: the worker is gone; its exit is settled when it is reaped.
                closeJobPipe(slot)
                return
            }
        }
        if slot.pipes.waitingForRoom {
            slot.pipes.waitingForRoom = false
            loop.modify(fd, token: slot.pipes.jobsToken, events: 0)
        }
    }

    private func jobPipeEvent(_ slot: WorkerSlot, events: UInt32) {
        if events & EventLoop.error != 0 {
            closeJobPipe(slot)
        } else {
            flushJobPipe(slot)
        }
    }

    private func closeJobPipe(_ slot: WorkerSlot) {
        guard let fd = slot.pipes.jobs else { return }
        loop.unregister(fd, token: slot.pipes.jobsToken)
        Posix.close(fd)
        slot.pipes.jobs = nil
        slot.pendingOutput.removeAll()
    }

    /// Reads what a worker pipe holds now into `pipeBuffer`, handing each chunk to `consume`. Returns false
    /// at end of file or on an error (the worker is exiting; SIGCHLD settles it), true once the pipe is empty.
    private func readAvailable(_ fd: FileDescriptor, _ consume: (ArraySlice<UInt8>) -> Void) -> Bool {
        while true {
            let result = try? pipeBuffer.withUnsafeMutableBytes { bytes throws(SystemError) in
                try Posix.read(fd, bytes)
            }
            switch result {
            case .processed(let count)? where count > 0:
                consume(pipeBuffer[0..<count])
                if count < pipeBuffer.count { return true }
            case .wouldBlock?:
                return true
            default:
                return false
            }
        }
    }

    /// Reads frames from the result pipe and acts on each.
    func readResults(_ slot: WorkerSlot) {
        guard let fd = slot.pipes.results else { return }
        if !readAvailable(fd, { slot.decoder.append($0) }) {
            loop.unregister(fd, token: slot.pipes.resultsToken)
            Posix.close(fd)
            slot.pipes.results = nil
        }
        do throws(FrameError) {
            while slot.killReason == nil, let message = try slot.decoder.next() {
                handle(message, from: slot)
            }
        } catch {
            protocolViolation(slot, error.description)
        }
    }

    private func handle(_ message: Message, from slot: WorkerSlot) {
        switch message {
        case .ready(let ready) where slot.state == .starting || (slot.state == .stopping && slot.assignment == nil):
            guard ready.protocolVersion == FrameHeader.currentVersion else {
                return protocolViolation(slot, "worker speaks protocol version \(ready.protocolVersion)")
            }
            logger.info("worker_ready", ["slot": .int(slot.index), "pid": .int(slot.pid ?? 0)])
            if slot.state == .starting {
                slot.state = .idle
                dispatch()
            }
        case .result(let result):
            guard let assignment = slot.assignment, assignment.jobID == result.jobID,
                assignment.attempt == Int(result.attempt)
            else {
                return protocolViolation(
                    slot, "result for \(result.jobID) attempt \(result.attempt) it was not running")
            }
            attemptCompleted(slot, result: result)
        default:
            protocolViolation(slot, "unexpected \(message.kind) message in state \(slot.state.rawValue)")
        }
    }

    private func protocolViolation(_ slot: WorkerSlot, _ message: String) {
        logger.warn(
            "worker_protocol_error", ["slot": .int(slot.index), "pid": .int(slot.pid ?? 0), "error": .string(message)])
        kill(slot, reason: "protocol error: \(message)", cause: .protocol)
    }

    /// Reads the worker's stdout (0) or stderr (1) and logs whole lines.
    func readOutput(_ slot: WorkerSlot, stream: Int) {
        guard let fd = slot.pipes.output[stream] else { return }
        guard !readAvailable(fd, { logLines(slot, stream: stream, bytes: $0) }) else { return }
        logLines(slot, stream: stream, bytes: [UInt8(ascii: "\n")][...], onlyIfPartial: true)
        loop.unregister(fd, token: slot.pipes.outputTokens[stream])
        Posix.close(fd)
        slot.pipes.output[stream] = nil
    }

    private func logLines(_ slot: WorkerSlot, stream: Int, bytes: ArraySlice<UInt8>, onlyIfPartial: Bool = false) {
        if onlyIfPartial && slot.pipes.partialLines[stream].isEmpty { return }
        for byte in bytes {
            if byte == UInt8(ascii: "\n") || slot.pipes.partialLines[stream].count >= 4096 {
                let line = String(decoding: slot.pipes.partialLines[stream], as: UTF8.self)
                slot.pipes.partialLines[stream].removeAll(keepingCapacity: true)
                logger.info(
                    "worker_output",
                    [
                        "slot": .int(slot.index), "pid": .int(slot.pid ?? 0),
                        "stream": .string(stream == 0 ? "stdout" : "stderr"), "line": .string(line),
                    ])
            } else {
                slot.pipes.partialLines[stream].append(byte)
            }
        }
    }

    /// A reaped child: read what it left in its pipes, charge its job, close its descriptors, respawn the slot.
    func workerExited(_ slot: WorkerSlot, status: TerminationStatus) {
        closeDescriptors(of: slot)
        let pid = slot.pid ?? 0
        let reason = slot.killReason ?? "worker \(status.description)"
        let level: LogLevel = slot.state == .stopping && slot.killReason == nil ? .info : .warn
        let fields: KeyValuePairs<String, LogValue> = [
            "slot": .int(slot.index), "pid": .int(pid), "status": .string(status.logValue),
            "reason": .string(reason), "job": .optional(slot.assignment?.jobID),
        ]
        if level == .info { logger.info("worker_exited", fields) } else { logger.warn("worker_exited", fields) }

        let ranJob = slot.assignment != nil || slot.childJobs > 0
        let recycled = slot.recycleReason != nil && slot.killReason == nil
        let cause = recycled ? .recycled : slot.killCause ?? .crash
        if let assignment = slot.assignment {
            chargeInterruptedAssignment(assignment, of: slot, reason: reason, cause: cause)
        }
        slot.killedByShutdown = false
        let wasKilled = slot.killReason != nil
        slot.pid = nil
        slot.killReason = nil
        slot.killCause = nil
        slot.startedAtWall = nil

        if slot.retireOnExit || draining {
            slot.state = .retired
            return
        }
        let diedAtStart =
            !ranJob && !wasKilled && !recycled && loop.now - slot.spawnedAt < Supervisor.quickDeathWindow
        slot.quickDeaths = diedAtStart ? slot.quickDeaths + 1 : 0
        slot.restarts += 1
        slot.lastRestartCause = cause.rawValue
        if recycled {
            slot.recycles += 1
            logger.info(
                "worker_recycled",
                ["slot": .int(slot.index), "pid": .int(pid), "reason": .optional(slot.recycleReason)])
        }
        slot.recycleReason = nil
        metrics.workerRestarted(cause)
        scheduleRespawn(slot)
    }

    /// Reads what the dead child left in its pipes (a last result, last output lines), then closes them all.
    private func closeDescriptors(of slot: WorkerSlot) {
        readResults(slot)
        readOutput(slot, stream: 0)
        readOutput(slot, stream: 1)
        closeJobPipe(slot)
        for stream in 0..<2 {
            if let fd = slot.pipes.output[stream] {
                loop.unregister(fd, token: slot.pipes.outputTokens[stream])
                Posix.close(fd)
                slot.pipes.output[stream] = nil
            }
        }
        if let fd = slot.pipes.results {
            loop.unregister(fd, token: slot.pipes.resultsToken)
            Posix.close(fd)
            slot.pipes.results = nil
        }
    }

    /// The child died during an attempt: count the outcome and charge the job (failed, or interrupted when the
    /// shutdown deadline killed it).
    private func chargeInterruptedAssignment(
        _ assignment: WorkerSlot.Assignment, of slot: WorkerSlot, reason: String, cause: Metrics.RestartCause
    ) {
        loop.cancel(assignment.deadlineTimer)
        slot.assignment = nil
        slot.jobsRun += 1
        metrics.runTime.observe(Double(monotonicMicroseconds() - assignment.startedAt) / 1_000_000)
        switch (slot.killedByShutdown, cause) {
        case (true, _): metrics.attemptEnded(.interrupted)
        case (false, .timeout): metrics.attemptEnded(.timeout)
        case (false, .protocol): metrics.attemptEnded(.protocol)
        case (false, .canceled): break  // the job was canceled; no attempt outcome to count
        default: metrics.attemptEnded(.crash)
        }
        if slot.killedByShutdown {
            attemptInterrupted(jobID: assignment.jobID, attempt: assignment.attempt, error: reason)
        } else {
            attemptFailed(jobID: assignment.jobID, attempt: assignment.attempt, error: reason)
        }
    }

    /// Respawns at once, or after a growing delay while the slot keeps dying at start (never a fork bomb).
    private func scheduleRespawn(_ slot: WorkerSlot) {
        slot.state = .restarting
        guard slot.quickDeaths > 1 else {
            spawnWorker(in: slot)
            return
        }
        let exponent = min(slot.quickDeaths - 2, 20)
        let delay = min(Milliseconds(config.workerRestartDelayMaxMs), Supervisor.restartDelayBase << exponent)
        logger.warn(
            "worker_restart_delayed",
            ["slot": .int(slot.index), "quick_deaths": .int(slot.quickDeaths), "delay_ms": .int(delay)])
        slot.restartTimer = loop.schedule(after: delay) { [unowned self] in
            slot.restartTimer = nil
            if slot.state == .restarting { self.spawnWorker(in: slot) }
        }
    }

    /// Workers that have said `ready` and are alive.
    var liveWorkerCount: Int { slots.count(where: { $0.isAlive && $0.isServing }) }
}
