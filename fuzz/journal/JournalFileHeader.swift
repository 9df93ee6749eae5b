// Stand-in for Sources/Supervisor/Journal/JournalFile.swift in the journal fuzz target: that file needs the
// System module (files, locks), the scanner only `JournalFile.header`. The definition below is a copy of the
// original; fuzz/run compares the two and refuses to build when they differ.

enum JournalFile {
    static let header: [UInt8] = {
        var bytes = Array("PFJOURNL".utf8) + [0, 2, 0, 0]
        bytes.appendBigEndianUInt32(CRC32.checksum(bytes[...]))
        return bytes
    }()
}

extension Array where Element == UInt8 {
    /// Appends a big-endian UInt32.
    fileprivate mutating func appendBigEndianUInt32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
}
