import Testing

@testable import Supervisor

/// Table-driven tests for `CronExpression`: fire times verified by a brute-force Python reference, parse errors,
/// equality and bounded running time.
@Suite struct CronExpressionTests {
    /// An expression, a start instant, an offset and the expected next fire times, all as RFC 3339 text.
    struct CronCase: Sendable, CustomTestStringConvertible {
        /// The cron expression.
        let expression: String
        /// The instant to search after.
        let after: String
        /// Minutes added to UTC to get the local time the expression is matched against.
        let offset: Int
        /// The expected next fire times in UTC, in order.
        let fires: [String]

        /// Creates a case; the labels mirror the columns of the table.
        init(_ expression: String, after: String, offset: Int, fires: [String]) {
            self.expression = expression
            self.after = after
            self.offset = offset
            self.fires = fires
        }

        /// Short label shown by the test runner.
        var testDescription: String { "\"\(expression)\" after \(after) offset \(offset)" }
    }

    /// Expected values computed minute by minute with an independent Python implementation.
    static let fireCases: [CronCase] = [
        CronCase(
            "* * * * *", after: "2026-03-14T15:09:26Z", offset: 0,
            fires: ["2026-03-14T15:10:00Z", "2026-03-14T15:11:00Z", "2026-03-14T15:12:00Z"]),
        CronCase(
            "* * * * *", after: "2026-03-14T15:10:00Z", offset: 0,
            fires: ["2026-03-14T15:11:00Z", "2026-03-14T15:12:00Z", "2026-03-14T15:13:00Z"]),
        CronCase(
            "* * * * *", after: "2026-03-14T15:09:59.999Z", offset: 0,
            fires: ["2026-03-14T15:10:00Z", "2026-03-14T15:11:00Z", "2026-03-14T15:12:00Z"]),
        CronCase(
            "*/15 * * * *", after: "2026-03-14T15:09:26Z", offset: 0,
            fires: ["2026-03-14T15:15:00Z", "2026-03-14T15:30:00Z", "2026-03-14T15:45:00Z"]),
        CronCase(
            "0 * * * *", after: "2026-03-14T15:00:00Z", offset: 0,
            fires: ["2026-03-14T16:00:00Z", "2026-03-14T17:00:00Z", "2026-03-14T18:00:00Z"]),
        CronCase(
            "5-20/5 * * * *", after: "2026-03-14T15:12:00Z", offset: 0,
            fires: ["2026-03-14T15:15:00Z", "2026-03-14T15:20:00Z", "2026-03-14T16:05:00Z"]),
        CronCase(
            "0 9-17/4 * * *", after: "2026-03-14T08:00:00Z", offset: 0,
            fires: ["2026-03-14T09:00:00Z", "2026-03-14T13:00:00Z", "2026-03-14T17:00:00Z"]),
        CronCase(
            "0,30 8,12 * * *", after: "2026-03-14T08:15:00Z", offset: 0,
            fires: ["2026-03-14T08:30:00Z", "2026-03-14T12:00:00Z", "2026-03-14T12:30:00Z"]),
        CronCase(
            "10/20 * * * *", after: "2026-03-14T15:00:00Z", offset: 0,
            fires: ["2026-03-14T15:10:00Z", "2026-03-14T15:30:00Z", "2026-03-14T15:50:00Z"]),
        CronCase(
            "23 0-20/2 * * *", after: "2026-03-14T19:30:00Z", offset: 0,
            fires: ["2026-03-14T20:23:00Z", "2026-03-15T00:23:00Z", "2026-03-15T02:23:00Z"]),
        CronCase(
            "*/7 */5 * * *", after: "2026-03-14T20:55:00Z", offset: 0,
            fires: ["2026-03-14T20:56:00Z", "2026-03-15T00:00:00Z", "2026-03-15T00:07:00Z"]),
        CronCase(
            "0 0 * JAN,jul *", after: "2026-01-31T12:00:00Z", offset: 0,
            fires: ["2026-07-01T00:00:00Z", "2026-07-02T00:00:00Z", "2026-07-03T00:00:00Z"]),
        CronCase(
            "0 0 1 Jun-AUG/2 *", after: "2026-01-01T00:00:00Z", offset: 0,
            fires: ["2026-06-01T00:00:00Z", "2026-08-01T00:00:00Z", "2027-06-01T00:00:00Z"]),
        CronCase(
            "0 0 * * MON-FRI", after: "2026-03-13T18:00:00Z", offset: 0,
            fires: ["2026-03-16T00:00:00Z", "2026-03-17T00:00:00Z", "2026-03-18T00:00:00Z"]),
        CronCase(
            "30 6 * * 0", after: "2026-03-14T00:00:00Z", offset: 0,
            fires: ["2026-03-15T06:30:00Z", "2026-03-22T06:30:00Z", "2026-03-29T06:30:00Z"]),
        CronCase(
            "30 6 * * 7", after: "2026-03-14T00:00:00Z", offset: 0,
            fires: ["2026-03-15T06:30:00Z", "2026-03-22T06:30:00Z", "2026-03-29T06:30:00Z"]),
        CronCase(
            "30 6 * * sun", after: "2026-03-14T00:00:00Z", offset: 0,
            fires: ["2026-03-15T06:30:00Z", "2026-03-22T06:30:00Z", "2026-03-29T06:30:00Z"]),
        CronCase(
            "0 0 * * 5-7", after: "2026-03-14T12:00:00Z", offset: 0,
            fires: ["2026-03-15T00:00:00Z", "2026-03-20T00:00:00Z", "2026-03-21T00:00:00Z"]),
        CronCase(
            "0 0 * * */2", after: "2026-03-14T12:00:00Z", offset: 0,
            fires: ["2026-03-15T00:00:00Z", "2026-03-17T00:00:00Z", "2026-03-19T00:00:00Z"]),
        CronCase(
            "0 0 * * 6,0", after: "2026-03-09T00:00:00Z", offset: 0,
            fires: ["2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z", "2026-03-21T00:00:00Z"]),
        CronCase(
            "0 0 31 * *", after: "2026-01-31T00:00:00Z", offset: 0,
            fires: ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"]),
        CronCase(
            "0 12 29 2 *", after: "2025-01-01T00:00:00Z", offset: 0,
            fires: ["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z", "2036-02-29T12:00:00Z"]),
        CronCase(
            "0 0 29 2 *", after: "2096-03-01T00:00:00Z", offset: 0,
            fires: ["2104-02-29T00:00:00Z", "2108-02-29T00:00:00Z", "2112-02-29T00:00:00Z"]),
        CronCase(
            "0 0 29 2 1", after: "2027-02-20T00:00:00Z", offset: 0,
            fires: ["2027-02-22T00:00:00Z", "2028-02-07T00:00:00Z", "2028-02-14T00:00:00Z"]),
        CronCase(
            "0 0 13 * FRI", after: "2026-02-01T00:00:00Z", offset: 0,
            fires: ["2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z"]),
        CronCase(
            "0 0 13 * FRI", after: "2026-04-08T00:00:00Z", offset: 0,
            fires: ["2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z", "2026-04-17T00:00:00Z"]),
        CronCase(
            "0 0 * * 0,7", after: "2026-03-14T00:00:00Z", offset: 0,
            fires: ["2026-03-15T00:00:00Z", "2026-03-22T00:00:00Z", "2026-03-29T00:00:00Z"]),
        CronCase(
            "0 0 * * MON", after: "2026-03-14T00:00:00Z", offset: 0,
            fires: ["2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z", "2026-03-30T00:00:00Z"]),
        CronCase(
            "0 0 13 * */2", after: "2026-01-01T00:00:00Z", offset: 0,
            fires: ["2026-01-13T00:00:00Z", "2026-06-13T00:00:00Z", "2026-08-13T00:00:00Z"]),
        CronCase(
            "0 0 */2 * MON", after: "2026-03-01T00:00:00Z", offset: 0,
            fires: ["2026-03-09T00:00:00Z", "2026-03-23T00:00:00Z", "2026-04-13T00:00:00Z"]),
        CronCase(
            "0 4 8-14 * 1", after: "2026-03-01T00:00:00Z", offset: 0,
            fires: ["2026-03-02T04:00:00Z", "2026-03-08T04:00:00Z", "2026-03-09T04:00:00Z"]),
        CronCase(
            "0 0 1,15 * WED", after: "2026-04-01T00:00:00Z", offset: 0,
            fires: ["2026-04-08T00:00:00Z", "2026-04-15T00:00:00Z", "2026-04-22T00:00:00Z"]),
        CronCase(
            "0 0 1 1 *", after: "2026-06-01T00:00:00Z", offset: 0,
            fires: ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"]),
        CronCase(
            "59 23 31 12 *", after: "2026-12-31T23:59:00Z", offset: 0,
            fires: ["2027-12-31T23:59:00Z", "2028-12-31T23:59:00Z", "2029-12-31T23:59:00Z"]),
        CronCase(
            "0 0 1 1 *", after: "1969-06-01T00:00:00Z", offset: 0,
            fires: ["1970-01-01T00:00:00Z", "1971-01-01T00:00:00Z", "1972-01-01T00:00:00Z"]),
        CronCase(
            "0 9 * * *", after: "2026-03-14T00:00:00Z", offset: 120,
            fires: ["2026-03-14T07:00:00Z", "2026-03-15T07:00:00Z", "2026-03-16T07:00:00Z"]),
        CronCase(
            "0 9 * * *", after: "2026-03-14T00:00:00Z", offset: -300,
            fires: ["2026-03-14T14:00:00Z", "2026-03-15T14:00:00Z", "2026-03-16T14:00:00Z"]),
        CronCase(
            "0 0 1 * *", after: "2026-03-14T00:00:00Z", offset: 120,
            fires: ["2026-03-31T22:00:00Z", "2026-04-30T22:00:00Z", "2026-05-31T22:00:00Z"]),
        CronCase(
            "30 23 31 12 *", after: "2026-06-01T00:00:00Z", offset: -300,
            fires: ["2027-01-01T04:30:00Z", "2028-01-01T04:30:00Z", "2029-01-01T04:30:00Z"]),
        CronCase(
            "0 0 1 1 *", after: "2026-06-01T00:00:00Z", offset: 120,
            fires: ["2026-12-31T22:00:00Z", "2027-12-31T22:00:00Z", "2028-12-31T22:00:00Z"]),
        CronCase(
            "0 1 * * MON", after: "2026-03-14T00:00:00Z", offset: -300,
            fires: ["2026-03-16T06:00:00Z", "2026-03-23T06:00:00Z", "2026-03-30T06:00:00Z"]),
        CronCase(
            "30 0 * * SUN", after: "2026-03-14T00:00:00Z", offset: 120,
            fires: ["2026-03-14T22:30:00Z", "2026-03-21T22:30:00Z", "2026-03-28T22:30:00Z"]),
        CronCase(
            "0 12 * * *", after: "2026-03-14T11:59:59.999Z", offset: 0,
            fires: ["2026-03-14T12:00:00Z", "2026-03-15T12:00:00Z", "2026-03-16T12:00:00Z"]),
        CronCase(
            "0-4 0 1 1 *", after: "2026-12-31T23:58:30Z", offset: 0,
            fires: ["2027-01-01T00:00:00Z", "2027-01-01T00:01:00Z", "2027-01-01T00:02:00Z"]),
        CronCase(
            "15 14 1 * *", after: "2026-03-14T00:00:00Z", offset: 0,
            fires: ["2026-04-01T14:15:00Z", "2026-05-01T14:15:00Z", "2026-06-01T14:15:00Z"]),
        CronCase(
            "0 22 * * 1-5", after: "2026-03-13T22:00:00Z", offset: 0,
            fires: ["2026-03-16T22:00:00Z", "2026-03-17T22:00:00Z", "2026-03-18T22:00:00Z"]),
        CronCase(
            "5 4 * * sun", after: "2026-03-14T00:00:00Z", offset: 0,
            fires: ["2026-03-15T04:05:00Z", "2026-03-22T04:05:00Z", "2026-03-29T04:05:00Z"]),
        CronCase(
            "0\t0 \t 1  * *", after: "2026-03-14T00:00:00Z", offset: 0,
            fires: ["2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"]),
        CronCase(
            "@hourly", after: "2026-03-14T15:09:26Z", offset: 0,
            fires: ["2026-03-14T16:00:00Z", "2026-03-14T17:00:00Z", "2026-03-14T18:00:00Z"]),
        CronCase(
            "@daily", after: "2026-03-14T15:09:26Z", offset: 0,
            fires: ["2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z", "2026-03-17T00:00:00Z"]),
        CronCase(
            "@midnight", after: "2026-03-14T15:09:26Z", offset: 0,
            fires: ["2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z", "2026-03-17T00:00:00Z"]),
        CronCase(
            "@weekly", after: "2026-03-14T15:09:26Z", offset: 0,
            fires: ["2026-03-15T00:00:00Z", "2026-03-22T00:00:00Z", "2026-03-29T00:00:00Z"]),
        CronCase(
            "@monthly", after: "2026-03-14T15:09:26Z", offset: 0,
            fires: ["2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"]),
        CronCase(
            "@yearly", after: "2026-03-14T15:09:26Z", offset: 0,
            fires: ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"]),
        CronCase(
            "@annually", after: "2026-03-14T15:09:26Z", offset: 0,
            fires: ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"]),
    ]

    /// Fire times match the brute-force Python reference.
    @Test(arguments: fireCases)
    func nextFires(testCase: CronCase) throws {
        let expression = try CronExpression(parsing: testCase.expression)
        let start = try #require(RFC3339.parse(testCase.after))
        let expected = try testCase.fires.map { try #require(RFC3339.parse($0)) }
        let fires = expression.nextFires(after: start, count: expected.count, offsetMinutes: testCase.offset)
        #expect(fires == expected)
        #expect(expression.nextFire(after: start, offsetMinutes: testCase.offset) == expected.first)
        for fire in fires {
            #expect(fire % 60_000 == 0)
        }
    }

    /// Impossible dates give nil after scanning the horizon in well under a second.
    @Test(arguments: ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "* * 30,31 2 *", "0 0 31 2 *"])
    func neverMatchingExpressionReturnsNilQuickly(text: String) throws {
        let expression = try CronExpression(parsing: text)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect(expression.nextFire(after: 1_767_225_600_000) == nil)
            #expect(expression.nextFires(after: 1_767_225_600_000, count: 3).isEmpty)
        }
        // Even an unoptimized build scans eight years in a few thousand steps.
        #expect(elapsed < .milliseconds(500))
    }

    /// Fires up to the search horizon are found and later ones are not.
    @Test func searchStopsAfterEightYears() throws {
        // 2096-02-29 to 2104-02-29 is the longest leap-day gap (2100 is not a leap year): 2,922 days, inside
        // the horizon; from one minute later the next fire is still found.
        let leapDay = try CronExpression(parsing: "0 0 29 2 *")
        let start = try #require(RFC3339.parse("2096-02-29T00:00:00Z"))
        #expect(leapDay.nextFire(after: start) == RFC3339.parse("2104-02-29T00:00:00Z"))
        // `*/7` is Sunday and starts with `*`, so both day fields must match: February 29 on a Sunday happens in
        // 2004 and 2032. A fire exactly `searchHorizonMinutes` after the first candidate minute is beyond the
        // horizon, one minute earlier is not.
        let leapSunday = try CronExpression(parsing: "0 0 29 2 */7")
        let fire = try #require(RFC3339.parse("2032-02-29T00:00:00Z"))
        let horizonMilliseconds = CronExpression.searchHorizonMinutes * 60_000
        #expect(leapSunday.nextFire(after: fire - horizonMilliseconds) == fire)
        #expect(leapSunday.nextFire(after: fire - horizonMilliseconds - 1) == nil)
        #expect(leapSunday.nextFire(after: fire - horizonMilliseconds - 60_000) == nil)
        #expect(leapSunday.nextFire(after: try #require(RFC3339.parse("2004-03-01T00:00:00Z"))) == nil)
    }

    /// Asking for no fire times returns an empty array.
    @Test func nextFiresWithZeroOrNegativeCountIsEmpty() throws {
        let expression = try CronExpression(parsing: "* * * * *")
        #expect(expression.nextFires(after: 0, count: 0).isEmpty)
        #expect(expression.nextFires(after: 0, count: -3).isEmpty)
    }

    /// Instants and offsets near the limits of Int64 give nil or a valid time, never a trap.
    @Test func extremeInstantsAndOffsetsDoNotTrap() throws {
        let expression = try CronExpression(parsing: "* * * * *")
        // The last representable whole minute is still returned; one beyond it overflows and gives nil.
        #expect(expression.nextFire(after: .max) == nil)
        #expect(expression.nextFire(after: .max - 60_000) == 9_223_372_036_854_720_000)
        #expect(expression.nextFire(after: .min) == -9_223_372_036_854_720_000)
        #expect(expression.nextFire(after: 0, offsetMinutes: .max) == nil)
        #expect(expression.nextFire(after: 0, offsetMinutes: .min) == nil)
        #expect(expression.nextFire(after: -1) == 0)
        #expect(expression.nextFire(after: -60_001) == -60_000)
        let rare = try CronExpression(parsing: "0 0 29 2 1")
        _ = rare.nextFire(after: .min, offsetMinutes: 1)
        _ = rare.nextFire(after: .max / 2, offsetMinutes: -1)
    }

    /// Macros, names, Sunday as 0 or 7 and equivalent steps parse to equal expressions.
    @Test func equivalentSpellingsAreEqual() throws {
        let groups: [[String]] = [
            ["@daily", "@midnight", "0 0 * * *", "00 00 * * *"],
            ["@yearly", "@annually", "0 0 1 1 *", "0 0 1 jan *", "0 0 1 JAN *"],
            ["@weekly", "0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * 0,7"],
            ["@hourly", "0 * * * *", "0 0-23 * * *"],
            ["@monthly", "0 0 1 * *"],
            ["*/15 * * * *", "0,15,30,45 * * * *", "0-59/15 * * * *", "0/15 * * * *"],
            ["0 9 * * MON-FRI", "0 9 * * 1-5", "0 9 * * mon,tue,wed,thu,fri"],
        ]
        for group in groups {
            let first = try CronExpression(parsing: group[0])
            for text in group.dropFirst() {
                #expect(try CronExpression(parsing: text) == first, "\(text) should equal \(group[0])")
            }
        }
        #expect(try CronExpression(parsing: "0 0 * * *") != CronExpression(parsing: "0 0 * * 1"))
        // The star flags take part in equality: they change which days match when the other field is restricted.
        #expect(try CronExpression(parsing: "0 0 * * 1") != CronExpression(parsing: "0 0 1-31 * 1"))
    }

    /// Expressions that must be rejected and the exact error.
    static let errorCases: [(text: String, error: CronError)] = [
        ("", .wrongFieldCount(expression: "", count: 0)),
        ("   \t ", .wrongFieldCount(expression: "   \t ", count: 0)),
        ("* * *", .wrongFieldCount(expression: "* * *", count: 3)),
        ("* * * * * *", .wrongFieldCount(expression: "* * * * * *", count: 6)),
        ("* * * * * /bin/true", .wrongFieldCount(expression: "* * * * * /bin/true", count: 6)),
        ("@reboot", .unsupportedMacro(expression: "@reboot", macro: "@reboot")),
        ("@every", .unknownMacro(expression: "@every", macro: "@every")),
        ("@", .unknownMacro(expression: "@", macro: "@")),
        ("@daily *", .textAfterMacro(expression: "@daily *", macro: "@daily")),
        ("61 * * * *", .valueOutOfRange(expression: "61 * * * *", field: .minute, value: "61")),
        ("* 24 * * *", .valueOutOfRange(expression: "* 24 * * *", field: .hour, value: "24")),
        ("* * 0 * *", .valueOutOfRange(expression: "* * 0 * *", field: .dayOfMonth, value: "0")),
        ("* * 32 * *", .valueOutOfRange(expression: "* * 32 * *", field: .dayOfMonth, value: "32")),
        ("* * * 0 *", .valueOutOfRange(expression: "* * * 0 *", field: .month, value: "0")),
        ("* * * 13 *", .valueOutOfRange(expression: "* * * 13 *", field: .month, value: "13")),
        ("* * * * 8", .valueOutOfRange(expression: "* * * * 8", field: .dayOfWeek, value: "8")),
        (
            "99999999999999999999 * * * *",
            .valueOutOfRange(expression: "99999999999999999999 * * * *", field: .minute, value: "99999999999999999999")
        ),
        ("1-70 * * * *", .valueOutOfRange(expression: "1-70 * * * *", field: .minute, value: "70")),
        ("30-10 * * * *", .reversedRange(expression: "30-10 * * * *", field: .minute, item: "30-10")),
        ("* * * * FRI-MON", .reversedRange(expression: "* * * * FRI-MON", field: .dayOfWeek, item: "FRI-MON")),
        ("*/0 * * * *", .invalidStep(expression: "*/0 * * * *", field: .minute, item: "*/0")),
        ("* 1-5/0 * * *", .invalidStep(expression: "* 1-5/0 * * *", field: .hour, item: "1-5/0")),
        ("*/60 * * * *", .invalidStep(expression: "*/60 * * * *", field: .minute, item: "*/60")),
        ("*/x * * * *", .invalidStep(expression: "*/x * * * *", field: .minute, item: "*/x")),
        ("*/ * * * *", .invalidStep(expression: "*/ * * * *", field: .minute, item: "*/")),
        ("*/-1 * * * *", .invalidStep(expression: "*/-1 * * * *", field: .minute, item: "*/-1")),
        ("1,,2 * * * *", .emptyListItem(expression: "1,,2 * * * *", field: .minute, fieldText: "1,,2")),
        ("1, * * * *", .emptyListItem(expression: "1, * * * *", field: .minute, fieldText: "1,")),
        ("* ,3 * * *", .emptyListItem(expression: "* ,3 * * *", field: .hour, fieldText: ",3")),
        ("1-2-3 * * * *", .malformedItem(expression: "1-2-3 * * * *", field: .minute, item: "1-2-3")),
        ("*/2/3 * * * *", .malformedItem(expression: "*/2/3 * * * *", field: .minute, item: "*/2/3")),
        ("/5 * * * *", .malformedItem(expression: "/5 * * * *", field: .minute, item: "/5")),
        ("-5 * * * *", .malformedItem(expression: "-5 * * * *", field: .minute, item: "-5")),
        ("5- * * * *", .malformedItem(expression: "5- * * * *", field: .minute, item: "5-")),
        ("** * * * *", .malformedItem(expression: "** * * * *", field: .minute, item: "**")),
        ("*-5 * * * *", .malformedItem(expression: "*-5 * * * *", field: .minute, item: "*-5")),
        ("* * * * MONDAY", .invalidValue(expression: "* * * * MONDAY", field: .dayOfWeek, value: "MONDAY")),
        ("* * * FOO *", .invalidValue(expression: "* * * FOO *", field: .month, value: "FOO")),
        ("* * * MON *", .invalidValue(expression: "* * * MON *", field: .month, value: "MON")),
        ("* * * * JAN", .invalidValue(expression: "* * * * JAN", field: .dayOfWeek, value: "JAN")),
        ("JAN * * * *", .invalidValue(expression: "JAN * * * *", field: .minute, value: "JAN")),
        ("5a * * * *", .invalidValue(expression: "5a * * * *", field: .minute, value: "5a")),
        ("* * L * *", .invalidValue(expression: "* * L * *", field: .dayOfMonth, value: "L")),
        ("* * 15W * *", .invalidValue(expression: "* * 15W * *", field: .dayOfMonth, value: "15W")),
        ("* * * * 5#3", .invalidValue(expression: "* * * * 5#3", field: .dayOfWeek, value: "5#3")),
        ("? * * * *", .invalidValue(expression: "? * * * *", field: .minute, value: "?")),
        ("* * @daily * *", .invalidValue(expression: "* * @daily * *", field: .dayOfMonth, value: "@daily")),
        ("1.5 * * * *", .invalidValue(expression: "1.5 * * * *", field: .minute, value: "1.5")),
        ("+5 * * * *", .invalidValue(expression: "+5 * * * *", field: .minute, value: "+5")),
        ("٣ * * * *", .invalidValue(expression: "٣ * * * *", field: .minute, value: "٣")),
        ("*\n * * * *", .malformedItem(expression: "*\n * * * *", field: .minute, item: "*\n")),
    ]

    /// Each malformed expression throws exactly the expected error.
    @Test(arguments: errorCases)
    func rejectsInvalidExpression(text: String, error: CronError) {
        #expect(throws: error) {
            try CronExpression(parsing: text)
        }
    }

    /// Error descriptions quote the expression and name the field and the problem.
    @Test func errorDescriptionsNameTheFieldAndProblem() {
        let descriptions: [(CronError, String)] = [
            (
                .valueOutOfRange(expression: "61 * * * *", field: .minute, value: "61"),
                "cron \"61 * * * *\": minute 61 is out of range 0-59"
            ),
            (
                .wrongFieldCount(expression: "* * *", count: 3),
                "cron \"* * *\": expected 5 fields (minute hour day-of-month month day-of-week), got 3"
            ),
            (
                .unsupportedMacro(expression: "@reboot", macro: "@reboot"),
                "cron \"@reboot\": @reboot is not supported, only time-based schedules can be evaluated"
            ),
            (
                .invalidValue(expression: "* * * FOO *", field: .month, value: "FOO"),
                "cron \"* * * FOO *\": month value \"FOO\" is not a number or a month name (JAN-DEC)"
            ),
            (
                .invalidValue(expression: "* * * * XYZ", field: .dayOfWeek, value: "XYZ"),
                "cron \"* * * * XYZ\": day-of-week value \"XYZ\" is not a number or a day name (SUN-SAT)"
            ),
            (
                .reversedRange(expression: "30-10 * * * *", field: .minute, item: "30-10"),
                "cron \"30-10 * * * *\": minute range \"30-10\" starts after it ends"
            ),
            (
                .invalidStep(expression: "* * */0 * *", field: .dayOfMonth, item: "*/0"),
                "cron \"* * */0 * *\": day-of-month step in \"*/0\" must be a number from 1 to 31"
            ),
            (
                .emptyListItem(expression: "1,,2 * * * *", field: .minute, fieldText: "1,,2"),
                "cron \"1,,2 * * * *\": minute list \"1,,2\" has an empty item"
            ),
        ]
        for (error, description) in descriptions {
            #expect(error.description == description)
        }
    }

    /// Boundary values, maximal steps and mixed-case names are accepted.
    @Test func parsesBoundaryValuesAndMaximalSteps() throws {
        let texts = ["59 23 31 12 7", "0 0 1 1 0", "*/59 */23 */31 */12 */7", "0-59 0-23 1-31 1-12 0-7", "7/7 * * * *"]
        for text in texts {
            _ = try CronExpression(parsing: text)
        }
        // Names are case-insensitive and may be mixed with numbers in lists and ranges.
        let mixed = try CronExpression(parsing: "0 0 * jAn-3,Dec sUn,3-fri")
        #expect(mixed == (try CronExpression(parsing: "0 0 * 1,2,3,12 0,3,4,5")))
    }
}
