import IPC
import System

/// What each part of the supervisor needs from the configuration, in one place: when one of these changes on
/// reload, that part is told.
extension Config {
    /// The worker's command line for the handler settings (the slot is added per worker).
    var workerCommandLine: WorkerCommandLine {
        var line = WorkerCommandLine()
        line.handler = handler
        switch handler {
        case .simulate:
            line.simulateMinimumMilliseconds = simulateMinMs
            line.simulateMaximumMilliseconds = simulateMaxMs
            line.simulateFailureRate = simulateFailRate
            line.directives = simulateDirectives
        case .exec:
            line.command = execCommand ?? []
        case .program:
            line.command = programCommand ?? []
            line.workingDirectory = programCwd
        }
        if workerMemoryLimitMb > 0 { line.memoryLimitMegabytes = workerMemoryLimitMb }
        if workerCpuLimitS > 0 { line.cpuLimitSeconds = workerCpuLimitS }
        return line
    }

    /// Extra environment variables of the workers (`program.env`, for the `program` handler).
    var programEnvironment: [String: String] { handler == .program ? programEnv : [:] }

    /// What the worker pool decides with.
    var poolSettings: WorkerPool.Settings {
        WorkerPool.Settings(
            restartDelayMaximum: Milliseconds(workerRestartDelayMaxMs),
            startTimeout: Milliseconds(workerStartTimeoutMs), maximumJobs: workerMaxJobs,
            maximumResidentBytes: workerMaxRssMb << 20, builtInWorkerVersion: "prefork-worker \(BuildInfo.version)")
    }

    /// What the HTTP server enforces.
    var httpSettings: HTTPServer.Settings {
        HTTPServer.Settings(
            limits: HTTPParser.Limits(maxHeaderBytes: httpMaxHeaderBytes, maxBodyBytes: httpMaxBodyBytes),
            timeouts: HTTPConnectionState.Timeouts(
                request: Milliseconds(httpHeaderTimeoutMs), idle: Milliseconds(httpIdleTimeoutMs)),
            maximumConnections: httpMaxConnections, maximumBufferedBytes: httpMaxBufferedBytes)
    }

    /// Why the `program` handler's command cannot start (not found in PATH, not executable), or nil.
    func programProblem(environment: [String: String]) -> String? {
        guard handler == .program, let name = programCommand?.first else { return nil }
        let path = programEnv["PATH"] ?? environment["PATH"]
        guard Posix.findInPath(name, path: path, directory: programCwd) == nil else { return nil }
        return name.contains("/")
            ? "program.command: \(name) is not an executable file"
            : "program.command: \(name) is not found in PATH (\(path ?? "unset"))"
    }

    /// `--check-config`: each schedule's next three runs.
    func scheduleSummary(now: Int64) -> [String] {
        let offset = UTCOffset.minutes(timezoneOffset) ?? 0
        return schedules.map { schedule in
            let times = schedule.cron.nextFires(after: now, count: 3, offsetMinutes: offset).map { rfc3339(milliseconds: $0) }
            return "schedule \(schedule.name) (\(schedule.cronText), timezone_offset \(timezoneOffset)): next runs "
                + (times.isEmpty ? "none" : times.joined(separator: ", "))
        }
    }

    /// `prefork-worker` beside this executable (resolved through /proc/self/exe).
    static func defaultWorkerPath() -> String {
        guard let path = try? Posix.readlink("/proc/self/exe"), let slash = path.lastIndex(of: "/") else {
            return "prefork-worker"
        }
        return String(path[...slash]) + "prefork-worker"
    }
}
