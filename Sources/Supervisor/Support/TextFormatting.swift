/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds: `2026-11-25T03:04:05.678Z`.
func rfc3339(milliseconds: Int64) -> String {
    var text = [UInt8]()
    text.reserveCapacity(24)
    text.appendRFC3339(milliseconds: milliseconds)
    return String(decoding: text, as: UTF8.self)
}

extension [UInt8] {
    /// Appends epoch milliseconds as RFC 3339 UTC with milliseconds (24 bytes, no quotes), for years 0 to 9999.
    ///
    /// Every job record in a reply carries two of these, so the date is computed here (days to civil date,
    /// as in Howard Hinnant's `civil_from_days`) instead of by `gmtime_r`, and the text is built in a stack
    /// buffer and appended once.
    mutating func appendRFC3339(milliseconds: Int64) {
        let (days, millisecondOfDay) = floorDivision(milliseconds, by: 86_400_000)
        let (year, month, day) = GregorianCalendar.civilFromDays(days)
        let secondOfDay = millisecondOfDay / 1000
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
        Swift.withUnsafeMutableBytes(of: &text) { text in
            writeDigits(year, width: 4, at: 0, in: text)
            text[4] = UInt8(ascii: "-")
            writeDigits(month, width: 2, at: 5, in: text)
            text[7] = UInt8(ascii: "-")
            writeDigits(day, width: 2, at: 8, in: text)
            text[10] = UInt8(ascii: "T")
            writeDigits(secondOfDay / 3600, width: 2, at: 11, in: text)
            text[13] = UInt8(ascii: ":")
            writeDigits(secondOfDay / 60 % 60, width: 2, at: 14, in: text)
            text[16] = UInt8(ascii: ":")
            writeDigits(secondOfDay % 60, width: 2, at: 17, in: text)
            text[19] = UInt8(ascii: ".")
            writeDigits(millisecondOfDay % 1000, width: 3, at: 20, in: text)
            text[23] = UInt8(ascii: "Z")
            append(contentsOf: text)
        }
    }
}

/// `value / divisor` rounded down, and the non-negative remainder (times before 1970 are negative).
private func floorDivision(_ value: Int64, by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
    let remainder = value % divisor
    return remainder < 0 ? (value / divisor - 1, remainder + divisor) : (value / divisor, remainder)
}

/// Writes the last `width` decimal digits of a non-negative `value`, zero-padded, at `offset`.
private func writeDigits(_ value: Int64, width: Int, at offset: Int, in buffer: UnsafeMutableRawBufferPointer) {
    var value = value
    for index in (offset..<(offset + width)).reversed() {
        buffer[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
        value /= 10
    }
}

extension Array where Element == UInt8 {
    /// Appends the ASCII text of `text` (no escaping: for literals and numbers).
    mutating func appendASCII(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// Appends a decimal integer, its digits built right to left in a stack buffer (no String).
    mutating func appendDecimal(_ value: Int) {
        if (0..<10).contains(value) {  // attempts, max_retries: almost always one digit
            return append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
        }
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)  // a sign and Int.min's 19 digits fit in 24 bytes
        Swift.withUnsafeMutableBytes(of: &text) { text in
            var magnitude = value.magnitude
            var start = text.count
            repeat {
                start -= 1
                text[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                start -= 1
                text[start] = UInt8(ascii: "-")
            }
            append(contentsOf: UnsafeRawBufferPointer(rebasing: text[start...]))
        }
    }
}
