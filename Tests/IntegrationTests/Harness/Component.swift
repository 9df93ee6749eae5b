import Foundation
import Testing

/// Tests that need a component of the machine (a browser, PostgreSQL, podman, systemd) skip with a printed reason
/// when it is missing, except under CI (`CI=true`), where a missing component fails the test.
enum Component {
    /// Whether the test can go on: true when `available`; otherwise prints why it skips, or records a failure
    /// under CI.
    static func require(_ available: Bool, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if available { return true }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record("\(what) is required when CI=true", sourceLocation: sourceLocation)
        } else {
            print("skipped: \(what) is not available here")
        }
        return false
    }
}
