extension Array where Element == UInt8 {
    /// Appends `text` as a quoted JSON string, escaping quotes, backslashes and control characters.
    mutating func appendJSONString(_ text: String) {
        append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                runStart = index + 1
                append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""): append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): append(UInt8(ascii: "\\"))
                case 0x0a: append(UInt8(ascii: "n"))
                case 0x0d: append(UInt8(ascii: "r"))
                case 0x09: append(UInt8(ascii: "t"))
                default:
                    let digits: [UInt8] = Array("0123456789abcdef".utf8)
                    append(contentsOf: [
                        UInt8(ascii: "u"), 0x30, 0x30, digits[Int(byte >> 4)], digits[Int(byte & 0x0f)],
                    ])
                }
            }
            append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]))
        }
        append(UInt8(ascii: "\""))
    }

    /// Appends `text` as a quoted JSON string, or `null` when it is nil.
    mutating func appendJSONString(orNull text: String?) {
        if let text { appendJSONString(text) } else { appendASCII("null") }
    }

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
