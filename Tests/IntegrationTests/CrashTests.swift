import Foundation
import Glibc
import Testing

/// Workers that crash, exit, hang or break the protocol: the attempt fails with the right `last_error`, the
/// worker is replaced, and nothing is left unreaped.
@Suite(.timeLimit(.minutes(1)))
struct CrashTests {
    @Test func segfaultFailsTheAttemptAndTheWorkerIsReplaced() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let before = Set(try await prefork.waitForIdleWorkers(2))

        try prefork.enqueueAccepted(id: "segv", payload: "@crash", maxRetries: 1)
        let failed = try await prefork.waitForJob("segv", state: "failed")
        #expect(failed.int("attempts") == 2)
        #expect(failed.string("last_error") == "worker exited on signal 11 (SIGSEGV)")

        let isSegfault: ([String: Any]) -> Bool = { ($0.string("status") ?? "").contains("signal 11") }
        try await prefork.eventually("a worker_exited line per crash") {
            prefork.logEvents("worker_exited", where: isSegfault).count == 2
        }
        let exits = prefork.logEvents("worker_exited", where: isSegfault)
        for exit in exits { #expect(exit.string("status") == "signal 11 (SIGSEGV)") }
        let crashed = Set(exits.compactMap { $0.int("pid").map { pid_t($0) } })
        #expect(crashed.count == 2)
        #expect(!crashed.isDisjoint(with: before), "the first attempt ran on one of the original workers")

        let after = Set(try await prefork.waitForIdleWorkers(2))
        #expect(after.isDisjoint(with: crashed), "crashed workers \(crashed) still listed: \(after)")
        #expect(after != before)
        for pid in crashed { #expect(!ProcessTable.workerExists(pid), "crashed worker \(pid) not reaped") }
        try await prefork.waitForNoZombies()
        #expect(prefork.liveWorkerChildren.count == 2)
        let restarts = try prefork.workerSlots().compactMap { $0.int("restarts") }.reduce(0, +)
        #expect(restarts >= 2)
    }

    @Test func abortFailsWithSIGABRT() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "abort", payload: "@abort")
        let failed = try await prefork.waitForJob("abort", state: "failed")
        #expect(failed.int("attempts") == 1)
        #expect(failed.string("last_error") == "worker exited on signal 6 (SIGABRT)")
        try await prefork.waitForIdleWorkers(2)
        try await prefork.waitForNoZombies()
    }

    @Test func killedWorkerFailsItsAttemptAndTheJobIsRetried() async throws {
        let prefork = try await PreforkProcess.start(config: ["job_timeout_ms": 120_000])
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(2)

        // Long enough that the second attempt is still running when a slow test process looks for it.
        try prefork.enqueueAccepted(id: "victim", payload: "@sleep 60000", maxRetries: 1)
        let worker = try await prefork.waitForWorker(runningJob: "victim")
        #expect(kill(worker, SIGKILL) == 0)

        let retried = try await prefork.waitForJob("victim", "retried after SIGKILL") {
            $0.string("last_error")?.contains("signal 9 (SIGKILL)") == true
        }
        #expect(retried.string("last_error") == "worker exited on signal 9 (SIGKILL)")
        try await prefork.waitForLog(event: "job_retry") { $0.string("id") == "victim" }
        let exit = try await prefork.waitForLog(event: "worker_exited") { $0.int("pid") == Int(worker) }
        #expect(exit.string("status") == "signal 9 (SIGKILL)")
        let second = try await prefork.waitForJob("victim", "second attempt") {
            $0.int("attempts") == 2 && ["queued", "running"].contains($0.string("state") ?? "")
        }
        #expect(second.string("last_error")?.contains("SIGKILL") == true)
        let newWorker = try await prefork.waitForWorker(runningJob: "victim")
        #expect(newWorker != worker)
        #expect(!ProcessTable.workerExists(worker), "killed worker \(worker) not reaped")

        #expect(try prefork.request("DELETE", "/jobs/victim").status == 200)
        try await prefork.waitForIdleWorkers(2)
        try await prefork.waitForNoZombies()
    }

    @Test func nonZeroExitFailsWithTheStatus() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "exit-7", payload: "@exit 7")
        let failed = try await prefork.waitForJob("exit-7", state: "failed")
        #expect(failed.string("last_error") == "worker exited with status 7")
        let exit = try await prefork.waitForLog(event: "worker_exited") { ($0.string("status") ?? "").contains("7") }
        #expect(exit.string("status") == "exited 7")
        try await prefork.waitForIdleWorkers(2)
        try await prefork.waitForNoZombies()
    }

    @Test func hangingJobTimesOutAndTheWorkerIsReplaced() async throws {
        let prefork = try await PreforkProcess.start(config: ["job_timeout_ms": 200])
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(2)

        try prefork.enqueueAccepted(id: "hang", payload: "@hang")
        let worker = try await prefork.waitForWorker(runningJob: "hang")
        let start = ContinuousClock.now
        let failed = try await prefork.waitForJob("hang", state: "failed", timeout: .seconds(20))
        #expect(elapsed(since: start) < .seconds(15))  // a hung job ends only through the timeout
        #expect(failed.string("last_error") == "timeout after 200 ms")
        #expect(failed.int("attempts") == 1)

        let after = try await prefork.waitForIdleWorkers(2)
        #expect(!after.contains(worker))
        try await prefork.eventually("hung worker \(worker) killed and reaped") { !ProcessTable.workerExists(worker) }
        try await prefork.waitForNoZombies()
    }

    @Test func garbageFrameIsAProtocolErrorAndTheWorkerIsReplaced() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let before = Set(try await prefork.waitForIdleWorkers(2))

        try prefork.enqueueAccepted(id: "garbage", payload: "@garbage")
        let failed = try await prefork.waitForJob("garbage", state: "failed")
        let lastError = try #require(failed.string("last_error"))
        #expect(lastError.hasPrefix("protocol error"), "last_error \(lastError)")
        #expect(failed.int("attempts") == 1)

        // The attempt is too quick to catch its worker in /workers; the one that broke the protocol is the
        // original that is no longer listed.
        let after = Set(try await prefork.waitForIdleWorkers(2))
        let replaced = before.subtracting(after)
        #expect(replaced.count == 1, "before \(before), after \(after)")
        for pid in replaced {
            try await prefork.eventually("broken worker \(pid) killed and reaped") { !ProcessTable.workerExists(pid) }
        }
        #expect(try prefork.request("GET", "/healthz").status == 200)
        try prefork.enqueueAccepted(id: "after-garbage", payload: "@ok")
        try await prefork.waitForJob("after-garbage", state: "done")
        try await prefork.waitForNoZombies()
    }

    @Test func manyCrashesLeaveNoZombiesAndTheSupervisorServing() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        let ids = (1...6).map { "crash-\($0)" }
        for (index, id) in ids.enumerated() {
            try prefork.enqueueAccepted(id: id, payload: index.isMultiple(of: 2) ? "@crash" : "@exit 3")
        }
        try prefork.enqueueAccepted(id: "survivor", payload: "@ok")
        for id in ids { try await prefork.waitForJob(id, state: "failed", timeout: .seconds(10)) }
        try await prefork.waitForJob("survivor", state: "done", timeout: .seconds(10))
        try await prefork.waitForIdleWorkers(2, timeout: .seconds(10))
        try await prefork.waitForNoZombies()
        #expect(prefork.liveWorkerChildren.count == 2)
        #expect(try prefork.request("GET", "/healthz").status == 200)
    }
}

extension CrashTests {
    /// Every kind of worker death closes what the supervisor held for that worker: its descriptor count
    /// returns to where it was and no child is left unreaped.
    @Test func crashingWorkersLeakNoDescriptorsOrZombies() async throws {
        let prefork = try await PreforkProcess.start(config: ["job_timeout_ms": 200])
        defer { prefork.terminateAndReap() }
        _ = try await prefork.waitForIdleWorkers(2)
        // Client sockets come and go with the test's own requests; pipes, files and the loop's fds must not.
        let nonSockets = { ProcessTable.openFiles(prefork.pid).values.filter { !$0.hasPrefix("socket:") }.sorted() }
        let before = nonSockets()

        let payloads = ["@crash", "@abort", "@exit 3", "@garbage", "@hang"]
        for round in 0..<3 {
            for (index, payload) in payloads.enumerated() {
                try prefork.enqueueAccepted(id: "leak-\(round)-\(index)", payload: payload)
            }
        }
        for round in 0..<3 {
            for index in payloads.indices {
                _ = try await prefork.waitForJob("leak-\(round)-\(index)", state: "failed", timeout: .seconds(15))
            }
        }
        _ = try await prefork.waitForIdleWorkers(2)
        try await prefork.waitForNoZombies()
        let after = nonSockets()
        #expect(after.count == before.count, "descriptors before: \(before), after: \(after)")
    }
}
