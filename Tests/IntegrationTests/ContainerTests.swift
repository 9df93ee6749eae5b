import Foundation
import Testing

/// The container image (`Containerfile`) built from the release tarball: serves jobs with its defaults (0.0.0.0:8080,
/// the journal on a volume, a non-root user), passes its health check, keeps jobs across a restart, and drains
/// on `podman stop` as PID 1. Everything it makes (container, image, volume) is removed at the end.
@Suite(.timeLimit(.minutes(12)))
struct ContainerTests {
    /// Time `podman stop` gives the supervisor before SIGKILL; the drain must take far less.
    private let stopTimeoutSeconds = 40

    @Test func imageServesKeepsJobsAcrossARestartAndDrainsOnStop() async throws {
        if let missing = await Podman.missingReason() {
            _ = Component.require(false, missing)
            return
        }
        // After the release build, which waits for the other tests to finish: containers beside them would
        // disturb their timing.
        guard let tarball = try await ReleaseBuild.tarball() else { return }
        if let missing = await Podman.cannotRunReason() {
            _ = Component.require(false, missing)
            return
        }
        let name = "prefork-test-" + UUID().uuidString.prefix(8).lowercased()
        let image = "localhost/\(name):latest"
        do {
            try await exercise(name: name, image: image, tarball: tarball)
        } catch {
            let logs = try? await Podman.run(["logs", name])
            await removeEverything(name: name, image: image)
            throw SpawnError(description: "\(error)\ncontainer logs:\n\(logs?.stderr.suffix(6000) ?? "(none)")")
        }
        await removeEverything(name: name, image: image)
        let leftovers = try await Podman.checked(["ps", "-a", "--filter", "name=\(name)", "--format", "{{.Names}}"])
        #expect(leftovers.isEmpty, "container left: \(leftovers)")
        #expect(try await Podman.run(["image", "exists", image]).status != .exited(0), "image \(image) left")
        #expect(try await Podman.run(["volume", "exists", name]).status != .exited(0), "volume \(name) left")
    }

    private func exercise(name: String, image: String, tarball: String) async throws {
        let context = (tarball as NSString).deletingLastPathComponent
        try await Podman.checked(
            ["build"] + Podman.runtimeOptions + [
                "--format", "docker", "--layers=false", "-f", Repository.path("Containerfile"),
                "--build-arg", "BASE=\(Podman.baseImage)",
                "--build-arg", "TARBALL=\((tarball as NSString).lastPathComponent)", "-t", image, context,
            ], timeout: .seconds(300))
        #expect(try await Podman.checked(["image", "inspect", "--format", "{{.Config.User}}", image]) == "prefork")
        let compilers = try await Podman.run(
            ["run", "--rm"] + Podman.runtimeOptions + [
                "--network", "none", "--entrypoint", "/bin/bash", image, "-c", "command -v swift swiftc cc gcc",
            ])
        #expect(compilers.stdout.isEmpty, "a compiler in the image: \(compilers.stdout)")

        // Jobs of a fixed 1.5 s; the one running when the container is stopped sleeps 6 s (a directive), so it is
        // surely still running when podman's SIGTERM arrives on a loaded machine. The config is mounted and named
        // on the command line; the image's environment still sets listen and data_dir.
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try directory.writeJSON(
            [
                "simulate": ["min_ms": 1500, "max_ms": 1500, "fail_rate": 0, "directives": true],
                "shutdown_timeout_ms": 20000,
            ],
            to: "container.json")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: config)
        try await Podman.checked(["volume", "create", name])
        let port = try freeLocalPort()
        try await Podman.checked(
            ["run", "-d", "--name", name] + Podman.runtimeOptions + [
                "--network", "slirp4netns", "-p", "127.0.0.1:\(port):8080", "-v", "\(name):/var/lib/prefork",
                "-v", "\(config):/etc/prefork.json:ro", "-e", "WORKERS=2", image, "--config", "/etc/prefork.json",
            ])
        try await waitUntilReady(port: port, name: name)
        let listening = try await logEvents(name).first { $0.string("event") == "listening" }
        #expect(listening?.int("pid") == 1, "the supervisor is PID 1: \(listening ?? [:])")
        #expect(listening?.string("addr") == "0.0.0.0:8080")
        let health = try await Podman.run(["healthcheck", "run", name])
        #expect(health.status == .exited(0), "HEALTHCHECK failed: \(health.stdout) \(health.stderr)")

        let accepted = try HTTPClient.request(
            port: port, "POST", "/enqueue", body: #"{"id":"container-job","payload":"a"}"#)
        #expect(accepted.status == 202, "\(accepted)")
        try await waitForJob("container-job", port: port, state: "done")

        try await Podman.checked(["stop", "--time", "\(stopTimeoutSeconds)", name], timeout: .seconds(90))
        try await startAgain(name)
        try await waitUntilReady(port: port, name: name)
        let survived = try HTTPClient.request(port: port, "GET", "/jobs/container-job")
        #expect(survived.status == 200, "the job is gone after a restart: \(survived)")
        #expect(try survived.json().string("state") == "done")

        // Stop with a job running: the drain lets it finish, reaps the workers and exits 0, well before the
        // stop timeout would SIGKILL anything.
        let inFlight = try HTTPClient.request(
            port: port, "POST", "/enqueue", body: #"{"id":"in-flight","payload":"@sleep 6000"}"#)
        #expect(inFlight.status == 202, "\(inFlight)")
        try await waitForJob("in-flight", port: port, state: "running")
        let start = ContinuousClock.now
        try await Podman.checked(["stop", "--time", "\(stopTimeoutSeconds)", name], timeout: .seconds(90))
        let stopTook = elapsed(since: start)
        print("podman stop (draining a 6 s job) took \(stopTook)")
        #expect(stopTook < .seconds(stopTimeoutSeconds / 2), "the drain took \(stopTook) of \(stopTimeoutSeconds) s")
        #expect(try await Podman.checked(["inspect", "--format", "{{.State.ExitCode}}", name]) == "0")
        let lines = try await logEvents(name)
        let events = lines.compactMap { $0.string("event") }
        #expect(events.filter { $0 == "shutdown_complete" }.count == 2, "a drain at the restart and at the stop")
        #expect(events.last == "shutdown_complete", "the last line: \(events.suffix(3))")
        #expect(!events.contains("shutdown_forced") && !events.contains("shutdown_timeout"))
        #expect(events.filter { $0 == "listening" }.count == 2)
        let lastStart = try #require(events.lastIndex(of: "shutdown_started"), "no shutdown_started: \(events)")
        #expect(
            lines[lastStart...].contains { $0.string("event") == "job_done" && $0.string("id") == "in-flight" },
            "the running job finished during the drain")
    }

    /// `podman start` of the stopped container. The port forwarder of its previous run can still hold the
    /// published port for a moment after `podman stop` returns ("address already in use"): that is retried, within
    /// a deadline; any other failure is not.
    private func startAgain(_ name: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let run = try await Podman.run(["start", name], timeout: .seconds(60))
            if run.status == .exited(0) { return }
            guard run.stderr.contains("address already in use"), ContinuousClock.now < deadline else {
                try await Podman.checked(["start", name])  // throws, with podman's output
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Polls `/readyz` on the published port until it answers 200.
    private func waitUntilReady(port: UInt16, name: String) async throws {
        try await eventually(
            "container \(name) ready on 127.0.0.1:\(port)", timeout: .seconds(30), interval: .milliseconds(100)
        ) {
            (try? HTTPClient.request(port: port, "GET", "/readyz", timeout: .seconds(2)).status) == 200
        }
    }

    private func waitForJob(_ id: String, port: UInt16, state: String) async throws {
        try await eventually("job \(id) \(state)", timeout: .seconds(30), interval: .milliseconds(50)) {
            try HTTPClient.request(port: port, "GET", "/jobs/\(id)").json().string("state") == state
        }
    }

    /// The container's log lines (the supervisor logs JSON on stderr), parsed.
    private func logEvents(_ name: String) async throws -> [[String: Any]] {
        let run = try await Podman.run(["logs", name])
        return (run.stdout + "\n" + run.stderr).split(separator: "\n").compactMap { LogLine.parse(String($0)) }
    }

    /// Removes the container, the image and the volume, whatever state they are in.
    private func removeEverything(name: String, image: String) async {
        _ = try? await Podman.run(["rm", "--force", "--time", "0", name])
        _ = try? await Podman.run(["rmi", "--force", image])
        _ = try? await Podman.run(["volume", "rm", "--force", name])
    }
}
