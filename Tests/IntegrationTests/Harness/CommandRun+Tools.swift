import Foundation
import Glibc

extension CommandRun {
    /// Runs `arguments[0]` (a path, or a name looked up in `PATH`) to completion with the runner's environment
    /// plus `environment`; kills it and throws if it is still running after `timeout`.
    static func tool(
        _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)
    ) async throws -> CommandRun {
        guard let name = arguments.first, let executable = executablePath(name) else {
            throw SpawnError(description: "\(arguments.first ?? "(nothing)") not found in PATH")
        }
        return try await run(executable, Array(arguments.dropFirst()), environment: environment, timeout: timeout)
    }

    /// Like `tool`, but throws unless the command exits 0; returns its stdout.
    @discardableResult
    static func checked(
        _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)
    ) async throws -> String {
        let run = try await tool(arguments, environment: environment, timeout: timeout)
        guard run.status == .exited(0) else {
            throw SpawnError(
                description: "\(arguments.joined(separator: " ")) \(run.status); stdout:\n"
                    + run.stdout.suffix(4000) + "\nstderr:\n" + run.stderr.suffix(4000))
        }
        return run.stdout
    }

    /// A prefix that runs a command at the lowest CPU priority (`nice -n 19`): for the heavy work of a few tests
    /// (a release build, container images). What the command starts inherits it. (Not `chrt --idle`: an idle
    /// task preempted inside fork holds the cgroup lock that a supervisor moving a worker into its cgroup waits
    /// for, which made other tests' respawns slow.)
    static let idlePriority: [String] = {
        if let nice = executablePath("nice") { return [nice, "-n", "19"] }
        return []
    }()

    /// `name` itself when it holds a slash, else its first executable match in `PATH`.
    static func executablePath(_ name: String, path: String? = nil) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let search = path ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in search.split(separator: ":") where !directory.isEmpty {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// A free TCP port on 127.0.0.1 at the time of asking (for a process that cannot report the port it bound).
func freeLocalPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SpawnError(description: "socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw SpawnError(description: "bind 127.0.0.1:0: \(String(cString: strerror(errno)))") }
    return UInt16(bigEndian: address.sin_port)
}
