import IPC
import Testing

@Suite struct FrameDecoderTests {
    /// Takes every complete message out of `decoder`.
    private func drain(_ decoder: inout FrameDecoder) throws(FrameError) -> [Message] {
        var messages: [Message] = []
        while let message = try decoder.next() { messages.append(message) }
        return messages
    }

    @Test(arguments: SampleMessages.all)
    func roundTripsEachMessage(sample: SampleMessage) throws {
        let message = sample.message
        var decoder = FrameDecoder()
        decoder.append(message.encoded)
        #expect(try decoder.next() == message)
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func returnsNilOnPartialHeader() throws {
        let frame = Message.ready(Message.Ready(pid: 1, version: "v")).encoded
        for length in 0..<FrameHeader.size {
            var decoder = FrameDecoder()
            decoder.append(frame.prefix(length))
            #expect(try decoder.next() == nil, "header cut to \(length) bytes")
            #expect(decoder.bufferedByteCount == length)
        }
    }

    @Test func returnsNilOnPartialBodyWithoutConsumingIt() throws {
        let frame = Message.run(Message.Run(jobID: "j", attempt: 1, payload: [1, 2, 3], timeoutMilliseconds: 5)).encoded
        var decoder = FrameDecoder()
        decoder.append(frame.dropLast())
        #expect(try decoder.next() == nil)
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == frame.count - 1)
        decoder.append(frame.suffix(1))
        #expect(try decoder.next() != nil)
    }

    @Test func decodesAStreamFedByteByByte() throws {
        let stream = SampleMessages.stream(SampleMessages.messages)
        var decoder = FrameDecoder()
        var messages: [Message] = []
        for byte in stream {
            decoder.append(CollectionOfOne(byte))
            messages += try drain(&decoder)
        }
        #expect(messages == SampleMessages.messages)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func decodesEveryTwoWaySplitOfAStream() throws {
        let messages = SampleMessages.small.map(\.message)
        let stream = SampleMessages.stream(messages)
        for split in 0...stream.count {
            var decoder = FrameDecoder()
            decoder.append(stream[..<split])
            var decoded = try drain(&decoder)
            decoder.append(stream[split...])
            decoded += try drain(&decoder)
            #expect(decoded == messages, "split at \(split) of \(stream.count)")
            #expect(decoder.bufferedByteCount == 0)
        }
    }

    @Test func decodesEveryThreeWaySplitOfAShortStream() throws {
        let messages: [Message] = [
            .ready(Message.Ready(pid: 3, version: "v")), .stop,
            .result(Message.Result(jobID: "é", attempt: 2, ok: true, output: [0], durationMicroseconds: 1)),
        ]
        let stream = SampleMessages.stream(messages)
        for first in 0...stream.count {
            for second in first...stream.count {
                var decoder = FrameDecoder()
                var decoded: [Message] = []
                for part in [stream[..<first], stream[first..<second], stream[second...]] {
                    decoder.append(part)
                    decoded += try drain(&decoder)
                }
                #expect(decoded == messages, "splits at \(first) and \(second)")
            }
        }
    }

    @Test func decodesManyFramesAcrossBufferCompaction() throws {
        let messages = (0..<2_000).map { index in
            Message.run(Message.Run(jobID: "job-\(index)", attempt: 1, payload: [], timeoutMilliseconds: 1))
        }
        let stream = SampleMessages.stream(messages)
        var decoder = FrameDecoder()
        var decoded: [Message] = []
        var offset = 0
        // Odd chunk sizes leave a partial frame behind every time the decoder compacts its buffer.
        while offset < stream.count {
            let end = min(offset + 997, stream.count)
            decoder.append(stream[offset..<end])
            decoded += try drain(&decoder)
            offset = end
        }
        #expect(decoded == messages)
    }

    @Test func acceptsRawBufferInput() throws {
        let frame = Message.stop.encoded
        var decoder = FrameDecoder()
        frame.withUnsafeBytes { decoder.append($0) }
        #expect(try decoder.next() == .stop)
    }

    @Test func nextFrameReturnsKindAndBodyUninterpreted() throws {
        var decoder = FrameDecoder()
        decoder.append([0x50, 0x46, FrameHeader.currentVersion, 200, 0, 0, 0, 2, 0xAB, 0xCD])
        let frame = try #require(try decoder.nextFrame())
        #expect(frame.kind == 200)
        #expect(Array(frame.body) == [0xAB, 0xCD])
    }

    @Test func rejectsOversizeHeaderBeforeTheBodyArrives() {
        var decoder = FrameDecoder(maximumBodyLength: 16)
        decoder.append(FrameHeader.encoded(kind: 2, length: 17))
        #expect(throws: FrameError.oversized(length: 17, limit: 16)) { try decoder.next() }

        var defaultLimit = FrameDecoder()
        defaultLimit.append(FrameHeader.encoded(kind: 2, length: UInt32.max))
        #expect(throws: FrameError.oversized(length: Int(UInt32.max), limit: FrameHeader.defaultMaximumBodyLength)) {
            try defaultLimit.next()
        }
    }

    @Test func acceptsABodyOfExactlyTheLimit() throws {
        let message = Message.run(Message.Run(jobID: "", attempt: 1, payload: [7, 7, 7, 7], timeoutMilliseconds: 1))
        let frame = message.encoded
        var decoder = FrameDecoder(maximumBodyLength: frame.count - FrameHeader.size)
        decoder.append(frame)
        #expect(try decoder.next() == message)
    }

    @Test func decodesALargePayloadArrivingInPipeSizedChunks() throws {
        let message = Message.run(
            Message.Run(jobID: "large", attempt: 1, payload: SampleMessages.bytes(3 << 20), timeoutMilliseconds: 1))
        let frame = message.encoded
        var decoder = FrameDecoder()
        var decoded: [Message] = []
        for start in stride(from: 0, to: frame.count, by: 65_536) {
            decoder.append(frame[start..<min(start + 65_536, frame.count)])
            decoded += try drain(&decoder)
        }
        #expect(decoded == [message])
    }

    /// Byte streams that are no valid frame, each with the error the decoder must give.
    static let garbage: [(name: String, bytes: [UInt8], error: FrameError)] = [
        ("text", Array("this is garbage!".utf8), .badMagic(0x74, 0x68)),
        ("bad first magic byte alone", [0x51], .badMagic(0x51, 0)),
        ("bad second magic byte", [0x50, 0x47], .badMagic(0x50, 0x47)),
        ("version 0", [0x50, 0x46, 0], .unsupportedVersion(0)),
        ("version 1 (before jobs_waiting)", [0x50, 0x46, 1, 1, 0, 0, 0, 0], .unsupportedVersion(1)),
        ("version 4", [0x50, 0x46, 4, 1, 0, 0, 0, 0], .unsupportedVersion(4)),
        ("unknown kind", FrameHeader.encoded(kind: 99, length: 0), .unknownKind(99)),
        ("kind 0", FrameHeader.encoded(kind: 0, length: 1) + [0], .unknownKind(0)),
        (
            "ok flag 2",
            FrameHeader.encoded(kind: 3, length: 21) + [0, 0, 0, 0, 0, 0, 0, 1, 2] + [UInt8](repeating: 0, count: 12),
            .invalidField("ok")
        ),
        (
            "invalid UTF-8 id",
            FrameHeader.encoded(kind: 2, length: 21) + [0, 0, 0, 1, 0x80] + [UInt8](repeating: 0, count: 16),
            .invalidField("job_id")
        ),
        (
            "trailing bytes", FrameHeader.encoded(kind: 4, length: 3) + [1, 2, 3],
            .invalidField("trailing bytes after stop")
        ),
        ("short body", FrameHeader.encoded(kind: 1, length: 3) + [0, 0, 1], .truncated(field: "pid")),
        ("garbage after a good frame", Message.stop.encoded + [0x00], .badMagic(0, 0)),
    ]

    @Test func garbageGivesItsError() throws {
        for sample in Self.garbage {
            var decoder = FrameDecoder()
            decoder.append(sample.bytes)
            #expect(throws: sample.error, "\(sample.name)") { _ = try drain(&decoder) }
        }
    }

    @Test func badMagicAndVersionAreRejectedBeforeTheHeaderIsComplete() {
        var decoder = FrameDecoder()
        decoder.append([0x00])
        #expect(throws: FrameError.badMagic(0, 0)) { try decoder.next() }

        var badVersion = FrameDecoder()
        badVersion.append([0x50, 0x46, 9])
        #expect(throws: FrameError.unsupportedVersion(9)) { try badVersion.next() }
    }

    @Test func everyTruncatedBodyInsideAFrameIsAnError() throws {
        for message in SampleMessages.small.map(\.message) where message != .stop {
            let frame = message.encoded
            let bodyLength = frame.count - FrameHeader.size
            for length in 0..<bodyLength {
                // A header that announces the shorter body, so the frame is complete but its fields are not.
                let bytes =
                    FrameHeader.encoded(kind: frame[3], length: UInt32(length))
                    + frame[FrameHeader.size..<(FrameHeader.size + length)]
                var decoder = FrameDecoder()
                decoder.append(bytes)
                do {
                    let decoded = try decoder.next()
                    Issue.record(
                        "\(message.kind) cut to \(length) body bytes decoded as \(String(describing: decoded))")
                } catch .truncated, .invalidField {
                    // Expected.
                } catch {
                    Issue.record("\(message.kind) cut to \(length) body bytes gave \(error)")
                }
            }
        }
    }
}

extension FrameHeader {
    /// The 8 header bytes for a body of `length` bytes of `kind`.
    fileprivate static func encoded(kind: UInt8, length: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        FrameHeader(kind: kind, length: length).encode(into: &bytes)
        return bytes
    }
}
