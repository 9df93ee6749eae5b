/// Base64 with the RFC 4648 section 4 standard alphabet and `=` padding.
/// Decoding is strict: only canonical, correctly padded text is accepted.
enum Base64 {
    /// The 64 alphabet characters as ASCII bytes, indexed by their 6-bit value.
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Maps an ASCII byte to its 6-bit value, or 0xFF when the byte is not in the alphabet.
    private static let decodingTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in alphabet.enumerated() {
            table[Int(character)] = UInt8(value)
        }
        return table
    }()

    /// The ASCII padding character `=`.
    private static let padding = UInt8(ascii: "=")

    /// Returns the padded Base64 encoding of `bytes`.
    static func encode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var output = [UInt8]()
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var iterator = bytes.makeIterator()
        while let first = iterator.next() {
            let second = iterator.next()
            let third = second == nil ? nil : iterator.next()
            let group = UInt32(first) << 16 | UInt32(second ?? 0) << 8 | UInt32(third ?? 0)
            output.append(alphabet[Int(group >> 18 & 0x3F)])
            output.append(alphabet[Int(group >> 12 & 0x3F)])
            output.append(second == nil ? padding : alphabet[Int(group >> 6 & 0x3F)])
            output.append(third == nil ? padding : alphabet[Int(group & 0x3F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes padded Base64 text; returns nil for characters outside the alphabet, a length that is not a
    /// multiple of 4, misplaced or missing padding, or non-zero bits after the last encoded byte.
    static func decode(_ text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count % 4 == 0 else {
            return nil
        }
        var output = [UInt8]()
        output.reserveCapacity(characters.count / 4 * 3)
        var groupStart = 0
        while groupStart < characters.count {
            let isLastGroup = groupStart + 4 == characters.count
            var values: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
            var paddingCount = 0
            for position in 0..<4 {
                let character = characters[groupStart + position]
                var value: UInt32 = 0
                if character == padding {
                    // Padding may only end the final group, and only in its last one or two positions.
                    guard isLastGroup, position >= 2 else {
                        return nil
                    }
                    paddingCount += 1
                } else {
                    guard paddingCount == 0 else {
                        return nil
                    }
                    let decoded = decodingTable[Int(character)]
                    guard decoded != 0xFF else {
                        return nil
                    }
                    value = UInt32(decoded)
                }
                switch position {
                case 0: values.0 = value
                case 1: values.1 = value
                case 2: values.2 = value
                default: values.3 = value
                }
            }
            let group = values.0 << 18 | values.1 << 12 | values.2 << 6 | values.3
            output.append(UInt8(truncatingIfNeeded: group >> 16))
            switch paddingCount {
            case 0:
                output.append(UInt8(truncatingIfNeeded: group >> 8))
                output.append(UInt8(truncatingIfNeeded: group))
            case 1:
                guard group & 0xFF == 0 else {
                    return nil
                }
                output.append(UInt8(truncatingIfNeeded: group >> 8))
            default:
                guard group & 0xFFFF == 0 else {
                    return nil
                }
            }
            groupStart += 4
        }
        return output
    }
}
