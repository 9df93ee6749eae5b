import Foundation
import Glibc
import Synchronization

/// Reads a pipe on a background thread until EOF and keeps every line, for tests to inspect from any thread.
final class LineCollector: Sendable {
    private struct State {
        var lines: [String] = []
        var partial: [UInt8] = []
        var closed = false
    }

    private let state = Mutex(State())
    private let echoPrefix: String?

    /// Starts reading `fd` (which this collector owns and closes at EOF). With `echoPrefix`, each line is
    /// also copied to the test runner's stderr (set `PREFORK_TEST_LOGS=1` to see supervisor logs).
    init(fd: CInt, echoPrefix: String?) {
        self.echoPrefix = echoPrefix
        let thread = Thread { [self] in self.readUntilEndOfFile(fd) }
        thread.name = "LineCollector fd \(fd)"
        thread.start()
    }

    /// Every complete line read so far.
    var lines: [String] { state.withLock { $0.lines } }

    /// Whether the writer side has closed (the process and all its children that shared the pipe are gone).
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Everything read so far as one string, including an unterminated last line.
    var text: String {
        state.withLock { state in
            (state.lines + (state.partial.isEmpty ? [] : [String(decoding: state.partial, as: UTF8.self)]))
                .joined(separator: "\n")
        }
    }

    private func readUntilEndOfFile(_ fd: CInt) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            append(buffer[0..<count])
        }
        Glibc.close(fd)
        state.withLock { state in
            if !state.partial.isEmpty {
                state.lines.append(String(decoding: state.partial, as: UTF8.self))
                state.partial = []
            }
            state.closed = true
        }
    }

    private func append(_ bytes: ArraySlice<UInt8>) {
        let complete: [String] = state.withLock { state in
            var complete: [String] = []
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    complete.append(String(decoding: state.partial, as: UTF8.self))
                    state.partial.removeAll(keepingCapacity: true)
                } else {
                    state.partial.append(byte)
                }
            }
            state.lines.append(contentsOf: complete)
            return complete
        }
        if let echoPrefix {
            for line in complete {
                FileHandle.standardError.write(Data("\(echoPrefix): \(line)\n".utf8))
            }
        }
    }
}
