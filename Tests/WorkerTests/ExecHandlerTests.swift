import Glibc
import PreforkWorker
import System
import Testing

@testable import Worker

/// The exec handler's outcomes, and the commands it runs leaving nothing behind.
@Suite(.serialized) struct ExecHandlerTests {
    private func output(_ stdout: String, stderr: String = "", truncated: Bool = false) -> ChildProcess.Output {
        ChildProcess.Output(
            standardOutput: Array(stdout.utf8), truncated: truncated, standardErrorTail: Array(stderr.utf8))
    }

    @Test func exitZeroIsSuccessWithStdoutAndTheStderrTailAsDetail() throws {
        let result = try ExecHandler.outcome(of: .exited(0), output("hi\n", stderr: "warning\n", truncated: true))
        #expect(result == JobResult(Array("hi\n".utf8), truncated: true, detail: Array("warning\n".utf8)))
    }

    @Test func otherEndsFailNamingTheStatusOrSignalWithTheTrimmedTail() {
        #expect(throws: JobFailure("command exited with status 3: boom", detail: Array(" boom \n".utf8))) {
            try ExecHandler.outcome(of: .exited(3), output("", stderr: " boom \n"))
        }
        #expect(throws: JobFailure("command killed by signal 15 (SIGTERM)")) {
            try ExecHandler.outcome(of: .signaled(SIGTERM), output(""))
        }
    }

    @Test func commandIsDoneWhenItExitsAndItsGroupIsKilled() throws {
        // A background child keeps stdout open and outlives the command: the attempt must not wait for it, and
        // the command's process group (the background sleep in it) must not survive the attempt. Orphans that
        // left the group are the worker's to end, as a subreaper; the integration tests check those.
        let marker = "/tmp/prefork-exec-test-\(Process.id)"
        defer { try? Posix.unlink(marker) }
        var child = try ChildProcess.spawn(
            arguments: ["/bin/sh", "-c", "sleep 30 & echo $! > \(marker); echo done"],
            environment: Posix.environment())
        let start = Time.monotonicMicroseconds()
        let kept = try child.communicate(payload: [], outputLimit: 100, errorTailLimit: 100)
        let status = child.finish()
        #expect(Time.monotonicMicroseconds() - start < 5_000_000)
        #expect(status == .exited(0))
        #expect(String(decoding: kept.standardOutput, as: UTF8.self) == "done\n")
        let text = String(decoding: (try? Posix.readFile(marker)) ?? [], as: UTF8.self)
        let background = try #require(Int32(text.filter(\.isNumber)))
        #expect(Self.becomesGoneOrZombie(background), "background sleep \(background) survived")
    }

    /// Whether `pid` is gone or a zombie (killed, not yet reaped by whoever adopted it) within two seconds.
    private static func becomesGoneOrZombie(_ pid: Int32) -> Bool {
        for _ in 0..<200 {
            guard let stat = try? Posix.readFile("/proc/\(pid)/stat") else { return true }
            let text = String(decoding: stat, as: UTF8.self)
            if let close = text.lastIndex(of: ")"), text[text.index(close, offsetBy: 2)] == "Z" { return true }
            Time.sleep(milliseconds: 10)
        }
        return false
    }

    @Test func outputBeyondTheLimitIsCutAndFlagged() throws {
        var child = try ChildProcess.spawn(
            arguments: ["/bin/sh", "-c", "head -c 5000 /dev/zero"], environment: Posix.environment())
        let kept = try child.communicate(payload: [], outputLimit: 1000, errorTailLimit: 10)
        _ = child.finish()
        #expect(kept.standardOutput.count == 1000)
        #expect(kept.truncated)
    }
}
