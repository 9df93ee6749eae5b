import IPC
import Testing

@Suite struct MessageTests {
    @Test(arguments: SampleMessages.all)
    func roundTripsThroughDecode(sample: SampleMessage) throws {
        let message = sample.message
        let frame = message.encoded
        let body = frame[FrameHeader.size...]
        #expect(try Message.decode(kind: frame[3], body: body) == message)
    }

    @Test(arguments: SampleMessages.all)
    func headerCarriesMagicVersionKindAndBodyLength(sample: SampleMessage) {
        let message = sample.message
        let frame = message.encoded
        #expect(Array(frame[0..<3]) == [0x50, 0x46, FrameHeader.currentVersion])
        #expect(frame[3] == message.kind.rawValue)
        let length = frame[4..<8].reduce(0) { $0 << 8 | Int($1) }
        #expect(length == frame.count - FrameHeader.size)
    }

    @Test func encodeAppendsToExistingBytes() {
        var buffer: [UInt8] = [9, 9]
        Message.stop.encode(into: &buffer)
        #expect(buffer == [9, 9, 0x50, 0x46, 3, 4, 0, 0, 0, 0])
    }

    @Test func runHasTheDocumentedWireLayout() {
        let run = Message.run(
            Message.Run(
                jobID: "é", attempt: 3, payload: [0xAA], timeoutMilliseconds: 258, jobsWaiting: true,
                maximumOutputBytes: 0x0102_0304))
        let expected: [UInt8] = [
            0x50, 0x46, 3, 2, 0, 0, 0, 28,  // header: magic, version, kind run, body length
            0, 0, 0, 2, 0xC3, 0xA9,  // job id: length-prefixed UTF-8
            0, 0, 0, 3,  // attempt
            0, 0, 0, 0, 0, 0, 1, 2,  // timeout in milliseconds
            0, 0, 0, 1, 0xAA,  // payload: length-prefixed bytes
            1,  // jobs waiting: 0 or 1
            1, 2, 3, 4,  // most output kept
        ]
        #expect(run.encoded == expected)
    }

    @Test func resultHasTheDocumentedWireLayout() {
        let result = Message.result(
            Message.Result(
                jobID: "a", attempt: 1, ok: true, output: [0x6F, 0x6B], durationMicroseconds: 5, truncated: true,
                detail: [0x21]))
        let expected: [UInt8] = [
            0x50, 0x46, 3, 3, 0, 0, 0, 30,
            0, 0, 0, 1, 0x61,  // job id
            0, 0, 0, 1,  // attempt
            1,  // ok flag
            0, 0, 0, 0, 0, 0, 0, 5,  // duration in microseconds
            0, 0, 0, 2, 0x6F, 0x6B,  // output
            1,  // flags: bit 0 truncated
            0, 0, 0, 1, 0x21,  // detail
        ]
        #expect(result.encoded == expected)
    }

    @Test func readyHasTheDocumentedWireLayout() {
        let ready = Message.ready(Message.Ready(pid: 0x0102_0304, version: "v1"))
        #expect(ready.encoded == [0x50, 0x46, 3, 1, 0, 0, 0, 11, 1, 2, 3, 4, FrameHeader.currentVersion, 0, 0, 0, 2, 0x76, 0x31])
    }

    @Test func progressHasTheDocumentedWireLayout() {
        let progress = Message.progress(Message.Progress(jobID: "j", attempt: 2, percent: 50, note: "hi"))
        let expected: [UInt8] = [
            0x50, 0x46, 3, 5, 0, 0, 0, 16,
            0, 0, 0, 1, 0x6A,  // job id
            0, 0, 0, 2,  // attempt
            50,  // percent
            0, 0, 0, 2, 0x68, 0x69,  // note
        ]
        #expect(progress.encoded == expected)
    }

    @Test(arguments: SampleMessages.small.filter { $0.message != .stop })
    func everyTruncatedBodyIsAnErrorNeverATrap(sample: SampleMessage) {
        let frame = sample.message.encoded
        let body = frame[FrameHeader.size...]
        for length in 0..<body.count {
            let truncated = body.prefix(length)
            do {
                let decoded = try Message.decode(kind: frame[3], body: truncated)
                Issue.record("body cut to \(length) of \(body.count) bytes decoded as \(decoded)")
            } catch .truncated, .invalidField {
                // Expected: the body ended inside a field.
            } catch {
                Issue.record("body cut to \(length) bytes gave \(error)")
            }
        }
    }

    @Test func truncationNamesTheFieldItCut() {
        let frame = Message.run(Message.Run(jobID: "id", attempt: 1, payload: [1, 2], timeoutMilliseconds: 9)).encoded
        let body = frame[FrameHeader.size...]
        let expectations: [(length: Int, field: String)] = [
            (0, "job_id"), (3, "job_id"), (5, "job_id"), (6, "attempt"), (9, "attempt"), (10, "timeout_ms"),
            (17, "timeout_ms"), (18, "payload"), (21, "payload"), (22, "payload"), (23, "payload"),
            (24, "jobs_waiting"), (25, "max_output_bytes"), (28, "max_output_bytes"),
        ]
        for (length, field) in expectations {
            #expect(throws: FrameError.truncated(field: field)) {
                try Message.decode(kind: Message.Kind.run.rawValue, body: body.prefix(length))
            }
        }
    }

    /// Bodies that are complete but wrong, each with the error it must give.
    static let malformedBodies: [(name: String, kind: UInt8, body: [UInt8], error: FrameError)] = [
        ("unknown kind 0", 0, [], .unknownKind(0)),
        ("unknown kind 6", 6, [], .unknownKind(6)),
        ("unknown kind 255", 255, [1, 2, 3], .unknownKind(255)),
        ("ok flag 2", 3, [0, 0, 0, 1, 0x61, 0, 0, 0, 1, 2] + [UInt8](repeating: 0, count: 17), .invalidField("ok")),
        ("ok flag 255", 3, [0, 0, 0, 0, 0, 0, 0, 1, 255] + [UInt8](repeating: 0, count: 17), .invalidField("ok")),
        (
            "flags 2", 3, [0, 0, 0, 0, 0, 0, 0, 1, 1] + [UInt8](repeating: 0, count: 12) + [2, 0, 0, 0, 0],
            .invalidField("flags")
        ),
        (
            "detail over the limit", 3,
            [0, 0, 0, 0, 0, 0, 0, 1, 1] + [UInt8](repeating: 0, count: 12) + [0, 0, 0, 0x10, 1]
                + [UInt8](repeating: 0, count: 4097),
            .invalidField("detail of 4097 bytes (limit 4096)")
        ),
        (
            "progress over 100%", 5, [0, 0, 0, 1, 0x61, 0, 0, 0, 1, 101, 0, 0, 0, 0],
            .invalidField("percent 101 (0-100)")
        ),
        (
            "progress note over the limit", 5,
            [0, 0, 0, 1, 0x61, 0, 0, 0, 1, 5, 0, 0, 0, 201] + [UInt8](repeating: 0x61, count: 201),
            .invalidField("note of 201 bytes (limit 200)")
        ),
        ("ready without version", 1, [0, 0, 0, 1, 3], .truncated(field: "version")),
        (
            "invalid UTF-8 run id", 2, [0, 0, 0, 2, 0xC3, 0x28] + [UInt8](repeating: 0, count: 21),
            .invalidField("job_id")
        ),
        (
            "invalid UTF-8 result id", 3, [0, 0, 0, 1, 0xFF] + [UInt8](repeating: 0, count: 22),
            .invalidField("job_id")
        ),
        ("overlong UTF-8 id", 2, [0, 0, 0, 2, 0xC0, 0x80] + [UInt8](repeating: 0, count: 21), .invalidField("job_id")),
        ("field longer than body", 2, [0xFF, 0xFF, 0xFF, 0xFF, 0x61], .truncated(field: "job_id")),
        (
            "payload longer than body", 2, [0, 0, 0, 0] + [UInt8](repeating: 0, count: 12) + [0, 0, 1, 0, 9],
            .truncated(field: "payload")
        ),
        ("trailing byte after stop", 4, [0], .invalidField("trailing bytes after stop")),
        ("trailing byte after ready", 1, [0, 0, 0, 1, 1, 0, 0, 0, 0, 0], .invalidField("trailing bytes after ready")),
        (
            "trailing bytes after run", 2, [0, 0, 0, 0] + [UInt8](repeating: 0, count: 16) + [1, 0, 0, 0, 0, 0xDE],
            .invalidField("trailing bytes after run")
        ),
        (
            "run without jobs_waiting", 2, [0, 0, 0, 0] + [UInt8](repeating: 0, count: 16),
            .truncated(field: "jobs_waiting")
        ),
        ("jobs_waiting 2", 2, [0, 0, 0, 0] + [UInt8](repeating: 0, count: 16) + [2], .invalidField("jobs_waiting")),
        (
            "trailing byte after result", 3,
            [0, 0, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 12) + [0, 0, 0, 0, 0] + [7],
            .invalidField("trailing bytes after result")
        ),
    ]

    @Test func malformedBodiesGiveTheirError() {
        for sample in Self.malformedBodies {
            #expect(throws: sample.error, "\(sample.name)") {
                try Message.decode(kind: sample.kind, body: sample.body[...])
            }
        }
    }

    @Test func decodesABodySliceThatDoesNotStartAtZero() throws {
        let ready = Message.ready(Message.Ready(pid: 7, version: "v"))
        let frame = SampleMessages.stream([.stop, ready])
        let body = frame[(2 * FrameHeader.size)...]
        #expect(try Message.decode(kind: Message.Kind.ready.rawValue, body: body) == ready)
    }

    @Test func errorsDescribeThemselvesOnOneLine() {
        let errors: [FrameError] = [
            .badMagic(0x74, 0x68), .unsupportedVersion(2), .oversized(length: 10, limit: 5), .unknownKind(9),
            .truncated(field: "payload"), .invalidField("ok"),
        ]
        #expect(FrameError.badMagic(0x74, 0x0a).description == "bad frame magic 0x740a")
        for error in errors {
            #expect(!error.description.isEmpty && !error.description.contains("\n"))
        }
    }
}
