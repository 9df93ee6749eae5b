/// Why a byte sequence is not valid JSON, and where (`offset` counts bytes from 0).
struct JSONError: Error, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. `expected ':' after object key`.
    var message: String
    /// Byte offset of the problem in the input, counted from 0.
    var offset: Int

    /// Reads like `invalid JSON at byte 12: expected ':' after object key`.
    var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// A strict RFC 8259 parser over bytes: one top-level value, valid UTF-8, no duplicate keys, depth at most 64.
struct JSONParser {
    /// Deepest allowed nesting of arrays and objects.
    static let maximumDepth = 64

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0
    /// Reused for strings that contain escapes; strings without escapes are built straight from the input.
    private var scratch: [UInt8] = []

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// Parses a complete JSON document.
    static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buffer) throws(JSONError) -> JSONValue in try parse(buffer) }
    }

    /// Parses a complete JSON document held in a slice (offsets count from the slice's start).
    static func parse(_ bytes: ArraySlice<UInt8>) throws(JSONError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buffer) throws(JSONError) -> JSONValue in try parse(buffer) }
    }

    /// Parses a complete JSON document held in raw memory.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        try parse(bytes.bindMemory(to: UInt8.self))
    }

    /// Parses a complete JSON document held in a buffer.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else {
            throw JSONError(message: "trailing characters after the JSON value", offset: parser.index)
        }
        return value
    }

    // MARK: Values

    private mutating func parseValue() throws(JSONError) -> JSONValue {
        guard index < bytes.count else { throw endOfInput() }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try parseLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try parseLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try parseLiteral("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw JSONError(message: "expected a value", offset: index)
        }
    }

    private mutating func parseLiteral(_ word: StaticString, _ value: JSONValue) throws(JSONError) -> JSONValue {
        let start = index
        let length = word.utf8CodeUnitCount
        let matches = word.withUTF8Buffer { expected in
            bytes.count - start >= length && (0..<length).allSatisfy { bytes[start + $0] == expected[$0] }
        }
        guard matches else { throw JSONError(message: "invalid literal", offset: start) }
        index += length
        return value
    }

    private mutating func parseObject() throws(JSONError) -> JSONValue {
        try enterContainer()
        index += 1
        var members = [String: JSONValue](minimumCapacity: 4)  // an enqueue body has 2-3 members: no regrowth
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(members)
        }
        while true {
            guard try peek() == UInt8(ascii: "\"") else {
                let message = members.isEmpty ? "expected string key or '}'" : "expected string key"
                throw JSONError(message: message, offset: index)
            }
            let keyOffset = index
            let key = try parseString()
            skipWhitespace()
            guard try peek() == UInt8(ascii: ":") else {
                throw JSONError(message: "expected ':' after object key", offset: index)
            }
            index += 1
            skipWhitespace()
            // One hash of the key: insert, and a previous value means the key came twice.
            guard members.updateValue(try parseValue(), forKey: key) == nil else {
                throw JSONError(message: "duplicate object key \"\(key)\"", offset: keyOffset)
            }
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "}"):
                index += 1
                depth -= 1
                return .object(members)
            default:
                throw JSONError(message: "expected ',' or '}' after object member", offset: index)
            }
        }
    }

    private mutating func parseArray() throws(JSONError) -> JSONValue {
        try enterContainer()
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return .array(elements)
            default:
                throw JSONError(message: "expected ',' or ']' after array element", offset: index)
            }
        }
    }

    private mutating func enterContainer() throws(JSONError) {
        depth += 1
        guard depth <= Self.maximumDepth else {
            throw JSONError(message: "nesting deeper than \(Self.maximumDepth) levels", offset: index)
        }
    }

    // MARK: Numbers

    private mutating func parseNumber() throws(JSONError) -> JSONValue {
        let start = index
        let negative = bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard try isDigit(peek()) else { throw JSONError(message: "expected digit after '-'", offset: index) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count && isDigit(bytes[index]) {
                throw JSONError(message: "leading zeros are not allowed", offset: start)
            }
        } else {
            skipDigits()
        }
        var isInteger = true
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard try isDigit(peek()) else {
                throw JSONError(message: "expected digit after decimal point", offset: index)
            }
            skipDigits()
        }
        if index < bytes.count && (bytes[index] | 0x20) == UInt8(ascii: "e") {
            isInteger = false
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
                index += 1
            }
            guard try isDigit(peek()) else { throw JSONError(message: "expected digit in exponent", offset: index) }
            skipDigits()
        }
        if isInteger, let value = integer(from: start, negative: negative) {
            return .integer(value)
        }
        // The grammar is checked above, so the stdlib's locale-independent conversion sees only valid text.
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONError(message: "number out of range", offset: start)
        }
        return .double(value)
    }

    /// The integer in `bytes[start..<index]`, or nil when it does not fit in `Int`.
    private func integer(from start: Int, negative: Bool) -> Int? {
        var value = 0
        // Accumulate negatively so that Int.min, whose magnitude exceeds Int.max, still fits.
        for position in (negative ? start + 1 : start)..<index {
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = shifted.subtractingReportingOverflow(Int(bytes[position] &- UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = next
        }
        if negative { return value }
        return value == Int.min ? nil : -value
    }

    private mutating func skipDigits() {
        while index < bytes.count && isDigit(bytes[index]) { index += 1 }
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    // MARK: Strings

    /// Parses a string starting at its opening quote; fast path when it holds no escapes.
    private mutating func parseString() throws(JSONError) -> String {
        index += 1
        var runStart = index
        var escaped = false
        while true {
            guard index < bytes.count else { throw JSONError(message: "unterminated string", offset: index) }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                break
            } else if byte == UInt8(ascii: "\\") {
                if !escaped {
                    escaped = true
                    scratch.removeAll(keepingCapacity: true)
                }
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                try parseEscape()
                runStart = index
            } else if byte < 0x20 {
                let hex = String(byte, radix: 16, uppercase: true)
                throw JSONError(
                    message: "unescaped control character 0x\(hex.count == 1 ? "0" : "")\(hex) in string",
                    offset: index)
            } else if byte < 0x80 {
                index += 1
            } else {
                try skipMultibyteSequence()
            }
        }
        let run = UnsafeBufferPointer(rebasing: bytes[runStart..<index])
        index += 1
        if !escaped { return String(decoding: run, as: UTF8.self) }
        scratch.append(contentsOf: run)
        return String(decoding: scratch, as: UTF8.self)
    }

    /// Decodes the escape at `index` (a backslash) into `scratch`.
    private mutating func parseEscape() throws(JSONError) {
        let start = index
        index += 1
        guard index < bytes.count else { throw JSONError(message: "unterminated string", offset: index) }
        let letter = bytes[index]
        index += 1
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(letter)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0c)
        case UInt8(ascii: "n"): scratch.append(0x0a)
        case UInt8(ascii: "r"): scratch.append(0x0d)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHexQuad()
            if (0xDC00...0xDFFF).contains(scalar) {
                throw JSONError(message: "unpaired surrogate in \\u escape", offset: start)
            }
            if (0xD800...0xDBFF).contains(scalar) {
                guard
                    bytes.count - index >= 2 && bytes[index] == UInt8(ascii: "\\")
                        && bytes[index + 1] == UInt8(ascii: "u")
                else { throw JSONError(message: "unpaired surrogate in \\u escape", offset: start) }
                index += 2
                let low = try parseHexQuad()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw JSONError(message: "unpaired surrogate in \\u escape", offset: start)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            appendUTF8(scalar)
        default:
            let printable = letter >= 0x21 && letter < 0x7f
            let message = printable ? "invalid escape '\\\(Character(Unicode.Scalar(letter)))'" : "invalid escape"
            throw JSONError(message: message, offset: start)
        }
    }

    private mutating func parseHexQuad() throws(JSONError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.count else { throw JSONError(message: "unterminated string", offset: index) }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONError(message: "expected 4 hex digits after \\u", offset: index)
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Steps over one well-formed UTF-8 sequence of 2-4 bytes (RFC 3629: no overlongs, surrogates or > U+10FFFF).
    private mutating func skipMultibyteSequence() throws(JSONError) {
        let lead = bytes[index]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            secondRange = 0x80...0x9F
        case 0xF0:
            length = 4
            secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            secondRange = 0x80...0x8F
        default: throw JSONError(message: "invalid UTF-8 in string", offset: index)
        }
        guard bytes.count - index >= length, secondRange.contains(bytes[index + 1]),
            (2..<length).allSatisfy({ bytes[index + $0] & 0xC0 == 0x80 })
        else { throw JSONError(message: "invalid UTF-8 in string", offset: index) }
        index += length
    }

    // MARK: Helpers

    /// The byte at `index`; throws at end of input.
    private func peek() throws(JSONError) -> UInt8 {
        guard index < bytes.count else { throw endOfInput() }
        return bytes[index]
    }

    private func endOfInput() -> JSONError {
        JSONError(message: "unexpected end of input", offset: bytes.count)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
            default: return
            }
        }
    }
}
