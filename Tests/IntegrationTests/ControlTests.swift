import Foundation
import Glibc
import Testing

/// Time and control: scheduled jobs, per-job timeouts, priorities, batch enqueue, retry, pause, schedules and
/// paging through the job list; all of it journaled.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ControlTests {
    private func post(_ prefork: PreforkProcess, _ path: String, _ object: Any) throws -> HTTPResponse {
        let body = try JSONSerialization.data(withJSONObject: object)
        return try prefork.request("POST", path, body: String(decoding: body, as: UTF8.self))
    }

    /// Milliseconds between two RFC 3339 times of one record (server-side clock: no test-side scheduling noise).
    private func milliseconds(from start: String?, to end: String?) throws -> Double {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let a = try #require(start.flatMap(formatter.date(from:)))
        let b = try #require(end.flatMap(formatter.date(from:)))
        return b.timeIntervalSince(a) * 1000
    }

    @Test(arguments: Backend.allCases) func aDelayedJobRunsNoEarlierThanItsTimeAndSoonAfter(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }
        let accepted = try post(prefork, "/enqueue", ["id": "later", "payload": "@ok", "delay_ms": 200])
        #expect(accepted.status == 202)
        let record = try accepted.json()
        #expect(record.string("state") == "queued")
        #expect(record.string("next_attempt_at") != nil)
        let done = try await prefork.waitForJob("later", state: "done")
        let started = done.objects("history")?.first?.string("started_at")
        let waited = try milliseconds(from: done.string("created_at"), to: started)
        #expect(waited >= 199.5, "started \(waited) ms after acceptance")  // whole milliseconds, read as doubles
        // Soon after: woken at its time, not by the next 1 s poll; the margin is for a loaded machine.
        #expect(waited < 500, "started \(waited) ms after acceptance")
    }

    @Test(arguments: Backend.allCases) func runAtInThePastRunsAtOnceAndBadTimesAreRefused(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }
        #expect(try post(prefork, "/enqueue", ["id": "past", "payload": "@ok", "run_at": "2001-01-01T00:00:00+02:00"]).status == 202)
        try await prefork.waitForJob("past", state: "done")
        let bad = try post(prefork, "/enqueue", ["id": "x", "payload": "@ok", "run_at": "tomorrow"])
        #expect(bad.status == 400)
        #expect(bad.text.contains("run_at"))
        let both = try post(prefork, "/enqueue", ["id": "y", "payload": "@ok", "run_at": "2030-01-01T00:00:00Z", "delay_ms": 5])
        #expect(both.status == 400)
        #expect(try post(prefork, "/enqueue", ["id": "z", "payload": "@ok", "delay_ms": 31_536_000_001]).status == 400)
    }

    @Test(arguments: Backend.allCases) func perJobTimeoutOverridesTheGlobalOneAndZeroMeansNone(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["job_timeout_ms": 0]) else { return }
        defer { prefork.terminateAndReap() }
        #expect(try post(prefork, "/enqueue", ["id": "short", "payload": "@sleep 5000", "timeout_ms": 200]).status == 202)
        #expect(try post(prefork, "/enqueue", ["id": "unbounded", "payload": "@sleep 700"]).status == 202)
        let failed = try await prefork.waitForJob("short", state: "failed")
        #expect(failed.objects("history")?.first?.string("outcome") == "timeout")
        #expect(failed.int("timeout_ms") == 200)
        try await prefork.waitForJob("unbounded", state: "done")
        #expect(try post(prefork, "/enqueue", ["id": "bad", "payload": "@ok", "timeout_ms": 0]).status == 400)
    }

    @Test(arguments: Backend.allCases) func higherPrioritiesRunFirstFIFOWithinAPriority(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(1)
        #expect(try prefork.request("POST", "/pause").status == 200)
        let jobs: [(String, Int)] = [("low-1", 0), ("high-1", 9), ("mid-1", 5), ("low-2", 0), ("high-2", 9), ("mid-2", 5)]
        // Each takes a few milliseconds, so their start times (millisecond resolution) cannot tie.
        for (id, priority) in jobs {
            #expect(try post(prefork, "/enqueue", ["id": id, "payload": "@sleep 5", "priority": priority]).status == 202)
        }
        #expect(try prefork.request("POST", "/resume").status == 200)
        for (id, _) in jobs { try await prefork.waitForJob(id, state: "done") }
        let order = try jobs.map { (id, _) -> (String, String) in
            (id, try prefork.job(id).objects("history")?.first?.string("started_at") ?? "")
        }.sorted { $0.1 < $1.1 }.map(\.0)
        #expect(order == ["high-1", "high-2", "mid-1", "mid-2", "low-1", "low-2"])
        #expect(try post(prefork, "/enqueue", ["id": "p", "payload": "@ok", "priority": 10]).status == 400)
    }

    @Test(arguments: Backend.allCases) func aBatchGetsPerItemStatusesAndOnlyAcceptedJobsSurviveASIGKILL(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1, "queue_size": 3]) else { return }
        defer { prefork.terminateAndReap() }
        #expect(try prefork.request("POST", "/pause").status == 200)
        try prefork.enqueueAccepted(id: "existing", payload: "@ok")
        let items: [[String: Any]] = [
            ["id": "a", "payload": "@ok"],
            ["id": "", "payload": "@ok"],
            ["id": "existing", "payload": "@ok"],
            ["id": "existing", "payload": "other"],
            ["id": "b", "payload": "@ok"],
            ["id": "c", "payload": "@ok"],
            ["payload": "@ok"],
        ]
        let response = try post(prefork, "/enqueue", ["jobs": items])
        #expect(response.status == 200)
        let results = try #require(try response.json().objects("results"))
        #expect(results.map { $0.int("status") ?? 0 } == [202, 400, 200, 409, 202, 503, 400])
        #expect(results.map { $0.int("index") ?? -1 } == Array(0..<7))
        #expect(results[1].string("error")?.contains("id") == true)
        #expect(results[0].object("job")?.string("state") == "queued")
        let again = try await prefork.restart()  // SIGKILL, then a new supervisor on the same data
        defer { again.terminateAndReap() }
        try await again.waitUntilReady(backend)
        for id in ["a", "b", "existing"] { #expect(try again.request("GET", "/jobs/\(id)").status == 200) }
        #expect(try again.request("GET", "/jobs/c").status == 404)
        #expect(try post(again, "/enqueue", ["jobs": []]).status == 400)
    }

    @Test(arguments: Backend.allCases) func retryRunsAFailedJobAgainWithAFreshBudget(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "f", payload: "@fail", maxRetries: 1)
        try await prefork.waitForJob("f", state: "failed")
        #expect(try prefork.request("POST", "/jobs/f/retry").status == 200)
        let again = try await prefork.waitForJob("f", state: "failed")
        #expect(again.int("attempts") == 4)
        #expect(again.objects("history")?.count == 4)
        try prefork.enqueueAccepted(id: "ok", payload: "@ok")
        try await prefork.waitForJob("ok", state: "done")
        let conflict = try prefork.request("POST", "/jobs/ok/retry")
        #expect(conflict.status == 409)
        #expect(try prefork.request("POST", "/jobs/nope/retry").status == 404)
    }

    @Test(arguments: Backend.allCases) func bulkRetryAndCancelByState(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }
        for index in 0..<3 { try prefork.enqueueAccepted(id: "f\(index)", payload: "@fail") }
        for index in 0..<3 { try await prefork.waitForJob("f\(index)", state: "failed") }
        #expect(try prefork.request("POST", "/pause").status == 200)
        let retried = try prefork.request("POST", "/jobs/retry?state=failed&limit=2")
        #expect(try retried.json().int("count") == 2)
        for index in 0..<5 { try prefork.enqueueAccepted(id: "q\(index)", payload: "@ok") }
        let canceled = try prefork.request("POST", "/jobs/cancel?state=queued")
        #expect(try canceled.json().int("count") == 7)
        #expect(try prefork.request("POST", "/jobs/cancel?state=done").status == 400)
    }

    @Test(arguments: Backend.allCases) func pauseStopsDispatchKeepsAcceptingAndSurvivesASIGKILL(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(1)
        let paused = try prefork.request("POST", "/pause")
        #expect(try paused.json().bool("paused") == true)
        try prefork.enqueueAccepted(id: "held", payload: "@ok")
        #expect(try prefork.request("GET", "/healthz").json().bool("paused") == true)
        #expect(try prefork.request("GET", "/metrics").text.contains("prefork_paused 1"))
        try await Task.sleep(for: .milliseconds(200))  // nothing may start meanwhile
        #expect(try prefork.job("held").string("state") == "queued")
        let again = try await prefork.restart()  // SIGKILL, then a new supervisor on the same data
        defer { again.terminateAndReap() }
        try await again.waitUntilReady(backend)
        #expect(try again.request("GET", "/healthz").json().bool("paused") == true)
        #expect(try again.job("held").string("state") == "queued")
        #expect(try again.request("POST", "/resume").status == 200)
        try await again.waitForJob("held", state: "done")
    }

    @Test(arguments: Backend.allCases) func aScheduledJobSurvivesASIGKILLAndRunsAtItsTime(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }
        let accepted = ContinuousClock.now
        #expect(try post(prefork, "/enqueue", ["id": "later", "payload": "@ok", "delay_ms": 10_000]).status == 202)
        prefork.keepDirectoryOnTeardown()
        prefork.sendSignal(SIGKILL)
        _ = try await prefork.waitForExit()
        // Killed before its time: it can only have run in the restarted supervisor.
        try #require(elapsed(since: accepted) < .seconds(10), "the machine was too slow to kill before the job's time")
        let again = try await PreforkProcess.start(in: prefork.directory, configPath: prefork.configPath)
        defer { again.terminateAndReap() }
        try await again.waitUntilReady(backend)
        let done = try await again.waitForJob("later", state: "done", timeout: .seconds(20))
        let waited = try milliseconds(
            from: done.string("created_at"), to: done.objects("history")?.first?.string("started_at"))
        #expect(waited >= 10_000)
        #expect(done.int("attempts") == 1)
    }

    @Test(arguments: Backend.allCases) func listingPagesThroughEveryJobWithCursorsAndFilters(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["queue_size": 1000]) else { return }
        defer { prefork.terminateAndReap() }
        #expect(try prefork.request("POST", "/pause").status == 200)
        var items: [[String: Any]] = []
        for index in 0..<250 { items.append(["id": "j\(index)", "payload": "@ok", "priority": index % 3]) }
        #expect(try post(prefork, "/enqueue", ["jobs": items]).status == 200)
        var seen: [String] = []
        var cursor: String?
        repeat {
            let query = "/jobs?limit=100" + (cursor.map { "&cursor=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" } ?? "")
            let page = try prefork.request("GET", query).json()
            seen += (page.objects("jobs") ?? []).compactMap { $0.string("id") }
            cursor = page.string("next_cursor")
        } while cursor != nil
        #expect(seen.count == 250)
        #expect(seen.first == "j249")
        #expect(Set(seen).count == 250)
        let twos = try prefork.request("GET", "/jobs?priority=2&limit=1000").json().objects("jobs") ?? []
        #expect(twos.count == 83)
        #expect(twos.allSatisfy { $0.int("priority") == 2 })
        let none = try prefork.request("GET", "/jobs?created_before=2001-01-01T00:00:00Z").json().objects("jobs") ?? []
        #expect(none.isEmpty)
        #expect(try prefork.request("GET", "/jobs?cursor=garbage").status == 400)
    }

    @Test func schedulesAreListedAndRejectedWhenInvalid() async throws {
        let schedules: [[String: Any]] = [
            ["name": "nightly", "cron": "0 3 * * *", "payload": "@ok", "priority": 5],
            ["name": "minutely", "cron": "* * * * *", "payload": "@ok"],
        ]
        let prefork = try await PreforkProcess.start(config: ["schedules": schedules])
        defer { prefork.terminateAndReap() }
        let listed = try prefork.request("GET", "/schedules").json().objects("schedules") ?? []
        #expect(listed.map { $0.string("name") ?? "" } == ["nightly", "minutely"])
        #expect(listed[0].string("next_run_at")?.hasSuffix("T03:00:00.000Z") == true)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let bad = try directory.writeJSON(["schedules": [["name": "x", "cron": "61 * * * *"]]], to: "bad.json")
        let run = try await CommandRun.supervisor(["--config", bad, "--check-config"])
        #expect(run.status == .exited(2))
        #expect(run.stderr.contains("schedules[0].cron"))
        let good = try directory.writeJSON(["schedules": schedules], to: "good.json")
        let check = try await CommandRun.supervisor(["--config", good, "--check-config"])
        #expect(check.status == .exited(0))
        #expect(check.stdout.contains("nightly"))
    }
}
