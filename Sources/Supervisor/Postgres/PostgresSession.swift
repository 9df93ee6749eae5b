import Glibc
import Postgres
import System

/// One PostgreSQL connection on the event loop, in pipeline mode: operations (a few statements and a sync, one
/// implicit transaction) are streamed without waiting for each other, and their results come back in order.
///
/// It connects (resolving a host name off the loop), migrates the schema, prepares the statements, LISTENs, and
/// then runs operations; when the connection breaks, every operation in flight fails (its caller answers 503)
/// and it reconnects with a backoff. Nothing here waits: the socket is watched by the loop like any other.
final class PostgresSession {
    /// One statement of an operation: a prepared one by name, or plain SQL.
    struct Statement {
        var name: String?
        var sql: String
        var parameters: [PostgresParameter]

        /// A prepared statement with `parameters`.
        static func prepared(_ statement: PostgresStatement, _ parameters: [PostgresParameter]) -> Statement {
            Statement(name: statement.name, sql: statement.sql, parameters: parameters)
        }

        /// Plain SQL (parsed on every run).
        static func sql(_ sql: String, _ parameters: [PostgresParameter] = []) -> Statement {
            Statement(name: nil, sql: sql, parameters: parameters)
        }
    }

    /// Why an operation has no results.
    enum Failure: Error, CustomStringConvertible {
        /// The connection is down (or went down before the sync's answer): nothing is known about a commit.
        case unavailable(String)
        /// The server refused a statement; the segment was rolled back.
        case server(PostgresServerError)
        /// A parameter cannot be sent (a NUL byte in text); nothing was sent, the connection is untouched.
        case unsendable(String)

        var description: String {
            switch self {
            case .unavailable(let why): return "database unavailable: \(why)"
            case .server(let error): return "database error: \(error)"
            case .unsendable(let why): return "not sent to the database: \(why)"
            }
        }
    }

    /// Statements and a completion, run as one pipeline segment.
    private final class Operation {
        let statements: [Statement]
        let completion: (Result<[PostgresResult], Failure>) -> Void
        var results: [PostgresResult] = []
        let startedMicroseconds: Int64

        init(
            statements: [Statement], startedMicroseconds: Int64,
            completion: @escaping (Result<[PostgresResult], Failure>) -> Void
        ) {
            self.statements = statements
            self.completion = completion
            self.startedMicroseconds = startedMicroseconds
        }
    }

    /// Where the session stands.
    enum State: Equatable {
        /// Not connected; the next attempt is due at this monotonic time.
        case disconnected(retryAt: Milliseconds)
        /// Resolving the host name on a background queue.
        case resolving
        /// libpq is connecting.
        case connecting
        /// Connected; migrating, preparing and listening.
        case settingUp
        /// Operations run.
        case ready
    }

    private(set) var state: State = .disconnected(retryAt: 0)
    /// Why the last connection attempt failed or the connection broke.
    private(set) var lastError: String?
    /// Called once each time the session becomes ready (after a reconnect too).
    var onReady: () -> Void = {}
    /// Called with each notification.
    var onNotification: (PostgresNotification) -> Void = { _ in }
    /// Called when a working connection breaks.
    var onLost: (String) -> Void = { _ in }
    /// Seconds each operation took, for the metrics.
    var onOperationTime: (Double) -> Void = { _ in }

    private let conninfo: String
    private let statements: [PostgresStatement]
    private let setupSQL: [String]
    private let listenChannels: [String]
    private let loop: EventLoop
    private let clock: Clock
    private let logger: Logger
    private let connectTimeout: Milliseconds
    private let resolver: HostResolver?
    private var connection: PostgresConnection?
    private var socket: FileDescriptor?
    private var token: EventToken = 0
    private var watching: UInt32 = 0
    private var inFlight = Deque<Operation>()
    private var setupRemaining = 0
    private var connectDeadline: TimerID?
    private var retryTimer: TimerID?
    private var reconnectDelay: Milliseconds = 100
    private var closed = false

    /// A session to `conninfo` that prepares `statements`, runs `setupSQL` (the migration) first and LISTENs on
    /// `listenChannels`. Call `start()`.
    init(
        conninfo: String, statements: [PostgresStatement], setupSQL: [String], listenChannels: [String],
        connectTimeout: Milliseconds, loop: EventLoop, clock: Clock, logger: Logger
    ) {
        self.conninfo = conninfo
        self.statements = statements
        self.setupSQL = setupSQL
        self.listenChannels = listenChannels
        self.connectTimeout = connectTimeout
        self.loop = loop
        self.clock = clock
        self.logger = logger
        resolver = try? HostResolver(clock: clock)
    }

    /// Whether operations can run now.
    var isReady: Bool { state == .ready }

    /// Operations sent and not yet answered.
    var pendingCount: Int { inFlight.count }

    /// Starts connecting.
    func start() {
        if let resolver {
            _ = try? loop.register(resolver.notification, events: Epoll.readable) { [unowned resolver] _ in
                resolver.deliverAnswers()
            }
        }
        connect()
    }

    /// Closes the connection for good (shutdown): operations in flight fail.
    func close() {
        closed = true
        loop.cancel(retryTimer)
        tearDown(reason: "shutting down", reconnect: false)
    }

    /// Runs `statements` as one segment (one implicit transaction) and calls `completion` with their results,
    /// or at once with `.unavailable` when the session is not ready.
    func run(_ statements: [Statement], completion: @escaping (Result<[PostgresResult], Failure>) -> Void) {
        guard state == .ready, let connection else {
            completion(.failure(.unavailable(lastError ?? "not connected")))
            return
        }
        // Checked before anything is sent: a refusal halfway through would leave the pipeline half a segment.
        for (index, statement) in statements.enumerated() {
            if let bad = statement.parameters.firstIndex(where: { if case .text(let text) = $0 { text.utf8.contains(0) } else { false } }) {
                return completion(.failure(.unsendable("statement \(index + 1), parameter $\(bad + 1) contains a NUL byte")))
            }
        }
        let operation = Operation(
            statements: statements, startedMicroseconds: clock.monotonicMicroseconds(), completion: completion)
        do throws(PostgresError) {
            try send(operation, on: connection)
        } catch {
            completion(.failure(.unavailable(error.description)))
            tearDown(reason: error.description, reconnect: true)
        }
    }

    // MARK: Connecting

    private func connect() {
        guard !closed else { return }
        retryTimer = nil
        // libpq resolves a host name with a blocking getaddrinfo: resolve it here, off the loop, and connect to
        // the address (`hostaddr`), keeping `host` for TLS and .pgpass.
        if let host = Self.hostName(in: conninfo), let resolver {
            state = .resolving
            resolver.resolve(host: host, port: 5432) { [weak self] result in
                guard let self, self.state == .resolving else { return }
                switch result {
                case .success(let address): self.open(self.conninfo + " hostaddr=\(address.host)")
                case .failure(let error): self.failed("cannot resolve \(host): \(error)")
                }
            }
            return
        }
        open(conninfo)
    }

    /// The host of a keyword/value conninfo or a URI when it is a name (not an IP literal or a socket directory).
    static func hostName(in conninfo: String) -> String? {
        var host: String?
        if conninfo.hasPrefix("postgres://") || conninfo.hasPrefix("postgresql://") {
            let rest = conninfo.drop { $0 != "/" }.dropFirst(2)
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            let afterUser = authority.split(separator: "@").last.map(String.init) ?? ""
            host = afterUser.hasPrefix("[") ? nil : String(afterUser.split(separator: ":").first ?? "")
            if conninfo.contains("hostaddr=") { return nil }
        } else {
            for pair in conninfo.split(separator: " ") {
                if pair.hasPrefix("hostaddr=") { return nil }
                if pair.hasPrefix("host=") { host = String(pair.dropFirst(5)).trimmingCharacters(of: "'") }
            }
        }
        guard let host, !host.isEmpty, !host.hasPrefix("/"), !host.contains(","), SocketAddress(host: host, port: 0) == nil
        else { return nil }
        return host
    }

    private func open(_ target: String) {
        let connection: PostgresConnection
        do throws(PostgresError) {
            connection = try PostgresConnection.start(target)
        } catch {
            return failed(error.description)
        }
        self.connection = connection
        state = .connecting
        connectDeadline = loop.schedule(after: connectTimeout) { [unowned self] in
            connectDeadline = nil
            if state == .connecting || state == .settingUp {
                failed("no connection within \(connectTimeout) ms (postgres.connect_timeout_ms)")
            }
        }
        advanceConnect()
    }

    /// One step of libpq's connect; re-registers the socket, which may change between steps.
    private func advanceConnect() {
        guard let connection, state == .connecting else { return }
        let progress = connection.connectPoll()
        switch progress {
        case .connecting(let interest):
            watch(connection.socket, interest == .readable ? Epoll.readable : Epoll.writable, rebind: true)
        case .ready:
            watch(connection.socket, Epoll.readable, rebind: true)
            setUp(connection)
        case .failed(let message):
            failed(message)
        }
    }

    /// Non-blocking, pipeline mode; then the migration, the prepared statements and LISTEN, each its own segment.
    private func setUp(_ connection: PostgresConnection) {
        state = .settingUp
        do throws(PostgresError) {
            try connection.setNonBlocking()
            try connection.enterPipelineMode()
        } catch {
            return failed(error.description)
        }
        var segments: [[Statement]] = setupSQL.map { [.sql($0)] }
        segments.append(listenChannels.map { .sql("LISTEN \($0)") })
        setupRemaining = segments.count + 1
        for segment in segments {
            let operation = Operation(statements: segment, startedMicroseconds: clock.monotonicMicroseconds()) {
                [unowned self] result in setupStepDone(result)
            }
            do throws(PostgresError) {
                try send(operation, on: connection)
            } catch {
                return failed(error.description)
            }
        }
        // Preparing goes through its own path: PQsendPrepare, one per statement, then a sync.
        let prepare = Operation(statements: [], startedMicroseconds: clock.monotonicMicroseconds()) {
            [unowned self] result in setupStepDone(result)
        }
        do throws(PostgresError) {
            for statement in statements { try connection.sendPrepare(name: statement.name, statement.sql) }
            try connection.pipelineSync()
            inFlight.append(prepare)
            try flushOutput()
        } catch {
            failed(error.description)
        }
    }

    private func setupStepDone(_ result: Result<[PostgresResult], Failure>) {
        guard state == .settingUp else { return }
        if case .failure(let failure) = result {
            return failed("setting up the connection: \(failure)")
        }
        setupRemaining -= 1
        guard setupRemaining == 0 else { return }
        loop.cancel(connectDeadline)
        connectDeadline = nil
        state = .ready
        reconnectDelay = 100
        if lastError != nil { logger.info("postgres_connected", ["after_error": .optional(lastError)]) }
        lastError = nil
        onReady()
    }

    /// A connection attempt failed: try again after the backoff (100 ms, doubling to 5 s).
    private func failed(_ message: String) {
        let wasWorking = state == .ready
        if lastError != message || wasWorking {
            logger.error("postgres_unavailable", ["error": .string(message), "retry_ms": .int(reconnectDelay)])
        }
        lastError = message
        tearDown(reason: message, reconnect: true)
        if wasWorking { onLost(message) }
    }

    private func tearDown(reason: String, reconnect: Bool) {
        loop.cancel(connectDeadline)
        connectDeadline = nil
        // libpq closes the socket itself when it finds the connection broken: only a socket it still has open
        // is removed from epoll; a closed one has left the set already.
        if let socket, token != 0 {
            if connection?.socket?.rawValue == socket.rawValue {
                loop.unregister(socket, token: token)
            } else {
                loop.forget(token: token)
            }
        }
        socket = nil
        token = 0
        watching = 0
        connection?.close()
        connection = nil
        let failedOperations = inFlight
        inFlight = Deque()
        if reconnect && !closed {
            let delay = reconnectDelay
            reconnectDelay = min(5000, reconnectDelay * 2)
            state = .disconnected(retryAt: loop.now + delay)
            retryTimer = loop.schedule(after: delay) { [unowned self] in connect() }
        } else {
            state = .disconnected(retryAt: .max)
        }
        for operation in failedOperations {
            operation.completion(.failure(.unavailable("the connection was lost before the answer (\(reason))")))
        }
    }

    // MARK: Sending and receiving

    private func send(_ operation: Operation, on connection: PostgresConnection) throws(PostgresError) {
        for statement in operation.statements {
            if let name = statement.name {
                try connection.sendPrepared(name: name, statement.parameters)
            } else {
                try connection.sendQuery(statement.sql, statement.parameters)
            }
        }
        try connection.pipelineSync()
        inFlight.append(operation)
        try flushOutput()
    }

    /// Writes what libpq buffered; while some is left, watch for writable too.
    private func flushOutput() throws(PostgresError) {
        guard let connection else { return }
        let pending = try connection.flush()
        watch(connection.socket, pending ? Epoll.readable | Epoll.writable : Epoll.readable, rebind: false)
    }

    /// Watches the connection's socket for `events`. `rebind` registers it afresh: during connect libpq may have
    /// closed the old descriptor and opened another, possibly with the same number.
    private func watch(_ fd: FileDescriptor?, _ events: UInt32, rebind: Bool) {
        guard let fd else { return }
        if rebind || token == 0 || socket?.rawValue != fd.rawValue {
            if token != 0 { loop.forget(token: token) }
            socket = fd
            watching = events
            token = (try? loop.reregister(fd, events: events) { [unowned self] ready in handle(ready) }) ?? 0
            return
        }
        guard events != watching else { return }
        watching = events
        loop.modify(fd, token: token, events: events)
    }

    private func handle(_ events: UInt32) {
        switch state {
        case .connecting:
            advanceConnect()
        case .settingUp, .ready:
            guard let connection else { return }
            do throws(PostgresError) {
                try connection.consumeInput()
                readResults(connection)
                if events & Epoll.writable != 0 || watching & Epoll.writable != 0 { try flushOutput() }
            } catch {
                failed(error.description)
            }
        case .disconnected, .resolving:
            break
        }
    }

    /// Matches results to the operations in flight, in order; a sync ends the head operation.
    private func readResults(_ connection: PostgresConnection) {
        // In pipeline mode PQgetResult returns NULL after each statement's results, and keeps returning NULL when
        // nothing more has arrived: two in a row mean everything read so far is consumed.
        var endedInARow = 0
        loop: while true {
            switch connection.nextResult() {
            case .needsInput:
                break loop
            case .statementEnded:
                endedInARow += 1
                if endedInARow >= 2 || inFlight.isEmpty { break loop }
                continue
            case .result(let result):
                endedInARow = 0
                if result.status == .pipelineSync {
                    guard let operation = inFlight.popFirst() else { continue }
                    onOperationTime(Double(clock.monotonicMicroseconds() - operation.startedMicroseconds) / 1_000_000)
                    if let error = operation.results.first(where: { $0.error != nil })?.error {
                        operation.completion(.failure(.server(error)))
                    } else if operation.results.contains(where: { $0.failed }) {
                        operation.completion(.failure(.unavailable("a statement was not run")))
                    } else {
                        operation.completion(.success(operation.results))
                    }
                    if state != .settingUp && state != .ready { return }
                } else {
                    inFlight.first?.results.append(result)
                }
            }
        }
        for notification in connection.notifications() { onNotification(notification) }
        if !connection.isConnected { failed(connection.errorMessage) }
    }
}

extension String {
    /// Without the given character at either end.
    fileprivate func trimmingCharacters(of character: Character) -> String {
        var text = Substring(self)
        while text.first == character { text = text.dropFirst() }
        while text.last == character { text = text.dropLast() }
        return String(text)
    }
}
