import Testing

@testable import Supervisor

/// FIPS 180-4 / NIST vectors and padding-boundary lengths for `SHA256.hash`.
@Suite struct SHA256Tests {
    /// A message given as ASCII text and its expected digest in hexadecimal.
    struct TextVector: Sendable, CustomTestStringConvertible {
        /// The message as ASCII text.
        let message: String
        /// The expected digest, lowercase hexadecimal.
        let digest: String
        /// Short label shown by the test runner.
        var testDescription: String { "\"\(message.prefix(16))\" (\(message.utf8.count) bytes)" }
    }

    /// NIST example messages from FIPS 180-4 / the SHA-256 examples document.
    static let nistVectors: [TextVector] = [
        TextVector(message: "", digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        TextVector(message: "abc", digest: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        TextVector(
            message: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            digest: "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        TextVector(
            message: "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                + "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            digest: "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ),
    ]

    /// NIST example messages hash to their published digests.
    @Test(arguments: nistVectors)
    func nistMessage(vector: TextVector) {
        #expect(SHA256.hash(Array(vector.message.utf8)).lowercaseHex == vector.digest)
        // The generic entry point also accepts non-contiguous collections such as String.UTF8View.
        #expect(SHA256.hash(vector.message.utf8).lowercaseHex == vector.digest)
    }

    /// One million repetitions of "a" hash to the published digest.
    @Test func oneMillionLowercaseA() {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(
            SHA256.hash(message).lowercaseHex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Lengths around the one- and two-block padding boundaries, with digests from Python's hashlib
    /// for the message whose byte i is (7 * i + 3) mod 256.
    static let boundaryVectors: [(length: Int, digest: String)] = [
        (55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"),
        (56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"),
        (63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"),
        (64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"),
        (65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"),
        (119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"),
        (120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"),
        (127, "a8d23e75d936f303d248888d9b165ee543f4cbafcad3c9dd2a79bd84faa11d07"),
        (128, "d2742f1f4ac6bb7ca2b239ee18402ba8b3f9f8e652d2a72973c2b9ba11c08cf6"),
        (1_000, "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371"),
    ]

    /// Messages around the padding boundaries hash as Python hashlib does.
    @Test(arguments: boundaryVectors)
    func paddingBoundary(length: Int, digest: String) {
        let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        #expect(SHA256.hash(message).lowercaseHex == digest)
        #expect(SHA256.hash(message[...]).lowercaseHex == digest)
    }

    /// Digests are always 32 bytes.
    @Test func digestIsThirtyTwoBytes() {
        #expect(SHA256.hash([UInt8]()).count == 32)
        #expect(SHA256.hash([UInt8](repeating: 1, count: 200)).count == 32)
    }

    /// Hex output is lowercase with two digits per byte.
    @Test func lowercaseHexFormatsEveryByteWithTwoDigits() {
        #expect([UInt8]().lowercaseHex == "")
        #expect([0x00, 0x0f, 0xa0, 0xff].lowercaseHex == "000fa0ff")
    }
}
