import Foundation
import Glibc

/// One process as seen in `/proc/PID/stat`.
struct ProcessEntry: Sendable, Equatable, CustomStringConvertible {
    let pid: pid_t
    let parentPID: pid_t
    let processGroup: pid_t
    /// The state letter: `R`, `S`, `D`, `Z` (zombie), `T`, ...
    let state: Character
    /// The executable's name, truncated by the kernel to 15 bytes.
    let command: String

    var isZombie: Bool { state == "Z" }
    var description: String { "\(command)[\(pid)] ppid \(parentPID) state \(state)" }
}

/// Process inspection through `/proc`, for leak and zombie checks.
enum ProcessTable {
    /// The `prefork-worker` executable name as the kernel reports it in `comm`.
    static let workerCommand = "prefork-worker"

    /// The entry for `pid`, or nil when no such process exists.
    static func entry(_ pid: pid_t) -> ProcessEntry? {
        guard let stat = readFile("/proc/\(pid)/stat") else { return nil }
        return parse(stat)
    }

    /// Every process whose parent is `parent`, zombies included.
    static func children(of parent: pid_t) -> [ProcessEntry] {
        allPIDs().compactMap(entry).filter { $0.parentPID == parent }
    }

    /// Whether `pid` is still a live (non-zombie) `prefork-worker`, allowing for pid reuse by other programs.
    static func isLiveWorker(_ pid: pid_t) -> Bool {
        guard let entry = entry(pid) else { return false }
        return !entry.isZombie && entry.command == workerCommand
    }

    /// Whether any trace of worker `pid` remains: a live worker or its unreaped zombie.
    static func workerExists(_ pid: pid_t) -> Bool {
        guard let entry = entry(pid) else { return false }
        return entry.command == workerCommand
    }

    /// The open descriptors of `pid` and what they point at (`/dev/null`, `pipe:[...]`, `socket:[...]`).
    static func openFiles(_ pid: pid_t) -> [CInt: String] {
        let directory = "/proc/\(pid)/fd"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [:] }
        var files: [CInt: String] = [:]
        for name in names {
            guard let fd = CInt(name),
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + name)
            else { continue }
            files[fd] = target
        }
        return files
    }

    /// Live (non-zombie) processes whose command line is exactly `arguments`.
    static func live(commandLine arguments: [String]) -> [pid_t] {
        allPIDs().filter { pid in
            guard let entry = entry(pid), !entry.isZombie,
                let text = readFile("/proc/\(pid)/cmdline")
            else { return false }
            return text.split(separator: "\0").map(String.init) == arguments
        }
    }

    /// CPU time (user + system) `pid` has used, in clock ticks.
    static func cpuTicks(_ pid: pid_t) -> Int? {
        guard let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }

    private static func allPIDs() -> [pid_t] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var pids: [pid_t] = []
        while let item = readdir(directory) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let pid = pid_t(name) { pids.append(pid) }
        }
        return pids
    }

    /// Parses `pid (comm) S ppid ...`; `comm` may itself contain spaces and parentheses.
    private static func parse(_ stat: String) -> ProcessEntry? {
        guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")"),
            let pid = pid_t(stat[..<open].trimmingCharacters(in: .whitespaces))
        else { return nil }
        let command = String(stat[stat.index(after: open)..<close])
        let rest = stat[stat.index(after: close)...].split(separator: " ")
        guard rest.count >= 3, let state = rest[0].first, let parent = pid_t(rest[1]), let group = pid_t(rest[2])
        else { return nil }
        return ProcessEntry(pid: pid, parentPID: parent, processGroup: group, state: state, command: command)
    }

    /// Reads a whole `/proc` file (its size reads as 0, so read until EOF).
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return nil }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension ProcessTable {
    /// How many sockets `pid` holds open.
    static func socketCount(of pid: pid_t) -> Int {
        openFiles(pid).values.filter { $0.hasPrefix("socket:") }.count
    }
}
