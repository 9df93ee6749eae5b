import Glibc
import Postgres
import Synchronization
import System
import Testing

/// Where the tests find PostgreSQL: `PREFORK_TEST_POSTGRES_URL` (set by `eval "$(scripts/test-postgres start)"`,
/// and by .ci/run). Without it the database tests are skipped with a reason, except under `CI=true`, where a
/// missing database is a failure: CI must not pass by testing nothing.
enum TestDatabase {
    /// The conninfo, or nil when unset.
    static let url: String? = {
        guard let value = getenv("PREFORK_TEST_POSTGRES_URL"), value.pointee != 0 else { return nil }
        return String(cString: value)
    }()

    /// Whether this run is CI's, where skipping is not allowed.
    static let isCI: Bool = {
        guard let value = getenv("CI") else { return false }
        return String(cString: value) == "true"
    }()

    /// Whether database tests run: with a URL, or under CI (where they then fail on the missing URL).
    static let enabled = url != nil || isCI

    /// The skip reason shown when `enabled` is false.
    static let skipReason: Comment =
        "PREFORK_TEST_POSTGRES_URL is not set (scripts/test-postgres start runs a throwaway cluster and prints it)"

    /// The URL, or a failure saying why there is none.
    static func requireURL() throws -> String {
        guard let url else {
            throw TestFailure("PREFORK_TEST_POSTGRES_URL is not set, and CI=true does not allow skipping")
        }
        return url
    }

    /// A connection to the test database, ready, non-blocking, optionally in pipeline mode; its search_path is
    /// `schema` when given (created if missing), so tests of the prefork_* tables do not see each other's rows.
    static func connect(schema: String? = nil, pipeline: Bool = false) throws -> TestConnection {
        let connection = try TestConnection.connect(try requireURL())
        if let schema {
            _ = try connection.query("CREATE SCHEMA IF NOT EXISTS \(schema)")
            _ = try connection.query("SET search_path TO \(schema)")
        }
        if pipeline { try connection.connection.enterPipelineMode() }
        return connection
    }

    /// A name unique to this process and call, for tables, schemas and channels.
    static func uniqueName(_ prefix: String) -> String {
        let number = names.wrappingAdd(1, ordering: .relaxed).newValue
        return "\(prefix)_\(Process.id)_\(number)"
    }

    private static let names = Atomic<Int>(0)
}

/// A test's own failure, with what went wrong.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A `PostgresConnection` driven with poll(2) the way the supervisor's loop will drive it with epoll: each wait
/// bounded by a deadline (5 s unless told), never a fixed sleep.
final class TestConnection {
    let connection: PostgresConnection

    private init(_ connection: PostgresConnection) {
        self.connection = connection
    }

    deinit { connection.close() }

    /// Connects to `conninfo` and sets the connection non-blocking; throws libpq's reason on failure.
    static func connect(_ conninfo: String, timeoutMilliseconds: Int = 5000) throws -> TestConnection {
        let connection = try PostgresConnection.start(conninfo)
        let deadline = Deadline(milliseconds: timeoutMilliseconds)
        var progress = connection.progress
        while true {
            switch progress {
            case .ready:
                try connection.setNonBlocking()
                return TestConnection(connection)
            case .failed(let message):
                connection.close()
                throw PostgresError(call: "PQconnectPoll", message: message)
            case .connecting(let interest):
                guard let socket = connection.socket else { throw TestFailure("connecting without a socket") }
                _ = try Poll.wait(
                    socket, for: interest == .readable ? .readable : .writable,
                    timeoutMilliseconds: try deadline.remaining("connecting to \(conninfo)"))
                progress = connection.connectPoll()
            }
        }
    }

    /// Flushes everything libpq buffered, reading input meanwhile as libpq requires.
    func flushAll(_ deadline: Deadline = Deadline()) throws {
        while try connection.flush() {
            try wait([.readable, .writable], deadline, "flushing")
            if Poll.Events.readable.isSubset(of: lastReady) { try connection.consumeInput() }
        }
    }

    /// The results of the statements sent so far, outside pipeline mode: everything until libpq reports the
    /// statement ended.
    func results(_ deadline: Deadline = Deadline()) throws -> [PostgresResult] {
        try flushAll(deadline)
        var results: [PostgresResult] = []
        while true {
            switch connection.nextResult() {
            case .result(let result): results.append(result)
            case .statementEnded: return results
            case .needsInput:
                try wait(.readable, deadline, "a result")
                try connection.consumeInput()
            }
        }
    }

    /// Sends `sql` and returns its one result; a server error becomes a thrown `PostgresServerError`.
    @discardableResult
    func query(_ sql: String, _ parameters: [PostgresParameter] = [], binaryResults: Bool = false) throws
        -> PostgresResult
    {
        try connection.sendQuery(sql, parameters, binaryResults: binaryResults)
        let results = try results()
        guard results.count == 1 else { throw TestFailure("\(sql): \(results.count) results, expected 1") }
        if let error = results[0].error { throw error }
        return results[0]
    }

    /// In pipeline mode: every result (sync markers included) until `syncs` sync points have come back.
    func pipelineResults(syncs: Int, _ deadline: Deadline = Deadline()) throws -> [PostgresResult] {
        var results: [PostgresResult] = []
        var seen = 0
        while seen < syncs {
            let pending = try connection.flush()
            switch connection.nextResult() {
            case .result(let result):
                results.append(result)
                if result.status == .pipelineSync { seen += 1 }
            case .statementEnded: continue
            case .needsInput:
                try wait(pending ? [.readable, .writable] : .readable, deadline, "pipeline results")
                try connection.consumeInput()
            }
        }
        return results
    }

    /// Waits until at least `count` notifications have arrived and returns them all.
    func notifications(atLeast count: Int, _ deadline: Deadline = Deadline()) throws -> [PostgresNotification] {
        var received = connection.notifications()
        while received.count < count {
            try wait(.readable, deadline, "\(count) notifications (have \(received.count))")
            try connection.consumeInput()
            received += connection.notifications()
        }
        return received
    }

    private var lastReady: Poll.Events = []

    private func wait(_ events: Poll.Events, _ deadline: Deadline, _ what: String) throws {
        guard let socket = connection.socket else { throw TestFailure("no socket while waiting for \(what)") }
        lastReady = try Poll.wait(socket, for: events, timeoutMilliseconds: try deadline.remaining(what))
    }
}

/// A point in monotonic time a wait must not pass.
struct Deadline {
    let microseconds: Int64

    init(milliseconds: Int = 5000) {
        microseconds = Time.monotonicMicroseconds() + Int64(milliseconds) * 1000
    }

    /// Milliseconds left (at least 1), or a failure naming what was awaited once it has passed.
    func remaining(_ what: String) throws -> CInt {
        let left = microseconds - Time.monotonicMicroseconds()
        guard left > 0 else { throw TestFailure("timed out waiting for \(what)") }
        return CInt(min(left / 1000 + 1, 60_000))
    }
}
