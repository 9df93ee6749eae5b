import Foundation
import Glibc
import Synchronization
import Testing

/// The Swift example worker (`examples/swift-worker`, a separate package that depends on this one by path) run
/// with `handler: "program"`: warm state, failures, crashes, timeouts and progress, as with the Python SDK.
@Suite(.timeLimit(.minutes(5)))
struct SwiftWorkerTests {
    /// Builds the example once per test run (into `.build/examples/swift-worker`) and returns its executable.
    static func exampleWorker() async throws -> String {
        try await ExampleBuild.shared.path()
    }

    private func start(config: [String: Any] = [:]) async throws -> PreforkProcess {
        let worker = try await Self.exampleWorker()
        return try await PreforkProcess.start(
            config: deepMerge(
                [
                    "workers": 1, "handler": "program",
                    "program": ["command": [worker], "env": ["PRIMES_LIMIT": "2000000"]],
                    "worker": ["start_timeout_ms": 20_000],
                ],
                config))
    }

    @Test func theTableBuiltAtStartServesEveryJob() async throws {
        let prefork = try await start()
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "n", payload: "nth 100000")
        #expect(try await prefork.waitForJob("n", state: "done", timeout: .seconds(30)).string("result") == "1299709")
        var counts: [String] = []
        for index in 0..<3 {
            try prefork.enqueueAccepted(id: "c\(index)", payload: "count")
            counts.append(try await prefork.waitForJob("c\(index)", state: "done").string("result") ?? "")
        }
        #expect(Set(counts.map { $0.split(separator: " ")[0] }).count == 1)
        #expect(counts.last?.hasSuffix(" 4") == true)
        #expect(try await prefork.waitForLog(event: "worker_ready").string("version") == "primes-worker 1.0")
    }

    @Test func aFailureIsRetriedAndACrashIsChargedAndReplaced() async throws {
        let prefork = try await start()
        defer { prefork.terminateAndReap() }
        try prefork.enqueueAccepted(id: "f", payload: "fail not today", maxRetries: 1)
        let failed = try await prefork.waitForJob("f", state: "failed", timeout: .seconds(30))
        #expect(failed.string("last_error") == "not today")
        #expect(failed.int("attempts") == 2)
        let before = try await prefork.waitForIdleWorkers(1)
        try prefork.enqueueAccepted(id: "x", payload: "crash")
        let crashed = try await prefork.waitForJob("x", state: "failed", timeout: .seconds(30))
        #expect(crashed.objects("history")?.first?.string("outcome") == "crash")
        #expect(try await prefork.waitForIdleWorkers(1, timeout: .seconds(30)) != before)
    }

    @Test func aTimeoutKillsItAndProgressShowsWhileItRuns() async throws {
        let prefork = try await start(config: ["job_timeout_ms": 60_000])
        defer { prefork.terminateAndReap() }
        try prefork.request("POST", "/enqueue", body: #"{"id": "t", "payload": "sleep 20000", "timeout_ms": 5000}"#)
        let running = try await prefork.waitForJob("t", "progress reported", timeout: .seconds(30)) {
            ($0.object("progress")?.int("percent") ?? 0) >= 10 || $0.string("state") == "failed"
        }
        #expect(running.object("progress")?.string("note")?.hasPrefix("step ") == true)
        let failed = try await prefork.waitForJob("t", state: "failed", timeout: .seconds(30))
        #expect(failed.objects("history")?.first?.string("outcome") == "timeout")
    }
}

/// The one build of the example worker per test run.
actor ExampleBuild {
    static let shared = ExampleBuild()
    private var built: String?

    func path() async throws -> String {
        if let built { return built }
        let scratch = Repository.root + "/.build/examples/swift-worker"
        let swift = ["/opt/swift/usr/bin/swift", "/usr/bin/swift"].first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? "/usr/bin/env"
        let arguments = (swift == "/usr/bin/env" ? ["swift"] : []) + [
            "build", "-c", "release", "--package-path", Repository.root + "/examples/swift-worker", "--scratch-path", scratch,
        ]
        let run = try await CommandRun.run(swift, arguments, timeout: .seconds(600))
        guard run.status == .exited(0) else {
            throw SpawnError(description: "building examples/swift-worker failed:\n\(run.stdout)\n\(run.stderr)")
        }
        let path = scratch + "/release/primes-worker"
        built = path
        return path
    }
}
