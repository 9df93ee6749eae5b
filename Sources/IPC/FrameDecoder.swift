/// Incremental frame decoder: feed it bytes in any split, take out whole messages.
///
/// `append` buffers input; `next()` returns the next message, `nil` when more bytes are needed,
/// or throws a `FrameError` for malformed input. After an error the stream is unusable.
public struct FrameDecoder: Sendable {
    /// Largest body accepted; a header announcing more is an error before the body arrives.
    public let maximumBodyLength: Int
    private var buffer: [UInt8] = []
    private var readIndex = 0

    /// Creates a decoder with the given body limit.
    public init(maximumBodyLength: Int = FrameHeader.defaultMaximumBodyLength) {
        self.maximumBodyLength = maximumBodyLength
    }

    /// Bytes received but not yet consumed by a complete frame.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Adds received bytes.
    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    /// Adds received bytes from a raw buffer.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    /// Returns the next complete message, or `nil` until enough bytes have arrived.
    public mutating func next() throws(FrameError) -> Message? {
        guard let (kind, body) = try nextFrame() else { return nil }
        return try Message.decode(kind: kind, body: body)
    }

    /// Returns the next complete frame's kind and body without interpreting the body.
    public mutating func nextFrame() throws(FrameError) -> (kind: UInt8, body: ArraySlice<UInt8>)? {
        let available = buffer.count - readIndex
        if available >= 1 && buffer[readIndex] != FrameHeader.magic.0 {
            throw .badMagic(buffer[readIndex], available >= 2 ? buffer[readIndex + 1] : 0)
        }
        if available >= 2 && buffer[readIndex + 1] != FrameHeader.magic.1 {
            throw .badMagic(buffer[readIndex], buffer[readIndex + 1])
        }
        if available >= 3 && buffer[readIndex + 2] != FrameHeader.currentVersion {
            throw .unsupportedVersion(buffer[readIndex + 2])
        }
        guard available >= FrameHeader.size else { return nil }
        let kind = buffer[readIndex + 3]
        var length = 0
        for offset in 4..<8 { length = length << 8 | Int(buffer[readIndex + offset]) }
        guard length <= maximumBodyLength else { throw .oversized(length: length, limit: maximumBodyLength) }
        guard available >= FrameHeader.size + length else { return nil }
        let bodyStart = readIndex + FrameHeader.size
        readIndex = bodyStart + length
        return (kind, buffer[bodyStart..<readIndex])
    }

    private mutating func compactIfWorthwhile() {
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex > 4096 && readIndex * 2 > buffer.count {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }
}
