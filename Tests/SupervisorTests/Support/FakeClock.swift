@testable import Supervisor

/// A clock the test moves by hand.
final class FakeClock: Clock, @unchecked Sendable {
    /// Monotonic time, milliseconds.
    var now: Milliseconds
    /// Wall-clock time, epoch milliseconds.
    var wall: Int64

    /// A clock at `now` (monotonic) and `wall`.
    init(now: Milliseconds = 1_000, wall: Int64 = 1_700_000_000_000) {
        self.now = now
        self.wall = wall
    }

    /// Moves both clocks forward.
    func advance(by milliseconds: Milliseconds) {
        now += milliseconds
        wall += milliseconds
    }

    func monotonicMilliseconds() -> Milliseconds { now }
    func monotonicMicroseconds() -> Int64 { now * 1000 }
    func wallMilliseconds() -> Int64 { wall }
}
