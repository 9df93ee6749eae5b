import Testing

@testable import Supervisor

/// RFC 4648 vectors, a full byte-value round trip and strict rejection of malformed text for `Base64`.
@Suite struct Base64Tests {
    /// RFC 4648 section 10 test vectors.
    static let rfcVectors: [(plain: String, encoded: String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]

    /// Encoding matches RFC 4648 section 10.
    @Test(arguments: rfcVectors)
    func encodesRFC4648Vector(plain: String, encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.encode(plain.utf8) == encoded)
    }

    /// Decoding RFC 4648 section 10 text gives back the original bytes.
    @Test(arguments: rfcVectors)
    func decodesRFC4648Vector(plain: String, encoded: String) {
        #expect(Base64.decode(encoded) == Array(plain.utf8))
    }

    /// All 256 byte values encode as Python does and decode back unchanged.
    @Test func allByteValuesRoundTrip() throws {
        let bytes = (0...255).map { UInt8($0) }
        let encoded = Base64.encode(bytes)
        let expected =
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZH"
            + "SElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGS"
            + "k5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd"
            + "3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w=="
        #expect(encoded == expected)
        #expect(try #require(Base64.decode(encoded)) == bytes)
        // Every single byte value and every one-, two- and three-byte tail length also round-trips.
        for value in 0...255 {
            for length in 1...3 {
                let chunk = [UInt8](repeating: UInt8(value), count: length)
                #expect(Base64.decode(Base64.encode(chunk)) == chunk)
            }
        }
    }

    /// Text that strict decoding must reject, each with the reason.
    static let invalidTexts: [(text: String, reason: String)] = [
        ("Z", "length 1"),
        ("Zg", "unpadded, length 2"),
        ("Zg=", "length 3"),
        ("Zm9vY", "length 5"),
        ("Zm9v\n", "newline"),
        ("Zm9 v", "space inside"),
        (" Zm9v", "leading space"),
        ("Zm9v ", "trailing space"),
        ("Zm-v", "URL-safe minus"),
        ("Zm_v", "URL-safe underscore"),
        ("Zm9é", "non-ASCII character"),
        ("Zm9v!A==", "punctuation"),
        ("====", "only padding"),
        ("Z===", "three padding characters"),
        ("=Zg=", "padding first"),
        ("Zg=a", "data after padding"),
        ("Zg==Zm9v", "padding before the last group"),
        ("Zm8=Zm8=", "padding in a middle group"),
        ("Zh==", "non-zero trailing bits with two padding characters"),
        ("Zm9=", "non-zero trailing bits with one padding character"),
        ("Zg==\u{0}", "NUL after padding"),
    ]

    /// Strict decoding returns nil for malformed text.
    @Test(arguments: invalidTexts)
    func rejectsInvalidText(text: String, reason: String) {
        #expect(Base64.decode(text) == nil, "expected nil for \(reason)")
    }

    /// The empty string is valid Base64 for no bytes.
    @Test func emptyTextDecodesToNoBytes() {
        #expect(Base64.decode("") == [])
    }
}
