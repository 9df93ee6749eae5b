import Foundation
import Glibc
import Testing

/// Worker resource limits (`worker.memory_limit_mb`, `worker.cpu_limit_s`) and the `@oom` directive that runs
/// into the memory limit.
@Suite(.timeLimit(.minutes(1)))
struct LimitsTests {
    @Test func oomFailsTheAttemptAndTheSameWorkerGoesOnServing() async throws {
        let prefork = try await PreforkProcess.start(config: ["workers": 1, "worker": ["memory_limit_mb": 128]])
        defer { prefork.terminateAndReap() }
        let workers = try await prefork.waitForIdleWorkers(1)

        try prefork.enqueueAccepted(id: "oom", payload: "@oom")
        let failed = try await prefork.waitForJob("oom", state: "failed", timeout: .seconds(10))
        let lastError = try #require(failed.string("last_error"))
        #expect(lastError.contains("memory"))
        #expect(lastError.hasPrefix("out of memory: allocation failed after "), "last_error \(lastError)")
        #expect(lastError.hasSuffix(" MiB (worker.memory_limit_mb = 128)"), "last_error \(lastError)")

        try prefork.enqueueAccepted(id: "after-oom", payload: "@ok")
        let done = try await prefork.waitForJob("after-oom", state: "done")
        #expect(done.string("result") == "ok")
        #expect(try await prefork.waitForIdleWorkers(1) == workers, "the worker was replaced")
        #expect(prefork.logEvents("worker_exited").isEmpty)
    }

    @Test func oomWithoutAMemoryLimitIsRefused() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "oom", payload: "@oom")
        let failed = try await prefork.waitForJob("oom", state: "failed")
        #expect(
            failed.string("last_error")
                == "@oom needs worker.memory_limit_mb (refusing to allocate without a limit)")
    }

    @Test func workersStartInsideTheirLimits() async throws {
        let prefork = try await PreforkProcess.start(config: ["worker": ["memory_limit_mb": 256, "cpu_limit_s": 7]])
        defer { prefork.terminateAndReap() }

        for pid in try await prefork.waitForIdleWorkers(2) {
            let limits = try #require(ProcessTable.readFile("/proc/\(pid)/limits"))
            let lines = limits.split(separator: "\n")
            let addressSpace = try #require(lines.first { $0.hasPrefix("Max address space") })
            #expect(addressSpace.split(separator: " ").contains("268435456"), "\(addressSpace)")
            let cpu = try #require(lines.first { $0.hasPrefix("Max cpu time") })
            #expect(cpu.split(separator: " ").prefix(5).elementsEqual(["Max", "cpu", "time", "7", "8"]), "\(cpu)")
        }
    }

    @Test func commandsInheritTheCPULimit() async throws {
        let prefork = try await PreforkProcess.start(config: [
            "job_timeout_ms": 10000, "handler": "exec", "exec": ["command": ["/bin/sh", "-c", "while :; do :; done"]],
            "worker": ["cpu_limit_s": 1],
        ])
        defer { prefork.terminateAndReap() }

        try prefork.enqueueAccepted(id: "spin", payload: "")
        let failed = try await prefork.waitForJob("spin", state: "failed", timeout: .seconds(10))
        #expect(failed.string("last_error") == "command killed by signal 24 (SIGXCPU)")
    }

    @Test(arguments: [
        (["--memory-limit-mb", "0"], "--memory-limit-mb"),
        (["--memory-limit-mb", "lots"], "--memory-limit-mb"),
        (["--memory-limit-mb=-5"], "--memory-limit-mb"),
        (["--cpu-limit-s", "0"], "--cpu-limit-s"),
        (["--cpu-limit-s", "1.5"], "--cpu-limit-s"),
        (["--cpu-limit-s"], "--cpu-limit-s"),
    ])
    func invalidLimitIsAUsageErrorNamingTheFlag(arguments: [String], flag: String) async throws {
        let run = try await CommandRun.worker(arguments)
        #expect(run.status == .exited(2))
        #expect(run.stderr.contains(flag), "stderr: \(run.stderr)")
    }
}
