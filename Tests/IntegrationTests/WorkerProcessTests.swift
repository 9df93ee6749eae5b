import Foundation
import Glibc
import Testing

/// How worker processes are set up: process groups, inherited descriptors, and dying with the supervisor.
@Suite(.timeLimit(.minutes(1)))
struct WorkerProcessTests {
    @Test func workersRunInTheirOwnProcessGroups() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let workers = try await prefork.waitForIdleWorkers(2)

        let supervisorGroup = try #require(ProcessTable.entry(prefork.pid)).processGroup
        for pid in workers {
            let entry = try #require(ProcessTable.entry(pid))
            #expect(entry.parentPID == prefork.pid)
            #expect(entry.processGroup == pid, "worker \(pid) is in process group \(entry.processGroup)")
            #expect(entry.processGroup != supervisorGroup)
        }
    }

    @Test func workersInheritNoSupervisorSocketsOrPollers() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        // Hold a client connection open so an accepted socket exists to leak.
        let connection = try prefork.connect()
        #expect(try connection.request("GET", "/healthz").status == 200)
        try prefork.enqueueAccepted(id: "spawn-after-accept", payload: "@crash")
        try await prefork.waitForJob("spawn-after-accept", state: "failed")
        let workers = try await prefork.waitForIdleWorkers(2)

        for pid in workers {
            let files = ProcessTable.openFiles(pid)
            #expect(files[0] == "/dev/null", "worker \(pid) stdin is \(files[0] ?? "closed")")
            let leaked = files.filter { $0.value.hasPrefix("socket:") || $0.value.hasPrefix("anon_inode:") }
            #expect(leaked.isEmpty, "worker \(pid) inherited \(leaked.sorted { $0.key < $1.key })")
            #expect(!files.values.contains { $0.contains(prefork.directory.path) }, "worker \(pid) holds a data file")
        }
    }

    @Test func idleWorkersExitWhenTheSupervisorIsKilled() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let workers = try await prefork.waitForIdleWorkers(2)

        prefork.sendSignal(SIGKILL)
        #expect(try await prefork.waitForExit(timeout: .seconds(5)) == .signaled(SIGKILL))
        // Orphans are reparented; whether init reaps them is not ours to test, only that they stop running.
        try await eventually("orphaned workers \(workers) exit on EOF of their job pipe", timeout: .seconds(3)) {
            workers.allSatisfy { !ProcessTable.isLiveWorker($0) }
        }
    }
}
