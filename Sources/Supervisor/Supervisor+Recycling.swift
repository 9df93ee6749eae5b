import Glibc

/// Replacing healthy workers gracefully: after `worker.max_jobs` jobs, past `worker.max_rss_mb`, or when a
/// reload changed the worker settings. No job is interrupted: a busy worker is replaced after its job.
extension Supervisor {
    /// Why the slot's worker should be replaced now that it is between jobs, or nil.
    func recycleReason(_ slot: WorkerSlot) -> String? {
        if config.workerMaxJobs > 0 && slot.childJobs >= config.workerMaxJobs {
            return "max_jobs: ran \(slot.childJobs) jobs (worker.max_jobs = \(config.workerMaxJobs))"
        }
        if config.workerMaxRssMb > 0, let pid = slot.pid, let rss = Supervisor.residentBytes(of: pid),
            rss > config.workerMaxRssMb << 20
        {
            return "max_rss_mb: RSS \(rss >> 20) MiB over worker.max_rss_mb = \(config.workerMaxRssMb)"
        }
        return nil
    }

    /// Replaces the slot's worker once it is idle: a `stop` frame now if idle, after its job if busy.
    func recycle(_ slot: WorkerSlot, reason: String) {
        guard slot.isAlive, !slot.retireOnExit, slot.recycleReason == nil else { return }
        slot.recycleReason = reason
        logger.info(
            "worker_recycling", ["slot": .int(slot.index), "pid": .int(slot.pid ?? 0), "reason": .string(reason)])
        switch slot.state {
        case .idle, .starting: sendStop(slot)
        case .busy: slot.stopWhenIdle = true
        case .stopping, .restarting, .retired: break
        }
    }

    /// Resident set size of a process, from /proc/PID/statm (pages).
    static func residentBytes(of pid: pid_t) -> Int? {
        guard let fd = try? Posix.open("/proc/\(pid)/statm", O_RDONLY) else { return nil }
        defer { Posix.close(fd) }
        guard let content = try? Posix.readToEnd(fd) else { return nil }
        let fields = content.split(separator: UInt8(ascii: " "))
        guard fields.count >= 2, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
