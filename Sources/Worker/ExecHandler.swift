import IPC

/// The `exec` handler: runs `exec.command` once per attempt with the payload on stdin and `PREFORK_JOB_ID` /
/// `PREFORK_ATTEMPT` in its environment. Exit 0 is success with stdout (capped) as the output; anything else
/// fails the attempt with the status and the tail of stderr.
struct ExecHandler: JobHandler {
    /// The command to run.
    struct Configuration: Equatable {
        /// Program (looked up in PATH) and arguments, from `--exec` in order.
        var command: [String] = []
    }

    /// Most stdout kept as the result; the rest is read and dropped so the command never blocks on it.
    static let maximumOutputBytes = 1024 * 1024
    /// How much of the end of stderr goes into a failure message.
    static let errorTailBytes = 4 * 1024
    /// The environment variables set per attempt (any inherited values are replaced).
    static let jobVariables = ["PREFORK_JOB_ID", "PREFORK_ATTEMPT"]

    /// What runs.
    let configuration: Configuration
    private let inheritedEnvironment: [String]

    /// Creates a handler for `configuration`; the command gets the worker's environment as it is now.
    init(configuration: Configuration) {
        precondition(!configuration.command.isEmpty, "the exec handler needs a command (WorkerOptions checks)")
        self.configuration = configuration
        let replaced = Self.jobVariables.map { $0 + "=" }
        inheritedEnvironment = Posix.environment().filter { entry in !replaced.contains { entry.hasPrefix($0) } }
    }

    /// Runs the command for one attempt and reports how it ended.
    mutating func run(_ job: Message.Run) -> HandlerOutcome {
        let program = configuration.command[0]
        let environment =
            inheritedEnvironment + ["PREFORK_JOB_ID=\(job.jobID)", "PREFORK_ATTEMPT=\(job.attempt)"]
        var child: ChildProcess
        do {
            child = try ChildProcess.spawn(arguments: configuration.command, environment: environment)
        } catch {
            return .failure("cannot run \(program): \(error.message)")
        }
        let output: ChildProcess.Output
        do {
            output = try child.communicate(
                payload: job.payload, outputLimit: Self.maximumOutputBytes, errorTailLimit: Self.errorTailBytes)
        } catch {
            // Cannot talk to it any more: stop it rather than wait for a command that may block on a pipe.
            child.kill()
            child.closePipes()
            _ = child.wait()
            return .failure("lost the pipes of \(program): \(error)")
        }
        child.closePipes()
        return Self.outcome(of: child.wait(), output)
    }

    /// The attempt's outcome for a command that ended with `status` after writing `output`.
    static func outcome(of status: TerminationStatus, _ output: ChildProcess.Output) -> HandlerOutcome {
        let reason: String
        switch status {
        case .exited(0): return .finished(ok: true, output: output.standardOutput)
        case .exited(let code): reason = "command exited with status \(code)"
        case .signaled(let signal): reason = "command killed by signal \(signal) (\(signalName(signal)))"
        }
        let tail = trimmed(output.standardErrorTail)
        return .failure(tail.isEmpty ? reason : reason + ": " + tail)
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
