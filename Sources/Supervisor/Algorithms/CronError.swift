/// Why a cron expression was rejected; every case carries the full expression text and the offending part.
enum CronError: Error, Equatable, CustomStringConvertible {
    /// The expression does not have exactly five whitespace-separated fields.
    case wrongFieldCount(expression: String, count: Int)
    /// A macro that names an event rather than a time, such as `@reboot`.
    case unsupportedMacro(expression: String, macro: String)
    /// A word starting with `@` that is not a known macro.
    case unknownMacro(expression: String, macro: String)
    /// A macro followed by further text.
    case textAfterMacro(expression: String, macro: String)
    /// A comma-separated list with an empty item, as in `1,,2` or `1,`.
    case emptyListItem(expression: String, field: CronField, fieldText: String)
    /// An item that is not of the form `*`, `N`, `A-B`, `*/S`, `A-B/S` or `N/S`.
    case malformedItem(expression: String, field: CronField, item: String)
    /// A value that is neither a number nor one of the field's names.
    case invalidValue(expression: String, field: CronField, value: String)
    /// A number outside the field's allowed range.
    case valueOutOfRange(expression: String, field: CronField, value: String)
    /// A range `A-B` with A greater than B.
    case reversedRange(expression: String, field: CronField, item: String)
    /// A step that is not a number from 1 to the field's maximum value.
    case invalidStep(expression: String, field: CronField, item: String)

    /// A one-line message naming the expression, the field and exactly what was wrong.
    var description: String {
        switch self {
        case let .wrongFieldCount(expression, count):
            return "cron \"\(expression)\": expected 5 fields (minute hour day-of-month month day-of-week), "
                + "got \(count)"
        case let .unsupportedMacro(expression, macro):
            return "cron \"\(expression)\": \(macro) is not supported, only time-based schedules can be evaluated"
        case let .unknownMacro(expression, macro):
            return "cron \"\(expression)\": unknown macro \(macro) "
                + "(expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"
        case let .textAfterMacro(expression, macro):
            return "cron \"\(expression)\": \(macro) must be the whole expression, but more text follows it"
        case let .emptyListItem(expression, field, fieldText):
            return "cron \"\(expression)\": \(field) list \"\(fieldText)\" has an empty item"
        case let .malformedItem(expression, field, item):
            return "cron \"\(expression)\": \(field) item \"\(item)\" is malformed "
                + "(expected *, N, A-B, */S, A-B/S or N/S)"
        case let .invalidValue(expression, field, value):
            let expected: String
            switch field {
            case .month: expected = "a number or a month name (JAN-DEC)"
            case .dayOfWeek: expected = "a number or a day name (SUN-SAT)"
            default: expected = "a number"
            }
            return "cron \"\(expression)\": \(field) value \"\(value)\" is not \(expected)"
        case let .valueOutOfRange(expression, field, value):
            return "cron \"\(expression)\": \(field) \(value) is out of range "
                + "\(field.range.lowerBound)-\(field.range.upperBound)"
        case let .reversedRange(expression, field, item):
            return "cron \"\(expression)\": \(field) range \"\(item)\" starts after it ends"
        case let .invalidStep(expression, field, item):
            return "cron \"\(expression)\": \(field) step in \"\(item)\" must be a number from 1 to "
                + "\(field.range.upperBound)"
        }
    }
}
