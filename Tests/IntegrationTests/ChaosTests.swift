import Foundation
import Glibc
import Testing

/// A reproducible random generator (SplitMix64), so a failing run can be replayed from its printed seed.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

/// A bounded chaos soak: random job behaviour, random worker kills, scaling and reload signals, and one SIGKILL
/// of the supervisor with a restart in the middle. At the end every acknowledged job is finished, no attempt
/// count passes its bound, the metrics agree with the records, and nothing leaked: no zombie, no descriptor, no
/// stray process. `PREFORK_CHAOS_SEED=N swift test --filter ChaosTests` replays a run.
@Suite(.serialized) struct ChaosTests {
    private static let directives = [
        "@ok", "@ok", "@ok", "@fail", "@crash", "@abort", "@exit 3", "@sleep 20", "@sleep 60", "@garbage", "@hang",
    ]

    @Test func everyAcknowledgedJobFinishesAndNothingLeaks() async throws {
        let seed =
            ProcessInfo.processInfo.environment["PREFORK_CHAOS_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...1_000_000)
        print("chaos seed: \(seed) (replay with PREFORK_CHAOS_SEED=\(seed))")
        var random = SeededGenerator(state: seed)
        let config: [String: Any] = [
            "workers": 3, "queue_size": 10_000, "job_timeout_ms": 400, "shutdown_timeout_ms": 2000,
            "backoff": ["base_ms": 1, "max_ms": 20], "worker": ["restart_delay_max_ms": 100],
        ]
        var maxRetries: [String: Int] = [:]
        var first: PreforkProcess? = try await PreforkProcess.start(config: config)
        defer { first?.terminateAndReap() }
        let directory = first!.directory
        let configPath = first!.configPath

        // Phase one: load and chaos, then a SIGKILL of the supervisor.
        try await chaos(on: first!, jobs: 150, prefix: "a", random: &random, maxRetries: &maxRetries)
        first!.keepDirectoryOnTeardown()
        first!.terminateAndReap()
        first = nil

        // Phase two: a restart on the same journal, more load and chaos, then everything finishes.
        let second = try await PreforkProcess.start(in: directory, configPath: configPath)
        defer { second.terminateAndReap() }
        try await second.eventually("3 live workers", timeout: .seconds(10)) { try second.liveWorkerPIDs().count == 3 }
        let filesAtStart = ProcessTable.openFiles(second.pid)
        let descriptorsAtStart = filesAtStart.count
        try await chaos(on: second, jobs: 150, prefix: "b", random: &random, maxRetries: &maxRetries)

        var records: [String: [String: Any]] = [:]
        try await second.eventually("every acknowledged job finished", timeout: .seconds(30)) {
            for id in maxRetries.keys where records[id].map({ !Self.isFinished($0) }) ?? true {
                records[id] = try second.job(id)
            }
            return records.count == maxRetries.count && records.values.allSatisfy(Self.isFinished)
        }
        for (id, record) in records {
            let attempts = record.int("attempts") ?? 0
            // One attempt per allowed retry, plus one grace attempt for each interruption by the restart.
            #expect(attempts <= maxRetries[id]! + 2, "seed \(seed): \(id) ran \(attempts) attempts: \(record)")
            if record.string("state") == "done" { #expect(attempts >= 1, "seed \(seed): \(id)") }
        }
        let metrics = try second.request("GET", "/metrics").text
        #expect(metrics.contains("prefork_queue_depth 0\n"), "seed \(seed)")
        #expect(metrics.contains("prefork_jobs_running 0\n"), "seed \(seed)")
        let listed = try second.request("GET", "/jobs?limit=10000").json().objects("jobs") ?? []
        #expect(metrics.contains("prefork_jobs_retained \(listed.count)\n"), "seed \(seed)")

        // Leaks: back to 3 workers (`prefork ctl scale 3`: a SIGHUP keeps a count changed by SIGTTIN/SIGTTOU), let
        // respawns settle, then no zombie, descriptors as at start, no stray child.
        let scaled = try await CommandRun.supervisor(["ctl", "scale", "3", "--data-dir", directory.path])
        #expect(scaled.status == .exited(0), "\(scaled.stderr)")
        try await second.eventually("3 live workers and no other child", timeout: .seconds(10)) {
            try second.liveWorkerPIDs().count == 3 && second.children.filter { !$0.isZombie }.count == 3
        }
        try await second.waitForNoZombies()
        try await eventually(
            "descriptors back to \(filesAtStart.count)", timeout: .seconds(5),
            context: {
                "at start: \(filesAtStart.sorted { $0.key < $1.key })\n"
                    + "now: \(ProcessTable.openFiles(second.pid).sorted { $0.key < $1.key })\n" + second.logTail()
            }
        ) {
            ProcessTable.openFiles(second.pid).count <= descriptorsAtStart + 2
        }
        #expect(second.children.allSatisfy { $0.command == ProcessTable.workerCommand }, "\(second.children)")
        second.sendSignal(SIGTERM)
        #expect(try await second.waitForExit() == .exited(0), "seed \(seed)")
    }

    private static func isFinished(_ record: [String: Any]) -> Bool {
        ["done", "failed", "canceled"].contains(record.string("state") ?? "")
    }

    /// Enqueues `jobs` random jobs over about five seconds while killing workers and sending scaling and reload
    /// signals at random; records every acknowledged job's `max_retries`.
    private func chaos(
        on prefork: PreforkProcess, jobs: Int, prefix: String, random: inout SeededGenerator,
        maxRetries: inout [String: Int]
    ) async throws {
        for index in 0..<jobs {
            let id = "\(prefix)-\(index)"
            let retries = Int.random(in: 0...3, using: &random)
            let payload = Self.directives.randomElement(using: &random)!
            if try prefork.enqueue(id: id, payload: payload, maxRetries: retries).status == 202 {
                maxRetries[id] = retries
            }
            switch Int.random(in: 0..<20, using: &random) {
            case 0:
                if let worker = try prefork.liveWorkerPIDs().randomElement(using: &random) { kill(worker, SIGKILL) }
            case 1: prefork.sendSignal(SIGTTIN)
            case 2: prefork.sendSignal(SIGTTOU)
            case 3: prefork.sendSignal(SIGHUP)
            default: break
            }
            if index % 10 == 0 { try await Task.sleep(for: .milliseconds(Int.random(in: 100...300, using: &random))) }
        }
    }
}
