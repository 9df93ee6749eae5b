import Testing

@testable import Supervisor

/// RFC 4231 test cases 1-7 for `HMACSHA256.authenticationCode`.
@Suite struct HMACSHA256Tests {
    /// One RFC 4231 test case.
    struct Vector: Sendable, CustomTestStringConvertible {
        /// The RFC 4231 test case number.
        let number: Int
        /// The HMAC key.
        let key: [UInt8]
        /// The message.
        let message: [UInt8]
        /// The expected output in hexadecimal; case 5 gives only the first 128 bits.
        let expectedPrefix: String
        /// Short label shown by the test runner.
        var testDescription: String { "RFC 4231 test case \(number)" }
    }

    /// The seven RFC 4231 test cases.
    static let vectors: [Vector] = [
        Vector(
            number: 1, key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8),
            expectedPrefix: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        Vector(
            number: 2, key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8),
            expectedPrefix: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        Vector(
            number: 3, key: [UInt8](repeating: 0xaa, count: 20), message: [UInt8](repeating: 0xdd, count: 50),
            expectedPrefix: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        Vector(
            number: 4, key: Array(1...25), message: [UInt8](repeating: 0xcd, count: 50),
            expectedPrefix: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        Vector(
            number: 5, key: [UInt8](repeating: 0x0c, count: 20), message: Array("Test With Truncation".utf8),
            expectedPrefix: "a3b6167473100ee06e0c796c2955552b"),
        Vector(
            number: 6, key: [UInt8](repeating: 0xaa, count: 131),
            message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
            expectedPrefix: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        Vector(
            number: 7, key: [UInt8](repeating: 0xaa, count: 131),
            message: Array(
                ("This is a test using a larger than block-size key and a larger than block-size data."
                    + " The key needs to be hashed before being used by the HMAC algorithm.").utf8),
            expectedPrefix: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    /// RFC 4231 test cases 1-7 (case 5 compares the first 128 bits).
    @Test(arguments: vectors)
    func rfc4231(vector: Vector) {
        let code = HMACSHA256.authenticationCode(key: vector.key, message: vector.message)
        #expect(code.count == 32)
        #expect(code.lowercaseHex.hasPrefix(vector.expectedPrefix))
    }

    /// Keys of 64 bytes are used directly and longer keys are hashed first.
    @Test func keyOfExactlyOneBlockIsUsedAsIs() {
        // A 64-byte key is not hashed; hashing it would give a different code.
        let key = [UInt8](repeating: 0x42, count: 64)
        let message = Array("payload".utf8)
        #expect(
            HMACSHA256.authenticationCode(key: key, message: message)
                != HMACSHA256.authenticationCode(key: SHA256.hash(key), message: message))
        // A 65-byte key is hashed first, so it is equivalent to its digest.
        let longKey = [UInt8](repeating: 0x42, count: 65)
        #expect(
            HMACSHA256.authenticationCode(key: longKey, message: message)
                == HMACSHA256.authenticationCode(key: SHA256.hash(longKey), message: message))
    }
}
