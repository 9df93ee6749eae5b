/// The worker's exit statuses; the supervisor logs them and charges a death during a job to that job.
enum ExitCode: CInt {
    /// Told to stop, job pipe at end of file, or the supervisor went away.
    case success = 0
    /// An I/O error other than the supervisor going away.
    case failure = 1
    /// Bad command line, or started without the job and result pipes.
    case usage = 2
    /// The supervisor sent a malformed frame or a message the worker does not expect.
    case protocolError = 3
}
