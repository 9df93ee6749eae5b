import CLinux
import Glibc

/// Calls about processes: signals, waiting, exiting, exec, limits and the parent-death and subreaper settings.
public enum Process {
    /// getpid(2).
    public static var id: pid_t { Glibc.getpid() }

    /// kill(2); a process already gone (ESRCH) is not an error.
    public static func kill(_ pid: pid_t, _ signal: CInt) {
        _ = Glibc.kill(pid, signal)
    }

    /// kill(-group): the signal to every process of a process group.
    public static func killGroup(_ group: pid_t, _ signal: CInt) {
        guard group > 0 else { return }
        _ = Glibc.kill(-group, signal)
    }

    /// Whether a process with this pid exists (it may be a zombie).
    public static func exists(_ pid: pid_t) -> Bool {
        Glibc.kill(pid, 0) == 0 || errno == EPERM
    }

    /// Whether `pid` is a live process: it exists and is not a zombie waiting for its parent.
    public static func isRunning(_ pid: pid_t) -> Bool {
        guard exists(pid) else { return false }
        guard let stat = try? Posix.readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")),
            close + 2 < stat.count
        else { return false }
        return stat[close + 2] != UInt8(ascii: "Z") && stat[close + 2] != UInt8(ascii: "X")
    }

    /// waitpid(pid, 0) until `pid` has terminated; `pid` must be an unreaped child of ours.
    public static func wait(_ pid: pid_t) -> TerminationStatus {
        var status: CInt = 0
        while true {
            let result = Glibc.waitpid(pid, &status, 0)
            if result == -1 {
                // ECHILD would mean we lost track of our own child: a bug.
                precondition(errno == EINTR, "waitpid(\(pid)) failed with errno \(errno)")
                continue
            }
            if let decoded = TerminationStatus(waitStatus: status) { return decoded }
        }
    }

    /// waitpid(pid, WNOHANG): the status if `pid` has terminated, nil while it runs.
    public static func tryWait(_ pid: pid_t) -> TerminationStatus? {
        var status: CInt = 0
        while true {
            let result = Glibc.waitpid(pid, &status, WNOHANG)
            if result == -1 && errno == EINTR { continue }
            guard result == pid else { return nil }
            if let decoded = TerminationStatus(waitStatus: status) { return decoded }
        }
    }

    /// waitpid(-1, WNOHANG): the next terminated child, or nil when none is waiting. Linux coalesces SIGCHLD,
    /// so callers loop on this until nil.
    public static func reapAny() -> (pid: pid_t, status: TerminationStatus)? {
        var status: CInt = 0
        while true {
            let pid = Glibc.waitpid(-1, &status, WNOHANG)
            if pid > 0 {
                guard let decoded = TerminationStatus(waitStatus: status) else { continue }
                return (pid, decoded)
            }
            if pid == -1 && errno == EINTR { continue }
            return nil  // 0: children alive but none exited; -1 ECHILD: no children
        }
    }

    /// exit(3): atexit handlers and stdio flush.
    public static func exit(_ status: CInt) -> Never { Glibc.exit(status) }

    /// _exit(2): ends the process now.
    public static func exitImmediately(_ status: CInt) -> Never { Glibc._exit(status) }

    /// abort(3).
    public static func abort() -> Never { Glibc.abort() }

    /// pause(2): sleeps until a signal arrives.
    public static func pause() { _ = Glibc.pause() }

    /// execvp(3): replaces this process with `arguments[0]` (looked up in PATH) and `environment`; returns only
    /// by throwing.
    public static func execute(arguments: [String], environment: [String]) throws(SystemError) -> Never {
        precondition(!arguments.isEmpty, "exec needs a program name")
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        _ = c_execvpe(arguments[0], argv, envp)
        let error = SystemError(call: "execvp(\(arguments[0]))")
        for pointer in argv + envp { free(pointer) }
        throw error
    }

    /// chdir(2).
    public static func changeDirectory(_ path: String) throws(SystemError) {
        _ = try blockingCall("chdir(\(path))") { Glibc.chdir(path) }
    }

    /// prctl(PR_SET_PDEATHSIG): the kernel sends `signal` to this process when its parent dies.
    public static func setParentDeathSignal(_ signal: CInt) throws(SystemError) {
        _ = try blockingCall("prctl(PR_SET_PDEATHSIG)") { c_set_parent_death_signal(signal) }
    }

    /// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented to this process instead of init, so it
    /// can find and end everything its children started.
    public static func becomeSubreaper() throws(SystemError) {
        _ = try blockingCall("prctl(PR_SET_CHILD_SUBREAPER)") { c_set_child_subreaper() }
    }

    /// Whether this process is a child subreaper (orphaned descendants come to it).
    public static var isSubreaper: Bool { c_is_child_subreaper() == 1 }

    /// The direct children of `pid` (from /proc/PID/task/*/children), zombies included.
    public static func children(of pid: pid_t) -> [pid_t] {
        guard let tasks = try? Posix.listDirectory("/proc/\(pid)/task") else { return [] }
        var result: [pid_t] = []
        for task in tasks {
            guard let bytes = try? Posix.readFile("/proc/\(pid)/task/\(task)/children") else { continue }
            for field in bytes.split(separator: UInt8(ascii: " ")) {
                if let child = pid_t(String(decoding: field, as: UTF8.self)) { result.append(child) }
            }
        }
        return result
    }

    /// pidfd_open(2): a descriptor that polls readable once `pid` (a child of ours) has exited.
    public static func descriptor(for pid: pid_t) throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try blockingCall("pidfd_open") { c_pidfd_open(pid) })
    }

    /// SIGKILLs every descendant of `pid` (found through /proc, depth first) and each one's process group, but
    /// not `pid` itself. Processes that escape by forking during the walk are found later as orphans by a
    /// subreaper.
    public static func killDescendants(of pid: pid_t) {
        var pending = children(of: pid)
        var seen = Set<pid_t>()
        while let next = pending.popLast() {
            guard seen.insert(next).inserted else { continue }
            pending += children(of: next)
            if let group = processGroup(of: next), group == next { killGroup(group, SIGKILL) }
            kill(next, SIGKILL)
        }
    }

    /// When `pid` started, in clock ticks since boot (`/proc/PID/stat` field 22): with the pid, it names a process
    /// across pid reuse. Nil if it is gone.
    public static func startTime(of pid: pid_t) -> UInt64? {
        guard let stat = try? Posix.readFile("/proc/\(pid)/stat"),
            let close = stat.lastIndex(of: UInt8(ascii: ")"))
        else { return nil }
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19 else { return nil }
        return UInt64(String(decoding: fields[19], as: UTF8.self))
    }

    /// The process group of `pid`, or nil if it is gone.
    public static func processGroup(of pid: pid_t) -> pid_t? {
        let group = Glibc.getpgid(pid)
        return group == -1 ? nil : group
    }

    /// RLIMIT_AS (bytes) and RLIMIT_CPU (seconds soft, one more hard); 0 leaves that limit alone.
    public static func setLimits(addressSpaceBytes: UInt64, cpuSeconds: UInt64) throws(SystemError) {
        _ = try blockingCall("setrlimit") { c_set_limits(addressSpaceBytes, cpuSeconds) }
    }

    /// The soft and hard RLIMIT_NOFILE.
    public static func openFileLimit() -> (soft: Int, hard: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (1024, 1024) }
        let clamp = { (value: rlim_t) -> Int in value == rlim_t.max || value > rlim_t(Int.max) ? Int.max : Int(value) }
        return (clamp(limit.rlim_cur), clamp(limit.rlim_max))
    }

    /// Raises the soft RLIMIT_NOFILE to `value` (at most the hard limit); returns the soft limit now in force.
    @discardableResult
    public static func raiseOpenFileLimit(to value: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return openFileLimit().soft }
        let target = rlim_t(clamping: value)
        let wanted = limit.rlim_max == rlim_t.max ? target : min(target, limit.rlim_max)
        if wanted > limit.rlim_cur {
            limit.rlim_cur = wanted
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return openFileLimit().soft
    }

    /// Marks every descriptor from `first` up close-on-exec (what a parent leaked must not reach our children).
    public static func closeOnExecFrom(_ first: CInt) {
        _ = c_cloexec_from(first)
    }

    /// Resident set size of a process in bytes, from /proc/PID/statm; nil if it is gone.
    public static func residentBytes(of pid: pid_t) -> Int? {
        guard let content = try? Posix.readFile("/proc/\(pid)/statm") else { return nil }
        let fields = content.split(separator: UInt8(ascii: " "))
        guard fields.count >= 2, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
