import Foundation
import Glibc

/// PostgreSQL for the scale-out tests: `PREFORK_TEST_POSTGRES_URL` (started by .ci/run with
/// scripts/test-postgres), each test in a schema of its own so tests running side by side never share tables;
/// or a private cluster of its own for tests that stop the server.
enum PostgresCluster {
    /// The shared cluster's URL, or nil (then the test skips, or fails under CI=true).
    static var sharedURL: String? {
        ProcessInfo.processInfo.environment["PREFORK_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A fresh schema in the shared cluster; the URL selects it (search_path). Nil when there is no cluster.
    static func freshSchema() async throws -> String? {
        guard let url = sharedURL else { return nil }
        let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let run = try await CommandRun.run(psql, [url, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE SCHEMA \(schema)"])
        guard run.status == .exited(0) else { throw SpawnError(description: "psql: \(run.stderr)") }
        return url + (url.contains("?") ? "&" : "?") + "options=-c%20search_path%3D\(schema)"
    }

    /// Runs one SQL statement with psql and returns its unaligned output.
    static func query(_ url: String, _ sql: String) async throws -> String {
        let run = try await CommandRun.run(psql, [url, "-v", "ON_ERROR_STOP=1", "-AtXqc", sql])
        guard run.status == .exited(0) else { throw SpawnError(description: "psql \(sql): \(run.stderr)") }
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static let psql = ["/usr/bin/psql", "/usr/local/bin/psql"].first { FileManager.default.isExecutableFile(atPath: $0) }
        ?? "/usr/bin/psql"

    /// A private cluster (scripts/test-postgres start), stopped by `stop()`.
    struct Private {
        let directory: String
        let url: String

        static func start() async throws -> Private {
            let run = try await CommandRun.run(
                Repository.root + "/scripts/test-postgres", ["start"], timeout: .seconds(120))
            guard run.status == .exited(0) else { throw SpawnError(description: "test-postgres start: \(run.stderr)") }
            var values: [String: String] = [:]
            for line in run.stdout.split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                values[String(line[..<equals])] = String(line[line.index(after: equals)...]).trimmingCharacters(in: CharacterSet(charactersIn: "'"))
            }
            guard let directory = values["PREFORK_TEST_POSTGRES_DIR"], let url = values["PREFORK_TEST_POSTGRES_URL"] else {
                throw SpawnError(description: "test-postgres start printed no URL: \(run.stdout)")
            }
            return Private(directory: directory, url: url)
        }

        /// `pg_ctl stop -m immediate` / `start`: the server vanishes without a clean shutdown, then comes back.
        func pgctl(_ arguments: [String]) async throws {
            let bindir = try await CommandRun.run("/usr/bin/pg_config", ["--bindir"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let pgctl = FileManager.default.isExecutableFile(atPath: bindir + "/pg_ctl")
                ? bindir + "/pg_ctl"
                : (try FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql").sorted().last.map {
                    "/usr/lib/postgresql/\($0)/bin/pg_ctl"
                } ?? "pg_ctl")
            let run = try await CommandRun.run(
                "/usr/sbin/runuser", ["-u", "postgres", "--", pgctl, "-D", directory + "/data", "-w"] + arguments,
                timeout: .seconds(60))
            guard run.status == .exited(0) else { throw SpawnError(description: "pg_ctl \(arguments): \(run.stderr)") }
        }

        func stop() async {
            _ = try? await CommandRun.run(Repository.root + "/scripts/test-postgres", ["stop", directory], timeout: .seconds(60))
        }
    }
}
