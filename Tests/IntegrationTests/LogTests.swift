import Foundation
import Glibc
import Testing

/// The JSON-lines log on stderr: its shape and the lifecycle events tests and operators rely on.
@Suite(.timeLimit(.minutes(1)))
struct LogTests {
    @Test func everyLineIsAJSONObjectWithTimestampLevelAndEvent() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "logged-ok", payload: "@ok")
        try prefork.enqueueAccepted(id: "logged-crash", payload: "@crash")
        try await prefork.waitForJob("logged-ok", state: "done")
        try await prefork.waitForJob("logged-crash", state: "failed")
        try await prefork.waitForIdleWorkers(2)
        prefork.sendSignal(SIGTERM)
        #expect(try await prefork.waitForExit() == .exited(0))
        try await eventually("supervisor stderr closed") { prefork.stderr.isClosed }

        let lines = prefork.stderr.lines.filter { !$0.isEmpty }
        #expect(!lines.isEmpty)
        for line in lines {
            guard let event = LogLine.parse(line) else {
                Issue.record("not a JSON object: \(line)")
                continue
            }
            #expect(event.string("ts")?.hasSuffix("Z") == true, "ts: \(line)")
            #expect(["debug", "info", "warn", "error"].contains(event.string("level") ?? ""), "level: \(line)")
            #expect(event.string("event") != nil, "event: \(line)")
        }
        #expect(LogLine.parse(lines[0])?.string("event") == "listening", "first line: \(lines[0])")

        for name in ["worker_spawned", "worker_ready"] {
            let events = prefork.logEvents(name)
            #expect(events.count >= 3, "\(name): one per initial worker plus the replacement")
            for event in events { #expect(event.int("slot") != nil && event.int("pid") != nil, "\(event)") }
        }
        let exits = prefork.logEvents("worker_exited")
        #expect(exits.count >= 3, "the crash and the two drained workers")
        for exit in exits { #expect(exit.int("slot") != nil && exit.int("pid") != nil && exit["status"] != nil) }
        let done = try #require(prefork.logEvents("job_done") { $0.string("id") == "logged-ok" }.first)
        #expect(done.int("attempt") == 1)
        let shutdown = try #require(prefork.logEvents("shutdown_started").first)
        #expect(shutdown.string("signal")?.contains("TERM") == true, "shutdown_started names the signal: \(shutdown)")
        #expect(LogLine.parse(lines.last ?? "")?.string("event") == "shutdown_complete", "last line: \(lines.last!)")
    }

    @Test func workersEndpointDescribesEachSlot() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(2)

        try prefork.enqueueAccepted(id: "counted", payload: "@ok")
        try await prefork.waitForJob("counted", state: "done")
        let workers = try prefork.workers()
        #expect(workers.int("target") == 2)
        let slots = try #require(workers.objects("workers"))
        #expect(slots.compactMap { $0.int("slot") }.sorted() == [0, 1])
        for slot in slots {
            #expect(slot.int("pid") != nil)
            #expect(slot.string("state") == "idle")
            #expect(slot.isNull("job"))
            #expect(slot.int("restarts") == 0)
            #expect(slot.string("started_at")?.hasSuffix("Z") == true)
        }
        #expect(slots.compactMap { $0.int("jobs_run") }.reduce(0, +) == 1)
    }
}
