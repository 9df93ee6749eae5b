import Foundation
import Glibc
import Testing

/// The release tarball for the tests that need one (ReleaseTests, ContainerTests), made by `scripts/release`
/// once per test run and shared: the first test to ask builds it, the others wait for that build.
///
/// It builds in a scratch path of its own (`.build/ship`), because `swift test` keeps `.build` locked while the
/// tests run (a nested `swift build` there would wait forever). It starts once the other tests have settled
/// (`waitForOtherTestsToSettle`) and runs at the lowest priority, because two cores compiling at -O beside the
/// timing-sensitive tests (a worker respawned within 2 s) made those fail. `.build/ship.lock` (flock) keeps two
/// test runs on one checkout from building into it at once.
enum ReleaseBuild {
    /// What asking for the tarball came to.
    enum Outcome: Sendable {
        /// The tarball's absolute path.
        case built(String)
        /// A release cannot be built here for want of this: skip, or fail under CI (`Component.require`).
        case unavailable(String)
        /// The build was attempted and failed.
        case failed(String)
    }

    /// `swift build`'s scratch directory for the release.
    static var scratchPath: String { Repository.path(".build/ship") }
    /// Where the tarball is written.
    static var distDirectory: String { scratchPath + "/dist" }
    /// Held while building.
    static var lockPath: String { Repository.path(".build/ship.lock") }
    /// A cold release build takes 1.5 minutes on an idle 2-core machine; leave room for a busy one.
    static let buildTimeout: Duration = .seconds(600)

    private static let shared = Task<Outcome, Never> { await build() }

    /// The tarball's path; nil (after reporting it through `Component.require`) when no release can be built here.
    static func tarball() async throws -> String? {
        switch await shared.value {
        case .built(let path): return path
        case .unavailable(let what):
            _ = Component.require(false, what)
            return nil
        case .failed(let message): throw SpawnError(description: message)
        }
    }

    /// How long this test process must have had no child processes before the build starts.
    static let settledFor: Duration = .seconds(3)
    /// How long to wait for that before building anyway.
    static let settleTimeout: Duration = .seconds(300)

    private static func build() async -> Outcome {
        if let reason = missingPrerequisite() { return .unavailable(reason) }
        await waitForOtherTestsToSettle()
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { return .failed("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(lock) }  // also releases the flock
        do {
            try await eventually(
                "the release build lock \(lockPath)", timeout: buildTimeout, interval: .milliseconds(200)
            ) {
                flock(lock, LOCK_EX | LOCK_NB) == 0
            }
            let command =
                CommandRun.idlePriority
                + [Repository.path("scripts/release"), "--scratch-path", scratchPath, "--dist", distDirectory]
            let start = ContinuousClock.now
            print("release build: scripts/release into \(scratchPath)")
            let run = try await CommandRun.tool(command, timeout: buildTimeout)
            guard run.status == .exited(0) else {
                return .failed("scripts/release \(run.status):\n\(run.stderr.suffix(6000))")
            }
            guard let path = run.stdout.split(separator: "\n").last.map(String.init),
                FileManager.default.fileExists(atPath: path)
            else { return .failed("scripts/release named no tarball; stdout:\n\(run.stdout)") }
            print("release tarball \(path) built in \(elapsed(since: start))")
            return .built(path)
        } catch {
            return .failed("\(error)")
        }
    }

    /// Waits until this test process has had no live child process (the supervisors and workers the other
    /// integration tests start) for `settledFor`, or `settleTimeout` passes: the condition for "the other tests
    /// are done", which the test library cannot tell.
    private static func waitForOtherTestsToSettle() async {
        let me = getpid()
        var quietSince: ContinuousClock.Instant?
        do {
            try await eventually(
                "the other tests' processes to finish", timeout: settleTimeout, interval: .milliseconds(200)
            ) {
                let busy = ProcessTable.children(of: me).contains { !$0.isZombie }
                if busy {
                    quietSince = nil
                    return false
                }
                let since = quietSince ?? ContinuousClock.now
                quietSince = since
                return elapsed(since: since) >= settledFor
            }
        } catch {
            print("release build: other tests still running after \(settleTimeout); building beside them")
        }
    }

    /// What a release build needs and is missing here, or nil: scripts/release, a toolchain in PATH, the static
    /// Swift runtime that `--static-swift-stdlib` links.
    private static func missingPrerequisite() -> String? {
        guard FileManager.default.isExecutableFile(atPath: Repository.path("scripts/release")) else {
            return "scripts/release (in \(Repository.root))"
        }
        guard let swift = CommandRun.executablePath("swift") else {
            return "a swift toolchain in PATH (to build the release)"
        }
        let toolchain = URL(fileURLWithPath: swift).resolvingSymlinksInPath().deletingLastPathComponent()
            .deletingLastPathComponent()  // usr/bin/swift -> usr
        let runtime = toolchain.appendingPathComponent("lib/swift_static/linux/libswiftCore.a").path
        guard FileManager.default.fileExists(atPath: runtime) else {
            return "the static Swift runtime (\(runtime), which --static-swift-stdlib links)"
        }
        return nil
    }
}
