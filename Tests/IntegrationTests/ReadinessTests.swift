import Foundation
import Glibc
import Testing

/// `/healthz` and `/readyz` through a supervisor's life.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ReadinessTests {
    @Test func probesAnswer200OnceWorkersAreUp() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        try await prefork.eventually("/readyz 200") { try prefork.request("GET", "/readyz").status == 200 }
        #expect(try prefork.request("GET", "/readyz").json().string("status") == "ready")
        try await prefork.waitForIdleWorkers(2)

        let health = try prefork.request("GET", "/healthz")
        #expect(health.status == 200)
        let body = try health.json()
        #expect(body.string("status") == "ok")
        #expect(body.bool("draining") == false)
        #expect(body.int("workers_alive") == 2)
        #expect(body.int("queued") == 0)
        #expect(body.int("running") == 0)
    }

    @Test func healthzCountsRunningAndQueuedJobs() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 1, "job_timeout_ms": 10000])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "running", payload: "@sleep 2000")
        _ = try await prefork.waitForWorker(runningJob: "running")
        try prefork.enqueueAccepted(id: "queued", payload: "@ok")
        let body = try prefork.request("GET", "/healthz").json()
        #expect(body.int("running") == 1)
        #expect(body.int("queued") == 1)
    }

    @Test func readyzAnswers503WhileDraining() async throws {
        let prefork = try await PreforkProcess.start(config: ["job_timeout_ms": 10000, "shutdown_timeout_ms": 5000])
        defer { prefork.terminateAndReap() }
        try await prefork.eventually("/readyz 200") { try prefork.request("GET", "/readyz").status == 200 }

        try prefork.enqueueAccepted(id: "keeps-it-draining", payload: "@sleep 1500")
        _ = try await prefork.waitForWorker(runningJob: "keeps-it-draining")
        prefork.sendSignal(SIGTERM)
        try await prefork.waitForLog(event: "shutdown_started")

        let ready = try prefork.request("GET", "/readyz")
        #expect(ready.status == 503)
        #expect((try? ready.json())?.string("error") != nil)
        let health = try prefork.request("GET", "/healthz")
        #expect(health.status == 200)
        #expect(try health.json().bool("draining") == true)
        #expect(try await prefork.waitForExit(timeout: .seconds(8)) == .exited(0))
    }

    @Test func readyzAnswers503WithNoLiveWorker() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 1, "worker_path": "/bin/false"])
        defer { prefork.terminateAndReap() }

        try await prefork.eventually("a few failed worker starts", timeout: .seconds(10)) {
            prefork.logEvents("worker_exited").count >= 2
        }
        let ready = try prefork.request("GET", "/readyz")
        #expect(ready.status == 503)
        #expect((try? ready.json())?.string("error") != nil)
        let health = try prefork.request("GET", "/healthz")
        #expect(health.status == 200)
        #expect(try health.json().int("workers_alive") == 0)
        try await prefork.waitForNoZombies()

        // No fork bomb: a slot that keeps dying at start is respawned after growing delays.
        try await prefork.eventually("three delayed restarts", timeout: .seconds(10)) {
            prefork.logEvents("worker_restart_delayed").count >= 3
        }
        let delays = prefork.logEvents("worker_restart_delayed").compactMap { $0.int("delay_ms") }
        #expect(delays == delays.sorted())
        #expect(delays.first! < delays.last!)
    }
}
