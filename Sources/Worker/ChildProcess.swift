import Glibc
import System

/// A command the `exec` handler started, with the worker's ends of its stdin, stdout and stderr pipes.
///
/// Use: `spawn`, then `communicate` (feeds stdin, reads both outputs until the command exits), then `finish`,
/// which also ends everything the command started: the command runs in a process group of its own, and the
/// worker is a child subreaper, so background children (even ones that called setsid) end up as the worker's
/// children and are killed and reaped there. No descriptor, process or zombie outlives the attempt.
struct ChildProcess {
    /// What the command wrote, as kept.
    struct Output: Equatable {
        /// The start of stdout, up to the limit given to `communicate`.
        var standardOutput: [UInt8] = []
        /// Stdout was longer than the limit.
        var truncated = false
        /// The end of stderr, up to the tail length given to `communicate`.
        var standardErrorTail: [UInt8] = []
    }

    private enum Stream { case input, output, errorOutput, exit }

    /// The command's pid, also its process group.
    let pid: pid_t
    private var input: FileDescriptor?
    private var output: FileDescriptor?
    private var errorOutput: FileDescriptor?
    /// Readable once the command has exited (pidfd).
    private var exitNotice: FileDescriptor?
    private var reaped: TerminationStatus?

    private init(pid: pid_t, input: FileDescriptor, output: FileDescriptor, errorOutput: FileDescriptor) {
        self.pid = pid
        self.input = input
        self.output = output
        self.errorOutput = errorOutput
        exitNotice = try? Process.descriptor(for: pid)
    }

    /// Starts `arguments` (argv[0] looked up in PATH) with `environment`, on three fresh pipes, in a process
    /// group of its own. On failure nothing is left open.
    static func spawn(arguments: [String], environment: [String]) throws(SystemError) -> ChildProcess {
        var created: [FileDescriptor] = []
        var childEnds: [FileDescriptor] = []
        // The child's ends are the command's now (or useless after a failed spawn): ours close either way.
        defer { childEnds.forEach { $0.close() } }
        do throws(SystemError) {
            let stdin = try Posix.pipe()
            created += [stdin.read, stdin.write]
            let stdout = try Posix.pipe()
            created += [stdout.read, stdout.write]
            let stderr = try Posix.pipe()
            created += [stderr.read, stderr.write]
            childEnds = [stdin.read, stdout.write, stderr.write]
            // O_NONBLOCK is per open file description: setting it on our ends leaves the child's blocking.
            for end in [stdin.write, stdout.read, stderr.read] { try end.setNonBlocking() }
            let pid = try Spawn.spawn(
                arguments: arguments, environment: environment, descriptors: childEnds,
                options: Spawn.Options(newProcessGroup: true, searchPath: true, killedWithParent: true))
            return ChildProcess(pid: pid, input: stdin.write, output: stdout.read, errorOutput: stderr.read)
        } catch {
            created.filter { !childEnds.contains($0) }.forEach { $0.close() }
            throw error
        }
    }

    /// Writes `payload` to stdin (then closes it) while reading stdout and stderr, until the command exits;
    /// then takes what its pipes hold at that moment. A background child that keeps the pipes open does not
    /// hold the attempt up. Keeps the first `outputLimit` bytes of stdout (the rest is read and dropped) and the
    /// last `errorTailLimit` bytes of stderr. A command that stops reading its stdin early just gets no more.
    mutating func communicate(payload: [UInt8], outputLimit: Int, errorTailLimit: Int) throws(SystemError) -> Output {
        var kept = Output()
        var written = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        if payload.isEmpty { closeInput() }
        var exited = false
        while !exited && (input != nil || output != nil || errorOutput != nil || exitNotice != nil) {
            var interest: [pollfd] = []
            var streams: [Stream] = []
            for (stream, descriptor, events) in [
                (Stream.input, input, POLLOUT), (.output, output, POLLIN), (.errorOutput, errorOutput, POLLIN),
                (.exit, exitNotice, POLLIN),
            ] {
                guard let descriptor else { continue }
                interest.append(pollfd(fd: descriptor.rawValue, events: Int16(events), revents: 0))
                streams.append(stream)
            }
            // Without a pidfd (old kernel) the outputs' end of file is the only signal; poll with a timeout
            // and look for the exit ourselves.
            let timeout: CInt = exitNotice == nil ? 50 : -1
            _ = try Posix.poll(&interest, timeoutMilliseconds: timeout)
            for (ready, stream) in zip(interest, streams) where ready.revents != 0 {
                precondition(Int32(ready.revents) & POLLNVAL == 0, "poll: fd \(ready.fd) is not open")
                switch stream {
                case .input:
                    written += try feed(payload[written...])
                    if written == payload.count { closeInput() }
                case .output: _ = try readOutput(into: &kept, buffer: &buffer, limit: outputLimit)
                case .errorOutput: _ = try readErrors(into: &kept, buffer: &buffer, limit: errorTailLimit)
                case .exit: exited = true
                }
            }
            if exitNotice == nil, output == nil, errorOutput == nil, let status = Process.tryWait(pid) {
                reaped = status
                exited = true
            }
        }
        // What the command wrote before it exited is in the pipes now; take it without waiting for more.
        while output != nil, try readOutput(into: &kept, buffer: &buffer, limit: outputLimit) {}
        while errorOutput != nil, try readErrors(into: &kept, buffer: &buffer, limit: errorTailLimit) {}
        kept.standardErrorTail = Array(kept.standardErrorTail.suffix(errorTailLimit))
        return kept
    }

    /// Reaps the command (killing it first if it still runs), then kills and reaps everything it started,
    /// closes the pipes and returns how the command ended.
    @discardableResult
    mutating func finish(cgroup: String? = nil) -> TerminationStatus {
        var ended = reaped ?? Process.tryWait(pid)
        if ended == nil {
            Process.killGroup(pid, SIGKILL)
            Process.kill(pid, SIGKILL)
            ended = Process.wait(pid)
        }
        let status = ended!
        reaped = status
        Process.killGroup(pid, SIGKILL)
        // In a cgroup of its own, the worker kills every other process in it (even ones that escaped every
        // process group); as a subreaper it receives the orphans, and then every child it has is one.
        if let cgroup { Self.killOthers(inCgroup: cgroup) }
        if Process.isSubreaper { Self.endOrphans() }
        closeInput()
        closeOutput()
        closeErrorOutput()
        exitNotice?.close()
        exitNotice = nil
        return status
    }

    /// SIGKILLs every process in the cgroup but this one.
    static func killOthers(inCgroup cgroup: String) {
        let me = Process.id
        for field in ((try? Posix.readFile(cgroup + "/cgroup.procs")) ?? []).split(separator: UInt8(ascii: "\n")) {
            if let pid = Int32(String(decoding: field, as: UTF8.self)), pid != me { Process.kill(pid, SIGKILL) }
        }
    }

    /// Kills and reaps every child the worker still has: orphans the command left (reparented to the worker,
    /// a subreaper) and their descendants. Each death may reparent more, so it loops until none are left.
    static func endOrphans() {
        let me = Process.id
        for _ in 0..<64 {
            let children = Process.children(of: me)
            if children.isEmpty { return }
            for child in children {
                Process.killDescendants(of: child)
                Process.killGroup(child, SIGKILL)
                Process.kill(child, SIGKILL)
            }
            for child in children { _ = Process.wait(child) }
        }
    }

    // Writes what stdin takes now; a reader that went away ends the input early, as if all were written.
    private mutating func feed(_ remaining: ArraySlice<UInt8>) throws(SystemError) -> Int {
        guard let input else { return 0 }
        do {
            let result = try remaining.withUnsafeBytes { bytes in
                Result { () throws(SystemError) in try input.write(bytes) }
            }.get()
            switch result {
            case .processed(let count): return count
            case .wouldBlock: return 0
            }
        } catch where error.errno == EPIPE {
            closeInput()
            return remaining.count
        }
    }

    // Reads stdout once; returns whether there may be more to read now.
    private mutating func readOutput(
        into kept: inout Output, buffer: inout [UInt8], limit: Int
    ) throws(SystemError) -> Bool {
        guard let count = try drain(output, into: &buffer) else { return false }
        if count == 0 {
            closeOutput()
            return false
        }
        let room = max(0, limit - kept.standardOutput.count)
        if count > room { kept.truncated = true }
        kept.standardOutput += buffer[..<min(count, room)]
        return true
    }

    // Reads stderr once, keeping its tail; returns whether there may be more to read now.
    private mutating func readErrors(
        into kept: inout Output, buffer: inout [UInt8], limit: Int
    ) throws(SystemError) -> Bool {
        guard let count = try drain(errorOutput, into: &buffer) else { return false }
        if count == 0 {
            closeErrorOutput()
            return false
        }
        kept.standardErrorTail += buffer[..<count]
        // Trim now and then, not on every read, so a chatty command does not make this quadratic.
        if kept.standardErrorTail.count > 2 * limit {
            kept.standardErrorTail.removeFirst(kept.standardErrorTail.count - limit)
        }
        return true
    }

    // Reads what is there: nil when nothing is (spurious wake-up), 0 at end of file.
    private func drain(_ descriptor: FileDescriptor?, into buffer: inout [UInt8]) throws(SystemError) -> Int? {
        guard let descriptor else { return nil }
        let result = try buffer.withUnsafeMutableBytes { bytes in
            Result { () throws(SystemError) in try descriptor.read(into: bytes) }
        }.get()
        switch result {
        case .processed(let count): return count
        case .wouldBlock: return nil
        }
    }

    private mutating func closeInput() {
        input?.close()
        input = nil
    }

    private mutating func closeOutput() {
        output?.close()
        output = nil
    }

    private mutating func closeErrorOutput() {
        errorOutput?.close()
        errorOutput = nil
    }
}
