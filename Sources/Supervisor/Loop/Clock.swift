import System

/// Monotonic milliseconds: deadlines and durations. Never jumps with the wall clock.
typealias Milliseconds = Int64

/// The time sources the supervisor reads; injected so state machines can be tested with a fake.
protocol Clock {
    /// Monotonic time in milliseconds.
    func monotonicMilliseconds() -> Milliseconds
    /// Monotonic time in microseconds (request and run durations).
    func monotonicMicroseconds() -> Int64
    /// Wall-clock time in milliseconds since the Unix epoch (for records and logs).
    func wallMilliseconds() -> Int64
}

/// The real clocks.
struct SystemClock: Clock {
    /// CLOCK_MONOTONIC in milliseconds.
    func monotonicMilliseconds() -> Milliseconds { Time.monotonicMicroseconds() / 1000 }

    /// CLOCK_MONOTONIC in microseconds.
    func monotonicMicroseconds() -> Int64 { Time.monotonicMicroseconds() }

    /// CLOCK_REALTIME in milliseconds.
    func wallMilliseconds() -> Int64 { Time.wallMilliseconds() }
}
