import CPostgres

/// One result of a statement, copied out of libpq's PGresult (which is freed at once): its status, its rows,
/// the count of rows a command touched, and the server's error when it failed.
///
/// Cells are kept in one byte buffer with an offset table, not one array per cell: a claim of 50 jobs of 8
/// columns is 2 allocations, not 400.
public struct PostgresResult: Sendable {
    /// ExecStatusType.
    public enum Status: Equatable, Sendable {
        /// The query string was empty.
        case emptyQuery
        /// A command that returns no rows succeeded.
        case commandOK
        /// A query that returns rows succeeded (possibly with none).
        case tuplesOK
        /// COPY TO STDOUT began (not supported by this client).
        case copyOut
        /// COPY FROM STDIN began (not supported by this client).
        case copyIn
        /// The server's response was not understood.
        case badResponse
        /// A notice or warning.
        case nonfatalError
        /// The statement failed: `error` says why.
        case fatalError
        /// COPY BOTH began (replication; not supported).
        case copyBoth
        /// One row of a single-row-mode result.
        case singleTuple
        /// A pipeline sync point was reached: every statement sent before the sync has its results.
        case pipelineSync
        /// Not run, because an earlier statement in the same pipeline segment failed.
        case pipelineAborted
        /// A status this client does not know (a newer libpq).
        case other(Int32)

        init(_ raw: CInt) {
            switch Int(raw) {
            case Int(CPQ_EMPTY_QUERY): self = .emptyQuery
            case Int(CPQ_COMMAND_OK): self = .commandOK
            case Int(CPQ_TUPLES_OK): self = .tuplesOK
            case Int(CPQ_COPY_OUT): self = .copyOut
            case Int(CPQ_COPY_IN): self = .copyIn
            case Int(CPQ_BAD_RESPONSE): self = .badResponse
            case Int(CPQ_NONFATAL_ERROR): self = .nonfatalError
            case Int(CPQ_FATAL_ERROR): self = .fatalError
            case Int(CPQ_COPY_BOTH): self = .copyBoth
            case Int(CPQ_SINGLE_TUPLE): self = .singleTuple
            case Int(CPQ_PIPELINE_SYNC): self = .pipelineSync
            case Int(CPQ_PIPELINE_ABORTED): self = .pipelineAborted
            default: self = .other(Int32(raw))
            }
        }
    }

    /// The result's status.
    public let status: Status
    /// The column names, in order (empty for a command without rows).
    public let columns: [String]
    /// Per column, whether the server sent it in binary format (asked for with `binaryResults`).
    public let binaryColumns: [Bool]
    /// The number of rows.
    public let rowCount: Int
    /// What PQcmdTuples says: rows inserted, updated, deleted, selected... by the command; nil when it does not
    /// count rows (CREATE TABLE, LISTEN).
    public let affectedRows: Int?
    /// Why the statement failed (status `fatalError`, `badResponse`, or `nonfatalError` for a notice); nil
    /// otherwise, including for `pipelineAborted`, which failed because of an earlier statement.
    public let error: PostgresServerError?

    /// Every non-NULL cell's bytes, row by row.
    private let storage: [UInt8]
    /// Per cell (row * columns + column): start in `storage` and length, or -1 as the length of a NULL.
    private let cells: [(start: Int32, length: Int32)]

    /// A result built by hand, for tests of code that consumes results without a server: `rows` holds each
    /// row's cells (nil for NULL) in the format `binaryColumns` says (text by default).
    public init(
        status: Status, columns: [String] = [], rows: [[[UInt8]?]] = [], binaryColumns: [Bool]? = nil,
        affectedRows: Int? = nil, error: PostgresServerError? = nil
    ) {
        precondition(rows.allSatisfy { $0.count == columns.count }, "every row needs one cell per column")
        self.status = status
        self.columns = columns
        self.binaryColumns = binaryColumns ?? columns.map { _ in false }
        self.rowCount = rows.count
        self.affectedRows = affectedRows
        self.error = error
        var storage: [UInt8] = []
        var cells: [(start: Int32, length: Int32)] = []
        for row in rows {
            for cell in row {
                guard let cell else {
                    cells.append((0, -1))
                    continue
                }
                cells.append((Int32(storage.count), Int32(cell.count)))
                storage.append(contentsOf: cell)
            }
        }
        self.storage = storage
        self.cells = cells
    }

    /// Whether the statement failed: its own error, a bad response, or an abort caused by an earlier statement.
    public var failed: Bool { status == .fatalError || status == .badResponse || status == .pipelineAborted }

    /// The bytes of a cell as the server sent them (text or binary format), nil for NULL.
    public func bytes(row: Int, column: Int) -> [UInt8]? {
        let cell = cell(row, column)
        guard cell.length >= 0 else { return nil }
        return Array(storage[Int(cell.start)..<Int(cell.start + cell.length)])
    }

    /// A text-format cell as a String, nil for NULL.
    public func string(row: Int, column: Int) -> String? {
        let cell = cell(row, column)
        guard cell.length >= 0 else { return nil }
        return String(decoding: storage[Int(cell.start)..<Int(cell.start + cell.length)], as: UTF8.self)
    }

    /// A text-format integer cell (smallint, int, bigint), nil for NULL or when it does not parse.
    public func int(row: Int, column: Int) -> Int? {
        string(row: row, column: column).flatMap { Int($0) }
    }

    /// A text-format boolean cell ('t' / 'f'), nil for NULL.
    public func bool(row: Int, column: Int) -> Bool? {
        string(row: row, column: column).map { $0 == "t" }
    }

    /// A bytea cell's bytes in either format: binary cells as sent, text cells decoded from the `\x` hex form
    /// (PostgreSQL's default bytea_output). Nil for NULL or an undecodable text form (the old escape format).
    public func bytea(row: Int, column: Int) -> [UInt8]? {
        guard let raw = bytes(row: row, column: column) else { return nil }
        if binaryColumns[column] { return raw }
        return Self.decodeHex(raw)
    }

    /// The column's index by name, nil when there is none.
    public func column(named name: String) -> Int? { columns.firstIndex(of: name) }

    /// Every row as text (binary cells decoded as UTF-8): for tests and diagnostics, not for the hot path.
    public var textRows: [[String?]] {
        (0..<rowCount).map { row in (0..<columns.count).map { string(row: row, column: $0) } }
    }

    private func cell(_ row: Int, _ column: Int) -> (start: Int32, length: Int32) {
        precondition(
            row >= 0 && row < rowCount && column >= 0 && column < columns.count,
            "cell (\(row), \(column)) outside a result of \(rowCount) x \(columns.count)")
        return cells[row * columns.count + column]
    }

    /// `\x0a0b` to bytes; nil when the text is not in hex form.
    static func decodeHex(_ text: [UInt8]) -> [UInt8]? {
        guard text.count >= 2, text.count % 2 == 0, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x")
        else { return nil }
        func nibble(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(text.count / 2 - 1)
        var index = 2
        while index < text.count {
            guard let high = nibble(text[index]), let low = nibble(text[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }
}

extension PostgresResult {
    /// Copies everything out of `result`; the caller frees it right after.
    init(copying result: OpaquePointer) {
        status = Status(cpq_result_status(result))
        let rowCount = Int(cpq_ntuples(result))
        let columnCount = Int(cpq_nfields(result))
        self.rowCount = rowCount
        columns = (0..<columnCount).map { column in
            cpq_fname(result, CInt(column)).map { String(cString: $0) } ?? ""
        }
        binaryColumns = (0..<columnCount).map { cpq_fformat(result, CInt($0)) == 1 }
        var storage: [UInt8] = []
        var cells: [(start: Int32, length: Int32)] = []
        cells.reserveCapacity(rowCount * columnCount)
        for row in 0..<CInt(rowCount) {
            for column in 0..<CInt(columnCount) {
                if cpq_getisnull(result, row, column) != 0 {
                    cells.append((0, -1))
                    continue
                }
                let length = Int(cpq_getlength(result, row, column))
                cells.append((Int32(storage.count), Int32(length)))
                if length > 0, let value = cpq_getvalue(result, row, column) {
                    storage.append(contentsOf: UnsafeRawBufferPointer(start: value, count: length))
                }
            }
        }
        self.storage = storage
        self.cells = cells
        let counted = cpq_cmd_tuples(result).map { String(cString: $0) } ?? ""
        affectedRows = Int(counted)
        switch status {
        case .fatalError, .badResponse, .nonfatalError: error = PostgresServerError(copying: result)
        default: error = nil
        }
    }
}

/// What the server said about a failed statement (the fields of its ErrorResponse).
public struct PostgresServerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The five-character SQLSTATE code: "23505" for a unique violation, "40001" for a serialization failure.
    public let sqlState: String
    /// ERROR, FATAL, PANIC, WARNING, NOTICE... (never translated).
    public let severity: String
    /// The primary message.
    public let message: String
    /// The detail line, if any ("Key (id)=(a) already exists.").
    public let detail: String?
    /// The hint, if any.
    public let hint: String?
    /// The table the error is about, if any.
    public let table: String?
    /// The constraint violated, if any ("prefork_jobs_pkey").
    public let constraint: String?

    /// Well-known SQLSTATEs the backend reacts to.
    public static let uniqueViolation = "23505"
    /// serialization_failure: retry the transaction.
    public static let serializationFailure = "40001"
    /// deadlock_detected: retry the transaction.
    public static let deadlockDetected = "40P01"
    /// admin_shutdown: the server is going down.
    public static let adminShutdown = "57P01"

    /// An error with these fields.
    public init(
        sqlState: String, severity: String, message: String, detail: String? = nil, hint: String? = nil,
        table: String? = nil, constraint: String? = nil
    ) {
        self.sqlState = sqlState
        self.severity = severity
        self.message = message
        self.detail = detail
        self.hint = hint
        self.table = table
        self.constraint = constraint
    }

    /// "ERROR 23505: duplicate key value violates unique constraint "t_pkey" (Key (id)=(a) already exists.)".
    public var description: String {
        var text = "\(severity) \(sqlState): \(message)"
        if let detail { text += " (\(detail))" }
        return text
    }

    init(copying result: OpaquePointer) {
        func field(_ code: Int32) -> String? {
            cpq_result_error_field(result, CInt(code)).map { String(cString: $0) }
        }
        let whole = cpq_result_error_message(result).map { String(cString: $0) } ?? ""
        self.init(
            sqlState: field(Int32(CPQ_DIAG_SQLSTATE)) ?? "",
            severity: field(Int32(CPQ_DIAG_SEVERITY_NONLOCALIZED)) ?? "ERROR",
            message: field(Int32(CPQ_DIAG_MESSAGE_PRIMARY)) ?? whole.trimmingTrailingWhitespace(),
            detail: field(Int32(CPQ_DIAG_MESSAGE_DETAIL)), hint: field(Int32(CPQ_DIAG_MESSAGE_HINT)),
            table: field(Int32(CPQ_DIAG_TABLE_NAME)), constraint: field(Int32(CPQ_DIAG_CONSTRAINT_NAME)))
    }
}

/// A LISTEN/NOTIFY message.
public struct PostgresNotification: Equatable, Sendable {
    /// The channel it was sent on.
    public let channel: String
    /// Its payload ("" when the sender gave none).
    public let payload: String
    /// The server process (backend pid) of the session that sent it: equal to the receiving connection's own
    /// for its own notifications.
    public let senderPID: Int32

    /// A notification with these fields.
    public init(channel: String, payload: String, senderPID: Int32) {
        self.channel = channel
        self.payload = payload
        self.senderPID = senderPID
    }
}
