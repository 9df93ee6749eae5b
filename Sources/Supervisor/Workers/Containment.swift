import Glibc
import System

/// Makes sure nothing a job starts outlives it: the supervisor is a child subreaper (orphans of dead workers come
/// to it and are killed), and where the machine has a writable cgroup v2 hierarchy each worker runs in a cgroup
/// of its own, killed as a whole when the worker exits and at shutdown; cgroups left by a supervisor that was
/// SIGKILLed are emptied at the next start.
final class Containment {
    /// How processes are contained.
    enum Mode: Equatable {
        /// A cgroup v2 directory per worker under this one (the supervisor's own cgroup, `prefork-<pid>`).
        case cgroup(root: String)
        /// Reparenting to the supervisor and killing what arrives.
        case subreaper

        /// The name in logs and `/healthz`.
        var name: String {
            switch self {
            case .cgroup: return "cgroup"
            case .subreaper: return "subreaper"
            }
        }
    }

    /// The mode in force.
    let mode: Mode
    /// Worker cgroups whose processes were killed but which could not be removed yet (still populated).
    private var pendingRemoval: Set<String> = []
    private var nextCgroup = 0

    private init(mode: Mode) {
        self.mode = mode
    }

    /// Makes this process a subreaper and picks the mode: a cgroup of its own (`prefork-<pid>-<start time>`, so a
    /// reused pid is not mistaken for a live supervisor) under its current cgroup v2 directory when that is
    /// writable (after emptying the cgroups of dead supervisors found there), else subreaper only. `log` receives
    /// one line per stale cgroup emptied.
    static func start(log: (String, Int) -> Void) -> Containment {
        try? Process.becomeSubreaper()
        guard let parent = ownCgroupDirectory() else { return Containment(mode: .subreaper) }
        removeStale(under: parent, log: log)
        let root = parent + "/" + name(pid: Process.id, startTime: Process.startTime(of: Process.id) ?? 0)
        guard (try? Posix.makeDirectory(root)) != nil, Posix.isDirectory(root) else {
            return Containment(mode: .subreaper)
        }
        return Containment(mode: .cgroup(root: root))
    }

    /// A fresh cgroup for a worker of `slot` (nil in subreaper mode, or if it cannot be made). The worker moves
    /// itself into it before anything else.
    func cgroupForWorker(slot: Int) -> String? {
        guard case .cgroup(let root) = mode else { return nil }
        nextCgroup += 1
        let path = root + "/worker-\(slot)-\(nextCgroup)"
        return (try? Posix.makeDirectory(path)) != nil ? path : nil
    }

    /// A worker exited: kill whatever is left in its cgroup, and remove it once empty.
    func workerExited(cgroup: String?) {
        guard let cgroup else { return }
        Self.killAll(in: cgroup)
        pendingRemoval.insert(cgroup)
        removeEmpty()
    }

    /// Kills every child of the supervisor that is not a worker (`workers`): orphans reparented to it. Returns how
    /// many. Their exits are reaped like any child's.
    @discardableResult
    func killStrays(workers: Set<Int32>) -> Int {
        var killed = 0
        for child in Process.children(of: Process.id) where !workers.contains(child) {
            Process.killDescendants(of: child)
            if Process.processGroup(of: child) == child { Process.killGroup(child, SIGKILL) }
            Process.kill(child, SIGKILL)
            killed += 1
        }
        removeEmpty()
        return killed
    }

    /// At exit: kill everything left in every worker cgroup and remove them and the root.
    func shutDown() {
        guard case .cgroup(let root) = mode else { return }
        Self.killAll(in: root)
        for name in (try? Posix.listDirectory(root)) ?? [] where name.hasPrefix("worker-") {
            pendingRemoval.insert(root + "/" + name)
        }
        removeEmpty()
        try? Posix.removeDirectory(root)
    }

    /// Removes the worker cgroups whose processes are all gone.
    private func removeEmpty() {
        for path in pendingRemoval where (try? Posix.removeDirectory(path)) != nil {
            pendingRemoval.remove(path)
        }
    }

    /// Kills every process in the cgroup `path` and its children: `cgroup.kill` where the kernel has it
    /// (5.14), else each pid in `cgroup.procs`.
    static func killAll(in path: String) {
        if (try? Posix.writeFile(path + "/cgroup.kill", Array("1\n".utf8))) != nil { return }
        for name in (try? Posix.listDirectory(path)) ?? [] where Posix.isDirectory(path + "/" + name) {
            killAll(in: path + "/" + name)
        }
        let procs = (try? Posix.readFile(path + "/cgroup.procs")) ?? []
        for field in procs.split(separator: UInt8(ascii: "\n")) {
            if let pid = Int32(String(decoding: field, as: UTF8.self)) { Process.kill(pid, SIGKILL) }
        }
    }

    /// The cgroup v2 directory this process is in, if the hierarchy is mounted and the directory writable.
    private static func ownCgroupDirectory() -> String? {
        guard let membership = try? Posix.readFile("/proc/self/cgroup"),
            let line = String(decoding: membership, as: UTF8.self).split(separator: "\n").first(where: {
                $0.hasPrefix("0::")
            }),
            let mount = cgroup2Mount()
        else { return nil }
        let relative = String(line.dropFirst(3))
        let directory = relative == "/" ? mount : mount + relative
        guard Posix.isDirectory(directory), Posix.isWritable(directory) else { return nil }
        return directory
    }

    /// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid systems).
    private static func cgroup2Mount() -> String? {
        guard let mounts = try? Posix.readFile("/proc/self/mounts") else { return nil }
        for line in String(decoding: mounts, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count >= 3 && fields[2] == "cgroup2" { return String(fields[1]) }
        }
        return nil
    }

    /// The cgroup directory name of the supervisor `pid` that started at `startTime`.
    private static func name(pid: Int32, startTime: UInt64) -> String {
        "prefork-\(pid)-\(startTime)"
    }

    /// Empties and removes the cgroups of supervisors that are gone (SIGKILLed, crashed).
    private static func removeStale(under parent: String, log: (String, Int) -> Void) {
        for entry in (try? Posix.listDirectory(parent)) ?? [] where entry.hasPrefix("prefork-") {
            let parts = entry.dropFirst("prefork-".count).split(separator: "-")
            guard let pid = parts.first.flatMap({ Int32($0) }) else { continue }
            let started = parts.count > 1 ? UInt64(parts[1]) : nil
            let alive = Process.startTime(of: pid).map { started == nil || $0 == started } ?? false
            guard !alive || pid == Process.id else { continue }
            let name = entry
            let root = parent + "/" + name
            let count = processCount(in: root)
            killAll(in: root)
            // The killed processes leave their cgroups as they exit, within moments.
            for _ in 0..<100 {
                for child in (try? Posix.listDirectory(root)) ?? [] where Posix.isDirectory(root + "/" + child) {
                    try? Posix.removeDirectory(root + "/" + child)
                }
                if (try? Posix.removeDirectory(root)) != nil, !Posix.exists(root) { break }
                Time.sleep(milliseconds: 10)
            }
            if count > 0 { log(root, count) }
        }
    }

    private static func processCount(in path: String) -> Int {
        var count = ((try? Posix.readFile(path + "/cgroup.procs")) ?? []).split(separator: UInt8(ascii: "\n")).count
        for name in (try? Posix.listDirectory(path)) ?? [] where Posix.isDirectory(path + "/" + name) {
            count += processCount(in: path + "/" + name)
        }
        return count
    }
}
