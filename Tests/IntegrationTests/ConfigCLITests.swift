import Foundation
import Testing

/// Configuration precedence, `--check-config`, and rejection of bad settings before anything starts.
@Suite(.timeLimit(.minutes(1)))
struct ConfigCLITests {
    @Test func checkConfigPrintsEffectiveConfigWithOverridesInOrder() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try directory.writeJSON(
            [
                "workers": 3, "queue_size": 4, "job_timeout_ms": 1234, "listen": "127.0.0.1:7001",
                "data_dir": directory.path + "/from-file",
                "backoff": ["base_ms": 7, "max_ms": 70],
                "http": ["max_body_bytes": 4096],
            ],
            to: "config.json")

        let run = try await CommandRun.supervisor(
            ["--config", config, "--workers", "7", "--data-dir", directory.path + "/from-flag", "--check-config"],
            environment: [
                "WORKERS": "5", "QUEUE_SIZE": "9", "PREFORK_LISTEN": "127.0.0.1:7002",
                "PREFORK_LOG_LEVEL": "debug",
            ])
        #expect(run.status == .exited(0), "stderr: \(run.stderr)")
        let effective = try run.stdoutJSON()
        #expect(effective.int("workers") == 7, "flag beats env and file")
        #expect(effective.int("queue_size") == 9, "env beats file")
        #expect(effective.string("listen") == "127.0.0.1:7002", "env beats file")
        #expect(effective.string("data_dir") == directory.path + "/from-flag", "flag beats file")
        #expect(effective.string("log_level") == "debug")
        #expect(effective.int("job_timeout_ms") == 1234, "file beats default")
        #expect(effective.int("shutdown_timeout_ms") == 30000, "default kept")
        let backoff = try #require(effective["backoff"] as? [String: Any], "no backoff object in \(run.stdout)")
        #expect(backoff.int("base_ms") == 7)
        #expect(backoff.int("max_ms") == 70)
        let http = try #require(effective["http"] as? [String: Any], "no http object in \(run.stdout)")
        #expect(http.int("max_body_bytes") == 4096)
        #expect(http.int("max_connections") == 1024, "nested default kept beside a nested override")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/from-flag"), "--check-config started up")
    }

    @Test func checkConfigWithoutAFileShowsTheDefaults() async throws {
        let run = try await CommandRun.supervisor(["--check-config"])
        #expect(run.status == .exited(0), "stderr: \(run.stderr)")
        let effective = try run.stdoutJSON()
        #expect(effective.string("listen") == "127.0.0.1:8080")
        #expect(effective.int("workers") == 4)
        #expect(effective.int("queue_size") == 64)
        #expect(effective.int("job_timeout_ms") == 30000)
        #expect(effective.string("log_level") == "info")
        let simulate = try #require(effective["simulate"] as? [String: Any])
        #expect(simulate.int("min_ms") == 100)
        #expect(simulate.int("max_ms") == 500)
        #expect(simulate.bool("directives") == false)
    }

    /// A bad config file and the name its error must mention.
    struct BadConfig: Sendable, CustomTestStringConvertible {
        let name: String
        let json: String
        let mentions: String
        var testDescription: String { name }
    }

    static let badConfigs: [BadConfig] = [
        BadConfig(name: "unknown top-level key", json: #"{"wokers": 2}"#, mentions: "wokers"),
        BadConfig(name: "unknown nested key", json: #"{"http": {"max_bodybytes": 10}}"#, mentions: "max_bodybytes"),
        BadConfig(name: "workers wrong type", json: #"{"workers": "two"}"#, mentions: "workers"),
        BadConfig(name: "fail_rate wrong type", json: #"{"simulate": {"fail_rate": "high"}}"#, mentions: "fail_rate"),
        BadConfig(name: "workers zero", json: #"{"workers": 0}"#, mentions: "workers"),
        BadConfig(name: "negative queue_size", json: #"{"queue_size": -1}"#, mentions: "queue_size"),
        BadConfig(name: "not JSON", json: #"{"workers": 2"#, mentions: "config"),
    ]

    @Test(arguments: badConfigs)
    func badConfigFileExits2NamingTheKey(_ bad: BadConfig) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/config.json"
        try Data(bad.json.utf8).write(to: URL(fileURLWithPath: path))

        let run = try await CommandRun.supervisor(
            ["--config", path, "--listen", "127.0.0.1:0", "--data-dir", directory.path])
        #expect(run.status == .exited(2), "stderr: \(run.stderr)")
        #expect(run.stderr.lowercased().contains(bad.mentions.lowercased()), "stderr: \(run.stderr)")
        #expect(!run.stderr.contains("\"listening\""), "started despite a bad config")
    }

    @Test func zeroWorkersFlagIsRejected() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let run = try await CommandRun.supervisor(
            ["--workers", "0", "--listen", "127.0.0.1:0", "--data-dir", directory.path])
        #expect(run.status != .exited(0))
        #expect(run.status == .exited(2), "bad configuration exits 2")
        #expect(run.stderr.lowercased().contains("workers"), "stderr: \(run.stderr)")
    }

    @Test func zeroWorkersFromTheEnvironmentIsRejected() async throws {
        let run = try await CommandRun.supervisor(["--check-config"], environment: ["WORKERS": "0"])
        #expect(run.status == .exited(2))
        #expect(run.stderr.lowercased().contains("workers"), "stderr: \(run.stderr)")
    }

    @Test func nonNumericFlagIsRejected() async throws {
        let run = try await CommandRun.supervisor(["--queue-size", "lots", "--check-config"])
        #expect(run.status != .exited(0))
        #expect(run.stderr.contains("queue"), "stderr: \(run.stderr)")
    }

    @Test func unknownFlagIsRejected() async throws {
        let run = try await CommandRun.supervisor(["--wrokers", "3", "--check-config"])
        #expect(run.status != .exited(0))
        #expect(run.stderr.contains("--wrokers"), "stderr: \(run.stderr)")
    }

    @Test func missingConfigFileIsRejected() async throws {
        let run = try await CommandRun.supervisor(["--config", "/nonexistent/prefork.json", "--check-config"])
        #expect(run.status != .exited(0))
        #expect(run.stderr.contains("/nonexistent/prefork.json"), "stderr: \(run.stderr)")
    }

    @Test func helpPrintsUsageAndExits0() async throws {
        let run = try await CommandRun.supervisor(["--help"])
        #expect(run.status == .exited(0))
        let usage = run.stdout + run.stderr
        for flag in ["--config", "--listen", "--workers", "--queue-size", "--data-dir", "--check-config"] {
            #expect(usage.contains(flag), "usage lacks \(flag)")
        }
    }
}
