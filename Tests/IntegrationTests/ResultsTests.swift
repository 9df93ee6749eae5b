import Foundation
import Glibc
import Testing

/// Waiting for a job (long-poll), and everything a job produced: binary-safe results, the truncation flag, each
/// attempt's history with stderr, and the payload in the full record.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ResultsTests {
    // MARK: Long-poll

    @Test(arguments: Backend.allCases) func getWithWaitWakesWhenTheJobIsDone(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "slow", payload: "@sleep 300")
        let started = ContinuousClock.now
        let response = try prefork.request("GET", "/jobs/slow?wait_ms=10000")
        #expect(response.status == 200)
        #expect(try response.json().string("state") == "done")
        // Answered at the transition, not at the deadline.
        #expect(elapsed(since: started) < .seconds(5))
    }

    @Test(arguments: Backend.allCases) func getWithWaitWakesOnFailureAfterRetriesAndOnCancel(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "bad", payload: "@fail", maxRetries: 2)
        let failed = try prefork.request("GET", "/jobs/bad?wait_ms=10000")
        #expect(try failed.json().string("state") == "failed")
        #expect(try failed.json().int("attempts") == 3)

        try prefork.enqueueAccepted(id: "long", payload: "@sleep 30000")
        let connection = try prefork.connect(timeout: .seconds(10))
        try connection.sendRequest("GET", "/jobs/long?wait_ms=20000")
        try await prefork.waitForJob("long", state: "running")
        #expect(try prefork.request("DELETE", "/jobs/long").status == 200)
        let canceled = try connection.readResponse()
        #expect(try canceled.json().string("state") == "canceled")
    }

    @Test(arguments: Backend.allCases) func getWithWaitAnswersTheCurrentRecordAtTheDeadline(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "long", payload: "@sleep 30000")
        try await prefork.waitForJob("long", state: "running")
        let started = ContinuousClock.now
        let response = try prefork.request("GET", "/jobs/long?wait_ms=300")
        #expect(response.status == 200)
        #expect(try response.json().string("state") == "running")
        #expect(elapsed(since: started) >= .milliseconds(300))
    }

    @Test(arguments: Backend.allCases) func waitOutOfRangeIsRefused(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["http": ["max_wait_ms": 1000]]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "a", payload: "@ok")
        for query in ["wait_ms=1001", "wait_ms=-1", "wait_ms=soon"] {
            let response = try prefork.request("GET", "/jobs/a?\(query)")
            #expect(response.status == 400, "\(query): \(response)")
            #expect(response.text.contains("http.max_wait_ms"))
        }
    }

    @Test(arguments: Backend.allCases) func enqueueWithWaitAnswers200ForAQuickJobAnd202ForASlowOne(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }
        let quick = try prefork.request(
            "POST", "/enqueue?wait_ms=5000", body: PreforkProcess.enqueueBody(id: "quick", payload: "@ok"))
        #expect(quick.status == 200)
        #expect(try quick.json().string("state") == "done")
        let slow = try prefork.request(
            "POST", "/enqueue?wait_ms=200", body: PreforkProcess.enqueueBody(id: "slow", payload: "@sleep 5000"))
        #expect(slow.status == 202)
        #expect(slow.header("Location") == "/jobs/slow")
        #expect(["queued", "running"].contains(try slow.json().string("state") ?? ""))
    }

    @Test(arguments: Backend.allCases) func aThousandWaitersAreAnsweredAndHealthStaysFast(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1, "http": ["max_connections": 2000]]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "gate", payload: "@sleep 1500")
        var connections: [HTTPConnection] = []
        for _ in 0..<1000 {
            let connection = try prefork.connect(timeout: .seconds(20))
            try connection.sendRequest("GET", "/jobs/gate?wait_ms=30000")
            connections.append(connection)
        }
        let started = ContinuousClock.now
        #expect(try prefork.request("GET", "/healthz").status == 200)
        #expect(elapsed(since: started) < .seconds(5))
        var states: [String: Int] = [:]
        for connection in connections {
            let response = try connection.readResponse()
            states[try response.json().string("state") ?? "?", default: 0] += 1
        }
        #expect(states == ["done": 1000])
    }

    @Test(arguments: Backend.allCases) func aWaiterWhoseClientHangsUpIsReleased(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "long", payload: "@sleep 30000")
        for _ in 0..<20 {
            let connection = try prefork.connect()
            try connection.sendRequest("GET", "/jobs/long?wait_ms=60000")
            connection.close()
        }
        // The supervisor keeps serving, and holds none of the hung-up connections' descriptors.
        try await prefork.eventually("hung-up waiters' sockets closed") {
            ProcessTable.socketCount(of: prefork.pid) <= 2
        }
        #expect(try prefork.request("GET", "/healthz").status == 200)
    }

    @Test(arguments: Backend.allCases) func drainAnswersEveryWaiter(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1, "shutdown_timeout_ms": 500]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "long", payload: "@sleep 30000")
        try await prefork.waitForJob("long", state: "running")
        let connection = try prefork.connect(timeout: .seconds(10))
        try connection.sendRequest("GET", "/jobs/long?wait_ms=60000")
        try await prefork.eventually("the waiter is held") { true }
        prefork.sendSignal(SIGTERM)
        let response = try connection.readResponse()
        #expect(response.status == 200)
        #expect(try response.json().string("id") == "long")
        _ = try await prefork.waitForExit()
    }

    // MARK: What a job produced

    @Test func binaryOutputComesBackAsBase64AndTextKeepsItsNewline() async throws {
        let command = ["/bin/sh", "-c", "if [ \"$(cat)\" = bin ]; then printf '\\377\\000\\001'; else echo text; fi"]
        let prefork = try await PreforkProcess.start(config: ["handler": "exec", "exec": ["command": command]])
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "bin", payload: "bin")
        try prefork.enqueueAccepted(id: "text", payload: "x")
        let binary = try await prefork.waitForJob("bin", state: "done")
        #expect(binary["result"] is NSNull)
        #expect(binary.string("result_base64") == "/wAB")
        let text = try await prefork.waitForJob("text", state: "done")
        #expect(text.string("result") == "text\n")
        #expect(text["result_base64"] == nil)
    }

    @Test func outputOverTheLimitIsCutAndFlagged() async throws {
        let command = ["/bin/sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x"]
        let prefork = try await PreforkProcess.start(
            config: ["handler": "exec", "exec": ["command": command], "max_result_bytes": 1000])
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "big", payload: "")
        let done = try await prefork.waitForJob("big", state: "done")
        #expect(done.bool("result_truncated") == true)
        #expect(done.string("result")?.utf8.count == 1000)
    }

    @Test func standardErrorOfASuccessfulExecJobIsInItsHistory() async throws {
        let command = ["/bin/sh", "-c", "echo warning: almost >&2; echo fine"]
        let prefork = try await PreforkProcess.start(config: ["handler": "exec", "exec": ["command": command]])
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "warn", payload: "")
        let done = try await prefork.waitForJob("warn", state: "done")
        let history = try #require(done.objects("history"))
        #expect(history.count == 1)
        #expect(history.first?.string("outcome") == "ok")
        #expect(history.first?.string("stderr") == "warning: almost\n")
    }

    @Test func historyListsEveryAttemptOfAJobThatCrashedTimedOutThenSucceeded() async throws {
        // Attempt 1 crashes, 2 sleeps past the timeout, 3 succeeds: the attempt number comes from the worker.
        let script = "case $PREFORK_ATTEMPT in 1) kill -KILL $PPID;; 2) sleep 10;; *) echo ok;; esac"
        let prefork = try await PreforkProcess.start(
            config: ["handler": "exec", "exec": ["command": ["/bin/sh", "-c", script]], "job_timeout_ms": 500])
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "bumpy", payload: "", maxRetries: 3)
        let done = try await prefork.waitForJob("bumpy", state: "done", timeout: .seconds(15))
        let history = try #require(done.objects("history"))
        #expect(history.map { $0.string("outcome") ?? "?" } == ["crash", "timeout", "ok"])
        #expect(history.map { $0.int("attempt") ?? 0 } == [1, 2, 3])
        for entry in history {
            #expect(entry.int("worker_pid") != nil)
            #expect(entry.string("started_at") != nil && entry.string("finished_at") != nil)
        }
        #expect(history[0].string("error")?.contains("SIGKILL") == true)
    }

    @Test(arguments: Backend.allCases) func theFullRecordHasThePayloadListsDoNot(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }
        let accepted = try prefork.enqueueAccepted(id: "p", payload: "@ok")
        #expect(accepted["payload"] == nil)
        let record = try prefork.job("p")
        #expect(record.string("payload") == "@ok")
        let binary = try prefork.request(
            "POST", "/enqueue", body: #"{"id": "b", "payload_base64": "/wA="}"#)
        #expect(binary.status == 202)
        let stored = try prefork.job("b")
        #expect(stored["payload"] is NSNull)
        #expect(stored.string("payload_base64") == "/wA=")
        let list = try prefork.request("GET", "/jobs").json()
        for job in list.objects("jobs") ?? [] { #expect(job["payload"] == nil) }
    }

    @Test(arguments: Backend.allCases) func resultsHistoryAndPayloadSurviveARestart(on backend: Backend) async throws {
        let command = ["/bin/sh", "-c", "echo note >&2; printf '\\377'"]
        guard let prefork = try await PreforkProcess.start(backend, config: ["handler": "exec", "exec": ["command": command]])
        else { return }
        defer { prefork.terminateAndReap() }
        #expect(try prefork.request("POST", "/enqueue", body: #"{"id": "r", "payload_base64": "/wE="}"#).status == 202)
        let before = try await prefork.waitForJob("r", state: "done")
        let again = try await prefork.restart()  // SIGKILL, then a new supervisor on the same data
        defer { again.terminateAndReap() }
        try await again.waitUntilReady(backend)
        let after = try again.job("r")
        #expect(after.string("result_base64") == "/w==")
        #expect(after.string("payload_base64") == "/wE=")
        #expect(after.objects("history")?.first?.string("stderr") == "note\n")
        #expect(after.objects("history")?.count == before.objects("history")?.count)
    }
}
