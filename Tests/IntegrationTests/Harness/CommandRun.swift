import Foundation
import Glibc

/// The outcome of running `prefork` to completion (for `--check-config`, `--help` and bad configs).
struct CommandRun: Sendable {
    let status: ExitStatus
    let stdout: String
    let stderr: String

    /// Runs the supervisor with `arguments` and `environment`; kills it and throws if it is still running
    /// after `timeout` (a bad config must fail before anything starts).
    static func supervisor(
        _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(10)
    ) async throws -> CommandRun {
        try await run(Binaries.supervisor, arguments, environment: environment, timeout: timeout)
    }

    /// Runs `executable` (a path) with `arguments` to completion; kills it and throws after `timeout`.
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        timeout: Duration = .seconds(10)
    ) async throws -> CommandRun {
        let child = try Spawn.start(
            executable: executable, arguments: arguments, environment: environment, echoPrefix: Binaries.echoPrefix)
        guard let status = try await Spawn.waitForExit(child.pid, timeout: timeout) else {
            let workers = ProcessTable.children(of: child.pid).map(\.pid)
            kill(child.pid, SIGKILL)
            _ = Spawn.reap(child.pid)
            for worker in workers where ProcessTable.isLiveWorker(worker) { kill(worker, SIGKILL) }
            throw WaitTimeout(
                description: "prefork \(arguments) still running after \(timeout); stderr:\n\(child.stderr.text)")
        }
        try await eventually("output pipes of prefork \(arguments) closed", timeout: .seconds(2)) {
            child.stdout.isClosed && child.stderr.isClosed
        }
        return CommandRun(status: status, stdout: child.stdout.text, stderr: child.stderr.text)
    }

    /// Stdout parsed as one JSON object.
    func stdoutJSON() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw HTTPClientError(description: "stdout is not a JSON object: \(stdout)")
        }
        return object
    }
}
