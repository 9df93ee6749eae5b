import Glibc

/// Monotonic milliseconds: deadlines and durations. Never jumps with the wall clock.
typealias Milliseconds = Int64

/// The time sources the supervisor reads; injected so state machines can be tested with a fake.
protocol Clock {
    /// Monotonic time in milliseconds.
    func monotonicMilliseconds() -> Milliseconds
    /// Wall-clock time in milliseconds since the Unix epoch (for records and logs).
    func wallMilliseconds() -> Int64
}

/// The real clocks.
struct SystemClock: Clock {
    /// CLOCK_MONOTONIC in milliseconds.
    func monotonicMilliseconds() -> Milliseconds { monotonicMicroseconds() / 1000 }

    /// CLOCK_REALTIME in milliseconds.
    func wallMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

/// CLOCK_MONOTONIC in microseconds (for request and run durations).
func monotonicMicroseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds: `2026-11-25T03:04:05.678Z`.
func rfc3339(milliseconds: Int64) -> String {
    var text = [UInt8]()
    text.reserveCapacity(24)
    text.appendRFC3339(milliseconds: milliseconds)
    return String(decoding: text, as: UTF8.self)
}

extension [UInt8] {
    /// Appends epoch milliseconds as RFC 3339 UTC with milliseconds (24 bytes, no quotes), without the
    /// intermediate String of `rfc3339(milliseconds:)`: every job record in a reply carries two.
    mutating func appendRFC3339(milliseconds: Int64) {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        appendDigits(parts.tm_year + 1900, width: 4)
        append(UInt8(ascii: "-"))
        appendDigits(parts.tm_mon + 1, width: 2)
        append(UInt8(ascii: "-"))
        appendDigits(parts.tm_mday, width: 2)
        append(UInt8(ascii: "T"))
        appendDigits(parts.tm_hour, width: 2)
        append(UInt8(ascii: ":"))
        appendDigits(parts.tm_min, width: 2)
        append(UInt8(ascii: ":"))
        appendDigits(parts.tm_sec, width: 2)
        append(UInt8(ascii: "."))
        appendDigits(Int32(milliseconds % 1000), width: 3)
        append(UInt8(ascii: "Z"))
    }

    /// Appends `value` in decimal, zero-padded to `width` digits.
    private mutating func appendDigits(_ value: Int32, width: Int) {
        var divisor: Int32 = 1
        for _ in 1..<width { divisor *= 10 }
        var value = value
        while divisor > 0 {
            append(UInt8(ascii: "0") + UInt8(value / divisor))
            value %= divisor
            divisor /= 10
        }
    }
}
