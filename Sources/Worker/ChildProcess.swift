import Glibc

/// A command the `exec` handler started, with the worker's ends of its stdin, stdout and stderr pipes.
///
/// Use: `spawn`, then `communicate` (feeds stdin, drains both outputs), then `wait`. Every path must end in
/// `closePipes()` and `wait()`, so no descriptor and no zombie outlives the job.
struct ChildProcess {
    /// What the command wrote, as kept.
    struct Output: Equatable {
        /// The start of stdout, up to the limit given to `communicate`.
        var standardOutput: [UInt8] = []
        /// The end of stderr, up to the tail length given to `communicate`.
        var standardErrorTail: [UInt8] = []
    }

    private enum Stream { case input, output, errorOutput }

    /// The command's pid; it is in the worker's process group.
    let pid: pid_t
    private var input: FileDescriptor?
    private var output: FileDescriptor?
    private var errorOutput: FileDescriptor?

    private init(pid: pid_t, input: FileDescriptor, output: FileDescriptor, errorOutput: FileDescriptor) {
        self.pid = pid
        self.input = input
        self.output = output
        self.errorOutput = errorOutput
    }

    /// Starts `arguments` (argv[0] looked up in PATH) with `environment`, on three fresh pipes. On failure
    /// nothing is left open.
    static func spawn(arguments: [String], environment: [String]) throws(SystemError) -> ChildProcess {
        var created: [FileDescriptor] = []
        var childEnds: [FileDescriptor] = []
        // The child's ends are the command's now (or useless after a failed spawn): ours close either way.
        defer { childEnds.forEach(Posix.close) }
        do throws(SystemError) {
            let stdin = try Posix.pipe()
            created += [stdin.readEnd, stdin.writeEnd]
            let stdout = try Posix.pipe()
            created += [stdout.readEnd, stdout.writeEnd]
            let stderr = try Posix.pipe()
            created += [stderr.readEnd, stderr.writeEnd]
            childEnds = [stdin.readEnd, stdout.writeEnd, stderr.writeEnd]
            // O_NONBLOCK is per open file description: setting it on our ends leaves the child's blocking.
            for end in [stdin.writeEnd, stdout.readEnd, stderr.readEnd] { try Posix.setNonBlocking(end) }
            let pid = try Spawn.spawnp(arguments: arguments, environment: environment, descriptors: childEnds)
            return ChildProcess(
                pid: pid, input: stdin.writeEnd, output: stdout.readEnd, errorOutput: stderr.readEnd)
        } catch {
            created.filter { !childEnds.contains($0) }.forEach(Posix.close)
            throw error
        }
    }

    /// Writes `payload` to stdin (then closes it) while reading stdout and stderr, all through one poll, until
    /// both outputs reach end of file. Keeps the first `outputLimit` bytes of stdout (the rest is read and
    /// dropped) and the last `errorTailLimit` bytes of stderr. A command that stops reading its stdin early
    /// (EPIPE) just gets no more of it.
    mutating func communicate(
        payload: [UInt8], outputLimit: Int, errorTailLimit: Int
    ) throws(SystemError) -> Output {
        var kept = Output()
        var written = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        if payload.isEmpty { closeInput() }
        while input != nil || output != nil || errorOutput != nil {
            var interest: [pollfd] = []
            var streams: [Stream] = []
            for (stream, descriptor, events) in [
                (Stream.input, input, POLLOUT), (.output, output, POLLIN), (.errorOutput, errorOutput, POLLIN),
            ] {
                guard let descriptor else { continue }
                interest.append(pollfd(fd: descriptor.rawValue, events: Int16(events), revents: 0))
                streams.append(stream)
            }
            try Posix.poll(&interest)
            for (ready, stream) in zip(interest, streams) where ready.revents != 0 {
                precondition(Int32(ready.revents) & POLLNVAL == 0, "poll: fd \(ready.fd) is not open")
                switch stream {
                case .input:
                    written += try feed(payload[written...])
                    if written == payload.count { closeInput() }
                case .output:
                    guard let count = try drain(output, into: &buffer) else { continue }
                    if count == 0 { closeOutput() }
                    let room = max(0, outputLimit - kept.standardOutput.count)
                    kept.standardOutput += buffer[..<min(count, room)]
                case .errorOutput:
                    guard let count = try drain(errorOutput, into: &buffer) else { continue }
                    if count == 0 { closeErrorOutput() }
                    kept.standardErrorTail += buffer[..<count]
                    // Trim now and then, not on every read, so a chatty command does not make this quadratic.
                    if kept.standardErrorTail.count > 2 * errorTailLimit {
                        kept.standardErrorTail.removeFirst(kept.standardErrorTail.count - errorTailLimit)
                    }
                }
            }
        }
        kept.standardErrorTail = Array(kept.standardErrorTail.suffix(errorTailLimit))
        return kept
    }

    /// Closes whatever pipe ends are still open (after an error, or never needed after `communicate`).
    mutating func closePipes() {
        closeInput()
        closeOutput()
        closeErrorOutput()
    }

    /// Waits for the command to end and reaps it.
    func wait() -> TerminationStatus {
        Posix.waitpid(pid)
    }

    /// SIGKILL to the command alone (not our group), for when the worker cannot go on talking to it.
    func kill() {
        Posix.kill(pid, SIGKILL)
    }

    // Writes what stdin takes now; a reader that went away ends the input early, as if all were written.
    private mutating func feed(_ remaining: ArraySlice<UInt8>) throws(SystemError) -> Int {
        guard let input else { return 0 }
        do {
            switch try Posix.writeNonBlocking(input, remaining) {
            case .processed(let count): return count
            case .wouldBlock: return 0
            }
        } catch  where error.errno == EPIPE {
            closeInput()
            return remaining.count
        }
    }

    // Reads what is there: nil when nothing is (spurious wake-up), 0 at end of file.
    private func drain(_ descriptor: FileDescriptor?, into buffer: inout [UInt8]) throws(SystemError) -> Int? {
        guard let descriptor else { return nil }
        switch try Posix.readNonBlocking(descriptor, into: &buffer) {
        case .processed(let count): return count
        case .wouldBlock: return nil
        }
    }

    private mutating func closeInput() {
        if let input { Posix.close(input) }
        input = nil
    }

    private mutating func closeOutput() {
        if let output { Posix.close(output) }
        output = nil
    }

    private mutating func closeErrorOutput() {
        if let errorOutput { Posix.close(errorOutput) }
        errorOutput = nil
    }
}
