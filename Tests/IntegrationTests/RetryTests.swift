import Foundation
import Testing

/// Failed attempts, retries with backoff, and final failure.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct RetryTests {
    @Test(arguments: Backend.allCases) func failingJobIsRetriedThenFails(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "fail-3", payload: "@fail", maxRetries: 2)
        let failed = try await prefork.waitForJob("fail-3", state: "failed")
        #expect(failed.int("attempts") == 3)
        #expect(failed.int("max_retries") == 2)
        #expect(failed.string("last_error")?.contains("@fail") == true, "last_error \(failed["last_error"] ?? "nil")")
        #expect(failed.isNull("next_attempt_at"))
        #expect(failed.isNull("result"))

        #expect(prefork.logEvents("job_retry") { $0.string("id") == "fail-3" }.count == 2)
        let final = try await prefork.waitForLog(event: "job_failed") { $0.string("id") == "fail-3" }
        #expect(final.int("attempt") == 3)
    }

    @Test(arguments: Backend.allCases) func noRetriesMeansOneAttempt(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "fail-once", payload: "@fail")
        let failed = try await prefork.waitForJob("fail-once", state: "failed")
        #expect(failed.int("attempts") == 1)
        #expect(prefork.logEvents("job_retry") { $0.string("id") == "fail-once" }.isEmpty)
    }

    @Test(arguments: Backend.allCases) func jobWaitingForRetryIsQueuedWithNextAttemptAt(on backend: Backend) async throws {
        // No jitter: the job waits the whole 10 s, long enough to be seen waiting on a loaded machine.
        guard let prefork = try await PreforkProcess.start(
            backend, config: ["backoff": ["base_ms": 10_000, "max_ms": 10_000, "jitter": 0]])
        else { return }
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "backing-off", payload: "@fail", maxRetries: 1)
        let waiting = try await prefork.waitForJob("backing-off", "queued after its first attempt", timeout: .seconds(9)) {
            $0.string("state") == "queued" && $0.int("attempts") == 1
        }
        let next = try #require(waiting.string("next_attempt_at"), "no next_attempt_at while backing off")
        #expect(next.hasSuffix("Z"))
        #expect(waiting.string("last_error")?.contains("@fail") == true)
        try await prefork.waitForLog(event: "job_retry") { $0.string("id") == "backing-off" }

        // Canceling during backoff ends it for good.
        let canceled = try prefork.request("DELETE", "/jobs/backing-off")
        #expect(canceled.status == 200)
        #expect(try canceled.json().string("state") == "canceled")
    }

    @Test(arguments: Backend.allCases) func failureRateZeroNeverFails(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        let ids = (1...10).map { "plain-\($0)" }
        for id in ids { try prefork.enqueueAccepted(id: id, payload: "hello \(id)") }
        for id in ids {
            let done = try await prefork.waitForJob(id, state: "done")
            #expect(done.int("attempts") == 1)
        }
    }
}
