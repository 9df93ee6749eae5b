import Postgres
import System

/// `--check-config` with the PostgreSQL backend: one connection attempt, waited for (this is a command, not the
/// loop), closed again.
enum PostgresCheck {
    /// Nil when a connection to `url` succeeds within the timeout, else why not.
    static func connect(_ url: String, timeoutMilliseconds: Int) -> String? {
        let connection: PostgresConnection
        do throws(PostgresError) {
            connection = try PostgresConnection.start(url)
        } catch {
            return error.description
        }
        defer { connection.close() }
        let deadline = Time.monotonicMicroseconds() / 1000 + Int64(timeoutMilliseconds)
        while true {
            switch connection.connectPoll() {
            case .ready:
                return nil
            case .failed(let message):
                return message
            case .connecting(let interest):
                let left = deadline - Time.monotonicMicroseconds() / 1000
                guard left > 0, let socket = connection.socket else {
                    return "no connection within \(timeoutMilliseconds) ms (postgres.connect_timeout_ms)"
                }
                _ = try? Poll.wait(socket, for: interest == .readable ? .readable : .writable, timeoutMilliseconds: Int32(left))
            }
        }
    }
}
