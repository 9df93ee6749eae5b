import CLinux
import Glibc

// The `exec` handler's door to libc: pipes, poll, non-blocking I/O, posix_spawnp and waitpid.

extension SystemError {
    /// Creates an error for `call` from a posix_spawn* return code (those return the errno, not -1).
    init(code: CInt, call: String) {
        self.init(errno: code, call: call)
    }

    /// strerror(3) of `errno` alone, e.g. "No such file or directory".
    var message: String { String(cString: strerror(errno)) }
}

/// What a non-blocking read or write did.
enum IOResult: Equatable {
    /// This many bytes moved (0 from a read is end of file).
    case processed(Int)
    /// The pipe is empty (read) or full (write): poll again.
    case wouldBlock
}

/// The two ends of a pipe, both close-on-exec.
struct Pipe {
    /// The read end.
    let readEnd: FileDescriptor
    /// The write end.
    let writeEnd: FileDescriptor
}

extension Posix {
    /// pipe2(O_CLOEXEC): a child gets an end only through an explicit dup2.
    static func pipe() throws(SystemError) -> Pipe {
        var descriptors: [CInt] = [-1, -1]
        _ = try retryingOnInterrupt(#function) { c_pipe2(&descriptors, O_CLOEXEC) }
        return Pipe(
            readEnd: FileDescriptor(rawValue: descriptors[0]), writeEnd: FileDescriptor(rawValue: descriptors[1]))
    }

    /// close(2); EINTR means closed on Linux, and EBADF is a double close, a bug.
    static func close(_ descriptor: FileDescriptor) {
        let result = Glibc.close(descriptor.rawValue)
        precondition(result == 0 || errno != EBADF, "close(\(descriptor.rawValue)): bad descriptor")
    }

    /// fcntl(F_SETFL) adding O_NONBLOCK to `descriptor`'s open file description (only this end of a pipe).
    static func setNonBlocking(_ descriptor: FileDescriptor) throws(SystemError) {
        let flags = try retryingOnInterrupt(#function) { Glibc.fcntl(descriptor.rawValue, F_GETFL) }
        _ = try retryingOnInterrupt(#function) { Glibc.fcntl(descriptor.rawValue, F_SETFL, flags | O_NONBLOCK) }
    }

    /// read(2) from a non-blocking descriptor into the front of `buffer`.
    static func readNonBlocking(
        _ descriptor: FileDescriptor, into buffer: inout [UInt8]
    ) throws(SystemError) -> IOResult {
        do {
            return .processed(try read(descriptor, into: &buffer))
        } catch  where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            return .wouldBlock
        }
    }

    /// write(2) of `bytes` to a non-blocking descriptor.
    static func writeNonBlocking(
        _ descriptor: FileDescriptor, _ bytes: ArraySlice<UInt8>
    ) throws(SystemError) -> IOResult {
        do {
            return .processed(try write(descriptor, bytes))
        } catch  where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            return .wouldBlock
        }
    }

    /// poll(2) with no timeout, retrying on EINTR; on return `descriptors[i].revents` say what is ready.
    static func poll(_ descriptors: inout [pollfd]) throws(SystemError) {
        _ = try retryingOnInterrupt(#function) {
            descriptors.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, nfds_t($0.count), -1) }
        }
    }

    /// poll(2) of one descriptor for input without waiting: true when a read would not block (data, end of
    /// file or an error that the read then reports).
    static func isReadable(_ descriptor: FileDescriptor) -> Bool {
        var entry = pollfd(fd: descriptor.rawValue, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&entry, 1, 0) > 0
    }

    /// kill(2); ESRCH (already gone) is not an error.
    static func kill(_ pid: pid_t, _ signal: CInt) {
        _ = Glibc.kill(pid, signal)
    }

    /// waitpid(pid, 0), retrying on EINTR, until `pid` has terminated. `pid` must be our unreaped child.
    static func waitpid(_ pid: pid_t) -> TerminationStatus {
        var status: CInt = 0
        while true {
            let result = Glibc.waitpid(pid, &status, 0)
            if result == -1 {
                // ECHILD or EINVAL would mean we lost track of our own child: a bug.
                precondition(errno == EINTR, "waitpid(\(pid)) failed with errno \(errno)")
                continue
            }
            var code: CInt = 0
            switch c_wait_status(status, &code) {
            case 0: return .exited(code)
            case 1: return .signaled(code)
            default: continue  // stopped or continued: not an exit (waitpid without WUNTRACED should not say so)
            }
        }
    }

    /// The process environment as `NAME=value` strings.
    static func environment() -> [String] {
        var entries: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            entries.append(String(cString: entry))
            cursor += 1
        }
        return entries
    }
}

/// posix_spawnp(3) of a command that stays in the worker's process group.
enum Spawn {
    /// Spawns `arguments[0]` (looked up in PATH) with `arguments` as argv, `environment` as envp, and
    /// `descriptors` dup2'ed onto the child's fds 0, 1, 2, ... in order. Everything else of ours is
    /// close-on-exec. The child starts with an empty signal mask and default dispositions (the worker ignores
    /// SIGPIPE), and stays in our process group: a job timeout kills the whole group, the command included.
    static func spawnp(
        arguments: [String], environment: [String], descriptors: [FileDescriptor]
    ) throws(SystemError) -> pid_t {
        precondition(!arguments.isEmpty, "spawnp needs a program name")
        let program = arguments[0]
        // A source below the highest target could be overwritten by an earlier dup2; move it out of the way.
        var raised: [FileDescriptor] = []
        defer { raised.forEach(Posix.close) }
        var sources: [CInt] = []
        for source in descriptors {
            var fd = source.rawValue
            if fd < CInt(descriptors.count) {
                fd = try retryingOnInterrupt("fcntl(F_DUPFD_CLOEXEC)") {
                    Glibc.fcntl(source.rawValue, F_DUPFD_CLOEXEC, CInt(descriptors.count))
                }
                raised.append(FileDescriptor(rawValue: fd))
            }
            sources.append(fd)
        }

        var actions = posix_spawn_file_actions_t()
        var code = posix_spawn_file_actions_init(&actions)
        guard code == 0 else { throw SystemError(code: code, call: "posix_spawn_file_actions_init") }
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        code = posix_spawnattr_init(&attributes)
        guard code == 0 else { throw SystemError(code: code, call: "posix_spawnattr_init") }
        defer { posix_spawnattr_destroy(&attributes) }

        // dup2 clears close-on-exec on the target, so only the mapped fds survive exec.
        for (target, source) in sources.enumerated() {
            code = posix_spawn_file_actions_adddup2(&actions, source, CInt(target))
            guard code == 0 else { throw SystemError(code: code, call: "posix_spawn_file_actions_adddup2") }
        }
        var empty = sigset_t()
        var all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        code = posix_spawnattr_setsigmask(&attributes, &empty)
        guard code == 0 else { throw SystemError(code: code, call: "posix_spawnattr_setsigmask") }
        code = posix_spawnattr_setsigdefault(&attributes, &all)
        guard code == 0 else { throw SystemError(code: code, call: "posix_spawnattr_setsigdefault") }
        // No POSIX_SPAWN_SETPGROUP: the supervisor's kill(-pgid) on a timeout must reach the command too.
        code = posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        guard code == 0 else { throw SystemError(code: code, call: "posix_spawnattr_setflags") }

        let argv = arguments.map { strdup($0) }
        let envp = environment.map { strdup($0) }
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        var argvPointers = argv + [nil]
        var envpPointers = envp + [nil]
        code = argvPointers.withUnsafeMutableBufferPointer { argvBuffer in
            envpPointers.withUnsafeMutableBufferPointer { envpBuffer in
                posix_spawnp(&pid, program, &actions, &attributes, argvBuffer.baseAddress!, envpBuffer.baseAddress!)
            }
        }
        guard code == 0 else { throw SystemError(code: code, call: "posix_spawnp") }
        return pid
    }
}
