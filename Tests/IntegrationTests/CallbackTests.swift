import Foundation
import Glibc
import Testing

/// Callbacks: the finished record POSTed to `callback_url`, signed, retried until a 2xx, journaled so a restart
/// resumes it, and refused for hosts not in `callbacks.allowed_hosts`.
@Suite(.timeLimit(.minutes(2)))
struct CallbackTests {
    private func start(receiver: CallbackReceiver, config: [String: Any] = [:]) async throws -> PreforkProcess {
        try await PreforkProcess.start(
            config: deepMerge(["callbacks": ["allowed_hosts": ["127.0.0.1"], "secret": "s3cret"]], config))
    }

    private func enqueue(_ prefork: PreforkProcess, id: String, payload: String, url: String, maxRetries: Int = 0) throws
        -> HTTPResponse
    {
        let body = try JSONSerialization.data(
            withJSONObject: ["id": id, "payload": payload, "callback_url": url, "max_retries": maxRetries])
        return try prefork.request("POST", "/enqueue", body: String(decoding: body, as: UTF8.self))
    }

    /// HMAC-SHA256 of `body` with `key`, hex, computed by Python's standard library (an independent check).
    private func hmac(_ key: String, _ body: [UInt8]) async throws -> String {
        let script = "import base64,hashlib,hmac,sys; print(hmac.new(sys.argv[1].encode(), base64.b64decode(sys.argv[2]), hashlib.sha256).hexdigest())"
        let run = try await CommandRun.run("/usr/bin/python3", ["-c", script, key, Data(body).base64EncodedString()])
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func eachFinishedJobIsDeliveredOnceWithAValidSignature() async throws {
        let receiver = try CallbackReceiver()
        defer { receiver.stop() }
        let prefork = try await start(receiver: receiver)
        defer { prefork.terminateAndReap() }
        let url = "http://127.0.0.1:\(receiver.port)/hooks/prefork?x=1"
        #expect(try enqueue(prefork, id: "ok", payload: "@ok", url: url).status == 202)
        #expect(try enqueue(prefork, id: "bad", payload: "@fail", url: url).status == 202)
        try await prefork.waitForJob("ok", "callback delivered") { $0.object("callback")?.string("state") == "delivered" }
        try await prefork.waitForJob("bad", "callback delivered") { $0.object("callback")?.string("state") == "delivered" }
        let requests = receiver.requests
        #expect(requests.count == 2)
        for request in requests {
            #expect(request.method == "POST")
            #expect(request.target == "/hooks/prefork?x=1")
            #expect(request.headers["content-type"] == "application/json")
            let id = try #require(request.headers["x-prefork-job-id"])
            #expect(request.json.string("id") == id)
            #expect(request.json.string("state") == (id == "ok" ? "done" : "failed"))
            #expect(request.headers["x-prefork-delivery"]?.isEmpty == false)
            let expected = try await hmac("s3cret", request.body)
            #expect(request.headers["x-prefork-signature"] == "sha256=\(expected)")
        }
        #expect(Set(requests.compactMap { $0.headers["x-prefork-delivery"] }).count == 2)
        let metrics = try prefork.request("GET", "/metrics").text
        #expect(metrics.contains("prefork_callbacks_total{outcome=\"delivered\"} 2"))
    }

    @Test func aReceiverThatFailsTwiceGetsExactlyThreeAttempts() async throws {
        let receiver = try CallbackReceiver(statuses: [500, 500, 200])
        defer { receiver.stop() }
        let prefork = try await start(receiver: receiver)
        defer { prefork.terminateAndReap() }
        #expect(try enqueue(prefork, id: "j", payload: "@ok", url: "http://127.0.0.1:\(receiver.port)/").status == 202)
        let record = try await prefork.waitForJob("j", "callback delivered", timeout: .seconds(10)) {
            $0.object("callback")?.string("state") == "delivered"
        }
        #expect(record.object("callback")?.int("attempts") == 3)
        #expect(receiver.requests.count == 3)
        #expect(Set(receiver.requests.compactMap { $0.headers["x-prefork-delivery"] }).count == 3)
    }

    @Test func aDeliveryPendingAtASIGKILLIsDeliveredAfterTheRestart() async throws {
        let receiver = try CallbackReceiver()
        receiver.stop()  // nothing listens: the first attempt is refused
        // The next attempt is journaled for 2 s later; the supervisor is killed before it.
        let prefork = try await start(receiver: receiver, config: ["backoff": ["base_ms": 2000, "max_ms": 2000, "jitter": 0]])
        defer { prefork.terminateAndReap() }
        let port = receiver.port
        #expect(try enqueue(prefork, id: "j", payload: "@ok", url: "http://127.0.0.1:\(port)/").status == 202)
        // On a loaded machine the poll may first see a later failed attempt: count from what it saw.
        let failed = try await prefork.waitForJob("j", "a failed delivery attempt") {
            ($0.object("callback")?.int("attempts") ?? 0) >= 1
        }.object("callback")?.int("attempts") ?? 0
        prefork.keepDirectoryOnTeardown()
        prefork.sendSignal(SIGKILL)
        _ = try await prefork.waitForExit()
        // The receiver comes back on the same port; the restarted supervisor delivers without a new trigger.
        let revived = try CallbackReceiver(port: port)
        defer { revived.stop() }
        let again = try await PreforkProcess.start(in: prefork.directory, configPath: prefork.configPath)
        defer { again.terminateAndReap() }
        let record = try await again.waitForJob("j", "callback delivered after the restart", timeout: .seconds(10)) {
            $0.object("callback")?.string("state") == "delivered"
        }
        // The failed attempts journaled before the kill count: the delivery is at least the next one (one more
        // may have failed between the poll and the kill), and the receiver got it once.
        #expect((record.object("callback")?.int("attempts") ?? 0) >= failed + 1)
        #expect(revived.requests.count == 1)
    }

    @Test func aHostNotAllowedIsRefusedNamingTheKey() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let off = try enqueue(prefork, id: "a", payload: "@ok", url: "http://127.0.0.1:9/")
        #expect(off.status == 400)
        #expect(off.text.contains("callbacks.allowed_hosts"))
        let receiver = try CallbackReceiver()
        defer { receiver.stop() }
        let on = try await start(receiver: receiver)
        defer { on.terminateAndReap() }
        let elsewhere = try enqueue(on, id: "b", payload: "@ok", url: "http://10.0.0.1/")
        #expect(elsewhere.status == 400)
        #expect(elsewhere.text.contains("10.0.0.1 is not in callbacks.allowed_hosts"))
        let tls = try enqueue(on, id: "c", payload: "@ok", url: "https://127.0.0.1/")
        #expect(tls.status == 400)
        #expect(tls.text.contains("https"))
    }
}
