import Foundation
import Glibc
import Testing

/// The release tarball (`scripts/release`) works on its own: unpacked into an empty directory and run with no
/// Swift toolchain in PATH, it serves a job to `done` and drains on SIGTERM.
@Suite(.timeLimit(.minutes(12)))
struct ReleaseTests {
    @Test func unpackedTarballRunsAJobAndDrains() async throws {
        guard let tarball = try await ReleaseBuild.tarball() else { return }
        let version = try Repository.version()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await CommandRun.checked(CommandRun.idlePriority + ["tar", "-xzf", tarball, "-C", directory.path])
        let top = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(top == ["prefork-\(version)"], "the tarball holds one directory named after the version")
        let release = directory.path + "/prefork-\(version)"
        for file in [
            "bin/prefork", "bin/prefork-worker", "config/prefork.json", "sdk/python/prefork_worker.py",
            "deploy/compose.yaml", "deploy/Containerfile", "README.md", "LICENSE", "CHANGELOG.md", "INSTALL",
        ] {
            #expect(FileManager.default.fileExists(atPath: release + "/" + file), "missing \(file)")
        }

        // No Swift toolchain: PATH without any directory that holds `swift`, no library path.
        let environment = ["PATH": Self.pathWithoutSwift(), "LD_LIBRARY_PATH": ""]
        #expect(CommandRun.executablePath("swift", path: environment["PATH"]) == nil)
        let versionRun = try await CommandRun.tool([release + "/bin/prefork", "--version"], environment: environment)
        #expect(versionRun.stdout.hasPrefix("prefork \(version) (commit "), "\(versionRun.stdout) \(versionRun.stderr)")

        let child = try Spawn.start(
            executable: release + "/bin/prefork",
            arguments: [
                "--config", release + "/config/prefork.json", "--listen", "127.0.0.1:0",
                "--data-dir", directory.path + "/data",
            ],
            environment: environment, echoPrefix: Binaries.echoPrefix)
        var exited = false
        defer {
            if !exited {
                kill(child.pid, SIGKILL)
                _ = Spawn.reap(child.pid)
            }
        }
        let log = { "release supervisor stderr:\n" + child.stderr.text.suffix(4000) }
        let port = try await eventuallyValue(
            "the released prefork's listening line", timeout: .seconds(15), context: log
        ) {
            () -> UInt16? in
            guard
                let line = child.stderr.lines.lazy.compactMap(LogLine.parse).first(where: {
                    $0.string("event") == "listening"
                }),
                let address = line.string("addr"), let colon = address.lastIndex(of: ":")
            else { return nil }
            return UInt16(address[address.index(after: colon)...])
        }

        // The shipped config's simulate handler fails 20% of attempts: retries make `done` certain enough.
        let body = #"{"id":"release-job","payload":"hello","max_retries":10}"#
        let accepted = try HTTPClient.request(port: port, "POST", "/enqueue", body: body)
        #expect(accepted.status == 202, "\(accepted)")
        let done = try await eventuallyValue("release-job done", timeout: .seconds(30), context: log) {
            () -> [String: Any]? in
            let record = try HTTPClient.request(port: port, "GET", "/jobs/release-job").json()
            return record.string("state") == "done" ? record : nil
        }
        #expect(done.string("result")?.hasPrefix("simulated success") == true, "\(done)")

        kill(child.pid, SIGTERM)
        let status = try await eventuallyValue("the released prefork to exit", timeout: .seconds(40), context: log) {
            Spawn.tryReap(child.pid)
        }
        exited = true
        #expect(status == .exited(0), "\(log())")
        try await eventually("its stderr closed", timeout: .seconds(5)) { child.stderr.isClosed }
        #expect(child.stderr.lines.compactMap(LogLine.parse).contains { $0.string("event") == "shutdown_complete" })
    }

    /// This process's PATH without the directories that hold a `swift` executable.
    static func pathWithoutSwift() -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").filter {
            !FileManager.default.isExecutableFile(atPath: "\($0)/swift")
        }.joined(separator: ":")
    }
}
