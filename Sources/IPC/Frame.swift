/// The fixed header every frame starts with, then `length` bytes of body.
///
/// Layout (8 bytes, big-endian): magic `P` `F`, protocol version, message kind, body length (UInt32).
public struct FrameHeader: Equatable, Sendable {
    /// The two bytes every frame starts with.
    public static let magic: (UInt8, UInt8) = (0x50, 0x46)
    /// The protocol version this build speaks; a frame with another version is rejected. Version 2 added
    /// `jobs_waiting` to `run`; version 3 the worker's version in `ready`, `max_output_bytes` in `run`, flags and
    /// a detail field in `result`, and the `progress` message (docs/worker-protocol.md).
    public static let currentVersion: UInt8 = 3
    /// Size of the encoded header in bytes.
    public static let size = 8
    /// Frame bodies larger than this are refused unless a decoder is given another limit.
    public static let defaultMaximumBodyLength = 8 * 1024 * 1024

    /// The message kind byte.
    public var kind: UInt8
    /// Body length in bytes.
    public var length: UInt32

    /// Creates a header for a body of `length` bytes.
    public init(kind: UInt8, length: UInt32) {
        self.kind = kind
        self.length = length
    }

    /// Appends the encoded header to `buffer`.
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(FrameHeader.magic.0)
        buffer.append(FrameHeader.magic.1)
        buffer.append(FrameHeader.currentVersion)
        buffer.append(kind)
        buffer.appendBigEndian(length)
    }

    /// Writes the length of the body that follows the header at `headerStart` into that header (encoders
    /// append a header with length 0, then the body, then patch): frames and journal records alike.
    public static func patchLength(in buffer: inout [UInt8], headerStart: Int) {
        let length = UInt32(buffer.count - headerStart - size)
        patchBigEndian(length, in: &buffer, at: headerStart + 4)
    }

    /// Overwrites four bytes at `offset` with `value`, big-endian.
    public static func patchBigEndian(_ value: UInt32, in buffer: inout [UInt8], at offset: Int) {
        for index in 0..<4 {
            buffer[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index))
        }
    }
}

/// Why bytes could not be read as a frame. Every malformed input maps to one of these, never a trap.
public enum FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The first two bytes are not the magic.
    case badMagic(UInt8, UInt8)
    /// The peer speaks another protocol version.
    case unsupportedVersion(UInt8)
    /// The header announces a body over the limit.
    case oversized(length: Int, limit: Int)
    /// The kind byte names no message.
    case unknownKind(UInt8)
    /// The body ended before a field was complete.
    case truncated(field: String)
    /// A field holds a value it may not hold (bad UTF-8, bad flag, trailing bytes).
    case invalidField(String)

    /// A one-line explanation, used in `last_error` and logs.
    public var description: String {
        switch self {
        case .badMagic(let first, let second): return "bad frame magic 0x\(hex(first))\(hex(second))"
        case .unsupportedVersion(let version): return "unsupported protocol version \(version)"
        case .oversized(let length, let limit): return "frame of \(length) bytes exceeds limit of \(limit)"
        case .unknownKind(let kind): return "unknown message kind \(kind)"
        case .truncated(let field): return "frame body truncated in field \(field)"
        case .invalidField(let field): return "invalid field \(field)"
        }
    }
}

private func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
}

extension Array where Element == UInt8 {
    /// Appends `value` in network byte order.
    /// Inlinable so that callers in other modules get it specialised: the generic version, called per field of
    /// every frame and journal record, cost more than the rest of the encoding.
    @inlinable
    public mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var bigEndian = value.bigEndian
        Swift.withUnsafeBytes(of: &bigEndian) { append(contentsOf: $0) }
    }
    /// Appends `text`'s UTF-8 bytes after their count as a big-endian UInt32: the string fields of frames and
    /// of journal records. Copied from the string's contiguous storage (appending the `UTF8View` went byte by
    /// byte).
    @inlinable
    public mutating func appendLengthPrefixed(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            appendBigEndian(UInt32(utf8.count))
            append(contentsOf: utf8)
        }
    }
}
