import Foundation
import Glibc
import Testing

/// Where the repository is (for the SDKs, fixtures and examples the tests run).
enum Repository {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
}

/// `handler: "program"` with the Python SDK: the user's code loaded once per worker process, and everything the
/// built-in worker gets: crash accounting, timeouts that take the process group, protocol errors, start timeouts,
/// memory limits, recycling, drain and progress.
@Suite(.timeLimit(.minutes(3)))
struct ProgramWorkerTests {
    static let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A supervisor whose workers run the Python fixture worker.
    /// Nil (the test skips) without python3.
    private func start(
        workers: Int = 1, config: [String: Any] = [:], env: [String: String] = [:]
    ) async throws -> PreforkProcess? {
        guard Component.require(Self.python != nil, "python3"), let python = Self.python else { return nil }
        let base: [String: Any] = [
            "workers": workers, "handler": "program",
            "program": [
                "command": [python, Repository.root + "/Tests/Fixtures/python_worker.py"],
                "env": ["PYTHONPATH": Repository.root + "/sdk/python"].merging(env) { $1 },
            ],
            "worker": ["start_timeout_ms": 20_000],
        ]
        return try await PreforkProcess.start(config: deepMerge(base, config))
    }

    @Test func stateLoadedAtImportSurvivesAcrossJobs() async throws {
        guard let prefork = try await start() else { return }
        defer { prefork.terminateAndReap() }
        var results: [String] = []
        for index in 0..<4 {
            try prefork.enqueueAccepted(id: "c\(index)", payload: "count")
            results.append(try await prefork.waitForJob("c\(index)", state: "done", timeout: .seconds(20)).string("result") ?? "")
        }
        let pids = Set(results.map { $0.split(separator: " ")[0] })
        #expect(pids.count == 1, "one warm process ran every job: \(results)")
        #expect(results.last?.hasSuffix(" 4") == true)
        let ready = try await prefork.waitForLog(event: "worker_ready")
        #expect(ready.string("version")?.hasPrefix("prefork-python ") == true)
    }

    @Test func anExceptionFailsTheAttemptWithItsMessageAndIsRetried() async throws {
        guard let prefork = try await start() else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "e", payload: "raise the sky fell", maxRetries: 1)
        let failed = try await prefork.waitForJob("e", state: "failed", timeout: .seconds(20))
        #expect(failed.string("last_error") == "ValueError: the sky fell")
        #expect(failed.int("attempts") == 2)
        #expect(failed.objects("history")?.map { $0.string("outcome") ?? "" } == ["error", "error"])
    }

    @Test func aSegfaultIsACrashNamingTheSignalAndTheWorkerIsReplaced() async throws {
        guard let prefork = try await start() else { return }
        defer { prefork.terminateAndReap() }
        let before = try await prefork.waitForIdleWorkers(1, timeout: .seconds(20))
        try prefork.enqueueAccepted(id: "s", payload: "segv")
        let failed = try await prefork.waitForJob("s", state: "failed", timeout: .seconds(20))
        #expect(failed.string("last_error")?.contains("SIGSEGV") == true, "\(failed)")
        #expect(failed.objects("history")?.first?.string("outcome") == "crash")
        let after = try await prefork.waitForIdleWorkers(1, timeout: .seconds(20))
        #expect(after != before)
    }

    @Test func aJobPastItsTimeoutIsKilledWithItsProcessGroup() async throws {
        guard let prefork = try await start(config: ["job_timeout_ms": 1500]) else { return }
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(1, timeout: .seconds(20))
        let marker = prefork.directory.path + "/child.pid"
        try prefork.enqueueAccepted(id: "t", payload: "spawn \(marker)")
        try await prefork.eventually("the handler started its child", timeout: .seconds(10)) {
            FileManager.default.fileExists(atPath: marker)
        }
        let child = pid_t(try String(contentsOfFile: marker, encoding: .utf8)) ?? 0
        let failed = try await prefork.waitForJob("t", state: "failed", timeout: .seconds(10))
        #expect(failed.objects("history")?.first?.string("outcome") == "timeout")
        try await prefork.eventually("the handler's child is gone") { !ProcessTable.workerExists(child) }
    }

    @Test func garbageOnTheResultPipeIsAProtocolError() async throws {
        guard let prefork = try await start() else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "g", payload: "garbage")
        let failed = try await prefork.waitForJob("g", state: "failed", timeout: .seconds(20))
        #expect(failed.objects("history")?.first?.string("outcome") == "protocol")
        try await prefork.waitForLog(event: "worker_protocol_error")
    }

    @Test func aProgramThatExitsBeforeReadyGetsTheRestartDelay() async throws {
        guard let prefork = try await start(env: ["FIXTURE_START": "exit"]) else { return }
        defer { prefork.terminateAndReap() }
        let delayed = try await prefork.waitForLog(event: "worker_restart_delayed", timeout: .seconds(20))
        #expect((delayed.int("delay_ms") ?? 0) > 0)
    }

    @Test func aProgramThatNeverSaysReadyIsKilledAtTheStartTimeout() async throws {
        guard let prefork = try await start(config: ["worker": ["start_timeout_ms": 1000]], env: ["FIXTURE_START": "hang"]) else { return }
        defer { prefork.terminateAndReap() }
        let timedOut = try await prefork.waitForLog(event: "worker_start_timeout", timeout: .seconds(20))
        #expect(timedOut.int("timeout_ms") == 1000)
        try await prefork.waitForLog(event: "worker_restart_delayed", timeout: .seconds(20))
    }

    @Test func theMemoryLimitStopsAHandlerThatAllocatesWithoutBound() async throws {
        guard let prefork = try await start(config: ["worker": ["memory_limit_mb": 200], "job_timeout_ms": 60_000]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "m", payload: "alloc")
        let failed = try await prefork.waitForJob("m", state: "failed", timeout: .seconds(30))
        // Python raises MemoryError (the attempt fails, the worker lives) or dies trying (a crash): either way the
        // attempt fails and the service goes on.
        #expect(
            failed.string("last_error")?.contains("MemoryError") == true
                || failed.objects("history")?.first?.string("outcome") == "crash", "\(failed)")
        try prefork.enqueueAccepted(id: "after", payload: "echo still here")
        #expect(try await prefork.waitForJob("after", state: "done", timeout: .seconds(20)).string("result") == "still here")
    }

    @Test func maxJobsRecyclesTheWorker() async throws {
        guard let prefork = try await start(config: ["worker": ["max_jobs": 2]]) else { return }
        defer { prefork.terminateAndReap() }
        var pids: [String] = []
        for index in 0..<4 {
            try prefork.enqueueAccepted(id: "r\(index)", payload: "count")
            let result = try await prefork.waitForJob("r\(index)", state: "done", timeout: .seconds(20)).string("result") ?? ""
            pids.append(String(result.split(separator: " ")[0]))
        }
        #expect(pids[0] == pids[1] && pids[2] == pids[3] && pids[1] != pids[2], "\(pids)")
        try await prefork.waitForLog(event: "worker_recycled")
    }

    @Test func sigtermLetsARunningJobFinishAndReapsEverything() async throws {
        guard let prefork = try await start(config: ["shutdown_timeout_ms": 20_000]) else { return }
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "d", payload: "sleep 1.5")
        try await prefork.waitForJob("d", state: "running", timeout: .seconds(20))
        let worker = try await prefork.waitForWorker(runningJob: "d")
        prefork.sendSignal(SIGTERM)
        #expect(try await prefork.waitForExit(timeout: .seconds(20)) == .exited(0))
        #expect(!ProcessTable.workerExists(worker))
        let done = try await prefork.waitForLog(event: "job_done", where: { $0.string("id") == "d" })
        #expect(done.int("attempt") == 1)
    }

    @Test func progressShowsInTheRecordWhileTheJobRuns() async throws {
        // The job runs until the test opens its gate: no timeout a loaded machine could reach first.
        guard let prefork = try await start(config: ["job_timeout_ms": 60_000]) else { return }
        defer { prefork.terminateAndReap() }
        let gate = prefork.directory.path + "/go"
        try prefork.enqueueAccepted(id: "p", payload: "progress \(gate)")
        let running = try await prefork.waitForJob("p", "progress 50", timeout: .seconds(20)) {
            $0.object("progress")?.int("percent") == 50
        }
        #expect(running.object("progress")?.string("note") == "half")
        FileManager.default.createFile(atPath: gate, contents: nil)
        let done = try await prefork.waitForJob("p", state: "done", timeout: .seconds(10))
        #expect(done["progress"] is NSNull)
        #expect(done.string("result") == "finished")
    }

    @Test func theSDKsOwnUnitTestsPass() async throws {
        guard Component.require(Self.python != nil, "python3"), let python = Self.python else { return }
        let run = try await CommandRun.run(
            python, ["-m", "unittest", "discover", "-s", Repository.root + "/sdk/python/tests"],
            timeout: .seconds(120))
        #expect(run.status == .exited(0), "\(run.stdout)\n\(run.stderr)")
    }

    @Test func checkConfigRefusesAProgramNotInPath() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.writeJSON(
            ["handler": "program", "program": ["command": ["prefork-no-such-program"]]], to: "c.json")
        let run = try await CommandRun.supervisor(["--config", path, "--check-config"])
        #expect(run.status == .exited(2))
        #expect(run.stderr.contains("program.command: prefork-no-such-program is not found in PATH"))
    }
}
