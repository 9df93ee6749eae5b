import Glibc

/// The few file operations the tool needs, with `Glibc` (a build tool needs no Foundation).
enum FileSystem {
    /// The whole file, or nil when it cannot be opened or read (missing, a directory).
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
        }
    }

    /// The whole file as text (invalid UTF-8 repaired), or nil; the `GitCheckout.ReadFile` of the tool.
    static func readText(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Writes `text` to `path` unless it already holds exactly that: an unchanged file keeps its time stamp,
    /// so the target it belongs to is not recompiled. Writes a temporary file and renames it into place.
    static func writeIfChanged(_ text: String, to path: String) throws(ToolError) {
        let bytes = Array(text.utf8)
        if read(path) == bytes { return }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ToolError("cannot create \(temporary): \(lastError())") }
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let reason = lastError()
                close(fd)
                throw ToolError("cannot write \(temporary): \(reason)")
            }
            offset += count
        }
        guard close(fd) == 0 else { throw ToolError("cannot write \(temporary): \(lastError())") }
        guard rename(temporary, path) == 0 else {
            throw ToolError("cannot rename \(temporary) to \(path): \(lastError())")
        }
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}
