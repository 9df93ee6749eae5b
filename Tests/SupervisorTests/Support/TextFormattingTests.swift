import Glibc
import Testing

@testable import Supervisor

/// The hand-written number and date formatting on the reply path, checked against the C library's.
@Suite struct TextFormattingTests {
    /// RFC 3339 from `gmtime_r`, the definition `appendRFC3339` must match.
    private static func reference(_ milliseconds: Int64) -> String {
        let remainder = (milliseconds % 1000 + 1000) % 1000
        var seconds = time_t((milliseconds - remainder) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func padded(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(parts.tm_year + 1900, 4))-\(padded(parts.tm_mon + 1, 2))-\(padded(parts.tm_mday, 2))T"
            + "\(padded(parts.tm_hour, 2)):\(padded(parts.tm_min, 2)):\(padded(parts.tm_sec, 2))."
            + "\(padded(Int32(remainder), 3))Z"
    }

    @Test func rfc3339OfKnownInstants() {
        #expect(rfc3339(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(rfc3339(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        #expect(rfc3339(milliseconds: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(rfc3339(milliseconds: 1_795_575_845_678) == "2026-11-25T03:04:05.678Z")
        #expect(rfc3339(milliseconds: 253_402_300_799_999) == "9999-12-31T23:59:59.999Z")
    }

    /// Every day from 1900 to 2200 (leap years, century rules, both sides of the epoch), at varying times of day.
    @Test func rfc3339MatchesGmtimeOverThreeCenturies() {
        let day: Int64 = 86_400_000
        var mismatches: [Int64] = []
        for dayNumber in Int64(-25_567)...Int64(84_006) {
            let milliseconds = dayNumber * day + (dayNumber * 7_919_993) % day
            if rfc3339(milliseconds: milliseconds) != Self.reference(milliseconds) { mismatches.append(milliseconds) }
        }
        #expect(mismatches.isEmpty, "first: \(mismatches.prefix(3).map { ($0, rfc3339(milliseconds: $0)) })")
    }

    @Test(arguments: [
        0, 7, 9, 10, 99, 100, 202, 4_096, 65_535, 1_000_000, -1, -10, -987_654_321, Int.max, Int.min,
    ])
    func appendDecimalMatchesDescription(value: Int) {
        var bytes: [UInt8] = [UInt8(ascii: "x")]
        bytes.appendDecimal(value)
        #expect(String(decoding: bytes, as: UTF8.self) == "x" + String(value))
    }
}
