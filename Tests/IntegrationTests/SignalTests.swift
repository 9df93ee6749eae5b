import Foundation
import Glibc
import Testing

/// SIGTERM/SIGINT drain and exit, the second-signal shortcut, and SIGTTIN/SIGTTOU scaling.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct SignalTests {
    /// Starts jobs `ids` running `@sleep ms`, sends `signal`, and checks the drain: the jobs finish, the
    /// supervisor exits 0 and no worker is left.
    private func checkGracefulDrain(signal: Int32, ids: [String]) async throws {
        let prefork = try await PreforkProcess.start(
            config: ["job_timeout_ms": 10000, "shutdown_timeout_ms": 5000, "workers": ids.count])
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(ids.count)

        for id in ids { try prefork.enqueueAccepted(id: id, payload: "@sleep 300") }
        for id in ids { _ = try await prefork.waitForWorker(runningJob: id) }
        let workers = prefork.liveWorkerChildren.map(\.pid)
        #expect(workers.count == ids.count)

        prefork.sendSignal(signal)
        #expect(try await prefork.waitForExit(timeout: .seconds(8)) == .exited(0))

        let events = prefork.logEvents.compactMap { $0.string("event") }
        let complete = try #require(events.lastIndex(of: "shutdown_complete"), "no shutdown_complete logged")
        let started = try #require(events.firstIndex(of: "shutdown_started"), "no shutdown_started logged")
        #expect(started < complete)
        for id in ids {
            let done = prefork.logEvents("job_done") { $0.string("id") == id }
            #expect(done.count == 1, "job \(id) did not finish during the drain")
        }
        #expect(prefork.logEvents("job_failed").isEmpty)
        for pid in workers { #expect(!ProcessTable.workerExists(pid), "worker \(pid) outlived the supervisor") }
        // Nothing that inherited the supervisor's stderr survives it.
        try await eventually("supervisor stderr closed") { prefork.stderr.isClosed }
    }

    @Test func sigtermLetsRunningJobsFinishThenExits0() async throws {
        try await checkGracefulDrain(signal: SIGTERM, ids: ["term-1", "term-2"])
    }

    @Test func sigintDrainsLikeSigterm() async throws {
        try await checkGracefulDrain(signal: SIGINT, ids: ["int-1", "int-2"])
    }

    @Test func enqueueDuringDrainAnswers503() async throws {
        let prefork = try await PreforkProcess.start(config: ["job_timeout_ms": 10000, "shutdown_timeout_ms": 5000])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "draining", payload: "@sleep 1500")
        _ = try await prefork.waitForWorker(runningJob: "draining")
        prefork.sendSignal(SIGTERM)
        try await prefork.waitForLog(event: "shutdown_started")

        let rejected = try prefork.enqueue(id: "too-late", payload: "@ok")
        #expect(rejected.status == 503)
        #expect(rejected.header("Retry-After") != nil)
        #expect((try? rejected.json())?.string("error") != nil)
        #expect(try prefork.job("draining").string("state") == "running")
        #expect(try prefork.request("GET", "/jobs/too-late").status == 404)

        #expect(try await prefork.waitForExit(timeout: .seconds(8)) == .exited(0))
        #expect(prefork.logEvents("job_done") { $0.string("id") == "draining" }.count == 1)
    }

    @Test func secondSigtermSkipsTheWait() async throws {
        let prefork = try await PreforkProcess.start(config: ["job_timeout_ms": 20000, "shutdown_timeout_ms": 20000])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "endless", payload: "@sleep 60000")
        let worker = try await prefork.waitForWorker(runningJob: "endless")
        prefork.sendSignal(SIGTERM)
        try await prefork.waitForLog(event: "shutdown_started")
        #expect(prefork.isRunning)

        let start = ContinuousClock.now
        prefork.sendSignal(SIGTERM)
        #expect(try await prefork.waitForExit(timeout: .seconds(20)) == .exited(0))
        #expect(elapsed(since: start) < .seconds(15))  // not the 20 s shutdown timeout
        #expect(!ProcessTable.workerExists(worker), "worker \(worker) outlived the supervisor")
        #expect(prefork.logEvents("job_done").isEmpty)
    }

    @Test func shutdownTimeoutKillsWhatIsLeft() async throws {
        let prefork = try await PreforkProcess.start(config: ["job_timeout_ms": 20000, "shutdown_timeout_ms": 300])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "overstays", payload: "@sleep 60000")
        let worker = try await prefork.waitForWorker(runningJob: "overstays")
        let start = ContinuousClock.now
        prefork.sendSignal(SIGTERM)
        #expect(try await prefork.waitForExit(timeout: .seconds(30)) == .exited(0))
        #expect(elapsed(since: start) >= .milliseconds(250), "exited before the shutdown timeout")
        #expect(elapsed(since: start) < .seconds(20))  // not the 60 s the job would take
        #expect(!ProcessTable.workerExists(worker), "worker \(worker) outlived the supervisor")
        let interrupted = prefork.logEvents("job_interrupted") { $0.string("id") == "overstays" }
        #expect(interrupted.first?.string("state") == "queued")

        // The killed attempt is counted, but the job is not lost: it runs again after the restart.
        let next = try await prefork.restart()
        defer { next.terminateAndReap() }
        let job = try await next.waitForJob("overstays", "running again") { $0.string("state") == "running" }
        #expect(job.int("attempts") == 2)
        #expect(job.string("last_error")?.hasPrefix("killed at shutdown") == true)
    }

    @Test func idleSupervisorExitsPromptlyOnSigterm() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let workers = try await prefork.waitForIdleWorkers(2)

        let start = ContinuousClock.now
        prefork.sendSignal(SIGTERM)
        #expect(try await prefork.waitForExit(timeout: .seconds(20)) == .exited(0))
        #expect(elapsed(since: start) < .seconds(15))  // not the 30 s shutdown timeout
        for pid in workers { #expect(!ProcessTable.workerExists(pid), "worker \(pid) outlived the supervisor") }
        try await prefork.waitForLog(event: "shutdown_complete")
    }

    @Test func sigttinAddsAWorkerAndSigttouRemovesOne() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let initial = Set(try await prefork.waitForIdleWorkers(2))

        prefork.sendSignal(SIGTTIN)
        try await prefork.eventually("target 3 with 3 idle workers") {
            let workers = try prefork.workers()
            let idle = (workers.objects("workers") ?? []).filter { $0.string("state") == "idle" }
            return workers.int("target") == 3 && idle.count == 3
        }
        #expect(prefork.liveWorkerChildren.count == 3)
        let grown = Set(try prefork.liveWorkerPIDs())
        #expect(grown.isSuperset(of: initial), "adding a worker must not replace the others")

        prefork.sendSignal(SIGTTOU)
        try await prefork.eventually("target 2 with 2 live workers") {
            try prefork.workers().int("target") == 2 && prefork.liveWorkerPIDs().count == 2
        }
        try await prefork.eventually("2 worker processes") { prefork.liveWorkerChildren.count == 2 }
        let removed = grown.subtracting(try prefork.liveWorkerPIDs())
        #expect(removed.count == 1)
        for pid in removed {
            try await prefork.eventually("removed worker \(pid) reaped") { !ProcessTable.workerExists(pid) }
        }
        try await prefork.waitForNoZombies()
        try prefork.enqueueAccepted(id: "after-scaling", payload: "@ok")
        try await prefork.waitForJob("after-scaling", state: "done")
    }

    @Test func sigttouNeverGoesBelowOneWorker() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 1])
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(1)

        prefork.sendSignal(SIGTTOU)
        // The signal is pending once kill() returns; a few round trips through the loop let it be handled.
        for _ in 0..<3 { _ = try prefork.workers() }
        #expect(try prefork.workers().int("target") == 1)
        try await prefork.waitForIdleWorkers(1)
        #expect(prefork.liveWorkerChildren.count == 1)
        try prefork.enqueueAccepted(id: "still-working", payload: "@ok")
        try await prefork.waitForJob("still-working", state: "done")
    }

    @Test func queuedJobsSurviveAGracefulRestart() async throws {
        let first = try await PreforkProcess.start(config: ["workers": 1, "job_timeout_ms": 10000])
        defer { first.terminateAndReap() }
        first.keepDirectoryOnTeardown()

        try first.enqueueAccepted(id: "in-flight", payload: "@sleep 300")
        _ = try await first.waitForWorker(runningJob: "in-flight")
        try first.enqueueAccepted(id: "queued-1", payload: "@ok")
        try first.enqueueAccepted(id: "queued-2", payload: "@ok", maxRetries: 4)
        first.sendSignal(SIGTERM)
        #expect(try await first.waitForExit(timeout: .seconds(8)) == .exited(0))

        let second = try await PreforkProcess.start(in: first.directory, configPath: first.configPath)
        defer { second.terminateAndReap() }
        let restored = try await second.waitForJob("in-flight", state: "done")
        #expect(restored.int("attempts") == 1, "the drained job finished before the restart")
        let done = try await second.waitForJob("queued-2", state: "done")
        #expect(done.int("max_retries") == 4)
        try await second.waitForJob("queued-1", state: "done")
    }
}
