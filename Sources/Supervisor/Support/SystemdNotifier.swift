import System

/// The sd_notify(3) protocol, written here: datagrams to the Unix socket named by `NOTIFY_SOCKET` (`@` for the
/// abstract namespace). `READY=1` once the journal is replayed and the workers are up, `STOPPING=1` when a drain
/// starts, `STATUS=` with workers and queue, `WATCHDOG=1` at half of `WATCHDOG_USEC` while the loop turns.
/// Without `NOTIFY_SOCKET` (not under systemd) nothing is sent.
final class SystemdNotifier {
    private let socketPath: String?
    /// How often to send `WATCHDOG=1`; nil when systemd asked for no watchdog.
    let watchdogInterval: Milliseconds?
    private var lastStatus = ""
    private(set) var sentReady = false
    private let logger: Logger

    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` (and `WATCHDOG_PID`, which must be ours when set).
    init(environment: [String: String], logger: Logger) {
        self.logger = logger
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        if path != nil, let text = environment["WATCHDOG_USEC"], let microseconds = Int64(text), microseconds > 0,
            environment["WATCHDOG_PID"].map({ Int32($0) == Process.id }) ?? true
        {
            watchdogInterval = Milliseconds(max(1, microseconds / 2000))
        } else {
            watchdogInterval = nil
        }
    }

    /// Whether a service manager is listening.
    var isActive: Bool { socketPath != nil }

    /// `READY=1` with a status line (once).
    func ready(status: String) {
        guard !sentReady else { return }
        sentReady = true
        lastStatus = status
        send("READY=1\nSTATUS=\(status)\nMAINPID=\(Process.id)")
    }

    /// `STOPPING=1`.
    func stopping(status: String) {
        lastStatus = status
        send("STOPPING=1\nSTATUS=\(status)")
    }

    /// `STATUS=` when it changed.
    func status(_ status: String) {
        guard status != lastStatus else { return }
        lastStatus = status
        send("STATUS=\(status)")
    }

    /// `WATCHDOG=1`.
    func watchdog() {
        send("WATCHDOG=1")
    }

    private func send(_ message: String) {
        guard let socketPath else { return }
        do throws(SystemError) {
            try Socket.sendDatagram(Array(message.utf8), toUnixPath: socketPath)
        } catch {
            logger.warn("sd_notify_failed", ["socket": .string(socketPath), "error": .string(error.description)])
        }
    }
}
