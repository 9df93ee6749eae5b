import Foundation
import Glibc
import Testing

/// `DELETE /jobs/{id}` for queued, running, finished and unknown jobs.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct CancelTests {
    @Test(arguments: Backend.allCases) func cancelingAQueuedJobMeansItNeverRuns(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "blocker", payload: "@sleep 400")
        try await prefork.waitForJob("blocker", state: "running")
        try prefork.enqueueAccepted(id: "waiting", payload: "@ok")

        let response = try prefork.request("DELETE", "/jobs/waiting")
        #expect(response.status == 200)
        let record = try response.json()
        #expect(record.string("state") == "canceled")
        #expect(record.int("attempts") == 0)

        try await prefork.waitForJob("blocker", state: "done")
        // The worker has been free since; give a dispatch that should not happen the chance to.
        try prefork.enqueueAccepted(id: "after", payload: "@ok")
        try await prefork.waitForJob("after", state: "done")
        let later = try prefork.job("waiting")
        #expect(later.string("state") == "canceled")
        #expect(later.int("attempts") == 0)
        #expect(prefork.logEvents("job_done") { $0.string("id") == "waiting" }.isEmpty)
        try await prefork.waitForLog(event: "job_canceled") { $0.string("id") == "waiting" }
    }

    @Test(arguments: Backend.allCases) func cancelingARunningJobKillsAndReplacesItsWorker(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["job_timeout_ms": 10000]) else { return }
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(2)

        try prefork.enqueueAccepted(id: "long", payload: "@sleep 30000", maxRetries: 3)
        let worker = try await prefork.waitForWorker(runningJob: "long")
        try await prefork.waitForJob("long", state: "running")

        let start = ContinuousClock.now
        let response = try prefork.request("DELETE", "/jobs/long")
        #expect(response.status == 200)
        let record = try response.json()
        #expect(record.string("state") == "canceled")

        let after = try await prefork.waitForIdleWorkers(2, timeout: .seconds(20))
        #expect(!after.contains(worker), "worker \(worker) that ran the canceled job is still listed")
        // Killed, not left to run its 30 s (a generous bound: the machine may be loaded).
        #expect(elapsed(since: start) < .seconds(15), "the running job's worker was not killed promptly")
        try await prefork.eventually("worker \(worker) killed and reaped") { !ProcessTable.workerExists(worker) }
        try await prefork.waitForNoZombies()

        // Canceled is final: no retry despite max_retries 3.
        let later = try prefork.job("long")
        #expect(later.string("state") == "canceled")
        #expect(later.int("attempts") == 1)
        #expect(later.string("last_error") == "canceled")
        #expect(prefork.logEvents("job_retry") { $0.string("id") == "long" }.isEmpty)
    }

    @Test(arguments: Backend.allCases) func cancelingAFinishedJobConflicts(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "finished", payload: "@ok")
        try await prefork.waitForJob("finished", state: "done")
        let response = try prefork.request("DELETE", "/jobs/finished")
        #expect(response.status == 409)
        #expect(try response.json().string("error") != nil)
        #expect(try prefork.job("finished").string("state") == "done")

        try prefork.enqueueAccepted(id: "failed", payload: "@fail")
        try await prefork.waitForJob("failed", state: "failed")
        #expect(try prefork.request("DELETE", "/jobs/failed").status == 409)

        try prefork.enqueueAccepted(id: "twice", payload: "@sleep 1000")
        #expect(try prefork.request("DELETE", "/jobs/twice").status == 200)
        #expect(try prefork.request("DELETE", "/jobs/twice").status == 409)
    }

    @Test(arguments: Backend.allCases) func cancelingAnUnknownJobIs404(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        let response = try prefork.request("DELETE", "/jobs/ghost")
        #expect(response.status == 404)
        #expect(try response.json().string("error") != nil)
    }
}
