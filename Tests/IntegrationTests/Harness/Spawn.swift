import Foundation
import Glibc
import Synchronization

/// How a child process ended, decoded once from a `waitpid` status (the toolchain has no `WIFEXITED`).
enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// Decodes a raw `waitpid` status of a terminated process.
    init(waitStatus: Int32) {
        let signal = waitStatus & 0x7f
        self = signal == 0 ? .exited((waitStatus >> 8) & 0xff) : .signaled(signal)
    }

    var description: String {
        switch self {
        case .exited(let code): "exited \(code)"
        case .signaled(let signal): "signal \(signal)"
        }
    }
}

/// A child started by `Spawn.start`, with the read ends of its captured output pipes.
struct SpawnedChild: Sendable {
    let pid: pid_t
    let stdout: LineCollector
    let stderr: LineCollector
}

/// Errors starting or waiting for a child process.
struct SpawnError: Error, CustomStringConvertible {
    let description: String
}

/// Starts test subjects with `posix_spawn`: clean signal state, stdin from /dev/null, stdout and stderr
/// captured line by line on background threads.
enum Spawn {
    /// Environment variables the supervisor reads; never inherited from the test runner's environment.
    static let supervisorEnvironmentKeys: Set<String> = [
        "WORKERS", "QUEUE_SIZE", "PREFORK_LISTEN", "PREFORK_DATA_DIR", "PREFORK_LOG_LEVEL", "PREFORK_AUTH_TOKEN",
    ]

    /// Starts `executable` with `arguments`, the runner's environment minus the supervisor's keys, plus
    /// `environment`.
    static func start(
        executable: String,
        arguments: [String],
        environment: [String: String] = [:],
        echoPrefix: String? = nil
    ) throws -> SpawnedChild {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw SpawnError(
                description: "\(executable) not found: build the package, or set PREFORK_BIN_DIR to the directory "
                    + "holding prefork and prefork-worker")
        }
        return try spawnLock.withLock { _ in
            try startLocked(
                executable: executable, arguments: arguments, environment: environment, echoPrefix: echoPrefix)
        }
    }

    /// Serialises pipe creation and spawning (see `makePipe`).
    private static let spawnLock = Mutex(())

    private static func startLocked(
        executable: String,
        arguments: [String],
        environment: [String: String],
        echoPrefix: String?
    ) throws -> SpawnedChild {
        let stdoutPipe = try makePipe()
        let stderrPipe = try makePipe()

        var actions = posix_spawn_file_actions_t()
        try check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init")
        defer { posix_spawn_file_actions_destroy(&actions) }
        try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "addopen")
        try check(posix_spawn_file_actions_adddup2(&actions, stdoutPipe.write, 1), "adddup2 stdout")
        try check(posix_spawn_file_actions_adddup2(&actions, stderrPipe.write, 2), "adddup2 stderr")

        var attributes = posix_spawnattr_t()
        try check(posix_spawnattr_init(&attributes), "posix_spawnattr_init")
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        try check(posix_spawnattr_setsigmask(&attributes, &emptyMask), "setsigmask")
        // The test runner may ignore SIGPIPE and friends; ignored dispositions survive exec.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGQUIT] {
            sigaddset(&defaults, signal)
        }
        try check(posix_spawnattr_setsigdefault(&attributes, &defaults), "setsigdefault")
        try check(
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)),
            "setflags")

        var fullEnvironment = ProcessInfo.processInfo.environment.filter {
            !supervisorEnvironmentKeys.contains($0.key)
        }
        fullEnvironment.merge(environment) { _, new in new }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = fullEnvironment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }

        markInheritedDescriptorsCloseOnExec()
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        Glibc.close(stdoutPipe.write)
        Glibc.close(stderrPipe.write)
        guard result == 0 else {
            Glibc.close(stdoutPipe.read)
            Glibc.close(stderrPipe.read)
            throw SpawnError(description: "posix_spawn \(executable): \(String(cString: strerror(result)))")
        }
        let name = (executable as NSString).lastPathComponent
        return SpawnedChild(
            pid: pid,
            stdout: LineCollector(fd: stdoutPipe.read, echoPrefix: echoPrefix.map { "\($0) \(name)[\(pid)] out" }),
            stderr: LineCollector(fd: stderrPipe.read, echoPrefix: echoPrefix.map { "\($0) \(name)[\(pid)] err" }))
    }

    /// Reaps `pid` if it has exited, without blocking.
    static func tryReap(_ pid: pid_t) -> ExitStatus? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return ExitStatus(waitStatus: status) }
            if result == -1 && errno == EINTR { continue }
            return nil
        }
    }

    /// Blocks until `pid` exits and reaps it; only for a child that was just sent SIGKILL.
    static func reap(_ pid: pid_t) -> ExitStatus? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, 0)
            if result == pid { return ExitStatus(waitStatus: status) }
            if result == -1 && errno == EINTR { continue }
            return nil
        }
    }

    /// Polls until `pid` exits (reaping it) or `timeout` passes.
    static func waitForExit(_ pid: pid_t, timeout: Duration) async throws -> ExitStatus? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = tryReap(pid) { return status }
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The test runner may hold descriptors without close-on-exec (inherited from whatever started it);
    /// the supervisor under test must start with only 0, 1 and 2, so that what its workers hold is its doing.
    /// (Glibc's module hides `posix_spawn_file_actions_addclosefrom_np`.)
    private static func markInheritedDescriptorsCloseOnExec() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for fd in names.compactMap({ CInt($0) }) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    private static func makePipe() throws -> (read: CInt, write: CInt) {
        var fds: [CInt] = [-1, -1]
        // Glibc's module hides pipe2, so set close-on-exec right after; `start` holds `spawnLock` so no
        // concurrent spawn in this process can inherit the ends in between.
        guard pipe(&fds) == 0 else {
            throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    private static func check(_ result: Int32, _ call: String) throws {
        guard result == 0 else { throw SpawnError(description: "\(call): \(String(cString: strerror(result)))") }
    }
}
