import Foundation
import Glibc

/// Restarting on the same data dir, and inspecting the journal there.
extension PreforkProcess {
    /// The journal file in this supervisor's data dir.
    var journalPath: String { directory.path + "/journal" }

    /// Kills this supervisor (SIGKILL, if it is still running) and its workers, keeps the data dir, and
    /// starts a new supervisor on the same config and data dir (which then owns the directory).
    func restart(arguments: [String] = [], environment: [String: String] = [:]) async throws -> PreforkProcess {
        keepDirectoryOnTeardown()
        terminateAndReap()
        return try await PreforkProcess.start(
            in: directory, configPath: configPath, arguments: arguments, environment: environment)
    }

    /// Runs another supervisor on this one's config file (same data dir) until it exits, e.g. to check that
    /// it refuses to start while this one holds the lock.
    func runAnotherSupervisor(timeout: Duration = .seconds(10)) async throws -> CommandRun {
        try await CommandRun.supervisor(["--config", configPath, "--listen", "127.0.0.1:0"], timeout: timeout)
    }

    /// How many stderr lines contain `text` (a cheap check that does not parse JSON).
    func logLineCount(containing text: String) -> Int {
        stderr.lines.reduce(0) { $0 + ($1.contains(text) ? 1 : 0) }
    }
}
