import CLinux
import Glibc

/// posix_spawn(3) of a child in its own process group.
enum Spawn {
    /// Spawns `path` with `arguments` (argv[1...]), the current environment, and the descriptors in
    /// `descriptors` mapped onto the child's fds 0, 1, 2, ... in order. Every other descriptor of ours is
    /// close-on-exec, so the child gets exactly these. The child starts with an empty signal mask and
    /// default dispositions (we block signals for the signalfd; the child must not inherit that).
    static func spawn(path: String, arguments: [String], descriptors: [FileDescriptor]) throws(SystemError) -> pid_t {
        // A source below the highest target could be overwritten by an earlier dup2; move it out of the way.
        var raised: [FileDescriptor] = []
        defer { raised.forEach(Posix.close) }
        var map: [CInt] = []
        for (target, source) in descriptors.enumerated() {
            var fd = source.rawValue
            if fd < CInt(descriptors.count) {
                fd = fcntl(fd, F_DUPFD_CLOEXEC, CInt(descriptors.count))
                guard fd >= 0 else { throw SystemError(call: "fcntl(F_DUPFD_CLOEXEC)") }
                raised.append(FileDescriptor(rawValue: fd))
            }
            map.append(fd)
            map.append(CInt(target))
        }

        let argv = ([path] + arguments).map { strdup($0) }
        defer { for pointer in argv { free(pointer) } }
        var argvPointers = argv + [nil]
        var pid: pid_t = 0
        let rc = argvPointers.withUnsafeMutableBufferPointer { argvBuffer in
            map.withUnsafeBufferPointer { mapBuffer in
                c_spawn(&pid, path, argvBuffer.baseAddress, environ, mapBuffer.baseAddress, CInt(descriptors.count), 1)
            }
        }
        guard rc == 0 else { throw SystemError(call: "posix_spawn(\(path))", errno: rc) }
        return pid
    }
}
