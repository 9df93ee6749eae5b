/// HMAC-SHA-256 message authentication code as specified by RFC 2104 (test vectors in RFC 4231).
enum HMACSHA256 {
    /// Returns the 32-byte HMAC-SHA-256 of `message` under `key`; keys longer than 64 bytes are hashed first.
    static func authenticationCode(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var blockKey = key.count > SHA256.blockByteCount ? SHA256.hash(key) : key
        blockKey.append(contentsOf: repeatElement(0, count: SHA256.blockByteCount - blockKey.count))

        var innerInput = [UInt8]()
        innerInput.reserveCapacity(SHA256.blockByteCount + message.count)
        innerInput.append(contentsOf: blockKey.lazy.map { $0 ^ 0x36 })
        innerInput.append(contentsOf: message)
        let innerDigest = SHA256.hash(innerInput)

        var outerInput = [UInt8]()
        outerInput.reserveCapacity(SHA256.blockByteCount + SHA256.digestByteCount)
        outerInput.append(contentsOf: blockKey.lazy.map { $0 ^ 0x5c })
        outerInput.append(contentsOf: innerDigest)
        return SHA256.hash(outerInput)
    }
}
