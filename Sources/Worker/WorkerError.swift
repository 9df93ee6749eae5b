import IPC

/// Why the worker stops before it is told to.
enum WorkerError: Error, Equatable, CustomStringConvertible {
    /// The result pipe's reader is gone (EPIPE): the supervisor died or closed it.
    case supervisorGone
    /// Reading the job pipe or writing the result pipe failed for another reason.
    case ioFailed(SystemError)
    /// The supervisor sent bytes that are not a valid frame.
    case malformedFrame(FrameError)
    /// The supervisor sent a message only a worker sends.
    case unexpectedMessage(Message.Kind)

    /// The status the worker exits with.
    var exitCode: ExitCode {
        switch self {
        case .supervisorGone: return .success
        case .ioFailed: return .failure
        case .malformedFrame, .unexpectedMessage: return .protocolError
        }
    }

    /// A one-line reason for stderr.
    var description: String {
        switch self {
        case .supervisorGone: return "result pipe closed by the supervisor"
        case .ioFailed(let error): return "\(error)"
        case .malformedFrame(let error): return "malformed frame from the supervisor: \(error)"
        case .unexpectedMessage(let kind): return "unexpected \(kind) message from the supervisor"
        }
    }
}
