import Foundation
import Testing

/// How the simulate handler reads `@`-directives: words split at any whitespace, and a clear error for
/// a directive it cannot use.
@Suite(.timeLimit(.minutes(1)))
struct DirectiveTests {
    /// Payloads that must succeed, with the result they report.
    static let accepted: [(payload: String, result: String)] = [
        ("@ok", "ok"),
        ("@ok\n", "ok"),
        ("@ok \t\r\n", "ok"),
        ("@sleep 2", "slept 2 ms"),
        ("@sleep\t2\n", "slept 2 ms"),
        // Not ASCII: split at Unicode whitespace (here NO-BREAK SPACE), as Character.isWhitespace does.
        ("@sleep\u{00A0}2", "slept 2 ms"),
    ]

    /// Payloads that must fail the attempt, with a phrase its error must contain.
    static let refused: [(payload: String, error: String)] = [
        ("@bogus", "unknown directive @bogus"),
        ("@ok extra", "unexpected argument for @ok: \"extra\""),
        ("@sleep", "@sleep needs an argument: milliseconds"),
        ("@sleep x", "bad argument for @sleep: \"x\" (expected milliseconds)"),
        ("@sleep 1 2", "unexpected argument for @sleep: \"2\""),
        ("@exit 300", "bad argument for @exit: \"300\" (expected an exit status 0-255)"),
        ("@sleep\u{00A0}x", "bad argument for @sleep: \"x\""),
    ]

    @Test func directivesSplitAtWhitespace() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        for (index, (payload, result)) in Self.accepted.enumerated() {
            try prefork.enqueueAccepted(id: "ok-\(index)", payload: payload)
            let job = try await prefork.waitForJob("ok-\(index)", state: "done")
            #expect(job.string("result") == result, "payload \(payload.debugDescription): \(job)")
        }
    }

    @Test func unusableDirectivesFailTheAttemptWithTheReason() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        for (index, (payload, expected)) in Self.refused.enumerated() {
            try prefork.enqueueAccepted(id: "bad-\(index)", payload: payload)
            let job = try await prefork.waitForJob("bad-\(index)", state: "failed")
            let lastError = job.string("last_error") ?? ""
            #expect(lastError.contains(expected), "payload \(payload.debugDescription): \(job)")
        }
    }
}
