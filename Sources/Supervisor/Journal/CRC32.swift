/// CRC-32 (IEEE 802.3, reflected, as zlib computes it): the journal's record checksum.
///
/// Slicing-by-8 (eight bytes per step through eight tables) instead of one table lookup per byte: every
/// journal record is checksummed on the loop, three per job, and bytewise this was ~1.7% of the
/// supervisor's CPU under load.
enum CRC32 {
    /// `tables[0]` is the classic bytewise table; `tables[k][i]` is the CRC of byte `i` followed by `k`
    /// zero bytes, so eight bytes can be folded in with one lookup each.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
            tables[index] = value
        }
        for slice in 1..<8 {
            for index in 0..<256 {
                let previous = tables[(slice - 1) * 256 + index]
                tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// The checksum of `bytes`.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0xFFFF_FFFF, bytes) ^ 0xFFFF_FFFF
    }

    /// The checksum of two byte ranges taken as one (a record's length, then its body).
    static func checksum(_ first: ArraySlice<UInt8>, _ second: ArraySlice<UInt8>) -> UInt32 {
        let crc = first.withUnsafeBytes { update(0xFFFF_FFFF, $0) }
        return second.withUnsafeBytes { update(crc, $0) } ^ 0xFFFF_FFFF
    }

    /// The checksum of two byte ranges taken as one (a record's length, then its body).
    static func checksum(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> UInt32 {
        update(update(0xFFFF_FFFF, first), second) ^ 0xFFFF_FFFF
    }

    /// Folds `bytes` into a running (pre-inverted) CRC.
    private static func update(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = start
        tables.withUnsafeBufferPointer { table in
            var offset = 0
            while bytes.count - offset >= 8 {
                let low = crc ^ UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                let high = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                crc =
                    table[7 * 256 + Int(low & 0xFF)] ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)] ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(high & 0xFF)] ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ table[256 + Int((high >> 16) & 0xFF)] ^ table[Int(high >> 24)]
                offset += 8
            }
            while offset < bytes.count {
                crc = table[Int((crc ^ UInt32(bytes[offset])) & 0xFF)] ^ (crc >> 8)
                offset += 1
            }
        }
        return crc
    }

    /// The checksum of an array slice.
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
