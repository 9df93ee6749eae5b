import Foundation
import Testing

/// `--version` of both binaries: the VERSION file's content and the commit, compiled in by the EmbedBuildInfo
/// plugin.
@Suite(.timeLimit(.minutes(1)))
struct VersionTests {
    @Test func supervisorPrintsTheVersionFileAndTheCommit() async throws {
        let run = try await CommandRun.supervisor(["--version"])
        #expect(run.status == .exited(0), "stderr: \(run.stderr)")
        try await expectVersionLine(run.stdout, program: "prefork")
    }

    @Test func workerPrintsTheVersionFileAndTheCommit() async throws {
        let run = try await CommandRun.worker(["--version"])
        #expect(run.status == .exited(0), "stderr: \(run.stderr)")
        try await expectVersionLine(run.stdout, program: "prefork-worker")
    }

    @Test func bothBinariesNameTheSameBuild() async throws {
        let supervisor = try await CommandRun.supervisor(["--version"]).stdout
        let worker = try await CommandRun.worker(["--version"]).stdout
        #expect(supervisor.dropFirst("prefork".count) == worker.dropFirst("prefork-worker".count))
    }

    @Test func healthAndTheListeningLineCarryTheVersion() async throws {
        let version = try Repository.version()
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        #expect(try prefork.request("GET", "/healthz").json().string("version") == version)
        #expect(prefork.logEvents("listening").first?.string("version") == version)
    }

    /// Checks `output` is `PROGRAM VERSION (commit C)\n` with VERSION from the file and C the first 7 hex digits
    /// of HEAD (when these are the binaries built from this checkout and git is at hand), else "unknown".
    private func expectVersionLine(_ output: String, program: String) async throws {
        let version = try Repository.version()
        let prefix = "\(program) \(version) (commit "
        #expect(
            output.hasPrefix(prefix) && output.hasSuffix(")"), "\(program) --version printed \(output.debugDescription)"
        )
        guard output.hasPrefix(prefix), output.hasSuffix(")") else { return }
        let commit = String(output.dropFirst(prefix.count).dropLast())
        let isHex = commit.count == 7 && commit.allSatisfy { $0.isHexDigit && !$0.isUppercase }
        #expect(isHex || commit == "unknown", "commit \(commit.debugDescription)")
        if let head = try? await headCommit(), ProcessInfo.processInfo.environment["PREFORK_BIN_DIR"] == nil {
            #expect(head.hasPrefix(commit), "built from \(commit), the checkout is at \(head)")
        }
    }

    /// HEAD of the checkout, through git; nil without git or outside a checkout.
    private func headCommit() async throws -> String? {
        guard CommandRun.executablePath("git") != nil else { return nil }
        let run = try await CommandRun.tool(["git", "-C", Repository.root, "rev-parse", "HEAD"])
        guard run.status == .exited(0) else { return nil }
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
