import Foundation

/// A condition that did not become true before its deadline.
struct WaitTimeout: Error, CustomStringConvertible {
    let description: String
}

/// Polls `produce` every `interval` until it returns a value or `timeout` passes. Errors thrown by `produce`
/// count as "not yet" and the last one is reported on timeout. `context` adds detail (e.g. a log tail).
func eventuallyValue<T>(
    _ what: String,
    timeout: Duration = .seconds(5),
    interval: Duration = .milliseconds(10),
    context: (() -> String)? = nil,
    _ produce: () throws -> T?
) async throws -> T {
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start + timeout
    var lastError: (any Error)?
    while true {
        do {
            if let value = try produce() { return value }
            lastError = nil
        } catch {
            lastError = error
        }
        if clock.now >= deadline { break }
        try await Task.sleep(for: interval)
    }
    var message = "timed out after \(clock.now - start) waiting for: \(what)"
    if let lastError { message += "\nlast error: \(lastError)" }
    if let context { message += "\n\(context())" }
    throw WaitTimeout(description: message)
}

/// Polls `condition` every `interval` until it holds or `timeout` passes (then throws `WaitTimeout`).
func eventually(
    _ what: String,
    timeout: Duration = .seconds(5),
    interval: Duration = .milliseconds(10),
    context: (() -> String)? = nil,
    _ condition: () throws -> Bool
) async throws {
    _ = try await eventuallyValue(what, timeout: timeout, interval: interval, context: context) {
        try condition() ? true : nil
    }
}

/// Seconds elapsed since `start`, for assertions on how promptly something happened.
func elapsed(since start: ContinuousClock.Instant) -> Duration {
    ContinuousClock.now - start
}
