/// One-line messages to the worker's stdout and stderr (the supervisor logs the latter with slot and pid).
enum Console {
    /// Writes `line` and a newline to stderr, prefixed with the program name; errors are ignored.
    static func error(_ line: String) {
        write("prefork-worker: \(line)\n", to: .standardError)
    }

    /// Writes `text` to stdout as is; errors are ignored.
    static func output(_ text: String) {
        write(text, to: .standardOutput)
    }

    private static func write(_ text: String, to descriptor: FileDescriptor) {
        var remaining = Array(text.utf8)[...]
        while !remaining.isEmpty {
            guard let count = try? Posix.write(descriptor, remaining), count > 0 else { return }
            remaining = remaining.dropFirst(count)
        }
    }
}
