import IPC
import PreforkWorker
import System

/// The `exec` handler: runs `exec.command` once per attempt with the payload on stdin and `PREFORK_JOB_ID` /
/// `PREFORK_ATTEMPT` in its environment. Exit 0 is success with stdout (cut at the run's output limit) as the
/// result; anything else fails the attempt with the status and the tail of stderr. Either way the stderr tail
/// is kept with the attempt, and nothing the command started outlives the attempt.
struct ExecHandler: JobHandler {
    /// How much of the end of stderr is kept.
    static let errorTailBytes = Message.maximumDetailBytes
    /// The environment variables set per attempt (any inherited values are replaced).
    static let jobVariables = ["PREFORK_JOB_ID", "PREFORK_ATTEMPT"]

    /// Program (looked up in PATH) and arguments.
    let command: [String]
    /// The worker's own cgroup, if it has one: at the end of each attempt every other process in it is killed.
    let cgroup: String?
    private let inheritedEnvironment: [String]

    /// Creates a handler for `command`; the command gets the worker's environment as it is now.
    init(command: [String], cgroup: String? = nil) {
        precondition(!command.isEmpty, "the exec handler needs a command (WorkerCommandLine checks)")
        self.command = command
        self.cgroup = cgroup
        let replaced = Self.jobVariables.map { $0 + "=" }
        inheritedEnvironment = Posix.environment().filter { entry in !replaced.contains { entry.hasPrefix($0) } }
    }

    /// Runs the command for one attempt and reports how it ended.
    mutating func handle(_ job: Job) throws -> JobResult {
        let environment = inheritedEnvironment + ["PREFORK_JOB_ID=\(job.id)", "PREFORK_ATTEMPT=\(job.attempt)"]
        var child: ChildProcess
        do {
            child = try ChildProcess.spawn(arguments: command, environment: environment)
        } catch {
            throw JobFailure("cannot run \(command[0]): \(error.message)")
        }
        let output: ChildProcess.Output
        do {
            output = try child.communicate(
                payload: job.payload, outputLimit: job.maximumOutputBytes, errorTailLimit: Self.errorTailBytes)
        } catch {
            // Cannot talk to it any more: stop it rather than wait for a command that may block on a pipe.
            child.finish(cgroup: cgroup)
            throw JobFailure("lost the pipes of \(command[0]): \(error)")
        }
        let status = child.finish(cgroup: cgroup)
        return try Self.outcome(of: status, output)
    }

    /// The attempt's outcome for a command that ended with `status` after writing `output`.
    static func outcome(of status: TerminationStatus, _ output: ChildProcess.Output) throws(JobFailure) -> JobResult {
        let reason: String
        switch status {
        case .exited(0):
            return JobResult(output.standardOutput, truncated: output.truncated, detail: output.standardErrorTail)
        case .exited(let code): reason = "command exited with status \(code)"
        case .signaled(let signal): reason = "command killed by signal \(signal) (\(signalName(signal)))"
        }
        let tail = trimmed(output.standardErrorTail)
        throw JobFailure(tail.isEmpty ? reason : reason + ": " + tail, detail: output.standardErrorTail)
    }

    // The tail as text: a cut through a UTF-8 sequence at its start is dropped, whitespace at both ends too.
    private static func trimmed(_ tail: [UInt8]) -> String {
        let start = tail.firstIndex { $0 & 0xC0 != 0x80 } ?? tail.endIndex
        let text = String(decoding: tail[start...], as: UTF8.self)
        guard let first = text.firstIndex(where: { !$0.isWhitespace }),
            let last = text.lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(text[first...last])
    }
}
