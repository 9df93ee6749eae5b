import CLinux
import Glibc

/// posix_spawn(3) of a child: one implementation, in C (`c_spawn`), so no Swift code runs between fork and exec.
public enum Spawn {
    /// How the child starts.
    public struct Options: Sendable {
        /// Put the child in a process group of its own (its pid), so a signal to the group reaches only it and
        /// what it starts.
        public var newProcessGroup = false
        /// Look `arguments[0]` up in the `PATH` of `environment` (posix_spawnp) when it has no "/".
        public var searchPath = false
        /// Working directory of the child; nil keeps ours.
        public var workingDirectory: String?
        /// The child gets SIGKILL when this process dies (PR_SET_PDEATHSIG). Done with fork and exec in C, which
        /// is safe only in a single-threaded process (the worker); the supervisor never asks for it.
        public var killedWithParent = false

        /// The defaults: our process group, no PATH lookup, our working directory.
        public init(
            newProcessGroup: Bool = false, searchPath: Bool = false, workingDirectory: String? = nil,
            killedWithParent: Bool = false
        ) {
            self.newProcessGroup = newProcessGroup
            self.searchPath = searchPath
            self.workingDirectory = workingDirectory
            self.killedWithParent = killedWithParent
        }
    }

    /// Spawns `arguments[0]` with `arguments` as argv, `environment` as envp (nil: ours), and `descriptors`
    /// mapped onto the child's fds 0, 1, 2, ... in order. Every other descriptor of ours is close-on-exec, so
    /// the child gets exactly these. It starts with an empty signal mask and default dispositions (we block
    /// signals for the signalfd and ignore SIGPIPE; the child must not inherit that).
    public static func spawn(
        arguments: [String], environment: [String]? = nil, descriptors: [FileDescriptor], options: Options = Options()
    ) throws(SystemError) -> pid_t {
        precondition(!arguments.isEmpty, "spawn needs a program")
        // A source below the highest target could be overwritten by an earlier dup2; move it out of the way.
        var raised: [FileDescriptor] = []
        defer { raised.forEach { $0.close() } }
        var map: [CInt] = []
        for (target, source) in descriptors.enumerated() {
            var fd = source
            if fd.rawValue < CInt(descriptors.count) {
                fd = try source.duplicate(atLeast: CInt(descriptors.count))
                raised.append(fd)
            }
            map.append(fd.rawValue)
            map.append(CInt(target))
        }
        let argv = arguments.map { strdup($0) }
        let envp = environment?.map { strdup($0) }
        defer { for pointer in argv + (envp ?? []) { free(pointer) } }
        var argvPointers = argv + [nil]
        var envpPointers = (envp ?? []) + [nil]
        var flags: CInt = 0
        if options.newProcessGroup { flags |= 1 }
        if options.searchPath { flags |= 2 }
        if options.killedWithParent { flags |= 4 }
        var pid: pid_t = 0
        let code = argvPointers.withUnsafeMutableBufferPointer { argvBuffer in
            envpPointers.withUnsafeMutableBufferPointer { envpBuffer in
                map.withUnsafeBufferPointer { mapBuffer in
                    c_spawn(
                        &pid, arguments[0], argvBuffer.baseAddress, envp == nil ? environ : envpBuffer.baseAddress,
                        mapBuffer.baseAddress, CInt(descriptors.count), flags, options.workingDirectory)
                }
            }
        }
        guard code == 0 else { throw SystemError(call: "posix_spawn(\(arguments[0]))", errno: code) }
        return pid
    }
}
