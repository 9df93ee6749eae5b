import Foundation
import Testing

/// The bounded queue: back-pressure with 503 and Retry-After.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct QueueTests {
    @Test(arguments: Backend.allCases) func fullQueueAnswers503WithRetryAfter(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["workers": 1, "queue_size": 2, "job_timeout_ms": 10000]) else { return }
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "busy", payload: "@sleep 2000")
        try await prefork.waitForJob("busy", state: "running")
        try prefork.enqueueAccepted(id: "waiting-1", payload: "@sleep 2000")

        // Whether the running job counts against queue_size is the supervisor's choice; with 2 jobs waiting
        // the queue is full either way.
        var statuses: [Int] = []
        var rejected: HTTPResponse?
        for index in 2...4 {
            let response = try prefork.enqueue(id: "waiting-\(index)", payload: "@sleep 2000")
            statuses.append(response.status)
            if response.status == 503 {
                rejected = response
                break
            }
            #expect(response.status == 202, "waiting-\(index): \(response)")
        }
        let full = try #require(rejected, "no 503 after filling a queue of 2: \(statuses)")
        #expect(statuses.count <= 2, "queue of 2 accepted \(statuses.count) waiting jobs besides the running one")
        let retryAfter = try #require(full.header("Retry-After"), "503 without Retry-After")
        #expect(Int(retryAfter).map { $0 >= 0 } == true, "Retry-After \(retryAfter) is not delay-seconds")
        #expect(try full.json().string("error") != nil)
        #expect(try prefork.request("GET", "/jobs/waiting-\(statuses.count + 1)").status == 404)

        // Identical resubmission of an accepted job is idempotent even when the queue is full.
        #expect(try prefork.enqueue(id: "waiting-1", payload: "@sleep 2000").status == 200)
    }
}
