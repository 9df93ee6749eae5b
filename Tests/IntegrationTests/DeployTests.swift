import Foundation
import Testing

/// The systemd unit in deploy/ is valid for systemd itself.
@Suite(.timeLimit(.minutes(1)))
struct DeployTests {
    @Test func theServiceUnitVerifies() async throws {
        let analyze = "/usr/bin/systemd-analyze"
        guard Component.require(FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze") else { return }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // verify checks that ExecStart's program exists: point it at the binary under test.
        let unit = try String(contentsOfFile: Repository.root + "/deploy/prefork.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/prefork ", with: Binaries.supervisor + " ")
        try unit.write(toFile: directory.path + "/prefork.service", atomically: true, encoding: .utf8)
        let run = try await CommandRun.run(analyze, ["verify", directory.path + "/prefork.service"])
        #expect(run.status == .exited(0), "\(run.stdout)\n\(run.stderr)")
        #expect(!run.stderr.contains("prefork.service:"), "\(run.stderr)")
        #expect(unit.contains("Type=notify") && unit.contains("ExecReload=/bin/kill -HUP $MAINPID"))
        #expect(unit.contains("KillMode=mixed") && unit.contains("NoNewPrivileges=yes") && unit.contains("ProtectSystem=strict"))
    }
}
