import Foundation
import Glibc
import Testing

/// The `exec` handler: a configured command per job, payload on stdin, stdout as the result, stderr tail and
/// exit status in `last_error`, and a timeout that takes the command's whole process tree with the worker.
@Suite(.timeLimit(.minutes(1)))
struct ExecTests {
    /// A supervisor whose workers run `command` for every job.
    private func start(command: [String], config: [String: Any] = [:]) async throws -> PreforkProcess {
        try await PreforkProcess.start(config: deepMerge(["handler": "exec", "exec": ["command": command]], config))
    }

    @Test func successReturnsStdoutAndTheCommandSeesItsJobAndPayload() async throws {
        let command = ["/bin/sh", "-c", "printf '%s:%s:' \"$PREFORK_JOB_ID\" \"$PREFORK_ATTEMPT\"; cat"]
        let prefork = try await start(command: command)
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "exec-ok", payload: "hello from stdin")
        let done = try await prefork.waitForJob("exec-ok", state: "done")
        #expect(done.string("result") == "exec-ok:1:hello from stdin")
        #expect(done.int("attempts") == 1)
    }

    @Test func programIsLookedUpInPathAndGetsOnlyItsOwnStandardDescriptors() async throws {
        // `sh` lists its own descriptors (not those of `ls`, which opens the directory it reads).
        let prefork = try await start(command: ["sh", "-c", "ls /proc/$$/fd"])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "fds", payload: "")
        let done = try await prefork.waitForJob("fds", state: "done")
        let descriptors = (done.string("result") ?? "").split(separator: "\n").map(String.init)
        #expect(descriptors == ["0", "1", "2"], "the command inherited \(descriptors)")
    }

    @Test func nonZeroExitFailsWithTheStatusAndTheStandardErrorTail() async throws {
        let prefork = try await start(command: ["/bin/sh", "-c", "echo ignored; echo boom >&2; exit 3"])
        defer { prefork.terminateAndReap() }
        let workers = Set(try await prefork.waitForIdleWorkers(2))

        try prefork.enqueueAccepted(id: "exit-3", payload: "")
        let failed = try await prefork.waitForJob("exit-3", state: "failed")
        #expect(failed.string("last_error") == "command exited with status 3: boom")
        // A failing command is an ordinary failed attempt: the worker that ran it goes on serving.
        #expect(Set(try await prefork.waitForIdleWorkers(2)) == workers)
    }

    @Test func standardErrorKeepsOnlyItsLastFourKilobytes() async throws {
        // 20,000 bytes of "x" lines, then a marker line: only the end survives, and it ends with the marker.
        let script = "i=0; while [ $i -lt 2000 ]; do echo xxxxxxxxx >&2; i=$((i+1)); done; echo END >&2; exit 1"
        let prefork = try await start(command: ["/bin/sh", "-c", script])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "chatty", payload: "")
        let failed = try await prefork.waitForJob("chatty", state: "failed")
        let lastError = try #require(failed.string("last_error"))
        // The tail starts wherever 4 KiB before the end falls, mid-line here.
        #expect(lastError.hasPrefix("command exited with status 1: x"))
        #expect(lastError.hasSuffix("xxxxxxxxx\nEND"))
        #expect(lastError.utf8.count > "command exited with status 1: ".utf8.count + 4000)
        #expect(lastError.utf8.count <= "command exited with status 1: ".utf8.count + 4096)
    }

    @Test func commandKilledBySignalFailsNamingTheSignal() async throws {
        let prefork = try await start(command: ["/bin/sh", "-c", "echo dying >&2; kill -TERM $$; sleep 5"])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "term", payload: "")
        let failed = try await prefork.waitForJob("term", state: "failed")
        #expect(failed.string("last_error") == "command killed by signal 15 (SIGTERM): dying")
    }

    @Test func missingProgramFailsTheAttempt() async throws {
        let prefork = try await start(command: ["prefork-no-such-program", "--flag"])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "missing", payload: "x")
        let failed = try await prefork.waitForJob("missing", state: "failed")
        #expect(failed.string("last_error") == "cannot run prefork-no-such-program: No such file or directory")
        try await prefork.waitForIdleWorkers(2)
    }

    @Test func payloadLargerThanAPipeBufferRoundTripsThroughCat() async throws {
        let payload = String(repeating: "0123456789abcdefghijklmnopqrstuvwxyz\n", count: 300_000 / 37 + 1)
        #expect(payload.utf8.count > 300_000)
        let prefork = try await start(command: ["cat"], config: ["max_payload_bytes": 400_000])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "big", payload: payload)
        let done = try await prefork.waitForJob("big", state: "done", timeout: .seconds(10))
        let result = try #require(done.string("result"))
        #expect(result.utf8.count == payload.utf8.count)
        #expect(result == payload)
    }

    @Test func standardOutputIsCappedAtOneMebibyte() async throws {
        // 2 MiB of output: the command must not block on a full pipe, and the result keeps the first 1 MiB.
        let prefork = try await start(command: ["/bin/sh", "-c", "head -c 2097152 /dev/zero | tr '\\0' a"])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "flood", payload: "")
        let done = try await prefork.waitForJob("flood", state: "done", timeout: .seconds(10))
        let result = try #require(done.string("result"))
        #expect(result.utf8.count == 1024 * 1024)
        #expect(result.utf8.allSatisfy { $0 == UInt8(ascii: "a") })
    }

    @Test func timeoutKillsTheCommandAndEverythingItStarted() async throws {
        let markers = try TemporaryDirectory()
        defer { markers.remove() }
        let marker = markers.path + "/background.pid"
        // The background sleep's pid goes to the marker; `$0` is the marker path (sh -c's first operand).
        let script = "sleep 30 & echo $! > \"$0\"; sleep 30"
        let prefork = try await start(command: ["/bin/sh", "-c", script, marker], config: ["job_timeout_ms": 300])
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(2)

        try prefork.enqueueAccepted(id: "tree", payload: "")
        let worker = try await prefork.waitForWorker(runningJob: "tree")
        let start = ContinuousClock.now
        let failed = try await prefork.waitForJob("tree", state: "failed", timeout: .seconds(20))
        #expect(elapsed(since: start) < .seconds(15))  // not the 30 s the command would take
        #expect(failed.string("last_error") == "timeout after 300 ms")

        let markerText = (try? String(contentsOfFile: marker, encoding: .utf8)) ?? ""
        let background = try #require(
            pid_t(markerText.trimmingCharacters(in: .whitespacesAndNewlines)), "the command never wrote its marker")
        try await prefork.eventually("no process left in the killed worker's group \(worker)") {
            Self.liveProcesses(inGroup: worker).isEmpty
        }
        // The command runs in a process group of its own: the sleep must be gone whatever its group.
        try await prefork.eventually("background sleep \(background) killed") { !Self.liveSleep(background) }

        let after = try await prefork.waitForIdleWorkers(2)
        #expect(!after.contains(worker), "timed-out worker \(worker) still listed")
        #expect(!ProcessTable.isLiveWorker(worker))
    }

    @Test func commandsLeaveNoDescriptorsOrChildrenInTheWorker() async throws {
        // The first attempt fails, the retry succeeds: both paths run on the only worker.
        let script = "cat > /dev/null; echo out; echo err >&2; [ \"$PREFORK_ATTEMPT\" = 1 ] && exit 1; exit 0"
        let prefork = try await start(command: ["/bin/sh", "-c", script], config: ["workers": 1])
        defer { prefork.terminateAndReap() }
        let worker = try #require(try await prefork.waitForIdleWorkers(1).first)
        let before = ProcessTable.openFiles(worker)

        for index in 0..<3 {
            try prefork.enqueueAccepted(id: "tidy-\(index)", payload: "some input", maxRetries: 1)
            let done = try await prefork.waitForJob("tidy-\(index)", state: "done")
            #expect(done.int("attempts") == 2)
            #expect(done.string("result") == "out\n")
        }
        #expect(try await prefork.waitForIdleWorkers(1) == [worker])
        #expect(ProcessTable.openFiles(worker) == before)
        #expect(ProcessTable.children(of: worker).isEmpty, "\(ProcessTable.children(of: worker))")
    }

    @Test func handlerExecWithoutACommandIsAUsageError() async throws {
        let run = try await CommandRun.worker(["--handler", "exec"])
        #expect(run.status == .exited(2))
        #expect(run.stderr.contains("--command"), "stderr: \(run.stderr)")
    }

    // MARK: /proc

    /// Live (non-zombie) processes in process group `group`, with their command lines.
    private static func liveProcesses(inGroup group: pid_t) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap(pid_t.init).compactMap { pid in
            guard let entry = ProcessTable.entry(pid), entry.processGroup == group, !entry.isZombie else { return nil }
            return "\(entry) cmdline \(commandLine(pid) ?? [])"
        }
    }

    /// Whether `pid` is still a live `sleep 30` (a reused pid is something else).
    private static func liveSleep(_ pid: pid_t) -> Bool {
        guard let entry = ProcessTable.entry(pid), !entry.isZombie else { return false }
        return commandLine(pid) == ["sleep", "30"]
    }

    private static func commandLine(_ pid: pid_t) -> [String]? {
        ProcessTable.readFile("/proc/\(pid)/cmdline")?.split(separator: "\0").map(String.init)
    }
}
