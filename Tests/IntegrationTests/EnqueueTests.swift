import Foundation
import Testing

/// `POST /enqueue`, `GET /jobs` and the HTTP API's error answers, against a real supervisor.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct EnqueueTests {
    @Test(arguments: Backend.allCases) func okJobRunsOnceAndIsDone(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        let response = try prefork.enqueue(id: "ok-1", payload: "@ok")
        #expect(response.status == 202)
        #expect(response.header("Location") == "/jobs/ok-1")
        let accepted = try response.json()
        #expect(accepted.string("id") == "ok-1")
        #expect(["queued", "running", "done"].contains(accepted.string("state") ?? ""))
        #expect(accepted.int("max_retries") == 0)

        let done = try await prefork.waitForJob("ok-1", state: "done")
        #expect(done.int("attempts") == 1)
        #expect(done.string("result") != nil)
        #expect(done.isNull("last_error"))
        #expect(done.isNull("next_attempt_at"))
        for key in ["created_at", "updated_at"] {
            let stamp = try #require(done.string(key))
            #expect(stamp.hasSuffix("Z"), "\(key) \(stamp) is not RFC 3339 UTC")
            #expect(stamp.contains("T"), "\(key) \(stamp) is not RFC 3339")
        }
        try await prefork.waitForLog(event: "job_done") { $0.string("id") == "ok-1" }
    }

    @Test(arguments: Backend.allCases) func identicalResubmitAnswers200WithCurrentRecord(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        #expect(try prefork.enqueue(id: "same", payload: "@ok", maxRetries: 2).status == 202)
        try await prefork.waitForJob("same", state: "done")
        let again = try prefork.enqueue(id: "same", payload: "@ok", maxRetries: 2)
        #expect(again.status == 200)
        let record = try again.json()
        #expect(record.string("id") == "same")
        #expect(record.string("state") == "done")
        #expect(record.int("attempts") == 1)
    }

    /// A resubmission of a running job answers its record as it stands, with the progress it reported; with
    /// `wait_ms=0` the wait ran out before the job finished, so it is a `202`, as for a new job.
    @Test(arguments: Backend.allCases) func resubmittingARunningJobAnswersItsRecordAndProgress(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["job_timeout_ms": 60_000]) else { return }
        defer { prefork.terminateAndReap() }
        let body = PreforkProcess.enqueueBody(id: "long", payload: "@progress 100 300")
        #expect(try prefork.request("POST", "/enqueue", body: body).status == 202)
        try await prefork.waitForJob("long", "progress reported", timeout: .seconds(10)) {
            $0.object("progress")?.int("percent") != nil
        }
        for (query, status) in [("", 200), ("?wait_ms=0", 202)] {
            let again = try prefork.request("POST", "/enqueue" + query, body: body)
            #expect(again.status == status, "POST /enqueue\(query)")
            #expect(again.header("Location") == "/jobs/long")
            let record = try again.json()
            #expect(record.string("state") == "running", "POST /enqueue\(query)")
            #expect(record.object("progress")?.int("percent") != nil, "POST /enqueue\(query): \(record)")
        }
        #expect(try prefork.request("DELETE", "/jobs/long").status == 200)
    }

    @Test(arguments: Backend.allCases) func sameIdWithDifferentContentConflicts(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        #expect(try prefork.enqueue(id: "dup", payload: "@ok").status == 202)
        let differentPayload = try prefork.enqueue(id: "dup", payload: "@ok again")
        #expect(differentPayload.status == 409)
        #expect(try differentPayload.json().string("error") != nil)
        let differentRetries = try prefork.enqueue(id: "dup", payload: "@ok", maxRetries: 5)
        #expect(differentRetries.status == 409)
    }

    /// A malformed enqueue body and a word its error message must contain.
    struct InvalidBody: Sendable, CustomTestStringConvertible {
        let name: String
        let body: String
        let mentions: [String]
        var testDescription: String { name }
    }

    static let invalidBodies: [InvalidBody] = [
        InvalidBody(name: "missing id", body: #"{"payload":"@ok"}"#, mentions: ["id"]),
        InvalidBody(name: "empty id", body: #"{"id":"","payload":"@ok"}"#, mentions: ["id"]),
        InvalidBody(
            name: "id of 129 bytes", body: #"{"id":"\#(String(repeating: "a", count: 129))","payload":"@ok"}"#,
            mentions: ["id"]),
        InvalidBody(
            name: "id of 65 two-byte characters (130 bytes)",
            body: #"{"id":"\#(String(repeating: "é", count: 65))","payload":"@ok"}"#, mentions: ["id"]),
        InvalidBody(name: "id with a control character", body: #"{"id":"a\u0001b","payload":"@ok"}"#, mentions: ["id"]),
        InvalidBody(name: "id with a newline", body: #"{"id":"a\nb","payload":"@ok"}"#, mentions: ["id"]),
        InvalidBody(name: "id not a string", body: #"{"id":7,"payload":"@ok"}"#, mentions: ["id"]),
        InvalidBody(name: "payload not a string", body: #"{"id":"p1","payload":5}"#, mentions: ["payload"]),
        InvalidBody(name: "payload null", body: #"{"id":"p2","payload":null}"#, mentions: ["payload"]),
        InvalidBody(name: "missing payload", body: #"{"id":"p3"}"#, mentions: ["payload"]),
        InvalidBody(
            name: "max_retries -1", body: #"{"id":"r1","payload":"@ok","max_retries":-1}"#,
            mentions: ["max_retries"]),
        InvalidBody(
            name: "max_retries 101", body: #"{"id":"r2","payload":"@ok","max_retries":101}"#,
            mentions: ["max_retries"]),
        InvalidBody(
            name: "max_retries string", body: #"{"id":"r3","payload":"@ok","max_retries":"3"}"#,
            mentions: ["max_retries"]),
        InvalidBody(
            name: "max_retries fraction", body: #"{"id":"r4","payload":"@ok","max_retries":1.5}"#,
            mentions: ["max_retries"]),
        InvalidBody(name: "truncated JSON", body: #"{"id":"j1","payload":"#, mentions: ["json"]),
        InvalidBody(name: "not JSON at all", body: "hello", mentions: ["json"]),
        InvalidBody(name: "empty body", body: "", mentions: ["json"]),
        InvalidBody(name: "body an array", body: #"[{"id":"j2","payload":"@ok"}]"#, mentions: ["json", "object"]),
        InvalidBody(name: "body a string", body: #""@ok""#, mentions: ["json", "object"]),
    ]

    @Test(arguments: Backend.allCases) func invalidBodiesAnswer400NamingTheField(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        for invalid in Self.invalidBodies {
            let response = try prefork.request("POST", "/enqueue", body: invalid.body)
            #expect(response.status == 400, "\(invalid.name): \(response)")
            let message = (try? response.json())?.string("error")
            #expect(message != nil, "\(invalid.name): error body is not {\"error\": ...}: \(response.text)")
            let lowered = message?.lowercased() ?? ""
            #expect(
                invalid.mentions.contains { lowered.contains($0) },
                "\(invalid.name): message \(message ?? "nil") should mention one of \(invalid.mentions)")
        }
        // Nothing invalid was created.
        #expect(try prefork.request("GET", "/jobs/p1").status == 404)
        #expect(try prefork.request("GET", "/jobs/r2").status == 404)
    }

    @Test(arguments: Backend.allCases) func boundaryValuesAreAccepted(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        let longID = String(repeating: "b", count: 128)
        #expect(try prefork.enqueue(id: longID, payload: "@ok").status == 202)
        #expect(try prefork.enqueue(id: "retries-0", payload: "@ok", maxRetries: 0).status == 202)
        #expect(try prefork.enqueue(id: "retries-100", payload: "@ok", maxRetries: 100).status == 202)
        #expect(try prefork.enqueue(id: "empty-payload", payload: "").status == 202)
        #expect(try prefork.enqueue(id: "ünïcödé-id", payload: "@ok").status == 202)
        let withExtra = try prefork.request(
            "POST", "/enqueue", body: #"{"id":"extra","payload":"@ok","max_retries":1,"color":"blue"}"#)
        #expect(withExtra.status == 202, "unknown fields are ignored: \(withExtra)")
        try await prefork.waitForJob(longID, state: "done")
        let record = try await prefork.waitForJob("retries-100", state: "done")
        #expect(record.int("max_retries") == 100)
    }

    @Test(arguments: Backend.allCases) func bodyLargerThanLimitAnswers413(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend, config: ["http": ["max_body_bytes": 512]]) else { return }
        defer { prefork.terminateAndReap() }

        let body = PreforkProcess.enqueueBody(id: "big", payload: String(repeating: "x", count: 2000))
        let response = try prefork.request("POST", "/enqueue", body: body)
        #expect(response.status == 413)
        #expect(try response.json().string("error") != nil)
        #expect(try prefork.request("GET", "/jobs/big").status == 404)

        let small = PreforkProcess.enqueueBody(id: "small", payload: String(repeating: "x", count: 100))
        #expect(try prefork.request("POST", "/enqueue", body: small).status == 202)
    }

    @Test(arguments: Backend.allCases) func unknownJobAnswers404(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        let response = try prefork.request("GET", "/jobs/no-such-job")
        #expect(response.status == 404)
        #expect(try response.json().string("error") != nil)
    }

    @Test(arguments: Backend.allCases) func unknownPathAnswers404(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        for path in ["/nope", "/ui/nope.js", "/enqueue/extra", "/healthz/x"] {
            let response = try prefork.request("GET", path)
            #expect(response.status == 404, "GET \(path): \(response)")
            #expect((try? response.json())?.string("error") != nil, "GET \(path): \(response.text)")
        }
    }

    @Test(arguments: Backend.allCases) func wrongMethodAnswers405WithAllow(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        let cases: [(method: String, path: String, allowed: [String])] = [
            ("GET", "/enqueue", ["POST"]),
            ("DELETE", "/healthz", ["GET"]),
            ("POST", "/readyz", ["GET"]),
            ("PUT", "/jobs/x", ["GET", "DELETE"]),
            ("POST", "/jobs", ["GET"]),
            ("DELETE", "/workers", ["GET"]),
        ]
        for (method, path, allowed) in cases {
            let response = try prefork.request(method, path, body: method == "POST" || method == "PUT" ? "{}" : nil)
            #expect(response.status == 405, "\(method) \(path): \(response)")
            let allow = (response.header("Allow") ?? "").uppercased()
            for name in allowed {
                #expect(allow.contains(name), "\(method) \(path): Allow \(allow.debugDescription) lacks \(name)")
            }
            #expect((try? response.json())?.string("error") != nil, "\(method) \(path): \(response.text)")
        }
    }

    @Test(arguments: Backend.allCases) func listsJobsByStateNewestFirst(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        for id in ["list-1", "list-2", "list-3"] {
            try prefork.enqueueAccepted(id: id, payload: "@ok")
            try await prefork.waitForJob(id, state: "done")
        }
        try prefork.enqueueAccepted(id: "list-failed", payload: "@fail")
        try await prefork.waitForJob("list-failed", state: "failed")

        let response = try prefork.request("GET", "/jobs?state=done&limit=2")
        #expect(response.status == 200)
        let jobs = try #require(try response.json().objects("jobs"))
        #expect(jobs.map { $0.string("id") ?? "?" } == ["list-3", "list-2"])

        let all = try #require(try prefork.request("GET", "/jobs").json().objects("jobs"))
        #expect(all.map { $0.string("id") ?? "?" } == ["list-failed", "list-3", "list-2", "list-1"])

        let failed = try #require(try prefork.request("GET", "/jobs?state=failed").json().objects("jobs"))
        #expect(failed.map { $0.string("id") ?? "?" } == ["list-failed"])
        let queued = try #require(try prefork.request("GET", "/jobs?state=queued&limit=10000").json().objects("jobs"))
        #expect(queued.isEmpty)
    }

    @Test(arguments: Backend.allCases) func badListParametersAnswer400(on backend: Backend) async throws {
        guard let prefork = try await PreforkProcess.start(backend) else { return }
        defer { prefork.terminateAndReap() }

        for query in ["state=bogus", "state=DONE", "limit=0", "limit=-1", "limit=10001", "limit=abc", "limit=1.5"] {
            let response = try prefork.request("GET", "/jobs?\(query)")
            #expect(response.status == 400, "?\(query): \(response)")
            #expect((try? response.json())?.string("error") != nil, "?\(query): \(response.text)")
        }
    }
}
