/// A parsed five-field cron schedule with Vixie cron / cronie semantics, evaluated in UTC shifted by a fixed offset.
/// Equality compares the parsed value sets and the two `*` flags, not the source text.
struct CronExpression: Equatable, Sendable {
    /// Minutes of the hour that match, as bits 0-59.
    let minutes: UInt64
    /// Hours of the day that match, as bits 0-23.
    let hours: UInt64
    /// Days of the month that match, as bits 1-31.
    let daysOfMonth: UInt64
    /// Months that match, as bits 1-12.
    let months: UInt64
    /// Days of the week that match, as bits 0-6 (Sunday is 0; a written 7 is folded into 0).
    let daysOfWeek: UInt64
    /// Whether the day-of-month field text starts with `*` (Vixie cron's DOM_STAR).
    let dayOfMonthIsStarred: Bool
    /// Whether the day-of-week field text starts with `*` (Vixie cron's DOW_STAR).
    let dayOfWeekIsStarred: Bool

    /// How far `nextFire` looks ahead: 8 years of 366 days, in minutes.
    static let searchHorizonMinutes: Int64 = 8 * 366 * 1_440

    /// Minutes in one day.
    private static let minutesPerDay: Int64 = 1_440

    /// Milliseconds in one minute.
    private static let millisecondsPerMinute: Int64 = 60_000

    /// The field texts each supported macro stands for.
    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]

    /// Parses five whitespace-separated fields (minute hour day-of-month month day-of-week) or one macro
    /// such as `@daily`; throws a `CronError` naming the field and the problem.
    init(parsing text: String) throws(CronError) {
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if let first = words.first, first.hasPrefix("@") {
            let macro = first.lowercased()
            if macro == "@reboot" {
                throw .unsupportedMacro(expression: text, macro: String(first))
            }
            guard let replacement = Self.macros[macro] else {
                throw .unknownMacro(expression: text, macro: String(first))
            }
            guard words.count == 1 else {
                throw .textAfterMacro(expression: text, macro: String(first))
            }
            words = replacement.split(separator: " ")
        }
        guard words.count == 5 else {
            throw .wrongFieldCount(expression: text, count: words.count)
        }
        minutes = try Self.parseField(words[0], field: .minute, expression: text)
        hours = try Self.parseField(words[1], field: .hour, expression: text)
        daysOfMonth = try Self.parseField(words[2], field: .dayOfMonth, expression: text)
        months = try Self.parseField(words[3], field: .month, expression: text)
        let weekdayBits = try Self.parseField(words[4], field: .dayOfWeek, expression: text)
        // Sunday may be written as 0 or 7; keep it in bit 0 only.
        daysOfWeek = (weekdayBits & 0x7F) | (weekdayBits >> 7 & 1)
        dayOfMonthIsStarred = words[2].hasPrefix("*")
        dayOfWeekIsStarred = words[4].hasPrefix("*")
    }

    /// The first whole minute strictly after `epochMilliseconds` whose local time (UTC plus `offsetMinutes`)
    /// matches, as epoch milliseconds; nil if none lies within `searchHorizonMinutes` or the arithmetic overflows.
    func nextFire(after epochMilliseconds: Int64, offsetMinutes: Int = 0) -> Int64? {
        let offset = Int64(offsetMinutes)
        let (offsetMilliseconds, offsetOverflow) = offset.multipliedReportingOverflow(by: Self.millisecondsPerMinute)
        let (localMilliseconds, localOverflow) = epochMilliseconds.addingReportingOverflow(offsetMilliseconds)
        guard !offsetOverflow, !localOverflow else {
            return nil
        }
        let startMinute = Self.floorDivide(localMilliseconds, Self.millisecondsPerMinute) + 1
        let horizonEnd = startMinute + Self.searchHorizonMinutes
        var day = Self.floorDivide(startMinute, Self.minutesPerDay)
        var minuteOfDay = startMinute - day * Self.minutesPerDay

        while day * Self.minutesPerDay < horizonEnd {
            let date = GregorianCalendar.civilFromDays(day)
            guard Self.contains(months, date.month) else {
                day = firstDayOfNextMatchingMonth(year: date.year, month: date.month)
                minuteOfDay = 0
                continue
            }
            let weekday = GregorianCalendar.dayOfWeek(days: day)
            if dayMatches(dayOfMonth: date.day, dayOfWeek: weekday),
                let matchingMinute = firstMatchingMinuteOfDay(atOrAfter: minuteOfDay)
            {
                let localMinute = day * Self.minutesPerDay + matchingMinute
                guard localMinute < horizonEnd else {
                    return nil
                }
                let (fire, fireOverflow) = (localMinute - offset).multipliedReportingOverflow(
                    by: Self.millisecondsPerMinute)
                return fireOverflow ? nil : fire
            }
            day += 1
            minuteOfDay = 0
        }
        return nil
    }

    /// Up to `count` consecutive fire times after `epochMilliseconds`, fewer if the schedule runs out.
    func nextFires(after epochMilliseconds: Int64, count: Int, offsetMinutes: Int = 0) -> [Int64] {
        var fires = [Int64]()
        var instant = epochMilliseconds
        while fires.count < count, let fire = nextFire(after: instant, offsetMinutes: offsetMinutes) {
            fires.append(fire)
            instant = fire
        }
        return fires
    }

    /// Whether a day matches: both day fields when either starts with `*`, otherwise either of them.
    private func dayMatches(dayOfMonth: Int64, dayOfWeek: Int64) -> Bool {
        let dayOfMonthMatches = Self.contains(daysOfMonth, dayOfMonth)
        let dayOfWeekMatches = Self.contains(daysOfWeek, dayOfWeek)
        if dayOfMonthIsStarred || dayOfWeekIsStarred {
            return dayOfMonthMatches && dayOfWeekMatches
        }
        return dayOfMonthMatches || dayOfWeekMatches
    }

    /// The first matching minute of the day (0-1439) at or after `minuteOfDay`, or nil if none is left today.
    private func firstMatchingMinuteOfDay(atOrAfter minuteOfDay: Int64) -> Int64? {
        let hour = minuteOfDay / 60
        if Self.contains(hours, hour), let minute = Self.lowestBit(of: minutes, atOrAfter: minuteOfDay % 60) {
            return hour * 60 + minute
        }
        guard let nextHour = Self.lowestBit(of: hours, atOrAfter: hour + 1),
            let firstMinute = Self.lowestBit(of: minutes, atOrAfter: 0)
        else {
            return nil
        }
        return nextHour * 60 + firstMinute
    }

    /// Day count of the first day of the next matching month after `month` of `year`.
    private func firstDayOfNextMatchingMonth(year: Int64, month: Int64) -> Int64 {
        if let nextMonth = Self.lowestBit(of: months, atOrAfter: month + 1) {
            return GregorianCalendar.daysFromCivil(year: year, month: nextMonth, day: 1)
        }
        // Parsing guarantees at least one month; January is only a defensive fallback.
        let firstMonth = Self.lowestBit(of: months, atOrAfter: 1) ?? 1
        return GregorianCalendar.daysFromCivil(year: year + 1, month: firstMonth, day: 1)
    }

    /// Parses one field into a bit set of its values.
    private static func parseField(
        _ text: Substring, field: CronField, expression: String
    ) throws(CronError) -> UInt64 {
        var bits: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else {
                throw .emptyListItem(expression: expression, field: field, fieldText: String(text))
            }
            bits |= try parseItem(item, field: field, expression: expression)
        }
        return bits
    }

    /// Parses one list item (`*`, `N`, `A-B`, `*/S`, `A-B/S` or `N/S`) into a bit set of its values.
    private static func parseItem(_ item: Substring, field: CronField, expression: String) throws(CronError) -> UInt64 {
        let stepParts = item.split(separator: "/", omittingEmptySubsequences: false)
        guard stepParts.count <= 2, let base = stepParts.first, !base.isEmpty else {
            throw .malformedItem(expression: expression, field: field, item: String(item))
        }
        var step = 1
        if stepParts.count == 2 {
            let stepText = stepParts[1]
            guard let parsedStep = decimalValue(stepText), (1...field.range.upperBound).contains(parsedStep) else {
                throw .invalidStep(expression: expression, field: field, item: String(item))
            }
            step = parsedStep
        }

        let lower: Int
        let upper: Int
        if base == "*" {
            lower = field.range.lowerBound
            upper = field.range.upperBound
        } else {
            let rangeParts = base.split(separator: "-", omittingEmptySubsequences: false)
            guard rangeParts.count <= 2, !rangeParts.contains(where: { $0.isEmpty || $0.contains("*") }) else {
                throw .malformedItem(expression: expression, field: field, item: String(item))
            }
            lower = try value(rangeParts[0], field: field, expression: expression)
            if rangeParts.count == 2 {
                upper = try value(rangeParts[1], field: field, expression: expression)
                guard lower <= upper else {
                    throw .reversedRange(expression: expression, field: field, item: String(item))
                }
            } else {
                // A single value with a step, `N/S`, means `N-max/S`.
                upper = stepParts.count == 2 ? field.range.upperBound : lower
            }
        }

        var bits: UInt64 = 0
        for value in stride(from: lower, through: upper, by: step) {
            bits |= 1 << UInt64(value)
        }
        return bits
    }

    /// Reads a number or a name and checks it against the field's range.
    private static func value(_ text: Substring, field: CronField, expression: String) throws(CronError) -> Int {
        if let number = decimalValue(text) {
            guard field.range.contains(number) else {
                throw .valueOutOfRange(expression: expression, field: field, value: String(text))
            }
            return number
        }
        guard let named = field.value(named: text) else {
            throw .invalidValue(expression: expression, field: field, value: String(text))
        }
        return named
    }

    /// The value of a non-empty run of ASCII digits, saturating at 1,000,000; nil for anything else.
    private static func decimalValue(_ text: Substring) -> Int? {
        guard !text.isEmpty else {
            return nil
        }
        var value = 0
        for character in text.utf8 {
            guard character >= UInt8(ascii: "0"), character <= UInt8(ascii: "9") else {
                return nil
            }
            value = min(value * 10 + Int(character - UInt8(ascii: "0")), 1_000_000)
        }
        return value
    }

    /// Whether bit `position` (0-63) of `bits` is set.
    private static func contains(_ bits: UInt64, _ position: Int64) -> Bool {
        position >= 0 && position < 64 && bits >> UInt64(position) & 1 == 1
    }

    /// The lowest set bit of `bits` at or above `position`, or nil if there is none.
    private static func lowestBit(of bits: UInt64, atOrAfter position: Int64) -> Int64? {
        guard position >= 0, position < 64 else {
            return nil
        }
        let remaining = bits & (UInt64.max << UInt64(position))
        return remaining == 0 ? nil : Int64(remaining.trailingZeroBitCount)
    }

    /// Integer division rounding toward negative infinity.
    private static func floorDivide(_ dividend: Int64, _ divisor: Int64) -> Int64 {
        let quotient = dividend / divisor
        return dividend % divisor < 0 ? quotient - 1 : quotient
    }
}
