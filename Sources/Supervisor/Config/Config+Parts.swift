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

    /// `prefork-worker` beside this executable (resolved through /proc/self/exe).
    static func defaultWorkerPath() -> String {
        guard let path = try? Posix.readlink("/proc/self/exe"), let slash = path.lastIndex(of: "/") else {
            return "prefork-worker"
        }
        return String(path[...slash]) + "prefork-worker"
    }
}
