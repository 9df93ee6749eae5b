import Testing

@testable import Supervisor

/// Compares `CronExpression` against an independent brute-force reference on randomly generated expressions,
/// and fuzzes the parser with random text.
@Suite struct CronReferenceTests {
    /// Deterministic SplitMix64 generator so failures are reproducible.
    struct SplitMix64: RandomNumberGenerator {
        /// The generator state.
        var state: UInt64

        /// Returns the next 64 pseudo-random bits.
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var mixed = state
            mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
            mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
            return mixed ^ (mixed >> 31)
        }
    }

    /// A generated field: its text and the set of values it means, computed without the parser.
    struct GeneratedField {
        /// The field text, for example `1-10/3,JAN`.
        let text: String
        /// The values the text stands for.
        let values: Set<Int>
    }

    /// A generated expression and the schedule it means.
    struct GeneratedExpression {
        /// The five fields in order.
        let fields: [GeneratedField]
        /// The whole expression text.
        var text: String { fields.map(\.text).joined(separator: " ") }
    }

    /// A calendar day for the reference, advanced one day at a time with its own month-length rule.
    struct ReferenceDay {
        /// Proleptic Gregorian year.
        var year: Int
        /// Month 1-12.
        var month: Int
        /// Day of the month 1-31.
        var day: Int
        /// Day of the week, 0 is Sunday.
        var weekday: Int
        /// Days since 1970-01-01.
        var dayCount: Int64

        /// Moves to the next calendar day.
        mutating func advance() {
            dayCount += 1
            weekday = (weekday + 1) % 7
            day += 1
            if day > ReferenceDay.length(year: year, month: month) {
                day = 1
                month += 1
                if month > 12 {
                    month = 1
                    year += 1
                }
            }
        }

        /// Days in a month, by table and the Gregorian leap-year rule.
        static func length(year: Int, month: Int) -> Int {
            let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            let leap = year % 400 == 0 || (year % 4 == 0 && year % 100 != 0)
            return month == 2 && leap ? 29 : lengths[month - 1]
        }

        /// Builds a day by counting whole years and months from 1970-01-01 (a Thursday).
        init(year: Int, month: Int, day: Int) {
            var count: Int64 = 0
            if year >= 1970 {
                for earlier in 1970..<year {
                    count += Int64(ReferenceDay.length(year: earlier, month: 2) == 29 ? 366 : 365)
                }
            } else {
                for earlier in year..<1970 {
                    count -= Int64(ReferenceDay.length(year: earlier, month: 2) == 29 ? 366 : 365)
                }
            }
            for earlierMonth in 1..<month {
                count += Int64(ReferenceDay.length(year: year, month: earlierMonth))
            }
            count += Int64(day - 1)
            self.year = year
            self.month = month
            self.day = day
            self.dayCount = count
            self.weekday = Int(((count + 4) % 7 + 7) % 7)
        }
    }

    /// The brute-force reference: Vixie cron matching over plain sets, scanning every minute of every day
    /// whose date matches.
    struct ReferenceSchedule {
        /// Matching minutes.
        let minutes: Set<Int>
        /// Matching hours.
        let hours: Set<Int>
        /// Matching days of the month.
        let daysOfMonth: Set<Int>
        /// Matching months.
        let months: Set<Int>
        /// Matching weekdays, with 7 folded into 0.
        let weekdays: Set<Int>
        /// Whether either day field text starts with `*`.
        let eitherDayFieldStarred: Bool

        /// Builds the reference from generated fields.
        init(_ expression: GeneratedExpression) {
            minutes = expression.fields[0].values
            hours = expression.fields[1].values
            daysOfMonth = expression.fields[2].values
            months = expression.fields[3].values
            weekdays = Set(expression.fields[4].values.map { $0 % 7 })
            eitherDayFieldStarred =
                expression.fields[2].text.hasPrefix("*") || expression.fields[4].text.hasPrefix("*")
        }

        /// Whether any minute of `day` can match.
        func dateMatches(_ day: ReferenceDay) -> Bool {
            guard months.contains(day.month) else {
                return false
            }
            let dayOfMonth = daysOfMonth.contains(day.day)
            let weekday = weekdays.contains(day.weekday)
            return eitherDayFieldStarred ? dayOfMonth && weekday : dayOfMonth || weekday
        }

        /// The first matching local minute strictly after `localMinute`, within the search horizon.
        func nextFire(afterLocalMinute localMinute: Int64, cursor: inout ReferenceDay) -> Int64? {
            let first = localMinute + 1
            let horizonEnd = first + CronExpression.searchHorizonMinutes
            while (cursor.dayCount + 1) * 1_440 <= first {
                cursor.advance()
            }
            var minute = first
            while minute < horizonEnd {
                let dayStart = cursor.dayCount * 1_440
                if dateMatches(cursor) {
                    for candidate in minute..<(dayStart + 1_440) where candidate < horizonEnd {
                        let minuteOfDay = Int(candidate - dayStart)
                        if hours.contains(minuteOfDay / 60), minutes.contains(minuteOfDay % 60) {
                            return candidate
                        }
                    }
                }
                cursor.advance()
                minute = cursor.dayCount * 1_440
            }
            return nil
        }
    }

    /// Generates one field of `range`, using `names` (first name has value `firstNamedValue`) some of the time.
    static func generateField(
        range: ClosedRange<Int>, names: [String], firstNamedValue: Int, using generator: inout SplitMix64
    ) -> GeneratedField {
        func render(_ value: Int) -> String {
            let nameIndex = value - firstNamedValue
            guard !names.isEmpty, names.indices.contains(nameIndex), Bool.random(using: &generator) else {
                return String(value)
            }
            let name = names[nameIndex]
            return Bool.random(using: &generator) ? name : name.lowercased()
        }
        func step() -> Int {
            Int.random(in: 1...min(range.upperBound, 12), using: &generator)
        }
        func item(kind: Int) -> GeneratedField {
            switch kind {
            case 0:
                let stride = step()
                let values = Swift.stride(from: range.lowerBound, through: range.upperBound, by: stride)
                return GeneratedField(text: "*/\(stride)", values: Set(values))
            case 1:
                let value = Int.random(in: range, using: &generator)
                return GeneratedField(text: render(value), values: [value])
            case 2, 3:
                let lower = Int.random(in: range, using: &generator)
                let upper = Int.random(in: lower...range.upperBound, using: &generator)
                if kind == 2 {
                    return GeneratedField(text: "\(render(lower))-\(render(upper))", values: Set(lower...upper))
                }
                let stride = step()
                return GeneratedField(
                    text: "\(render(lower))-\(render(upper))/\(stride)",
                    values: Set(Swift.stride(from: lower, through: upper, by: stride)))
            default:
                let lower = Int.random(in: range, using: &generator)
                let stride = step()
                return GeneratedField(
                    text: "\(render(lower))/\(stride)",
                    values: Set(Swift.stride(from: lower, through: range.upperBound, by: stride)))
            }
        }
        switch Int.random(in: 0..<10, using: &generator) {
        case 0, 1:
            return GeneratedField(text: "*", values: Set(range))
        case 2:
            return item(kind: 0)
        case 3...6:
            return item(kind: Int.random(in: 1...4, using: &generator))
        default:
            // A list; sometimes led by a `*/S` item, which makes the field count as starred.
            var items = [GeneratedField]()
            if Int.random(in: 0..<4, using: &generator) == 0 {
                items.append(item(kind: 0))
            }
            for _ in 0..<Int.random(in: 2...4, using: &generator) {
                items.append(item(kind: Int.random(in: 1...4, using: &generator)))
            }
            return GeneratedField(
                text: items.map(\.text).joined(separator: ","),
                values: items.reduce(into: Set<Int>()) { $0.formUnion($1.values) })
        }
    }

    /// Generates a whole expression.
    static func generateExpression(using generator: inout SplitMix64) -> GeneratedExpression {
        let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        let weekdays = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        return GeneratedExpression(fields: [
            generateField(range: 0...59, names: [], firstNamedValue: 0, using: &generator),
            generateField(range: 0...23, names: [], firstNamedValue: 0, using: &generator),
            generateField(range: 1...31, names: [], firstNamedValue: 1, using: &generator),
            generateField(range: 1...12, names: months, firstNamedValue: 1, using: &generator),
            generateField(range: 0...7, names: weekdays, firstNamedValue: 0, using: &generator),
        ])
    }

    /// Random expressions, start times and offsets agree with the brute-force reference.
    @Test(arguments: [1, 2, 3, 4])
    func matchesBruteForceReference(seed: UInt64) throws {
        var generator = SplitMix64(state: seed)
        let offsets = [0, 0, 0, 60, 120, -300, 330, 345, -720, 840, -59, 1]
        var firesCompared = 0
        for _ in 0..<150 {
            let generated = Self.generateExpression(using: &generator)
            let expression = try CronExpression(parsing: generated.text)
            let reference = ReferenceSchedule(generated)

            let year = Int.random(in: 1950...2110, using: &generator)
            let month = Int.random(in: 1...12, using: &generator)
            let day = Int.random(in: 1...ReferenceDay.length(year: year, month: month), using: &generator)
            var cursor = ReferenceDay(year: year, month: month, day: day)
            let localMinute = cursor.dayCount * 1_440 + Int64.random(in: 0..<1_440, using: &generator)
            let subMinute = Bool.random(using: &generator) ? 0 : Int64.random(in: 0..<60_000, using: &generator)
            let offset = offsets[Int.random(in: 0..<offsets.count, using: &generator)]
            let start = (localMinute - Int64(offset)) * 60_000 + subMinute

            var expected = [Int64]()
            var previous = localMinute
            while expected.count < 3, let fire = reference.nextFire(afterLocalMinute: previous, cursor: &cursor) {
                expected.append((fire - Int64(offset)) * 60_000)
                previous = fire
            }
            let actual = expression.nextFires(after: start, count: 3, offsetMinutes: offset)
            #expect(actual == expected, "\"\(generated.text)\" after \(start) offset \(offset)")
            firesCompared += expected.count
        }
        // Most generated schedules fire; make sure the comparison is not vacuous.
        #expect(firesCompared > 300)
    }

    /// Random text either parses or throws a described error; it never traps.
    @Test func randomTextNeverTraps() {
        var generator = SplitMix64(state: 42)
        let pieces = [
            "*", "/", "-", ",", " ", "\t", "0", "1", "5", "7", "12", "23", "31", "59", "60", "99", "@", "@daily",
            "@reboot", "JAN", "sun", "Fri", "x", "L", "?", "#", "é", "\n", "",
        ]
        var parsedCount = 0
        for _ in 0..<3_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...16, using: &generator) {
                text += pieces[Int.random(in: 0..<pieces.count, using: &generator)]
            }
            do throws(CronError) {
                let expression = try CronExpression(parsing: text)
                parsedCount += 1
                let instant = Int64.random(in: -4_000_000_000_000...4_000_000_000_000, using: &generator)
                _ = expression.nextFire(after: instant)
            } catch {
                #expect(error.description.hasPrefix("cron \""))
            }
        }
        #expect(parsedCount > 0)
    }
}
