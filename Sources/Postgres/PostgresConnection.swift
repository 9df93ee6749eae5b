import CPostgres
import System

/// A PostgreSQL connection driven by the caller's event loop: nothing here waits. Every call either does its
/// work at once or says what readiness of `socket` to wait for, so one thread (the supervisor's epoll loop) can
/// drive many connections next to its HTTP clients and workers.
///
/// The protocol, in the order the loop meets it:
///
/// 1. **Connect.** `start(conninfo)` begins (PQconnectStart). Wait for `socket` to be writable, then call
///    `connectPoll()` each time the socket is ready for what the last call asked (`.connecting(.readable)` or
///    `.connecting(.writable)`) until `.ready` or `.failed`. Re-read `socket` after every `connectPoll()`: libpq
///    may close it and open another (a second host, a retry without SSL), possibly with the same number, so the
///    epoll registration must be added afresh (a closed descriptor leaves the epoll set by itself).
/// 2. **Set up.** `setNonBlocking()` (sends then never block on a full socket buffer), and `enterPipelineMode()`
///    if statements are to be streamed without waiting for each result.
/// 3. **Send.** `sendQuery`, `sendPrepare`, `sendPrepared`; in pipeline mode end a batch with `pipelineSync()`
///    (or `sendFlushRequest()` to get results without ending the implicit transaction).
/// 4. **Flush.** `flush()` until it returns false. While it returns true, watch the socket for writable *and*
///    readable: when readable, call `consumeInput()` and then `flush()` again (libpq's rule: the server may be
///    waiting for us to read before it reads more).
/// 5. **Read.** On readable: `consumeInput()`, then `nextResult()` until `.needsInput`, and `notifications()`.
///
/// `host` names in `conninfo` are resolved by libpq inside `connectPoll()` with a blocking getaddrinfo: give
/// `hostaddr` (an IP address, see `PostgresHostResolver`) or a Unix socket directory as `host` to keep the
/// loop from waiting on DNS.
///
/// Not thread-safe: one thread owns a connection. `close()` (or the last reference going away) ends it.
public final class PostgresConnection {
    /// What the socket must be ready for before the next step.
    public enum Interest: Equatable, Sendable {
        /// Wait until the socket is readable.
        case readable
        /// Wait until the socket is writable.
        case writable
    }

    /// Where connecting stands.
    public enum ConnectProgress: Equatable, Sendable {
        /// Not yet: wait for the socket to be ready for this, then call `connectPoll()` again.
        case connecting(Interest)
        /// Connected and authenticated: queries may be sent.
        case ready
        /// The attempt failed, with libpq's reason ("connection to server on socket ... failed: No such file
        /// or directory"). The connection is of no further use; `close()` it.
        case failed(String)
    }

    /// PQpipelineStatus.
    public enum PipelineStatus: Equatable, Sendable {
        /// Not in pipeline mode: one statement at a time.
        case off
        /// In pipeline mode.
        case on
        /// In pipeline mode, and a statement failed: everything up to the next sync comes back
        /// `.pipelineAborted`.
        case aborted
    }

    /// What `nextResult()` found.
    public enum NextResult: Sendable {
        /// A result, copied; its PGresult is already freed.
        case result(PostgresResult)
        /// libpq has nothing more for the current statement (PQgetResult returned NULL): in pipeline mode the
        /// next statement's results follow; outside it, the connection is idle. A `.pipelineSync` result has no
        /// marker of its own: the next segment's first result follows it directly, or this marker when nothing
        /// more is pending.
        case statementEnded
        /// The next result has not fully arrived: wait for the socket to be readable and `consumeInput()`. (A
        /// closed connection says this too; its `consumeInput()` then throws.)
        case needsInput
    }

    /// The PGconn; nil once closed.
    private var connection: OpaquePointer?

    /// Where connecting stands; `.connecting(.writable)` right after `start`.
    public private(set) var progress: ConnectProgress = .connecting(.writable)

    private init(_ connection: OpaquePointer) {
        self.connection = connection
    }

    deinit {
        if let connection { cpq_finish(connection) }
    }

    /// Loads libpq if needed and starts connecting to `conninfo` ("host=/run/pg dbname=jobs" or
    /// "postgresql:///jobs?host=/run/pg"), without waiting: continue with `connectPoll()`. Throws when libpq
    /// is missing or `conninfo` is malformed.
    public static func start(_ conninfo: String) throws(PostgresError) -> PostgresConnection {
        try PostgresLibrary.load()
        guard let raw = cpq_connect_start(conninfo) else {
            throw PostgresError(call: "PQconnectStart", message: "out of memory")
        }
        let connection = PostgresConnection(raw)
        cpq_discard_notices(raw)
        if cpq_status(raw) == CPQ_CONNECTION_BAD {
            throw PostgresError(call: "PQconnectStart", message: connection.errorMessage)
        }
        return connection
    }

    /// The connection's socket, nil while it has none (closed, or between two hosts). Changes during
    /// connecting; fixed once `.ready`.
    public var socket: FileDescriptor? {
        guard let connection else { return nil }
        let fd = cpq_socket(connection)
        return fd < 0 ? nil : FileDescriptor(rawValue: fd)
    }

    /// One step of connecting (PQconnectPoll), called when the socket is ready for what `progress` asks.
    @discardableResult
    public func connectPoll() -> ConnectProgress {
        guard let connection else { return fail("the connection is closed") }
        switch progress {
        case .ready, .failed: return progress
        case .connecting: break
        }
        switch Int(cpq_connect_poll(connection)) {
        case Int(CPQ_POLLING_READING): progress = .connecting(.readable)
        case Int(CPQ_POLLING_WRITING): progress = .connecting(.writable)
        case Int(CPQ_POLLING_OK): progress = .ready
        default: return fail(errorMessage)
        }
        return progress
    }

    private func fail(_ message: String) -> ConnectProgress {
        progress = .failed(message)
        return progress
    }

    /// PQsetnonblocking(1): sends and flushes return instead of waiting for room in the socket buffer. Call it
    /// once `.ready`.
    public func setNonBlocking() throws(PostgresError) {
        let connection = try open("PQsetnonblocking")
        guard cpq_set_nonblocking(connection, 1) == 0 else { throw failure("PQsetnonblocking") }
    }

    // MARK: Pipeline mode

    /// Enters pipeline mode: statements are sent without waiting for the previous one's result, and results
    /// come back in order. Needs an idle connection (no result pending).
    ///
    /// Statements between two syncs run in one implicit transaction: when one fails, the ones before it in the
    /// segment are rolled back and the ones after it come back `.pipelineAborted`.
    public func enterPipelineMode() throws(PostgresError) {
        let connection = try open("PQenterPipelineMode")
        guard cpq_enter_pipeline_mode(connection) == 1 else { throw failure("PQenterPipelineMode") }
    }

    /// Leaves pipeline mode; fails while results are still pending.
    public func exitPipelineMode() throws(PostgresError) {
        let connection = try open("PQexitPipelineMode")
        guard cpq_exit_pipeline_mode(connection) == 1 else { throw failure("PQexitPipelineMode") }
    }

    /// Marks a sync point (PQpipelineSync): ends the segment's implicit transaction (commit, or rollback after
    /// an error), makes the server send the segment's results, and yields a `.pipelineSync` result after them.
    /// It also tries to flush; call `flush()` anyway.
    public func pipelineSync() throws(PostgresError) {
        let connection = try open("PQpipelineSync")
        guard cpq_pipeline_sync(connection) == 1 else { throw failure("PQpipelineSync") }
    }

    /// Asks the server to send the results so far without a sync point (PQsendFlushRequest): the transaction
    /// stays open. Queued until the next `flush()`.
    public func sendFlushRequest() throws(PostgresError) {
        let connection = try open("PQsendFlushRequest")
        guard cpq_send_flush_request(connection) == 1 else { throw failure("PQsendFlushRequest") }
    }

    /// Whether pipeline mode is off, on, or aborted by a failed statement.
    public var pipelineStatus: PipelineStatus {
        guard let connection else { return .off }
        switch Int(cpq_pipeline_status(connection)) {
        case Int(CPQ_PIPELINE_ON): return .on
        case Int(CPQ_PIPELINE_ABORTED_STATUS): return .aborted
        default: return .off
        }
    }

    // MARK: Sending

    /// Sends one statement with `parameters` as `$1`, `$2`, ... (PQsendQueryParams, the extended protocol: one
    /// statement per call, no multi-statement strings). With `binaryResults` every column comes back in binary
    /// format (read bytea with `bytea(row:column:)`; other types then need their binary decoding).
    public func sendQuery(
        _ sql: String, _ parameters: [PostgresParameter] = [], binaryResults: Bool = false
    ) throws(PostgresError) {
        let connection = try open("PQsendQueryParams")
        let sent = try ParameterArrays.with(parameters) { count, types, values, lengths, formats in
            cpq_send_query_params(connection, sql, count, types, values, lengths, formats, binaryResults ? 1 : 0)
        }
        guard sent == 1 else { throw failure("PQsendQueryParams") }
    }

    /// Sends the preparation of `sql` as the named statement `name` (PQsendPrepare); its result (status
    /// `commandOK`, or an error) comes back like any other. `parameterTypes` are type OIDs (`PostgresType`)
    /// for the first parameters; 0 or missing ones are inferred by the server.
    public func sendPrepare(name: String, _ sql: String, parameterTypes: [UInt32] = []) throws(PostgresError) {
        let connection = try open("PQsendPrepare")
        let sent = parameterTypes.withUnsafeBufferPointer { types in
            cpq_send_prepare(connection, name, sql, CInt(types.count), types.baseAddress)
        }
        guard sent == 1 else { throw failure("PQsendPrepare(\(name))") }
    }

    /// Sends an execution of the prepared statement `name` (PQsendQueryPrepared). `.bytes` parameters go in
    /// binary format whatever type the statement gave them, so use them only for bytea parameters.
    public func sendPrepared(
        name: String, _ parameters: [PostgresParameter] = [], binaryResults: Bool = false
    ) throws(PostgresError) {
        let connection = try open("PQsendQueryPrepared")
        let sent = try ParameterArrays.with(parameters) { count, _, values, lengths, formats in
            cpq_send_query_prepared(connection, name, count, values, lengths, formats, binaryResults ? 1 : 0)
        }
        guard sent == 1 else { throw failure("PQsendQueryPrepared(\(name))") }
    }

    /// Writes what libpq has buffered (PQflush). Returns true while output is still pending: watch the socket for
    /// writable and readable then, and on readable `consumeInput()` before flushing again.
    public func flush() throws(PostgresError) -> Bool {
        let connection = try open("PQflush")
        switch cpq_flush(connection) {
        case 0: return false
        case 1: return true
        default: throw failure("PQflush")
        }
    }

    // MARK: Receiving

    /// Reads what the socket has (PQconsumeInput); results and notifications are then available. Throws when the
    /// connection broke (the server went away: the message says so).
    public func consumeInput() throws(PostgresError) {
        let connection = try open("PQconsumeInput")
        guard cpq_consume_input(connection) == 1 else { throw failure("PQconsumeInput") }
    }

    /// Whether the next result still waits for input (PQisBusy): `nextResult()` would return `.needsInput`.
    public var isBusy: Bool {
        guard let connection else { return false }
        return cpq_is_busy(connection) != 0
    }

    /// The next result, if it has arrived. Never waits: PQgetResult is called only when PQisBusy says it would
    /// not block.
    public func nextResult() -> NextResult {
        guard let connection, cpq_is_busy(connection) == 0 else { return .needsInput }
        guard let result = cpq_get_result(connection) else { return .statementEnded }
        defer { cpq_clear(result) }
        return .result(PostgresResult(copying: result))
    }

    /// The LISTEN/NOTIFY messages received so far (PQnotifies until none), oldest first. Only what
    /// `consumeInput()` has read: call that first.
    public func notifications() -> [PostgresNotification] {
        guard let connection else { return [] }
        var received: [PostgresNotification] = []
        while let notify = cpq_notifies(connection) {
            let message = notify.pointee
            received.append(
                PostgresNotification(
                    channel: String(cString: message.relname),
                    payload: message.extra.map { String(cString: $0) } ?? "",
                    senderPID: message.be_pid))
            cpq_freemem(notify)
        }
        return received
    }

    // MARK: State

    /// Whether the connection is usable (PQstatus is CONNECTION_OK); false once it broke or was closed.
    public var isConnected: Bool {
        guard let connection else { return false }
        return cpq_status(connection) == CPQ_CONNECTION_OK
    }

    /// libpq's latest message about the connection (PQerrorMessage), trimmed.
    public var errorMessage: String {
        guard let connection else { return "the connection is closed" }
        return cpq_error_message(connection).map { String(cString: $0).trimmingTrailingWhitespace() } ?? ""
    }

    /// Ends the connection (PQfinish: sends Terminate if it can, closes the socket, frees everything). Remove the
    /// socket from epoll first. Calling it twice is harmless.
    public func close() {
        guard let connection else { return }
        cpq_finish(connection)
        self.connection = nil
        if case .connecting = progress { progress = .failed("the connection is closed") }
    }

    private func open(_ call: String) throws(PostgresError) -> OpaquePointer {
        guard let connection else { throw PostgresError(call: call, message: "the connection is closed") }
        return connection
    }

    private func failure(_ call: String) -> PostgresError {
        PostgresError(call: call, message: errorMessage)
    }
}

/// The parallel C arrays PQsendQueryParams and PQsendQueryPrepared take, built over one byte buffer.
enum ParameterArrays {
    /// Calls `body` with the count, type OIDs, value pointers, lengths and formats of `parameters`, valid only
    /// during the call. Text values are NUL-terminated (libpq ignores their length); bytes are binary.
    static func with(
        _ parameters: [PostgresParameter],
        _ body: (
            CInt, UnsafePointer<cpq_oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<CInt>?,
            UnsafePointer<CInt>?
        ) -> CInt
    ) throws(PostgresError) -> CInt {
        if parameters.isEmpty { return body(0, nil, nil, nil, nil) }
        var storage: [UInt8] = []
        var offsets: [Int] = []  // -1 for NULL
        var types: [cpq_oid] = []
        var lengths: [CInt] = []
        var formats: [CInt] = []
        for (index, parameter) in parameters.enumerated() {
            switch parameter {
            case .null:
                offsets.append(-1)
                types.append(0)
                lengths.append(0)
                formats.append(0)
            case .text(let text):
                guard !text.utf8.contains(0) else {
                    throw PostgresError(call: nil, message: "parameter $\(index + 1) contains a NUL byte")
                }
                offsets.append(storage.count)
                storage.append(contentsOf: text.utf8)
                storage.append(0)
                types.append(0)
                lengths.append(0)
                formats.append(0)
            case .bytes(let bytes):
                guard bytes.count <= Int(CInt.max) else {
                    throw PostgresError(call: nil, message: "parameter $\(index + 1) is over 2 GiB")
                }
                offsets.append(storage.count)
                storage.append(contentsOf: bytes)
                types.append(cpq_oid(PostgresType.bytea))
                lengths.append(CInt(bytes.count))
                formats.append(1)
            }
        }
        storage.append(0)  // never empty: an empty binary value still needs a non-NULL pointer
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            let values: [UnsafePointer<CChar>?] = offsets.map { $0 < 0 ? nil : base + $0 }
            return body(CInt(parameters.count), types, values, lengths, formats)
        }
    }
}
