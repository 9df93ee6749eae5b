import Foundation
import Glibc
import Testing

/// Several supervisors sharing one queue in PostgreSQL (`queue.backend: "postgres"`): the same API and records,
/// shared work, rescue of a dead node's jobs, fencing of a late result, cancel across nodes, and 503s while the
/// database is away. Needs PREFORK_TEST_POSTGRES_URL (.ci/run starts a throwaway cluster).
@Suite(.timeLimit(.minutes(3)))
struct PostgresBackendTests {
    /// A supervisor on `url` as node `node`.
    private func node(_ node: String, url: String, config: [String: Any] = [:]) async throws -> PreforkProcess {
        try await PreforkProcess.start(
            config: deepMerge(
                [
                    "queue": ["backend": "postgres"], "job_timeout_ms": 120_000,
                    "postgres": ["url": url, "node_id": node, "lease_ms": 4000, "connect_timeout_ms": 5000],
                ], config))
    }

    /// Waits until the node is connected and registered.
    private func waitReady(_ prefork: PreforkProcess) async throws {
        try await prefork.eventually("node connected to PostgreSQL", timeout: .seconds(20)) {
            try prefork.request("GET", "/readyz").status == 200
        }
    }

    private func schema() async throws -> String? {
        guard Component.require(PostgresCluster.sharedURL != nil, "PostgreSQL (PREFORK_TEST_POSTGRES_URL)") else {
            return nil
        }
        return try await PostgresCluster.freshSchema()
    }

    @Test func theAPIWorksTheSameOnPostgres() async throws {
        guard let url = try await schema() else { return }
        let prefork = try await node("solo", url: url, config: ["workers": 1])
        defer { prefork.terminateAndReap() }
        try await waitReady(prefork)
        let accepted = try prefork.enqueue(id: "a", payload: "@ok", maxRetries: 1)
        #expect(accepted.status == 202)
        #expect(accepted.header("Location") == "/jobs/a")
        #expect(try prefork.enqueue(id: "a", payload: "@ok", maxRetries: 1).status == 200)
        #expect(try prefork.enqueue(id: "a", payload: "other").status == 409)
        let done = try await prefork.waitForJob("a", state: "done", timeout: .seconds(10))
        #expect(done.objects("history")?.first?.string("outcome") == "ok")
        #expect(done.string("payload") == "@ok")
        #expect(try prefork.request("GET", "/jobs/missing").status == 404)
        // PostgreSQL text holds no NUL: such an id is no job's, and asking for it costs the connection nothing.
        #expect(try prefork.request("GET", "/jobs/a%00b").status == 404)
        #expect(try prefork.request("DELETE", "/jobs/a%00b").status == 404)
        #expect(try prefork.request("POST", "/jobs/a%00b/retry").status == 404)
        #expect(prefork.logEvents("postgres_unavailable").isEmpty)

        try prefork.enqueueAccepted(id: "f", payload: "@fail", maxRetries: 1)
        let failed = try prefork.request("GET", "/jobs/f?wait_ms=10000").json()
        #expect(failed.string("state") == "failed")
        #expect(failed.int("attempts") == 2)
        #expect(try prefork.request("POST", "/jobs/f/retry").status == 200)
        #expect(try prefork.request("POST", "/jobs/a/retry").status == 409)

        let quick = try prefork.request(
            "POST", "/enqueue?wait_ms=10000", body: PreforkProcess.enqueueBody(id: "w", payload: "@ok"))
        #expect(quick.status == 200)
        #expect(try quick.json().string("state") == "done")

        #expect(try prefork.request("POST", "/pause").status == 200)
        try prefork.enqueueAccepted(id: "held", payload: "@ok")
        let canceled = try prefork.request("DELETE", "/jobs/held")
        #expect(try canceled.json().string("state") == "canceled")
        #expect(try prefork.request("DELETE", "/jobs/held").status == 409)
        #expect(try prefork.request("POST", "/resume").status == 200)

        let batch = try prefork.request(
            "POST", "/enqueue",
            body: #"{"jobs": [{"id": "b1", "payload": "@ok"}, {"id": "a", "payload": "@ok", "max_retries": 1}, {"id": ""}, {"id": "b2", "payload": "@ok", "priority": 9}]}"#)
        let results = try batch.json().objects("results") ?? []
        #expect(results.map { $0.int("status") ?? 0 } == [202, 200, 400, 202])

        var seen: [String] = []
        var cursor: String?
        repeat {
            let page = try prefork.request(
                "GET", "/jobs?limit=2" + (cursor.map { "&cursor=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" } ?? "")
            ).json()
            seen += (page.objects("jobs") ?? []).compactMap { $0.string("id") }
            cursor = page.string("next_cursor")
        } while cursor != nil
        #expect(Set(seen) == ["a", "f", "w", "held", "b1", "b2"])
        #expect(seen.first == "b2")
    }

    @Test func twoNodesShareTheWorkAndSeeEveryJob() async throws {
        guard let url = try await schema() else { return }
        let first = try await node("first", url: url, config: ["workers": 2])
        defer { first.terminateAndReap() }
        let second = try await node("second", url: url, config: ["workers": 2])
        defer { second.terminateAndReap() }
        try await waitReady(first)
        try await waitReady(second)
        var items: [String] = []
        for index in 0..<40 { items.append(#"{"id": "j\#(index)", "payload": "@sleep 30"}"#) }
        let response = try first.request("POST", "/enqueue", body: #"{"jobs": [\#(items.joined(separator: ","))]}"#)
        #expect(response.status == 200)
        for index in 0..<40 { try await second.waitForJob("j\(index)", state: "done", timeout: .seconds(30)) }
        let ranOnFirst = first.logEvents("job_done").count
        let ranOnSecond = second.logEvents("job_done").count
        #expect(ranOnFirst + ranOnSecond == 40)
        #expect(ranOnFirst > 0 && ranOnSecond > 0, "first ran \(ranOnFirst), second \(ranOnSecond)")
    }

    @Test func anErrorWithANULByteIsStoredAndDoesNotHoldUpOtherOutcomes() async throws {
        // PostgreSQL text and jsonb hold no NUL: an attempt's error quoting one must still finish its job, and
        // the outcomes written in the same batch with it.
        guard let url = try await schema() else { return }
        let prefork = try await node("nul", url: url, config: ["workers": 2])
        defer { prefork.terminateAndReap() }
        try await waitReady(prefork)
        try prefork.enqueueAccepted(id: "nul", payload: "@x\u{0}y")
        for index in 0..<20 { try prefork.enqueueAccepted(id: "ok-\(index)", payload: "@ok") }
        let failed = try prefork.request("GET", "/jobs/nul?wait_ms=10000").json()
        #expect(failed.string("state") == "failed")
        #expect(failed.string("last_error") == "unknown directive @x\u{FFFD}y")
        #expect(failed.objects("history")?.first?.string("error") == "unknown directive @x\u{FFFD}y")
        for index in 0..<20 { try await prefork.waitForJob("ok-\(index)", state: "done", timeout: .seconds(10)) }
        #expect(prefork.logEvents("postgres_outcomes_failed").isEmpty)
    }

    @Test func anOutcomeTheDatabaseRefusesIsWrittenWithoutItsResultAndHoldsUpNoOther() async throws {
        guard let url = try await schema() else { return }
        let prefork = try await node("refused", url: url, config: ["workers": 2])
        defer { prefork.terminateAndReap() }
        try await waitReady(prefork)
        // A trigger refuses the result of job "poison", as the server would refuse one over its size limit.
        _ = try await PostgresCluster.query(
            url,
            """
            CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'poison result refused'; END $$;
            CREATE TRIGGER refuse_poison BEFORE UPDATE ON prefork_jobs FOR EACH ROW
                WHEN (NEW.id = 'poison' AND NEW.result IS NOT NULL) EXECUTE FUNCTION refuse_poison();
            """)
        try prefork.enqueueAccepted(id: "poison", payload: "@ok")
        for index in 0..<20 { try prefork.enqueueAccepted(id: "fine-\(index)", payload: "@ok") }
        let poison = try prefork.request("GET", "/jobs/poison?wait_ms=10000").json()
        #expect(poison.string("state") == "done")
        #expect(poison.isNull("result"))
        #expect(poison.bool("result_truncated") == true)
        #expect(poison.string("last_error")?.contains("poison result refused") == true, "\(poison)")
        for index in 0..<20 {
            let fine = try await prefork.waitForJob("fine-\(index)", state: "done", timeout: .seconds(10))
            #expect(fine.string("result") == "ok")
        }
        let failures = prefork.logEvents("postgres_outcomes_failed")
        #expect(failures.contains { $0.string("then") == "written without result and error" }, "\(failures)")
    }

    @Test func prefetchedJobsWaitClaimedAndGoBackUncountedWhenTheNodeStops() async throws {
        guard let url = try await schema() else { return }
        let prefork = try await node(
            "prefetch", url: url, config: ["workers": 1, "shutdown_timeout_ms": 300, "postgres": ["prefetch": 4]])
        defer { prefork.terminateAndReap() }
        try await waitReady(prefork)
        // In one request: one insert, then one claim for the idle worker and the four ahead.
        let jobs = (0..<6).map { #"{"id": "p\#($0)", "payload": "@sleep 60000"}"# }.joined(separator: ",")
        #expect(try prefork.request("POST", "/enqueue", body: #"{"jobs": [\#(jobs)]}"#).status == 200)
        // One worker: p0 runs, p1-p4 are claimed ahead (running, their attempt counted), p5 waits in the table.
        try await prefork.eventually("p0 running and four more claimed ahead", timeout: .seconds(10)) {
            let running = try prefork.request("GET", "/jobs?state=running").json().objects("jobs") ?? []
            return Set(running.compactMap { $0.string("id") }) == ["p0", "p1", "p2", "p3", "p4"]
        }
        #expect(try prefork.job("p5").string("state") == "queued")
        try await prefork.eventually("p0 in the worker", timeout: .seconds(10)) {
            try prefork.workerSlots().first?.string("job") == "p0"
        }
        // A job claimed ahead and canceled never starts.
        #expect(try prefork.request("DELETE", "/jobs/p2").status == 200)
        prefork.sendSignal(SIGTERM)
        #expect(try await prefork.waitForExit() == .exited(0))
        // Stopping gave back what no worker started, attempt uncounted; p0 was interrupted (counted).
        let states = try await PostgresCluster.query(
            url, "SELECT string_agg(id || ':' || state || ':' || attempts || ':' || jsonb_array_length(history), ' ' ORDER BY id) FROM prefork_jobs")
        #expect(states == "p0:queued:1:1 p1:queued:0:0 p2:canceled:1:0 p3:queued:0:0 p4:queued:0:0 p5:queued:0:0")
        let released = try #require(prefork.logEvents("postgres_claims_released").first)
        #expect(released.string("reason") == "draining")
        #expect(released.int("jobs") == 3)
    }

    @Test func aKilledNodesJobIsRescuedAndItsAttemptCountedOnce() async throws {
        guard let url = try await schema() else { return }
        let doomed = try await node("doomed", url: url, config: ["workers": 1])
        defer { doomed.terminateAndReap() }
        try await waitReady(doomed)
        try doomed.enqueueAccepted(id: "r", payload: "@sleep 60000")
        try await doomed.waitForJob("r", state: "running", timeout: .seconds(10))
        doomed.sendSignal(SIGKILL)
        _ = try await doomed.waitForExit()
        let killedAt = ContinuousClock.now
        let rescuer = try await node("rescuer", url: url, config: ["workers": 1])
        defer { rescuer.terminateAndReap() }
        try await waitReady(rescuer)
        let running = try await rescuer.waitForJob("r", "rescued and running again", timeout: .seconds(30)) {
            $0.int("attempts") == 2 && $0.string("state") == "running"
        }
        // Lease 4 s, renewals every 4/3 s: rescued within the lease plus a margin.
        #expect(elapsed(since: killedAt) < .seconds(15))
        let history = running.objects("history") ?? []
        #expect(history.first?.string("outcome") == "interrupted")
        #expect(history.first?.string("error") == "node doomed lost during attempt 1")
        #expect(running.string("last_error") == "node doomed lost during attempt 1")
        let cancel = try rescuer.request("DELETE", "/jobs/r")
        #expect(cancel.status == 200)
    }

    @Test func aLateResultFromAFencedNodeIsDropped() async throws {
        guard let url = try await schema() else { return }
        let slow = try await node("slow", url: url, config: ["workers": 1, "job_timeout_ms": 20_000])
        defer { slow.terminateAndReap() }
        try await waitReady(slow)
        try slow.enqueueAccepted(id: "late", payload: "@sleep 6000")
        try await slow.waitForJob("late", state: "running", timeout: .seconds(10))
        // The supervisor stops (its worker goes on): its lease lapses and another node takes the job over.
        slow.sendSignal(SIGSTOP)
        let other = try await node("other", url: url, config: ["workers": 1, "job_timeout_ms": 20_000])
        defer { other.terminateAndReap() }
        try await waitReady(other)
        try await other.waitForJob("late", "taken over", timeout: .seconds(30)) { $0.int("attempts") == 2 }
        slow.sendSignal(SIGCONT)
        // The stopped node's worker finished attempt 1 meanwhile; its result must not land.
        try await slow.waitForLog(event: "postgres_result_fenced", timeout: .seconds(20))
        let record = try await other.waitForJob("late", state: "done", timeout: .seconds(30))
        #expect(record.int("attempts") == 2)
        #expect(record.objects("history")?.map { $0.string("outcome") ?? "" } == ["interrupted", "ok"])
        #expect(try slow.request("GET", "/metrics").text.contains("prefork_postgres_fenced_total 1"))
    }

    @Test func cancelReachesAJobRunningOnAnotherNode() async throws {
        guard let url = try await schema() else { return }
        let runner = try await node("runner", url: url, config: ["workers": 1])
        defer { runner.terminateAndReap() }
        try await waitReady(runner)
        try runner.enqueueAccepted(id: "c", payload: "@sleep 60000")
        try await runner.waitForJob("c", state: "running", timeout: .seconds(10))
        let worker = try await runner.waitForWorker(runningJob: "c")
        let other = try await node("canceler", url: url, config: ["workers": 1, "simulate": ["min_ms": 1]])
        defer { other.terminateAndReap() }
        try await waitReady(other)
        let canceled = try other.request("DELETE", "/jobs/c")
        #expect(try canceled.json().string("state") == "canceled")
        try await runner.eventually("the runner's worker is killed", timeout: .seconds(10)) {
            !ProcessTable.isLiveWorker(worker)
        }
        try await runner.waitForLog(event: "job_canceled")
    }

    @Test func idempotentResubmitAndConflictAcrossNodes() async throws {
        guard let url = try await schema() else { return }
        let first = try await node("one", url: url)
        defer { first.terminateAndReap() }
        let second = try await node("two", url: url)
        defer { second.terminateAndReap() }
        try await waitReady(first)
        try await waitReady(second)
        #expect(try first.enqueue(id: "x", payload: "@ok", maxRetries: 2).status == 202)
        #expect(try second.enqueue(id: "x", payload: "@ok", maxRetries: 2).status == 200)
        #expect(try second.enqueue(id: "x", payload: "@ok", maxRetries: 3).status == 409)
        try await second.waitForJob("x", state: "done", timeout: .seconds(10))
    }

    @Test func aDatabaseThatGoesAwayGives503sAndLosesNothingAcknowledged() async throws {
        guard Component.require(PostgresCluster.sharedURL != nil, "PostgreSQL (PREFORK_TEST_POSTGRES_URL)") else {
            return
        }
        let cluster = try await PostgresCluster.Private.start()
        defer { Task { await cluster.stop() } }
        let prefork = try await node("lonely", url: cluster.url, config: ["workers": 2])
        defer { prefork.terminateAndReap() }
        try await waitReady(prefork)
        var acknowledged: [String] = []
        for index in 0..<20 {
            if try prefork.enqueue(id: "before-\(index)", payload: "@sleep 200").status == 202 {
                acknowledged.append("before-\(index)")
            }
        }
        try await cluster.pgctl(["stop", "-m", "immediate"])
        try await prefork.eventually("/readyz is 503", timeout: .seconds(20)) {
            try prefork.request("GET", "/readyz").status == 503
        }
        let refused = try prefork.enqueue(id: "during", payload: "@ok")
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") != nil)
        #expect(try prefork.request("GET", "/jobs/before-0").status == 503)
        try await cluster.pgctl(["start", "-l", cluster.directory + "/server.log"])
        try await waitReady(prefork)
        for id in acknowledged { try await prefork.waitForJob(id, state: "done", timeout: .seconds(30)) }
        #expect(try prefork.request("GET", "/jobs/during").status == 404)
        #expect(try prefork.request("GET", "/metrics").text.contains("prefork_postgres_ready 1"))
    }

    @Test func callbacksAreDeliveredAndTheirStateIsSharedAcrossNodes() async throws {
        guard let url = try await schema() else { return }
        let receiver = try CallbackReceiver(statuses: [500])
        defer { receiver.stop() }
        let callbacks: [String: Any] = ["callbacks": ["allowed_hosts": ["127.0.0.1"]]]
        let first = try await node("cb1", url: url, config: callbacks)
        defer { first.terminateAndReap() }
        let second = try await node("cb2", url: url, config: callbacks)
        defer { second.terminateAndReap() }
        try await waitReady(first)
        try await waitReady(second)
        let body = #"{"id": "cb", "payload": "@ok", "callback_url": "http://127.0.0.1:\#(receiver.port)/hook"}"#
        #expect(try first.request("POST", "/enqueue", body: body).status == 202)
        let record = try await second.waitForJob("cb", "callback delivered", timeout: .seconds(20)) {
            $0.object("callback")?.string("state") == "delivered"
        }
        #expect(record.object("callback")?.int("attempts") == 2)
        #expect(receiver.requests.count == 2)
        #expect(receiver.requests.last?.json.string("state") == "done")
    }

    @Test func withoutLibpqTheNodeExitsNamingIt() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.writeJSON(
            ["queue": ["backend": "postgres"], "postgres": ["url": "postgresql:///x"], "data_dir": directory.path],
            to: "c.json")
        let run = try await CommandRun.supervisor(
            ["--config", path], environment: ["PREFORK_LIBPQ": "libpq-missing-for-this-test.so.5"])
        #expect(run.status == .exited(2))
        #expect(run.stderr.contains("cannot load libpq-missing-for-this-test.so.5"))
        #expect(run.stderr.contains("(install libpq5"))
    }
}
