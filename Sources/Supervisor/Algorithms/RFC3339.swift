/// Strict parser for RFC 3339 timestamps (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)`).
/// Offsets are limited to +-23:59 and years to 0000-9999.
enum RFC3339 {
    /// Parses `text` into Unix epoch milliseconds, or returns nil if it is not a valid RFC 3339 date-time.
    /// The date and time separator may be `T`, `t` or one space; fraction digits beyond milliseconds are truncated;
    /// second 60 (a leap second) is read as the first second of the next minute.
    static func parse(_ text: String) -> Int64? {
        let characters = Array(text.utf8)
        // Shortest form: "YYYY-MM-DDTHH:MM:SSZ" (20 characters).
        guard characters.count >= 20,
            let year = number(characters, from: 0, digitCount: 4), characters[4] == UInt8(ascii: "-"),
            let month = number(characters, from: 5, digitCount: 2), characters[7] == UInt8(ascii: "-"),
            let day = number(characters, from: 8, digitCount: 2),
            characters[10] == UInt8(ascii: "T") || characters[10] == UInt8(ascii: "t")
                || characters[10] == UInt8(ascii: " "),
            let hour = number(characters, from: 11, digitCount: 2), characters[13] == UInt8(ascii: ":"),
            let minute = number(characters, from: 14, digitCount: 2), characters[16] == UInt8(ascii: ":"),
            let second = number(characters, from: 17, digitCount: 2)
        else {
            return nil
        }
        guard (1...12).contains(month), (1...GregorianCalendar.daysInMonth(year: year, month: month)).contains(day),
            (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else {
            return nil
        }

        var position = 19
        var milliseconds: Int64 = 0
        if characters[position] == UInt8(ascii: ".") {
            position += 1
            let fractionStart = position
            while position < characters.count, let digit = digitValue(characters[position]) {
                if position - fractionStart < 3 {
                    milliseconds = milliseconds * 10 + digit
                }
                position += 1
            }
            let fractionDigitCount = position - fractionStart
            guard fractionDigitCount > 0 else {
                return nil
            }
            for _ in min(fractionDigitCount, 3)..<3 {
                milliseconds *= 10
            }
        }

        guard position < characters.count else {
            return nil
        }
        var offsetMinutes: Int64 = 0
        switch characters[position] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            position += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign: Int64 = characters[position] == UInt8(ascii: "-") ? -1 : 1
            guard characters.count - position >= 6,
                let offsetHour = number(characters, from: position + 1, digitCount: 2),
                characters[position + 3] == UInt8(ascii: ":"),
                let offsetMinute = number(characters, from: position + 4, digitCount: 2),
                (0...23).contains(offsetHour), (0...59).contains(offsetMinute)
            else {
                return nil
            }
            offsetMinutes = sign * (offsetHour * 60 + offsetMinute)
            position += 6
        default:
            return nil
        }
        guard position == characters.count else {
            return nil
        }

        let days = GregorianCalendar.daysFromCivil(year: year, month: month, day: day)
        let localSeconds = days * 86_400 + hour * 3_600 + minute * 60 + second
        return (localSeconds - offsetMinutes * 60) * 1_000 + milliseconds
    }

    /// Reads exactly `digitCount` ASCII digits starting at `start`, or returns nil if any is missing or not a digit.
    private static func number(_ characters: [UInt8], from start: Int, digitCount: Int) -> Int64? {
        guard start >= 0, start + digitCount <= characters.count else {
            return nil
        }
        var value: Int64 = 0
        for index in start..<(start + digitCount) {
            guard let digit = digitValue(characters[index]) else {
                return nil
            }
            value = value * 10 + digit
        }
        return value
    }

    /// The value of an ASCII decimal digit, or nil for any other byte.
    private static func digitValue(_ character: UInt8) -> Int64? {
        character >= UInt8(ascii: "0") && character <= UInt8(ascii: "9") ? Int64(character - UInt8(ascii: "0")) : nil
    }
}
