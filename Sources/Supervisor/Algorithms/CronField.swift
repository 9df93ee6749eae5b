/// One of the five fields of a cron expression, with its allowed values and optional value names.
enum CronField: Int, CaseIterable, Equatable, Sendable, CustomStringConvertible {
    /// Minute of the hour, 0-59.
    case minute
    /// Hour of the day, 0-23.
    case hour
    /// Day of the month, 1-31.
    case dayOfMonth
    /// Month of the year, 1-12 or JAN-DEC.
    case month
    /// Day of the week, 0-7 (0 and 7 are Sunday) or SUN-SAT.
    case dayOfWeek

    /// The field name as used in error messages, for example `day-of-month`.
    var description: String {
        switch self {
        case .minute: return "minute"
        case .hour: return "hour"
        case .dayOfMonth: return "day-of-month"
        case .month: return "month"
        case .dayOfWeek: return "day-of-week"
        }
    }

    /// The values the field accepts; `*` stands for this whole range.
    var range: ClosedRange<Int> {
        switch self {
        case .minute: return 0...59
        case .hour: return 0...23
        case .dayOfMonth: return 1...31
        case .month: return 1...12
        case .dayOfWeek: return 0...7
        }
    }

    /// The three-letter value names, upper case, in value order starting at `firstNamedValue`; empty if none.
    var valueNames: [String] {
        switch self {
        case .month: return ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        case .dayOfWeek: return ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        default: return []
        }
    }

    /// The value of the first entry of `valueNames` (1 for JAN, 0 for SUN).
    var firstNamedValue: Int {
        self == .month ? 1 : 0
    }

    /// The value for a three-letter name, compared case-insensitively, or nil if the field has no such name.
    func value(named name: Substring) -> Int? {
        let upperCased = name.uppercased()
        guard let index = valueNames.firstIndex(of: upperCased) else {
            return nil
        }
        return firstNamedValue + index
    }
}
