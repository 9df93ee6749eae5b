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

    /// A libpq connection string with its password replaced by `***` (for `--check-config` and logs): the
    /// `user:password@` of a URI, and a keyword form's `password=...`.
    static func redactingPassword(_ url: String) -> String {
        var bytes = Array(url.utf8)
        func find(_ needle: String, from start: Int = 0) -> Int? {
            let pattern = Array(needle.utf8)
            guard bytes.count >= pattern.count, start <= bytes.count - pattern.count else { return nil }
            for index in start...(bytes.count - pattern.count) where Array(bytes[index..<(index + pattern.count)]) == pattern {
                return index
            }
            return nil
        }
        if let scheme = find("://") {
            let authorityStart = scheme + 3
            let authorityEnd = bytes[authorityStart...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }
                ?? bytes.count
            if let at = bytes[authorityStart..<authorityEnd].lastIndex(of: UInt8(ascii: "@")),
                let colon = bytes[authorityStart..<at].firstIndex(of: UInt8(ascii: ":"))
            {
                bytes.replaceSubrange((colon + 1)..<at, with: Array("***".utf8))
            }
        }
        if let key = find("password=") {
            let start = key + "password=".utf8.count
            var end = start
            if end < bytes.count, bytes[end] == UInt8(ascii: "'") {
                end = bytes[(end + 1)...].firstIndex(of: UInt8(ascii: "'")).map { $0 + 1 } ?? bytes.count
            } else {
                end = bytes[start...].firstIndex { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "&") } ?? bytes.count
            }
            bytes.replaceSubrange(start..<end, with: Array("***".utf8))
        }
        return String(decoding: bytes, as: UTF8.self)
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
