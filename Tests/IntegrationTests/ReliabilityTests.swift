import Foundation
import Glibc
import Testing

/// Faults found by attacking the service, each fixed: a damaged journal, symbolic links, descriptor exhaustion,
/// processes that outlive their job, HEAD, unauthenticated bodies, unbounded buffering and retention.
@Suite(.serialized) struct ReliabilityTests {
    // MARK: Journal damage

    /// A supervisor killed with 30 finished jobs, one running blocker and 20 queued jobs in its journal, which is
    /// then damaged by `damage` before the restart.
    private func damagedRestart(_ damage: (inout [UInt8]) -> Void) async throws -> PreforkProcess {
        let first = try await PreforkProcess.start(config: ["workers": 1, "queue_size": 100])
        defer { first.terminateAndReap() }
        for index in 0..<30 { try first.enqueueAccepted(id: "done-\(index)", payload: "@ok") }
        for index in 0..<30 { try await first.waitForJob("done-\(index)", state: "done") }
        try first.enqueueAccepted(id: "blocker", payload: "@sleep 400")
        for index in 0..<20 { try first.enqueueAccepted(id: "queued-\(index)", payload: "@ok") }
        first.keepDirectoryOnTeardown()
        first.terminateAndReap()
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: first.journalPath)))
        damage(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: first.journalPath))
        return try await PreforkProcess.start(in: first.directory, configPath: first.configPath)
    }

    @Test func damageInTheMiddleOfTheJournalLosesOnlyWhatItHitAndKeepsTheFileAside() async throws {
        var original: [UInt8] = []
        let second = try await damagedRestart { bytes in
            original = bytes
            bytes[bytes.count / 3] ^= 0x20
        }
        defer { second.terminateAndReap() }
        let damaged = try await second.waitForLog(event: "journal_damaged")
        #expect((damaged.int("bytes") ?? 0) > 0)
        let keptAs = try #require(damaged.string("kept_as"))
        #expect(FileManager.default.contents(atPath: keptAs).map { [UInt8]($0) }?.count == original.count)
        // At most the one job whose record was hit is affected: every other queued job is there and runs.
        var missing: [String] = []
        for index in 0..<20 where try second.request("GET", "/jobs/queued-\(index)").status != 200 {
            missing.append("queued-\(index)")
        }
        #expect(missing.count <= 1, "lost \(missing)")
        for index in 0..<20 where !missing.contains("queued-\(index)") {
            try await second.waitForJob("queued-\(index)", state: "done", timeout: .seconds(10))
        }
        let present = try (0..<30).filter { try second.request("GET", "/jobs/done-\($0)").status == 200 }
        #expect(present.count >= 29)
    }

    @Test func journalCheckReportsDamageWithoutChangingAnything() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 1])
        defer { prefork.terminateAndReap() }
        for index in 0..<10 { try prefork.enqueueAccepted(id: "j-\(index)", payload: "@ok") }
        for index in 0..<10 { try await prefork.waitForJob("j-\(index)", state: "done") }
        let clean = try await CommandRun.supervisor(["journal", "check", prefork.directory.path])
        #expect(clean.status == .exited(0), "\(clean.stdout) \(clean.stderr)")
        #expect(try clean.stdoutJSON().objects("damage")?.isEmpty == true)

        prefork.keepDirectoryOnTeardown()
        prefork.terminateAndReap()
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: prefork.journalPath)))
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: prefork.journalPath))
        let files = try FileManager.default.contentsOfDirectory(atPath: prefork.directory.path).sorted()
        let check = try await CommandRun.supervisor(["journal", "check", prefork.directory.path])
        #expect(check.status == .exited(1))
        let report = try check.stdoutJSON()
        #expect(report.objects("damage")?.count == 1)
        #expect(report.string("format") == "current")
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: prefork.journalPath))) == bytes)
        #expect(try FileManager.default.contentsOfDirectory(atPath: prefork.directory.path).sorted() == files)
    }

    @Test func unreadableJournalIsRefusedWithAClearErrorAndLeftAlone() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let text = Data("this is not a journal\n".utf8)
        try text.write(to: URL(fileURLWithPath: directory.path + "/journal"))
        let run = try await CommandRun.supervisor(["--data-dir", directory.path, "--listen", "127.0.0.1:0"])
        #expect(run.status == .exited(2))
        #expect(run.stderr.contains("refusing to start"), "\(run.stderr)")
        #expect(FileManager.default.contents(atPath: directory.path + "/journal") == text)
    }

    @Test func symbolicLinkAsTheLockIsRefusedAndItsTargetUntouched() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let target = directory.path + "/precious"
        try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createDirectory(atPath: directory.path + "/data", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/data/lock", withDestinationPath: target)
        let run = try await CommandRun.supervisor(["--data-dir", directory.path + "/data", "--listen", "127.0.0.1:0"])
        #expect(run.status == .exited(2))
        #expect(run.stderr.contains("symbolic link"), "\(run.stderr)")
        #expect(FileManager.default.contents(atPath: target) == Data("keep me\n".utf8))
    }

    // MARK: HTTP

    @Test func headAnswersLikeGetWithoutABodyOnAKeptAliveConnection() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let get = try prefork.request("GET", "/healthz")
        let connection = try prefork.connect()
        defer { connection.close() }
        try connection.send(
            "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /enqueue HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        // The GET's body ends the exchange; nothing may follow either HEAD's header block.
        let text = try connection.receiveRaw { $0.hasSuffix("prefork_journal_fsync_seconds_count 0\n") }
        let heads = text.components(separatedBy: "HTTP/1.1 ").filter { !$0.isEmpty }
        #expect(heads.count == 3, "\(text)")
        guard heads.count == 3 else { return }
        #expect(heads[0].hasPrefix("200"))
        #expect(heads[0].contains("Content-Length: \(get.body.count)\r\n"))
        #expect(heads[0].hasSuffix("\r\n\r\n"), "HEAD response carried a body: \(heads[0])")
        #expect(heads[1].hasPrefix("405"))
        #expect(heads[1].contains("Allow: POST\r\n"))
        #expect(heads[1].hasSuffix("\r\n\r\n"), "HEAD 405 carried a body: \(heads[1])")
        #expect(heads[2].hasPrefix("200"))
    }

    @Test func requestWithoutTheTokenIsRefusedBeforeItsBodyIsRead() async throws {
        let prefork = try await PreforkProcess.start(config: ["auth_token": "s3cret"])
        defer { prefork.terminateAndReap() }
        let connection = try prefork.connect()
        defer { connection.close() }
        try connection.send("POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        let response = try connection.readResponse()
        #expect(response.status == 401)
        #expect(response.header("WWW-Authenticate") == "Bearer")
        #expect(try await connection.waitForClose(timeout: .seconds(5)))
    }

    @Test func requestBytesBufferedAcrossConnectionsAreBounded() async throws {
        let prefork = try await PreforkProcess.start(config: ["http": ["max_buffered_bytes": 100_000]])
        defer { prefork.terminateAndReap() }
        let chunk = String(repeating: "x", count: 40_000)
        var connections: [HTTPConnection] = []
        defer { connections.forEach { $0.close() } }
        for _ in 0..<3 {
            let connection = try prefork.connect()
            try connection.send("POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Length: 90000\r\n\r\n" + chunk)
            connections.append(connection)
        }
        // The third connection's bytes pass 100,000 buffered in all: it is refused; the others wait for bodies.
        let refused = try connections[2].readResponse()
        #expect(refused.status == 503)
        #expect(refused.text.contains("http.max_buffered_bytes"))
        #expect(try prefork.request("GET", "/healthz").status == 200)
    }

    @Test func descriptorLimitClampsConnectionsSoWorkersStillRespawn() async throws {
        let prefork = try await PreforkProcess.start(
            config: ["workers": 2, "http": ["max_connections": 1024]], wrapper: ["/usr/bin/prlimit", "--nofile=200:200", "--"])
        defer { prefork.terminateAndReap() }
        let clamp = try await prefork.waitForLog(event: "max_connections_clamped")
        let effective = try #require(clamp.int("effective"))
        #expect(effective < 200)
        var connections: [HTTPConnection] = []
        defer { connections.forEach { $0.close() } }
        for _ in 0..<effective { connections.append(try prefork.connect()) }
        // Past the limit: a quick 503, not a hang, and the supervisor does not spin.
        let extra = try prefork.connect()
        let refused = try extra.readResponse()
        extra.close()
        #expect(refused.status == 503)
        let before = ProcessTable.cpuTicks(prefork.pid) ?? 0
        try await Task.sleep(for: .seconds(1))
        let ticks = (ProcessTable.cpuTicks(prefork.pid) ?? 0) - before
        #expect(ticks < 50, "supervisor used \(ticks) ticks in an idle second")
        // A crashed worker is replaced even with every client slot taken (asked on a connection already open).
        let worker = try #require(prefork.logEvents("worker_ready").first?.int("pid"))
        kill(pid_t(worker), SIGKILL)
        try await prefork.waitForLog(event: "worker_ready") { $0.int("pid") != worker && $0.int("slot") != nil }
        try await prefork.eventually("two live workers") {
            let slots = try connections[0].request("GET", "/workers").json().objects("workers") ?? []
            return slots.filter { $0.string("state") == "idle" }.count == 2
        }
        #expect(prefork.logEvents("worker_spawn_failed").isEmpty)
    }

    // MARK: Processes

    private func execSupervisor(_ script: String, config: [String: Any] = [:]) async throws -> PreforkProcess {
        try await PreforkProcess.start(
            config: deepMerge(["handler": "exec", "exec": ["command": ["/bin/sh", "-c", script]], "workers": 1], config))
    }

    @Test func whatASuccessfulCommandLeftRunningIsKilledWhenItsJobEnds() async throws {
        let prefork = try await execSupervisor("sleep 311 & setsid sleep 312 & echo ok", config: ["job_timeout_ms": 5000])
        defer { prefork.terminateAndReap() }
        let start = ContinuousClock.now
        for index in 0..<3 { try prefork.enqueueAccepted(id: "bg-\(index)", payload: "") }
        for index in 0..<3 {
            let done = try await prefork.waitForJob("bg-\(index)", state: "done", timeout: .seconds(60))
            #expect(done.string("result") == "ok\n")
        }
        // Done when the command exits, not when the background children (311 s) close its stdout.
        #expect(elapsed(since: start) < .seconds(60))
        try await prefork.eventually("no sleep 311 or 312 left") {
            ProcessTable.live(commandLine: ["sleep", "311"]).isEmpty
                && ProcessTable.live(commandLine: ["sleep", "312"]).isEmpty
        }
    }

    @Test func nothingAJobStartedSurvivesAShutdown() async throws {
        let prefork = try await execSupervisor(
            "setsid sleep 313 & sleep 30", config: ["shutdown_timeout_ms": 300, "job_timeout_ms": 60_000])
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "stuck", payload: "")
        try await prefork.eventually("the daemon started") { !ProcessTable.live(commandLine: ["sleep", "313"]).isEmpty }
        prefork.sendSignal(SIGTERM)
        #expect(try await prefork.waitForExit() == .exited(0))
        try await eventually("no sleep 313 left after the shutdown", timeout: .seconds(5)) {
            ProcessTable.live(commandLine: ["sleep", "313"]).isEmpty
        }
    }

    @Test func aSIGKILLedSupervisorTakesItsRunningCommandWithIt() async throws {
        let prefork = try await execSupervisor("exec sleep 314", config: ["job_timeout_ms": 60_000])
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "orphan", payload: "")
        try await prefork.eventually("the command started") { !ProcessTable.live(commandLine: ["sleep", "314"]).isEmpty }
        kill(prefork.pid, SIGKILL)
        try await eventually("sleep 314 gone with its worker", timeout: .seconds(5)) {
            ProcessTable.live(commandLine: ["sleep", "314"]).isEmpty
        }
    }

    @Test func whatASIGKILLedSupervisorLeftIsKilledAtTheNextStartInCgroupMode() async throws {
        // The shell's child is no direct child of the worker: it outlives a SIGKILL of the supervisor, and only
        // the cgroup it stayed in can find it.
        let first = try await execSupervisor("sleep 315; true", config: ["job_timeout_ms": 60_000])
        defer { first.terminateAndReap() }
        let mode = try first.request("GET", "/healthz").json().string("containment")
        try first.enqueueAccepted(id: "left", payload: "")
        try await first.eventually("the command started") { !ProcessTable.live(commandLine: ["sleep", "315"]).isEmpty }
        first.keepDirectoryOnTeardown()
        // The second supervisor replays the job and starts a sleep 315 of its own: the check is on these pids.
        let orphans = Set(ProcessTable.live(commandLine: ["sleep", "315"]))
        kill(first.pid, SIGKILL)
        _ = try await first.waitForExit()
        guard mode == "cgroup" else {
            print("skipped: containment is \(mode ?? "?") here (no writable cgroup v2); a detached process survives")
            for pid in ProcessTable.live(commandLine: ["sleep", "315"]) { kill(pid, SIGKILL) }
            return
        }
        let second = try await PreforkProcess.start(in: first.directory, configPath: first.configPath)
        defer { second.terminateAndReap() }
        let leftovers = {
            ProcessTable.live(commandLine: ["sleep", "315"]).filter(orphans.contains).map {
                "\($0): \(ProcessTable.readFile("/proc/\($0)/cgroup") ?? "?") parent \(ProcessTable.entry($0)?.parentPID ?? 0)"
            }.joined(separator: "\n") + "\n" + second.logTail()
        }
        // Every supervisor empties the cgroups of dead ones when it starts: with tests running side by side,
        // another test's supervisor may be the one that does it, so the check is on the process, not the log line.
        try await eventually("sleep 315 killed at the next start", timeout: .seconds(10), context: leftovers) {
            ProcessTable.live(commandLine: ["sleep", "315"]).allSatisfy { !orphans.contains($0) }
        }
    }

    @Test func containmentModeIsReported() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        let health = try prefork.request("GET", "/healthz").json()
        #expect(["cgroup", "subreaper"].contains(health.string("containment") ?? ""))
        let listening = try #require(prefork.logEvents("listening").first)
        #expect(listening.string("containment") == health.string("containment"))
    }

    // MARK: Retention

    @Test func retainedResultBytesAreBoundedOldestFinishedJobFirst() async throws {
        let prefork = try await execSupervisor(
            "head -c 600 /dev/zero | tr '\\0' x", config: ["retention": ["max_result_bytes": 1000]])
        defer { prefork.terminateAndReap() }
        for index in 0..<3 {
            try prefork.enqueueAccepted(id: "big-\(index)", payload: "")
            try await prefork.waitForJob("big-\(index)", state: "done")
        }
        #expect(try prefork.request("GET", "/jobs/big-0").status == 404)
        #expect(try prefork.request("GET", "/jobs/big-2").status == 200)
        let metrics = try prefork.request("GET", "/metrics").text
        #expect(metrics.contains("prefork_jobs_evicted_total{reason=\"bytes\"} "))
        #expect(!metrics.contains("prefork_jobs_evicted_total{reason=\"bytes\"} 0\n"))
        #expect(metrics.contains("prefork_jobs_retained_result_bytes 600\n"))
    }
}
