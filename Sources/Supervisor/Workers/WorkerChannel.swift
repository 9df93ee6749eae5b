import IPC
import System

/// The supervisor's side of one child's pipes: the job pipe it writes frames to (with what did not fit yet), the
/// result pipe it reads frames from, and the child's stdout and stderr, logged line by line.
final class WorkerChannel {
    /// The slot the child is in.
    let slot: Int
    /// The child's pid.
    let pid: Int32
    /// Write end of the job pipe (the child's fd 3).
    var jobs: FileDescriptor?
    var jobsToken: EventToken = 0
    /// The job pipe was full: watched for writability until `pendingOutput` is written.
    var waitingForRoom = false
    /// Frames waiting for room in the job pipe.
    var pendingOutput: [UInt8] = []
    /// Read end of the result pipe (the child's fd 4).
    var results: FileDescriptor?
    var resultsToken: EventToken = 0
    /// Frames received from the child.
    var decoder = FrameDecoder()
    /// Read ends of the child's stdout and stderr.
    var output: [FileDescriptor?]
    var outputTokens: [EventToken] = [0, 0]
    /// Partial output lines per stream, logged once complete.
    var partialLines: [[UInt8]] = [[], []]
    /// The child's cgroup, when processes are contained that way.
    var cgroup: String?

    /// A channel over freshly created pipe ends.
    init(slot: Int, pid: Int32, jobs: FileDescriptor, results: FileDescriptor, stdout: FileDescriptor, stderr: FileDescriptor) {
        self.slot = slot
        self.pid = pid
        self.jobs = jobs
        self.results = results
        self.output = [stdout, stderr]
    }

    /// Whether every descriptor is closed.
    var isClosed: Bool { jobs == nil && results == nil && output.allSatisfy { $0 == nil } }
}
