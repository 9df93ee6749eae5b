import IPC
import Testing

/// A message used as a test argument, shown in test output by its short name rather than its bytes.
struct SampleMessage: Sendable, CustomTestStringConvertible {
    /// What the sample covers.
    let name: String
    /// The message itself.
    let message: Message

    /// The name, so a 1 MiB payload does not flood the test log.
    var testDescription: String { name }
}

/// Messages covering every kind and the edges of every field, shared by the codec tests.
enum SampleMessages {
    /// A payload of `count` bytes cycling through every byte value.
    static func bytes(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) } }

    /// One of each kind, with empty, large and non-ASCII fields and extreme integers.
    static let all: [SampleMessage] = [
        SampleMessage(name: "ready", message: .ready(Message.Ready(pid: 4242, version: "prefork-worker 0.9.0"))),
        SampleMessage(
            name: "ready, negative pid, empty version",
            message: .ready(Message.Ready(pid: -1, protocolVersion: 0, version: ""))),
        SampleMessage(
            name: "ready, max pid, non-ASCII version",
            message: .ready(Message.Ready(pid: .max, protocolVersion: 255, version: "wörker 日本"))),
        SampleMessage(
            name: "run",
            message: .run(
                Message.Run(
                    jobID: "job-1", attempt: 1, payload: Array("@sleep 10".utf8), timeoutMilliseconds: 30_000))),
        SampleMessage(
            name: "run, empty fields",
            message: .run(Message.Run(jobID: "", attempt: 0, payload: [], timeoutMilliseconds: 0))),
        SampleMessage(
            name: "run, non-ASCII id, max integers",
            message: .run(
                Message.Run(
                    jobID: "ü-日本-🚀", attempt: .max, payload: bytes(300), timeoutMilliseconds: .max, jobsWaiting: true))),
        SampleMessage(
            name: "run, 1 MiB payload",
            message: .run(Message.Run(jobID: "big", attempt: 2, payload: bytes(1 << 20), timeoutMilliseconds: 1))),
        SampleMessage(
            name: "result ok",
            message: .result(
                Message.Result(jobID: "job-1", attempt: 1, ok: true, output: Array("ok".utf8), durationMicroseconds: 12)
            )),
        SampleMessage(
            name: "result failed, empty fields",
            message: .result(Message.Result(jobID: "", attempt: 0, ok: false, output: [], durationMicroseconds: 0))),
        SampleMessage(
            name: "result, NUL in id, 70 kB output",
            message: .result(
                Message.Result(
                    jobID: "ジョブ\u{0}é", attempt: 7, ok: false, output: bytes(70_000), durationMicroseconds: .max))),
        SampleMessage(
            name: "result, truncated with detail",
            message: .result(
                Message.Result(
                    jobID: "t", attempt: 3, ok: true, output: bytes(10), durationMicroseconds: 2, truncated: true,
                    detail: bytes(Message.maximumDetailBytes)))),
        SampleMessage(
            name: "run, output limit 0",
            message: .run(
                Message.Run(jobID: "z", attempt: 1, payload: [], timeoutMilliseconds: 5, maximumOutputBytes: 0))),
        SampleMessage(
            name: "progress",
            message: .progress(Message.Progress(jobID: "p", attempt: 2, percent: 50, note: "half"))),
        SampleMessage(
            name: "progress, 100%, longest note",
            message: .progress(
                Message.Progress(
                    jobID: "p", attempt: .max, percent: 100,
                    note: String(repeating: "é", count: Message.maximumNoteBytes / 2)))),
        SampleMessage(name: "stop", message: .stop),
    ]

    /// Every sample's message, in order.
    static let messages: [Message] = all.map(\.message)

    /// Samples under 1 kB encoded, for tests that are quadratic in the length.
    static let small: [SampleMessage] = all.filter { $0.message.encoded.count < 1_000 }

    /// `messages` encoded back to back as one byte stream.
    static func stream(_ messages: [Message]) -> [UInt8] {
        var bytes: [UInt8] = []
        for message in messages { message.encode(into: &bytes) }
        return bytes
    }
}
