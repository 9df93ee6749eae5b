import Foundation
import Testing

/// The package's source tree, found from this file's path: for tests about what the repository ships (the
/// VERSION file, scripts/release, the Containerfile).
enum SourceTree {
    /// The package root (the directory holding Package.swift).
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // Harness, IntegrationTests, Tests, the file itself
        return url.path
    }()

    /// `root/relative`.
    static func path(_ relative: String) -> String { root + "/" + relative }

    /// The release version the build compiles in: the VERSION file without surrounding white space.
    static func version() throws -> String {
        let text = try String(contentsOfFile: path("VERSION"), encoding: .utf8)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A component a test needs (podman, the static Swift runtime) is missing. By hand the test is skipped with the
/// reason printed; with `CI=true` it fails, so CI cannot pass by skipping.
enum Requirement {
    /// Whether this is a CI run (`CI=true`).
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Reports the unmet requirement: prints "skipped: ..." or, under CI, records it as a failure.
    static func unmet(_ reason: String) {
        if isCI {
            Issue.record("required under CI=true: \(reason)")
        } else {
            print("skipped: \(reason)")
        }
    }
}
