import IPC
import System
import Testing

@testable import PreforkWorker

/// Echoes the payload; fails on "fail"; throws a plain Swift error on "error"; reports progress on "progress".
private struct Echo: JobHandler {
    struct Oops: Error, CustomStringConvertible {
        var description: String { "it broke" }
    }
    var jobs = 0

    mutating func handle(_ job: Job) throws -> JobResult {
        jobs += 1
        switch job.text {
        case "fail": throw JobFailure("failed on purpose", detail: Array("trace".utf8))
        case "error": throw Oops()
        case "progress":
            job.progress(150, String(repeating: "é", count: 300))
            return "done"
        case "count": return JobResult("\(jobs)")
        default: return JobResult(job.payload)
        }
    }
}

/// The SDK's loop over real pipes: frames in, frames out.
@Suite struct WorkerLoopTests {
    /// Runs the loop over `input` frames (it ends at `stop` or end of file) and returns what it wrote and its exit.
    private func run(_ input: [Message], handler: Echo = Echo()) throws -> (messages: [Message], exit: WorkerExitCode) {
        let jobs = try Posix.pipe()
        let results = try Posix.pipe()
        var bytes: [UInt8] = []
        for message in input { message.encode(into: &bytes) }
        try jobs.write.writeAll(bytes)
        jobs.write.close()
        var loop = WorkerLoop(
            reader: FrameReader(descriptor: jobs.read), writer: FrameWriter(descriptor: results.write), handler: handler)
        let exit = loop.run(version: "test 1")
        jobs.read.close()
        results.write.close()
        defer { results.read.close() }
        var decoder = FrameDecoder()
        decoder.append(try results.read.readToEnd())
        var messages: [Message] = []
        while let message = try decoder.next() { messages.append(message) }
        return (messages, exit)
    }

    private func runFrame(_ payload: String, attempt: UInt32 = 1, limit: UInt32 = 100) -> Message {
        .run(
            Message.Run(
                jobID: "j", attempt: attempt, payload: Array(payload.utf8), timeoutMilliseconds: 0,
                maximumOutputBytes: limit))
    }

    private func results(_ messages: [Message]) -> [Message.Result] {
        messages.compactMap { if case .result(let result) = $0 { result } else { nil } }
    }

    @Test func saysReadyThenAnswersEachRunAndStopsOnStop() throws {
        let (messages, exit) = try run([runFrame("hello"), runFrame("fail", attempt: 2), .stop, runFrame("never")])
        #expect(exit == .success)
        guard case .ready(let ready)? = messages.first else { return #expect(Bool(false), "no ready first") }
        #expect(ready.version == "test 1" && ready.protocolVersion == FrameHeader.currentVersion)
        let answers = results(messages)
        #expect(answers.count == 2)
        #expect(answers[0].ok && answers[0].output == Array("hello".utf8) && answers[0].jobID == "j")
        #expect(!answers[1].ok && answers[1].attempt == 2)
        #expect(answers[1].output == Array("failed on purpose".utf8) && answers[1].detail == Array("trace".utf8))
    }

    @Test func otherErrorsFailWithTheirTypeAndDescription() throws {
        let answer = try #require(results(try run([runFrame("error")]).messages).first)
        #expect(!answer.ok)
        #expect(String(decoding: answer.output, as: UTF8.self) == "Oops: it broke")
    }

    @Test func outputIsCutAtTheRunsLimitAndFlagged() throws {
        let answer = try #require(results(try run([runFrame("0123456789", limit: 4)]).messages).first)
        #expect(answer.output == Array("0123".utf8))
        #expect(answer.truncated)
    }

    @Test func progressIsClampedAndItsNoteCut() throws {
        let messages = try run([runFrame("progress")]).messages
        guard case .progress(let progress)? = messages.dropFirst().first else {
            return #expect(Bool(false), "no progress frame: \(messages)")
        }
        #expect(progress.percent == 100)
        #expect(progress.note.utf8.count <= Message.maximumNoteBytes)
        #expect(results(messages).first?.ok == true)
    }

    @Test func stateLivesAcrossJobsOfOneProcess() throws {
        let answers = results(try run([runFrame("count"), runFrame("count"), runFrame("count")]).messages)
        #expect(answers.map { String(decoding: $0.output, as: UTF8.self) } == ["1", "2", "3"])
    }

    @Test func garbageFromTheSupervisorIsAProtocolError() throws {
        let jobs = try Posix.pipe()
        let results = try Posix.pipe()
        defer { results.read.close() }
        try jobs.write.writeAll(Array("not a frame at all".utf8))
        jobs.write.close()
        var loop = WorkerLoop(
            reader: FrameReader(descriptor: jobs.read), writer: FrameWriter(descriptor: results.write), handler: Echo())
        #expect(loop.run(version: "v") == .protocolError)
        jobs.read.close()
        results.write.close()
    }

    @Test func endOfFileIsAQuietExit() throws {
        #expect(try run([]).exit == .success)
    }
}
