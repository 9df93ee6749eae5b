import Testing

@testable import Supervisor

/// Valid and invalid RFC 3339 timestamps for `RFC3339.parse`; expected values come from Python's datetime.
@Suite struct RFC3339Tests {
    /// Valid timestamps and their Unix epoch milliseconds.
    static let validTimestamps: [(text: String, milliseconds: Int64)] = [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.001Z", 1),
        ("2026-03-14T15:09:26Z", 1_773_500_966_000),
        ("2026-03-14t15:09:26z", 1_773_500_966_000),
        ("2026-03-14 15:09:26Z", 1_773_500_966_000),
        ("2026-03-14T15:09:26.5Z", 1_773_500_966_500),
        ("2026-03-14T15:09:26.12Z", 1_773_500_966_120),
        ("2026-03-14T15:09:26.123Z", 1_773_500_966_123),
        ("2026-03-14T15:09:26.123456789Z", 1_773_500_966_123),
        ("2026-03-14T15:09:26.999999999999999999999Z", 1_773_500_966_999),
        ("2024-02-29T12:00:00Z", 1_709_208_000_000),
        ("2000-02-29T23:59:59Z", 951_868_799_000),
        ("1969-12-31T23:59:59Z", -1_000),
        ("1969-12-31T23:59:59.999Z", -1),
        ("1969-07-20T20:17:40Z", -14_182_940_000),
        ("1900-01-01T00:00:00Z", -2_208_988_800_000),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000),
        // Year 0 is a leap year in the proleptic Gregorian calendar: 0001-01-01 minus 366 days.
        ("0000-01-01T00:00:00Z", -62_167_219_200_000),
        ("0000-02-29T00:00:00Z", -62_162_121_600_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
        // Offsets that cross midnight, month ends and year boundaries.
        ("2026-01-01T00:30:00+01:00", 1_767_223_800_000),
        ("2025-12-31T23:30:00-01:00", 1_767_227_400_000),
        ("2026-03-01T00:15:00+05:30", 1_772_304_300_000),
        ("2024-02-28T22:00:00-03:00", 1_709_168_400_000),
        ("2026-06-15T12:00:00+23:59", 1_781_438_460_000),
        ("2026-06-15T12:00:00-23:59", 1_781_611_140_000),
        ("2026-06-15T12:00:00-00:00", 1_781_524_800_000),
        ("2026-06-15T12:00:00+00:00", 1_781_524_800_000),
        ("1970-01-01T00:00:00+00:01", -60_000),
        // Leap seconds read as the first second of the next minute.
        ("2016-12-31T23:59:60Z", 1_483_228_800_000),
        ("1998-12-31T23:59:60.5Z", 915_148_800_500),
    ]

    /// Valid timestamps give the epoch milliseconds Python computes.
    @Test(arguments: validTimestamps)
    func parsesValidTimestamp(text: String, milliseconds: Int64) {
        #expect(RFC3339.parse(text) == milliseconds)
    }

    /// Strings that are not valid RFC 3339 date-times, each with the reason.
    static let invalidTimestamps: [(text: String, reason: String)] = [
        ("", "empty"),
        ("2023-02-29T00:00:00Z", "2023 is not a leap year"),
        ("2100-02-29T00:00:00Z", "2100 is not a leap year"),
        ("2026-04-31T00:00:00Z", "April has 30 days"),
        ("2026-01-32T00:00:00Z", "day 32"),
        ("2026-01-00T00:00:00Z", "day 0"),
        ("2026-00-10T00:00:00Z", "month 0"),
        ("2026-13-10T00:00:00Z", "month 13"),
        ("2026-01-01T24:00:00Z", "hour 24"),
        ("2026-01-01T23:60:00Z", "minute 60"),
        ("2026-01-01T23:59:61Z", "second 61"),
        ("2026-01-01T00:00:00", "missing zone"),
        ("2026-01-01T00:00:00.123", "missing zone after fraction"),
        ("2026-01-01T00:00:00+24:00", "offset hour 24"),
        ("2026-01-01T00:00:00+01:60", "offset minute 60"),
        ("2026-01-01T00:00:00+0100", "offset without colon"),
        ("2026-01-01T00:00:00+01", "offset without minutes"),
        ("2026-01-01T00:00:00+1:00", "one-digit offset hour"),
        ("2026-01-01T00:00:00UTC", "zone name"),
        ("2026-01-01T00:00:00Z ", "trailing space"),
        (" 2026-01-01T00:00:00Z", "leading space"),
        ("2026-01-01T00:00:00Zjunk", "trailing garbage"),
        ("2026-01-01T00:00:00+01:00:00", "offset with seconds"),
        ("2026-1-01T00:00:00Z", "one-digit month"),
        ("2026-01-1T00:00:00Z", "one-digit day"),
        ("2026-01-01T0:00:00Z", "one-digit hour"),
        ("2026-01-01T00:00Z", "missing seconds"),
        ("2026-01-01", "date only"),
        ("26-01-01T00:00:00Z", "two-digit year"),
        ("+2026-01-01T00:00:00Z", "signed year"),
        ("12026-01-01T00:00:00Z", "five-digit year"),
        ("2026/01/01T00:00:00Z", "slashes"),
        ("2026-01-01X00:00:00Z", "separator X"),
        ("2026-01-01  00:00:00Z", "two spaces"),
        ("2026-01-01T00.00.00Z", "dots in time"),
        ("2026-01-01T00:00:00.Z", "fraction without digits"),
        ("2026-01-01T00:00:00,5Z", "comma fraction"),
        ("abcd-ef-ghTij:kl:mnZ", "letters"),
        ("2026-01-01T00:00:0aZ", "letter in seconds"),
        ("２０２６-01-01T00:00:00Z", "full-width digits"),
    ]

    /// Invalid timestamps give nil.
    @Test(arguments: invalidTimestamps)
    func rejectsInvalidTimestamp(text: String, reason: String) {
        #expect(RFC3339.parse(text) == nil, "expected nil: \(reason)")
    }

    /// Day counts and civil dates convert back and forth for every day of years 0-9999.
    @Test func calendarRoundTripsEveryDayFromYear0To9999() {
        // days_from_civil and civil_from_days must be inverse over the whole accepted range.
        let firstDay = GregorianCalendar.daysFromCivil(year: 0, month: 1, day: 1)
        let lastDay = GregorianCalendar.daysFromCivil(year: 9999, month: 12, day: 31)
        var expected: (year: Int64, month: Int64, day: Int64) = (0, 1, 1)
        for dayCount in firstDay...lastDay {
            let date = GregorianCalendar.civilFromDays(dayCount)
            if date != expected {
                Issue.record("day \(dayCount) gave \(date), expected \(expected)")
                return
            }
            if expected.day < GregorianCalendar.daysInMonth(year: expected.year, month: expected.month) {
                expected.day += 1
            } else if expected.month < 12 {
                expected = (expected.year, expected.month + 1, 1)
            } else {
                expected = (expected.year + 1, 1, 1)
            }
        }
        #expect(lastDay - firstDay + 1 == 10_000 * 365 + 2_425)
    }
}
