import Foundation
import Glibc
import Testing

/// `GET /metrics`: the exposition parses, and counters move as jobs run, crash and retry.
@Suite(.timeLimit(.minutes(1)))
struct MetricsTests {
    /// One sample: metric name, labels, value.
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// Parses the text exposition strictly enough to catch a malformed line: every non-comment line is
    /// `name{label="value",...} number`, and every sample's family was declared by `# TYPE`.
    static func parse(_ text: String) throws -> [Sample] {
        var types: [String: String] = [:]
        var samples: [Sample] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                try #require(parts.count == 4, "bad TYPE line: \(line)")
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            let valueStart = try #require(line.lastIndex(of: " "), "no value: \(line)")
            let value = try #require(Double(line[line.index(after: valueStart)...]), "bad value: \(line)")
            var head = line[..<valueStart]
            var labels: [String: String] = [:]
            if let open = head.firstIndex(of: "{") {
                try #require(head.last == "}", "unterminated labels: \(line)")
                let body = head[head.index(after: open)..<head.index(before: head.endIndex)]
                for pair in body.split(separator: ",") {
                    let equals = try #require(pair.firstIndex(of: "="), "bad label: \(line)")
                    let quoted = pair[pair.index(after: equals)...]
                    try #require(quoted.hasPrefix("\"") && quoted.hasSuffix("\""), "unquoted label: \(line)")
                    labels[String(pair[..<equals])] = String(quoted.dropFirst().dropLast())
                }
                head = head[..<open]
            }
            let name = String(head)
            let family = ["_bucket", "_sum", "_count"].reduce(name) { family, suffix in
                family.hasSuffix(suffix) && types[family] == nil ? String(family.dropLast(suffix.count)) : family
            }
            try #require(types[family] != nil, "sample \(name) has no # TYPE")
            samples.append(Sample(name: name, labels: labels, value: value))
        }
        return samples
    }

    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    func scrape(_ prefork: PreforkProcess) throws -> [Sample] {
        let response = try prefork.request("GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        return try Self.parse(response.text)
    }

    @Test func countersMoveAsJobsRunCrashAndRetry() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        _ = try await prefork.waitForIdleWorkers(2)
        let before = try scrape(prefork)
        #expect(Self.value(before, "prefork_jobs_accepted_total") == 0)
        #expect(Self.value(before, "prefork_workers_live") == 2)

        try prefork.enqueueAccepted(id: "m-ok", payload: "@ok")
        try prefork.enqueueAccepted(id: "m-fail", payload: "@fail", maxRetries: 1)
        try prefork.enqueueAccepted(id: "m-crash", payload: "@crash")
        #expect(try prefork.enqueue(id: "m-ok", payload: "other").status == 409)
        #expect(try prefork.request("POST", "/enqueue", body: "{}").status == 400)
        _ = try await prefork.waitForJob("m-ok", state: "done")
        _ = try await prefork.waitForJob("m-fail", state: "failed")
        _ = try await prefork.waitForJob("m-crash", state: "failed")
        _ = try await prefork.waitForIdleWorkers(2)

        let after = try scrape(prefork)
        #expect(Self.value(after, "prefork_jobs_accepted_total") == 3)
        #expect(Self.value(after, "prefork_jobs_rejected_total", ["reason": "conflict"]) == 1)
        #expect(Self.value(after, "prefork_jobs_rejected_total", ["reason": "invalid"]) == 1)
        #expect(Self.value(after, "prefork_jobs_total", ["state": "done"]) == 1)
        #expect(Self.value(after, "prefork_jobs_total", ["state": "failed"]) == 2)
        #expect(Self.value(after, "prefork_jobs_retried_total") == 1)
        #expect(Self.value(after, "prefork_attempts_total", ["outcome": "ok"]) == 1)
        #expect(Self.value(after, "prefork_attempts_total", ["outcome": "error"]) == 2)
        #expect(Self.value(after, "prefork_attempts_total", ["outcome": "crash"]) == 1)
        #expect(Self.value(after, "prefork_worker_restarts_total", ["cause": "crash"]) == 1)
        #expect(Self.value(after, "prefork_job_run_seconds_count") == 4)
        #expect(Self.value(after, "prefork_job_run_seconds_bucket", ["le": "+Inf"]) == 4)
        #expect(Self.value(after, "prefork_queue_wait_seconds_count") == 3)
        // Each 202 waited for a background sync (journal.fsync "batch", the default).
        #expect((Self.value(after, "prefork_journal_fsync_seconds_count") ?? 0) >= 1)
        #expect((Self.value(after, "prefork_journal_fsync_seconds_sum") ?? 0) > 0)
        #expect(Self.value(after, "prefork_queue_depth") == 0)
        #expect(Self.value(after, "prefork_jobs_running") == 0)
        #expect(Self.value(after, "prefork_draining") == 0)
        #expect(Self.value(after, "prefork_http_requests_total", ["route": "/enqueue", "status": "202"]) == 3)
        #expect(Self.value(after, "prefork_http_requests_total", ["route": "/enqueue", "status": "409"]) == 1)
    }

    @Test func timeoutsAndQueueFullAreCounted() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 1, "queue_size": 1, "job_timeout_ms": 200])
        defer { prefork.terminateAndReap() }
        _ = try await prefork.waitForIdleWorkers(1)
        try prefork.enqueueAccepted(id: "t-hang", payload: "@hang")
        _ = try await prefork.waitForWorker(runningJob: "t-hang")
        try prefork.enqueueAccepted(id: "t-wait", payload: "@ok")
        #expect(try prefork.enqueue(id: "t-full", payload: "@ok").status == 503)
        _ = try await prefork.waitForJob("t-hang", state: "failed")
        _ = try await prefork.waitForJob("t-wait", state: "done")
        let samples = try scrape(prefork)
        #expect(Self.value(samples, "prefork_jobs_rejected_total", ["reason": "queue_full"]) == 1)
        #expect(Self.value(samples, "prefork_attempts_total", ["outcome": "timeout"]) == 1)
        #expect(Self.value(samples, "prefork_worker_restarts_total", ["cause": "timeout"]) == 1)
    }
}
