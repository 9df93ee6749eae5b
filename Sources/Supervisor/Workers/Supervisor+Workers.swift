import Glibc
import IPC
import System

/// The worker pool's actions performed: processes spawned and killed, frames written and read, timers armed,
/// attempts charged to their jobs, and the children's exits settled.
extension Supervisor {
    /// Performs what the pool asked for, in order.
    func perform(_ actions: [WorkerPool.Action]) {
        for action in actions {
            switch action {
            case .spawn(let slot): spawnWorker(slot: slot)
            case .send(let slot, let message): send(message, toSlot: slot)
            case .kill(_, let pid): killWorkerTree(pid)
            case .setTimer(let slot, let at): setWorkerTimer(slot: slot, at: at)
            case .attemptEnded(let end): attemptEnded(end)
            case .progress(let id, let attempt, let percent, let note):
                ledger.progress(id: id, attempt: attempt, percent: percent, note: note)
            case .note(let note): record(note)
            case .dispatch: dispatch()
            }
        }
        if events.isRecording { events.workers(pool.slots) }
    }

    // MARK: Spawning

    /// Starts a child in `slot` with fresh pipes and watches them.
    private func spawnWorker(slot: Int) {
        var created: [FileDescriptor] = []
        let cgroup = containment?.cgroupForWorker(slot: slot)
        do throws(SystemError) {
            let jobs = try Posix.pipe()
            created += [jobs.read, jobs.write]
            let results = try Posix.pipe()
            created += [results.read, results.write]
            let stdout = try Posix.pipe()
            created += [stdout.read, stdout.write]
            let stderr = try Posix.pipe()
            created += [stderr.read, stderr.write]
            for ours in [jobs.write, results.read, stdout.read, stderr.read] { try ours.setNonBlocking() }
            var line = workerCommandLine(slot: slot)
            line.cgroup = cgroup
            let pid = try Spawn.spawn(
                arguments: [workerPath] + line.arguments,
                environment: workerEnvironment(slot: slot),
                descriptors: [devNull, stdout.write, stderr.write, jobs.read, results.write],
                options: Spawn.Options(newProcessGroup: true))
            for theirs in [jobs.read, results.write, stdout.write, stderr.write] { theirs.close() }
            created = []
            let channel = WorkerChannel(
                slot: slot, pid: pid, jobs: jobs.write, results: results.read, stdout: stdout.read, stderr: stderr.read)
            channel.cgroup = cgroup
            channels[slot] = channel
            perform(pool.spawned(slot: slot, pid: pid))
            do throws(SystemError) {
                try watch(channel)
            } catch {
                // Spawned but cannot be watched: kill it, the reap settles the slot.
                perform(pool.kill(slot, reason: "supervisor could not watch the worker: \(error)", cause: .unwatchable))
                return
            }
            logger.info("worker_spawned", ["slot": .int(slot), "pid": .int(pid)])
        } catch {
            created.forEach { $0.close() }
            containment?.workerExited(cgroup: cgroup)
            logger.error("worker_spawn_failed", ["slot": .int(slot), "error": .string(error.description)])
            perform(pool.spawnFailed(slot: slot))
        }
    }

    private func watch(_ channel: WorkerChannel) throws(SystemError) {
        // Registration cannot fail for fresh pipes short of running out of memory.
        channel.jobsToken = try loop.register(channel.jobs!, events: 0) { [unowned self, unowned channel] events in
            if events & Epoll.error != 0 { closeJobPipe(channel) } else { flushJobPipe(channel) }
        }
        channel.resultsToken = try loop.register(channel.results!, events: Epoll.readable, urgent: true) {
            [unowned self, unowned channel] _ in readResults(channel)
        }
        for stream in 0..<2 {
            channel.outputTokens[stream] = try loop.register(channel.output[stream]!, events: Epoll.readable) {
                [unowned self, unowned channel] _ in readOutput(channel, stream: stream)
            }
        }
    }

    /// The worker's command line, from the handler settings.
    func workerCommandLine(slot: Int?) -> WorkerCommandLine {
        var line = config.workerCommandLine
        line.slot = slot
        return line
    }

    /// The worker's environment: ours, the program's extra variables, and the slot and versions.
    private func workerEnvironment(slot: Int) -> [String] {
        var environment = launchEnvironment.filter { !$0.key.hasPrefix("PREFORK_") || $0.key == "PREFORK_AUTH_TOKEN" }
        environment["PREFORK_AUTH_TOKEN"] = nil
        for (name, value) in config.programEnvironment { environment[name] = value }
        environment["PREFORK_SLOT"] = String(slot)
        environment["PREFORK_PROTOCOL"] = String(FrameHeader.currentVersion)
        environment["PREFORK_VERSION"] = BuildInfo.version
        return environment.map { "\($0.key)=\($0.value)" }.sorted()
    }

    /// SIGKILLs a child's process group, everything it started, and the child.
    private func killWorkerTree(_ pid: Int32) {
        Process.killDescendants(of: pid)
        Process.killGroup(pid, SIGKILL)
        Process.kill(pid, SIGKILL)
    }

    private func setWorkerTimer(slot: Int, at deadline: Milliseconds?) {
        loop.cancel(workerTimers.remove(slot))
        guard let deadline else { return }
        workerTimers[slot] = loop.schedule(at: deadline) { [unowned self] in
            workerTimers[slot] = nil
            perform(pool.timerFired(slot: slot))
        }
    }

    // MARK: Job pipe

    /// Queues a frame for the slot's job pipe and writes what fits.
    private func send(_ message: Message, toSlot slot: Int) {
        guard let channel = channels[slot] else { return }
        message.encode(into: &channel.pendingOutput)
        flushJobPipe(channel)
    }

    private func flushJobPipe(_ channel: WorkerChannel) {
        guard let fd = channel.jobs else {
            channel.pendingOutput.removeAll()
            return
        }
        while !channel.pendingOutput.isEmpty {
            let result = try? channel.pendingOutput.withUnsafeBytes { try fd.write($0) }
            switch result {
            case .processed(let written)?:
                channel.pendingOutput.removeFirst(written)
            case .wouldBlock?:
                if !channel.waitingForRoom {
                    channel.waitingForRoom = true
                    loop.modify(fd, token: channel.jobsToken, events: Epoll.writable)
                }
                return
            case nil:
                // EPIPE: the worker is gone; its exit is settled when it is reaped.
                closeJobPipe(channel)
                return
            }
        }
        if channel.waitingForRoom {
            channel.waitingForRoom = false
            loop.modify(fd, token: channel.jobsToken, events: 0)
        }
    }

    private func closeJobPipe(_ channel: WorkerChannel) {
        guard let fd = channel.jobs else { return }
        loop.unregister(fd, token: channel.jobsToken)
        fd.close()
        channel.jobs = nil
        channel.pendingOutput.removeAll()
    }

    // MARK: Reading

    /// Reads what a worker pipe holds now into `pipeBuffer`, handing each chunk to `consume`. Returns false at end
    /// of file or on an error (the worker is exiting; SIGCHLD settles it), true once the pipe is empty.
    private func readAvailable(_ fd: FileDescriptor, _ consume: (ArraySlice<UInt8>) -> Void) -> Bool {
        while true {
            let result = try? pipeBuffer.withUnsafeMutableBytes { try fd.read(into: $0) }
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

    /// Reads frames from the result pipe and hands each to the pool.
    private func readResults(_ channel: WorkerChannel) {
        guard let fd = channel.results else { return }
        if !readAvailable(fd, { channel.decoder.append($0) }) {
            loop.unregister(fd, token: channel.resultsToken)
            fd.close()
            channel.results = nil
        }
        do throws(FrameError) {
            while pool.listeningPID(channel.slot) == channel.pid, let message = try channel.decoder.next() {
                var residentBytes: Int?
                if case .result = message, config.workerMaxRssMb > 0 { residentBytes = Process.residentBytes(of: channel.pid) }
                perform(pool.received(message, slot: channel.slot, residentBytes: residentBytes))
            }
        } catch {
            perform(pool.protocolError(slot: channel.slot, message: error.description))
        }
    }

    /// Reads the worker's stdout (0) or stderr (1) and logs whole lines.
    private func readOutput(_ channel: WorkerChannel, stream: Int) {
        guard let fd = channel.output[stream] else { return }
        guard !readAvailable(fd, { logLines(channel, stream: stream, bytes: $0) }) else { return }
        logLines(channel, stream: stream, bytes: [UInt8(ascii: "\n")][...], onlyIfPartial: true)
        loop.unregister(fd, token: channel.outputTokens[stream])
        fd.close()
        channel.output[stream] = nil
    }

    private func logLines(_ channel: WorkerChannel, stream: Int, bytes: ArraySlice<UInt8>, onlyIfPartial: Bool = false) {
        if onlyIfPartial && channel.partialLines[stream].isEmpty { return }
        for byte in bytes {
            if byte == UInt8(ascii: "\n") || channel.partialLines[stream].count >= 4096 {
                let line = String(decoding: channel.partialLines[stream], as: UTF8.self)
                channel.partialLines[stream].removeAll(keepingCapacity: true)
                let job = pool.slots[channel.slot].state.child?.pid == channel.pid
                    ? pool.slots[channel.slot].state.assignment?.jobID : nil
                logger.info(
                    "worker_output",
                    [
                        "slot": .int(channel.slot), "pid": .int(channel.pid),
                        "stream": .string(stream == 0 ? "stdout" : "stderr"), "job": .optional(job),
                        "line": .string(line),
                    ])
            } else {
                channel.partialLines[stream].append(byte)
            }
        }
    }

    // MARK: Exits

    /// A reaped child: read what it left in its pipes (a last result, last output lines), close them, and let
    /// the pool settle the slot. Returns false for a pid that was not a worker.
    func workerExited(pid: Int32, status: TerminationStatus) -> Bool {
        if let slot = pool.slotIndex(pid: pid), let channel = channels[slot], channel.pid == pid {
            readResults(channel)
            readOutput(channel, stream: 0)
            readOutput(channel, stream: 1)
            closeDescriptors(of: channel)
            channels[slot] = nil
            // Nothing the worker started may outlive it.
            containment?.workerExited(cgroup: channel.cgroup)
        }
        guard let actions = pool.exited(pid: pid, status: status) else { return false }
        perform(actions)
        return true
    }

    private func closeDescriptors(of channel: WorkerChannel) {
        closeJobPipe(channel)
        for stream in 0..<2 {
            if let fd = channel.output[stream] {
                loop.unregister(fd, token: channel.outputTokens[stream])
                fd.close()
                channel.output[stream] = nil
            }
        }
        if let fd = channel.results {
            loop.unregister(fd, token: channel.resultsToken)
            fd.close()
            channel.results = nil
        }
    }

    // MARK: Notes

    private func record(_ note: WorkerPool.Note) {
        switch note {
        case .ready(let slot, let pid, let version):
            logger.info("worker_ready", ["slot": .int(slot), "pid": .int(pid), "version": .string(version)])
            notifyReadyIfUp()
        case .exited(let slot, let pid, let status, let reason, let job, let expected):
            let fields: KeyValuePairs<String, LogValue> = [
                "slot": .int(slot), "pid": .int(pid), "status": .string(status.logValue), "reason": .string(reason),
                "job": .optional(job),
            ]
            if expected { logger.info("worker_exited", fields) } else { logger.warn("worker_exited", fields) }
        case .restarted(_, let cause):
            metrics.workerRestarted(cause)
        case .restartDelayed(let slot, let quickDeaths, let delay):
            logger.warn(
                "worker_restart_delayed", ["slot": .int(slot), "quick_deaths": .int(quickDeaths), "delay_ms": .int(delay)])
        case .recycling(let slot, let pid, let reason):
            logger.info("worker_recycling", ["slot": .int(slot), "pid": .int(pid), "reason": .string(reason)])
        case .recycled(let slot, let pid, let reason):
            logger.info("worker_recycled", ["slot": .int(slot), "pid": .int(pid), "reason": .string(reason)])
        case .protocolError(let slot, let pid, let message):
            logger.warn("worker_protocol_error", ["slot": .int(slot), "pid": .int(pid), "error": .string(message)])
        case .jobTimeout(let id, let attempt, let pid):
            logger.warn("job_timeout", ["id": .string(id), "attempt": .int(attempt), "pid": .int(pid)])
        case .startTimeout(let slot, let pid, let timeout):
            logger.warn("worker_start_timeout", ["slot": .int(slot), "pid": .int(pid), "timeout_ms": .int(timeout)])
        }
    }
}
