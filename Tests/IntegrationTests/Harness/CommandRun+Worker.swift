import Foundation
import Glibc

extension CommandRun {
    /// Runs `prefork-worker` alone with `arguments` (no job or result pipe), for command-line checks that end
    /// before the worker needs the supervisor.
    static func worker(_ arguments: [String], timeout: Duration = .seconds(10)) async throws -> CommandRun {
        let child = try Spawn.start(
            executable: Binaries.worker, arguments: arguments, echoPrefix: Binaries.echoPrefix)
        guard let status = try await Spawn.waitForExit(child.pid, timeout: timeout) else {
            kill(child.pid, SIGKILL)
            _ = Spawn.reap(child.pid)
            throw WaitTimeout(
                description: "prefork-worker \(arguments) still running after \(timeout); stderr:\n\(child.stderr.text)"
            )
        }
        try await eventually("output pipes of prefork-worker \(arguments) closed", timeout: .seconds(2)) {
            child.stdout.isClosed && child.stderr.isClosed
        }
        return CommandRun(status: status, stdout: child.stdout.text, stderr: child.stderr.text)
    }
}
