import Foundation

/// podman as this project's machines run it: with runc (crun refuses their hybrid cgroup hierarchy) and explicit
/// ulimits (the runtime may not set the defaults there), networking through slirp4netns with published ports.
enum Podman {
    /// Options every `podman run` and `podman build` here needs.
    static let runtimeOptions = ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]

    /// The base image the test image is built on: `PREFORK_CONTAINER_BASE`, else the one scripts/container-base
    /// makes without a registry.
    static var baseImage: String {
        ProcessInfo.processInfo.environment["PREFORK_CONTAINER_BASE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "localhost/prefork-base:bookworm"
    }

    /// Runs `podman arguments...` at the lowest CPU priority (see `CommandRun.idlePriority`; containers it starts
    /// inherit it).
    static func run(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> CommandRun {
        try await CommandRun.tool(command(arguments), timeout: timeout)
    }

    /// Like `run`, throwing unless podman exits 0; returns stdout.
    @discardableResult
    static func checked(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> String {
        try await CommandRun.checked(command(arguments), timeout: timeout)
    }

    private static func command(_ arguments: [String]) -> [String] {
        CommandRun.idlePriority + [CommandRun.executablePath("podman") ?? "podman"] + arguments
    }

    /// What building containers needs and is missing here, or nil: podman, runc, the base image. Cheap: no
    /// container is started.
    static func missingReason() async -> String? {
        guard CommandRun.executablePath("podman") != nil else {
            return "podman (apt-get install podman runc)"
        }
        guard CommandRun.executablePath("runc") != nil else { return "runc (apt-get install runc)" }
        do {
            let exists = try await run(["image", "exists", baseImage])
            guard exists.status == .exited(0) else {
                return "the base image \(baseImage) (scripts/container-base makes it; or set PREFORK_CONTAINER_BASE)"
            }
        } catch {
            return "a working podman (\(error))"
        }
        return nil
    }

    /// What running containers needs and is missing here, or nil: a trivial container from the base image must
    /// run.
    static func cannotRunReason() async -> String? {
        do {
            let probe = try await run(["run", "--rm"] + runtimeOptions + ["--network", "none", baseImage, "true"])
            guard probe.status == .exited(0) else {
                return "a podman that can run a container (\(probe.status): \(probe.stderr.suffix(1000)))"
            }
        } catch {
            return "a working podman (\(error))"
        }
        return nil
    }
}
