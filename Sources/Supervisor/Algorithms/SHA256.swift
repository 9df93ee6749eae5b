/// SHA-256 message digest as specified by FIPS 180-4, implemented with the Swift standard library only.
/// Input is processed in 64-byte blocks with stack-allocated working state.
enum SHA256 {
    /// Size of a SHA-256 digest in bytes.
    static let digestByteCount = 32

    /// Size of one SHA-256 message block in bytes.
    static let blockByteCount = 64

    /// Returns the 32-byte SHA-256 digest of `bytes`.
    static func hash<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        if let digest = bytes.withContiguousStorageIfAvailable({ hashContiguous($0) }) {
            return digest
        }
        let contiguousCopy = Array(bytes)
        return contiguousCopy.withUnsafeBufferPointer { hashContiguous($0) }
    }

    /// The eight working variables H0 through H7 of FIPS 180-4 section 6.2.
    private struct State {
        var word0: UInt32 = 0x6a09_e667
        var word1: UInt32 = 0xbb67_ae85
        var word2: UInt32 = 0x3c6e_f372
        var word3: UInt32 = 0xa54f_f53a
        var word4: UInt32 = 0x510e_527f
        var word5: UInt32 = 0x9b05_688c
        var word6: UInt32 = 0x1f83_d9ab
        var word7: UInt32 = 0x5be0_cd19
    }

    /// The 64 round constants K of FIPS 180-4 section 4.2.2.
    private static let roundConstants: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    /// Hashes a contiguous message: all full blocks in place, then one or two padded tail blocks.
    private static func hashContiguous(_ message: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var state = State()
        let fullBlockCount = message.count / blockByteCount
        let remainderCount = message.count - fullBlockCount * blockByteCount
        roundConstants.withUnsafeBufferPointer { constants in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { schedule in
                if let base = message.baseAddress {
                    for blockIndex in 0..<fullBlockCount {
                        let block = base + blockIndex * blockByteCount
                        compress(&state, block: block, schedule: schedule, constants: constants)
                    }
                }
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * blockByteCount) { tail in
                    tail.initialize(repeating: 0)
                    for offset in 0..<remainderCount {
                        tail[offset] = message[fullBlockCount * blockByteCount + offset]
                    }
                    tail[remainderCount] = 0x80
                    let tailByteCount = remainderCount < blockByteCount - 8 ? blockByteCount : 2 * blockByteCount
                    let bitLength = UInt64(truncatingIfNeeded: message.count) &* 8
                    for byteIndex in 0..<8 {
                        tail[tailByteCount - 1 - byteIndex] = UInt8(truncatingIfNeeded: bitLength >> (8 * byteIndex))
                    }
                    if let tailBase = UnsafePointer(tail.baseAddress) {
                        var blockOffset = 0
                        while blockOffset < tailByteCount {
                            compress(&state, block: tailBase + blockOffset, schedule: schedule, constants: constants)
                            blockOffset += blockByteCount
                        }
                    }
                }
            }
        }
        var digest = [UInt8](repeating: 0, count: digestByteCount)
        let words = [
            state.word0, state.word1, state.word2, state.word3, state.word4, state.word5, state.word6, state.word7,
        ]
        for (wordIndex, word) in words.enumerated() {
            digest[wordIndex * 4] = UInt8(truncatingIfNeeded: word >> 24)
            digest[wordIndex * 4 + 1] = UInt8(truncatingIfNeeded: word >> 16)
            digest[wordIndex * 4 + 2] = UInt8(truncatingIfNeeded: word >> 8)
            digest[wordIndex * 4 + 3] = UInt8(truncatingIfNeeded: word)
        }
        return digest
    }

    /// Applies the compression function to one 64-byte block (FIPS 180-4 section 6.2.2).
    @inline(__always)
    private static func compress(
        _ state: inout State,
        block: UnsafePointer<UInt8>,
        schedule: UnsafeMutableBufferPointer<UInt32>,
        constants: UnsafeBufferPointer<UInt32>
    ) {
        for index in 0..<16 {
            let byteOffset = index * 4
            schedule[index] = UInt32(block[byteOffset]) << 24 | UInt32(block[byteOffset + 1]) << 16
                | UInt32(block[byteOffset + 2]) << 8 | UInt32(block[byteOffset + 3])
        }
        for index in 16..<64 {
            let previous15 = schedule[index - 15]
            let previous2 = schedule[index - 2]
            let sigma0 = rotateRight(previous15, 7) ^ rotateRight(previous15, 18) ^ (previous15 >> 3)
            let sigma1 = rotateRight(previous2, 17) ^ rotateRight(previous2, 19) ^ (previous2 >> 10)
            schedule[index] = schedule[index - 16] &+ sigma0 &+ schedule[index - 7] &+ sigma1
        }
        // Working variables a-h keep their FIPS 180-4 names so the rounds can be checked against the standard.
        var a = state.word0
        var b = state.word1
        var c = state.word2
        var d = state.word3
        var e = state.word4
        var f = state.word5
        var g = state.word6
        var h = state.word7
        for index in 0..<64 {
            let bigSigma1 = rotateRight(e, 6) ^ rotateRight(e, 11) ^ rotateRight(e, 25)
            let choice = (e & f) ^ (~e & g)
            let temporary1 = h &+ bigSigma1 &+ choice &+ constants[index] &+ schedule[index]
            let bigSigma0 = rotateRight(a, 2) ^ rotateRight(a, 13) ^ rotateRight(a, 22)
            let majority = (a & b) ^ (a & c) ^ (b & c)
            let temporary2 = bigSigma0 &+ majority
            h = g
            g = f
            f = e
            e = d &+ temporary1
            d = c
            c = b
            b = a
            a = temporary1 &+ temporary2
        }
        state.word0 &+= a
        state.word1 &+= b
        state.word2 &+= c
        state.word3 &+= d
        state.word4 &+= e
        state.word5 &+= f
        state.word6 &+= g
        state.word7 &+= h
    }

    /// Rotates `value` right by `count` bits (0 < count < 32).
    @inline(__always)
    private static func rotateRight(_ value: UInt32, _ count: UInt32) -> UInt32 {
        (value >> count) | (value << (32 - count))
    }
}
