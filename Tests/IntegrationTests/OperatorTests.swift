import Foundation
import Glibc
import Testing

/// What operators use: the command-line client and its exit codes, `prefork ctl`, the pidfile, systemd's
/// notifications, the event stream, and readable logs.
@Suite(.timeLimit(.minutes(2)))
struct OperatorTests {
    /// Runs `prefork ARGS` against `prefork`'s API.
    private func cli(_ prefork: PreforkProcess, _ arguments: [String], environment: [String: String] = [:])
        async throws -> CommandRun
    {
        try await CommandRun.supervisor(
            arguments, environment: ["PREFORK_URL": "http://127.0.0.1:\(prefork.port)"].merging(environment) { $1 },
            timeout: .seconds(30))
    }

    @Test func submitAndJobExitWithTheJobsOutcome() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 1])
        defer { prefork.terminateAndReap() }
        let done = try await cli(prefork, ["submit", "--id", "ok", "--wait", "@ok"])
        #expect(done.status == .exited(0), "\(done.stderr)")
        #expect(try done.stdoutJSON().string("state") == "done")
        let failed = try await cli(prefork, ["submit", "--id", "bad", "--max-retries", "1", "--wait=10", "@fail"])
        #expect(failed.status == .exited(1))
        #expect(try failed.stdoutJSON().int("attempts") == 2)
        let early = try await cli(prefork, ["submit", "--id", "slow", "--wait=1", "@sleep 5000"])
        #expect(early.status == .exited(3))
        #expect(try early.stdoutJSON().string("state") == "running")
        let canceled = try await cli(prefork, ["cancel", "slow"])
        #expect(canceled.status == .exited(0))
        let looked = try await cli(prefork, ["job", "slow"])
        #expect(looked.status == .exited(1))
        let accepted = try await cli(prefork, ["submit", "@ok"])
        #expect(accepted.status == .exited(0))
        #expect(try accepted.stdoutJSON().string("id")?.hasPrefix("job-") == true)
        let listed = try await cli(prefork, ["jobs", "--state", "done", "--limit", "10"])
        #expect(try listed.stdoutJSON().objects("jobs")?.isEmpty == false)
        #expect(try await cli(prefork, ["retry", "bad"]).status == .exited(0))
        #expect(try await cli(prefork, ["pause"]).status == .exited(0))
        #expect(try prefork.request("GET", "/healthz").json().bool("paused") == true)
        #expect(try await cli(prefork, ["resume"]).status == .exited(0))
    }

    @Test func clientUsageAndConnectionErrorsExit2() async throws {
        let usage = try await CommandRun.supervisor(["submit"])
        #expect(usage.status == .exited(2))
        #expect(usage.stderr.contains("usage: prefork submit"))
        let unreachable = try await CommandRun.supervisor(
            ["job", "x"], environment: ["PREFORK_URL": "http://127.0.0.1:1"])
        #expect(unreachable.status == .exited(2))
        #expect(unreachable.stderr.contains("cannot connect to 127.0.0.1:1"))
    }

    @Test func submitBatchSendsJSONLines() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/jobs.jsonl"
        try "{\"id\": \"b1\", \"payload\": \"@ok\"}\n\n{\"id\": \"b2\", \"payload\": \"@ok\", \"priority\": 3}\n{\"id\": 7}\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let run = try await cli(prefork, ["submit", "--batch", file])
        #expect(run.status == .exited(1))  // one item refused
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].contains("\"status\":202") && lines[2].contains("\"status\":400"))
        try await prefork.waitForJob("b2", state: "done")
    }

    @Test func ctlSignalsTheSupervisorThatOwnsTheDataDirectory() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 2])
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(2)
        let pidfile = try String(contentsOfFile: prefork.directory.path + "/prefork.pid", encoding: .utf8)
        #expect(pidfile == "\(prefork.pid)\n")
        let directory = prefork.directory.path
        let status = try await CommandRun.supervisor(["ctl", "status", "--data-dir", directory])
        #expect(status.status == .exited(0))
        #expect(status.stdout.contains("prefork \(prefork.pid) owns"))
        let scale = try await CommandRun.supervisor(["ctl", "scale", "3", "--data-dir", directory])
        #expect(scale.status == .exited(0), "\(scale.stderr)")
        try await prefork.waitForIdleWorkers(3)
        // SIGHUP keeps a count changed at run time when the file's `workers` did not change.
        let reload = try await CommandRun.supervisor(["ctl", "reload", "--data-dir", directory])
        #expect(reload.status == .exited(0))
        let reloaded = try await prefork.waitForLog(event: "config_reloaded")
        #expect(reloaded["ignored_until_restart"] as? [String] == [])
        #expect(try prefork.workers().int("target") == 3)
        let stop = try await CommandRun.supervisor(["ctl", "stop", "--data-dir", directory], timeout: .seconds(20))
        #expect(stop.status == .exited(0))
        #expect(try await prefork.waitForExit() == .exited(0))
        #expect(!FileManager.default.fileExists(atPath: directory + "/prefork.pid"))
        let none = try await CommandRun.supervisor(["ctl", "status", "--data-dir", directory])
        #expect(none.status == .exited(1))
        #expect(none.stderr.contains("no prefork runs on"))
    }

    @Test func systemdIsToldReadyStatusWatchdogAndStopping() async throws {
        let receiver = try DatagramReceiver()
        defer { receiver.close() }
        let prefork = try await PreforkProcess.start(
            config: ["workers": 2],
            environment: ["NOTIFY_SOCKET": receiver.path, "WATCHDOG_USEC": "200000"])
        defer { prefork.terminateAndReap() }
        try await prefork.eventually("READY=1") { receiver.messages.contains { $0.hasPrefix("READY=1") } }
        let ready = receiver.messages.first { $0.hasPrefix("READY=1") }!
        #expect(ready.contains("STATUS=2/2 workers"))
        #expect(ready.contains("MAINPID=\(prefork.pid)"))
        try await prefork.eventually("two WATCHDOG=1") { receiver.messages.filter { $0 == "WATCHDOG=1" }.count >= 2 }
        prefork.sendSignal(SIGTERM)
        try await prefork.eventually("STOPPING=1") { receiver.messages.contains { $0.hasPrefix("STOPPING=1") } }
        _ = try await prefork.waitForExit()
    }

    @Test func textLogsAndQuietRequests() async throws {
        let prefork = try await PreforkProcess.start(config: ["log_format": "text", "log_requests": false])
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "t", payload: "@ok")
        try await prefork.waitForJob("t", state: "done")
        try await prefork.eventually("a text job_done line") {
            prefork.stderr.lines.contains { $0.contains(" INFO job_done id=t attempt=1 duration_ms=") }
        }
        #expect(!prefork.stderr.lines.contains { $0.contains(" request ") })
        let first = try #require(prefork.stderr.lines.first)
        #expect(first.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO listening addr="#, options: .regularExpression) != nil)
    }

    @Test func theEventStreamCarriesJobsWorkersStatsAndResumes() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 1])
        defer { prefork.terminateAndReap() }
        let connection = try prefork.connect(timeout: .seconds(10))
        try connection.sendRequest("GET", "/events")
        var text = try connection.receiveRaw { $0.contains("\r\n\r\n") }
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(text.contains("Content-Type: text/event-stream"))
        try prefork.enqueueAccepted(id: "e1", payload: "@ok")
        text = try connection.receiveRaw { $0.contains("\"state\":\"done\"") && $0.contains("event: stats") }
        #expect(text.contains("event: job\ndata: {\"id\":\"e1\",\"state\":\"queued\"") || text.contains("\"id\":\"e1\",\"state\":\"queued\""))
        #expect(text.contains("event: worker"))
        // Resume after the first job event: the later ones are sent again.
        let ids = text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
        let first = try #require(ids.min())
        connection.close()
        let again = try prefork.connect(timeout: .seconds(10))
        try again.sendRequest("GET", "/events", headers: [("Last-Event-ID", "\(first)")])
        let replay = try again.receiveRaw { $0.contains("\"state\":\"done\"") }
        #expect(replay.contains("id: \(first + 1)\n"))
        #expect(!replay.contains("id: \(first)\n"))
        let stats = try prefork.request("GET", "/stats").json()
        #expect(stats.object("now")?.int("workers_target") == 1)
        #expect((stats.objects("history") ?? []).count >= 1)
    }

    @Test func eventClientsAreLimited() async throws {
        let prefork = try await PreforkProcess.start(config: ["http": ["max_event_clients": 1]])
        defer { prefork.terminateAndReap() }
        let first = try prefork.connect()
        try first.sendRequest("GET", "/events")
        _ = try first.receiveRaw { $0.contains("\r\n\r\n") }
        let second = try prefork.request("GET", "/events")
        #expect(second.status == 503)
        #expect(second.text.contains("http.max_event_clients"))
    }
}

/// A Unix datagram socket standing in for systemd's notification socket.
final class DatagramReceiver: @unchecked Sendable {
    let path: String
    private let fd: CInt
    private let lock = NSLock()
    private var received: [String] = []
    private var open = true

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw HTTPClientError(description: "bind \(path): \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in receive() }.start()
    }

    var messages: [String] { lock.withLock { received } }

    func close() {
        lock.withLock { open = false }
        unlink(path)
    }

    private func receive() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while lock.withLock({ open }) {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { lock.withLock { received.append(String(decoding: buffer[0..<count], as: UTF8.self)) } }
        }
        Glibc.close(fd)
    }
}
