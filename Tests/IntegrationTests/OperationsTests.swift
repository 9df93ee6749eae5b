import Foundation
import Glibc
import Testing

/// Day-two operations: graceful recycling (max_jobs, max_rss_mb) and SIGHUP config reload.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct OperationsTests {
    /// Rewrites the running supervisor's config file with `defaultConfig` merged with `config`.
    private func rewriteConfig(_ prefork: PreforkProcess, _ config: [String: Any]) throws {
        let dataDirectory = URL(fileURLWithPath: prefork.configPath).deletingLastPathComponent().path
        let full = deepMerge(PreforkProcess.defaultConfig.merging(["data_dir": dataDirectory]) { $1 }, config)
        let data = try JSONSerialization.data(withJSONObject: full)
        try data.write(to: URL(fileURLWithPath: prefork.configPath))
    }

    @Test func maxJobsRecyclesAWorkerWithoutFailingAJob() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 1, "worker": ["max_jobs": 2]])
        defer { prefork.terminateAndReap() }
        let first = try await prefork.waitForIdleWorkers(1)
        for index in 0..<6 { try prefork.enqueueAccepted(id: "recycle-\(index)", payload: "@sleep 5") }
        for index in 0..<6 { _ = try await prefork.waitForJob("recycle-\(index)", state: "done") }
        #expect(prefork.logEvents("job_failed").isEmpty)
        #expect(prefork.logEvents("job_retry").isEmpty)
        try await prefork.eventually("three generations of workers") {
            prefork.logEvents("worker_recycled").count >= 2
        }
        let slot = try #require(try prefork.workerSlots().first)
        #expect(slot.int("recycles")! >= 2)
        #expect(slot.string("last_restart_cause") == "recycled")
        #expect(try await prefork.waitForIdleWorkers(1) != first)
        let metrics = try MetricsTests.parse(try prefork.request("GET", "/metrics").text)
        #expect(MetricsTests.value(metrics, "prefork_worker_restarts_total", ["cause": "recycled"])! >= 2)
        #expect(MetricsTests.value(metrics, "prefork_worker_restarts_total", ["cause": "crash"]) == 0)
        try await prefork.waitForNoZombies()
    }

    @Test func maxRSSRecyclesBetweenJobs() async throws {
        // Every worker is over 1 MiB of RSS, so each is replaced after each job, and no job suffers.
        let prefork = try await PreforkProcess.start(config: ["workers": 1, "worker": ["max_rss_mb": 1]])
        defer { prefork.terminateAndReap() }
        _ = try await prefork.waitForIdleWorkers(1)
        for index in 0..<3 { try prefork.enqueueAccepted(id: "rss-\(index)", payload: "@ok") }
        for index in 0..<3 { _ = try await prefork.waitForJob("rss-\(index)", state: "done") }
        try await prefork.eventually("recycled for RSS") {
            prefork.logEvents("worker_recycled") { ($0.string("reason") ?? "").hasPrefix("max_rss_mb") }.count >= 1
        }
    }

    @Test func sighupChangesTheWorkerCountAndReplacesWorkers() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 2])
        defer { prefork.terminateAndReap() }
        let before = Set(try await prefork.waitForIdleWorkers(2))

        try rewriteConfig(prefork, ["workers": 3, "simulate": ["min_ms": 2, "max_ms": 4]])
        prefork.sendSignal(SIGHUP)
        try await prefork.waitForLog(event: "config_reloaded")
        try await prefork.eventually("three workers, none of the old ones") {
            let live = Set((try? prefork.liveWorkerPIDs()) ?? [])
            return live.count == 3 && live.isDisjoint(with: before)
                && (try? prefork.workers().int("target")) == 3
        }
        try prefork.enqueueAccepted(id: "after-reload", payload: "@ok")
        _ = try await prefork.waitForJob("after-reload", state: "done")
    }

    @Test func sighupWithAnInvalidFileKeepsServing() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 2])
        defer { prefork.terminateAndReap() }
        let before = Set(try await prefork.waitForIdleWorkers(2))

        try Data("{\"workers\": \"many\"".utf8).write(to: URL(fileURLWithPath: prefork.configPath))
        prefork.sendSignal(SIGHUP)
        let failure = try await prefork.waitForLog(event: "reload_failed")
        #expect(failure.string("error")?.contains("invalid JSON") == true)

        try rewriteConfig(prefork, ["workers": 2, "bogus_key": 1])
        prefork.sendSignal(SIGHUP)
        try await prefork.eventually("second reload_failed") { prefork.logEvents("reload_failed").count == 2 }
        #expect(prefork.logEvents("reload_failed").last?.string("error")?.contains("bogus_key") == true)

        #expect(Set(try prefork.liveWorkerPIDs()) == before)
        try prefork.enqueueAccepted(id: "still-serving", payload: "@ok")
        _ = try await prefork.waitForJob("still-serving", state: "done")
    }

    @Test func sighupReportsSettingsThatNeedARestart() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        // listen is pinned by the harness's --listen flag, so change the other restart-only setting.
        try rewriteConfig(prefork, ["journal": ["fsync": "none"]])
        prefork.sendSignal(SIGHUP)
        let reloaded = try await prefork.waitForLog(event: "config_reloaded")
        #expect(reloaded["ignored_until_restart"] as? [String] == ["journal.fsync"])
        #expect(try prefork.request("GET", "/healthz").status == 200)
    }
}
