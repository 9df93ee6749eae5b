import CLinux
import Glibc

/// File-system and process-wide calls that are not about one descriptor. Each retries on EINTR and throws a
/// `SystemError` naming the call; nothing outside this module touches errno.
public enum Posix {
    /// open(2) with O_CLOEXEC added. With `noFollow`, a symbolic link at `path` fails with ELOOP instead of
    /// being followed (a lock or journal file planted as a link to something else).
    public static func open(
        _ path: String, _ flags: CInt, mode: mode_t = 0o644, noFollow: Bool = false
    ) throws(SystemError) -> FileDescriptor {
        let all = flags | O_CLOEXEC | (noFollow ? O_NOFOLLOW : 0)
        return FileDescriptor(rawValue: try blockingCall("open(\(path))") { Glibc.open(path, all, mode) })
    }

    /// pipe2(2) with O_CLOEXEC and the given extra flags.
    public static func pipe(_ flags: CInt = 0) throws(SystemError) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: [CInt] = [-1, -1]
        _ = try blockingCall("pipe2") { c_pipe2(&fds, O_CLOEXEC | flags) }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// mkdir -p: creates `path` and its missing parents.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if Glibc.mkdir(prefix, mode) == -1 && errno != EEXIST { throw SystemError(call: "mkdir(\(prefix))") }
        }
    }

    /// mkdir(2) of one directory; false when it already exists.
    @discardableResult
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(SystemError) -> Bool {
        if Glibc.mkdir(path, mode) == 0 { return true }
        if errno == EEXIST { return false }
        throw SystemError(call: "mkdir(\(path))")
    }

    /// rmdir(2); a directory already gone is not an error.
    public static func removeDirectory(_ path: String) throws(SystemError) {
        if Glibc.rmdir(path) == -1 && errno != ENOENT { throw SystemError(call: "rmdir(\(path))") }
    }

    /// rename(2).
    public static func rename(_ from: String, _ to: String) throws(SystemError) {
        _ = try blockingCall("rename(\(from), \(to))") { Glibc.rename(from, to) }
    }

    /// link(2): a second name for a file (it keeps the file's content when the first name is replaced).
    public static func link(_ existing: String, _ new: String) throws(SystemError) {
        _ = try blockingCall("link(\(existing), \(new))") { Glibc.link(existing, new) }
    }

    /// unlink(2); a file already gone is not an error.
    public static func unlink(_ path: String) throws(SystemError) {
        if Glibc.unlink(path) == -1 && errno != ENOENT { throw SystemError(call: "unlink(\(path))") }
    }

    /// readlink(2), e.g. of /proc/self/exe.
    public static func readlink(_ path: String) throws(SystemError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = try blockingCall("readlink(\(path))") { Glibc.readlink(path, &buffer, buffer.count - 1) }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// access(2) with X_OK: whether `path` names a file this process may execute.
    public static func isExecutable(_ path: String) -> Bool {
        Glibc.access(path, X_OK) == 0 && !isDirectory(path)
    }

    /// access(2) with W_OK: whether this process may write to `path`.
    public static func isWritable(_ path: String) -> Bool {
        Glibc.access(path, W_OK) == 0
    }

    /// Whether `path` names a directory (following links).
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return fstatat(AT_FDCWD, path, &info, 0) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Whether `path` itself is a symbolic link (lstat).
    public static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return Glibc.lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    /// Whether anything exists at `path` (lstat: a dangling link exists).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return Glibc.lstat(path, &info) == 0
    }

    /// The names in a directory, without "." and "..".
    public static func listDirectory(_ path: String) throws(SystemError) -> [String] {
        guard let directory = opendir(path) else { throw SystemError(call: "opendir(\(path))") }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The whole content of a (small) file, opened read-only.
    public static func readFile(_ path: String, limit: Int = 16 << 20) throws(SystemError) -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { fd.close() }
        return try fd.readToEnd(limit: limit)
    }

    /// Writes `bytes` to `path`, creating or truncating it.
    public static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) {
        let fd = try open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
        defer { fd.close() }
        try fd.writeAll(bytes)
    }

    /// Where execvp(3) would find `program`: itself when it contains a slash (relative to `directory` when
    /// given), else the first executable of that name in the `PATH` directories; nil when there is none.
    public static func findInPath(_ program: String, path: String?, directory: String? = nil) -> String? {
        if program.contains("/") {
            let full = program.hasPrefix("/") || directory == nil ? program : directory! + "/" + program
            return isExecutable(full) ? full : nil
        }
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + program
            if isExecutable(candidate) { return candidate }
        }
        return nil
    }

    /// poll(2) over `descriptors` for up to `timeoutMilliseconds` (-1: no limit); `revents` say what is ready.
    /// Returns how many are ready (0 on timeout or when interrupted by a signal).
    public static func poll(_ descriptors: inout [pollfd], timeoutMilliseconds: CInt = -1) throws(SystemError) -> Int {
        let count = descriptors.withUnsafeMutableBufferPointer {
            Glibc.poll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds)
        }
        if count == -1 {
            if errno == EINTR { return 0 }
            throw SystemError(call: "poll")
        }
        return Int(count)
    }

    /// The process environment as `NAME=value` strings.
    public static func environment() -> [String] {
        var entries: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            entries.append(String(cString: entry))
            cursor += 1
        }
        return entries
    }

    /// The process environment as a dictionary (the first of repeated names wins, as getenv does).
    public static func environmentDictionary() -> [String: String] {
        var result: [String: String] = [:]
        for entry in environment() {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            let name = String(entry[..<equals])
            if result[name] == nil { result[name] = String(entry[entry.index(after: equals)...]) }
        }
        return result
    }

    /// gethostname(2).
    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard Glibc.gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// isatty(3).
    public static func isTerminal(_ fd: FileDescriptor) -> Bool {
        Glibc.isatty(fd.rawValue) == 1
    }
}
