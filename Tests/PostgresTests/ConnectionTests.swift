import System
import Testing

@testable import Postgres

/// The client against a real server: connecting without blocking, pipelined prepared statements, binary
/// parameters, server errors, notifications, and connections that cannot be made.
@Suite(.enabled(if: TestDatabase.enabled, TestDatabase.skipReason))
struct ConnectionTests {
    @Test func connectsWithoutBlockingAndRunsAQuery() throws {
        let database = try TestDatabase.connect()
        #expect(database.connection.isConnected)
        #expect(database.connection.progress == .ready)
        let result = try database.query("SELECT 1 + $1::int AS answer, NULL::text AS nothing", [.int(41)])
        #expect(result.status == .tuplesOK)
        #expect(result.columns == ["answer", "nothing"])
        #expect(result.rowCount == 1)
        #expect(result.int(row: 0, column: 0) == 42)
        #expect(result.string(row: 0, column: 1) == nil)
        #expect(result.affectedRows == 1)
    }

    @Test func pipelinedPreparedInsertsOfFiftyRowsWithOneSyncThenReadBack() throws {
        let table = TestDatabase.uniqueName("pipeline")
        let setup = try TestDatabase.connect()
        try setup.query("CREATE TABLE \(table) (id text PRIMARY KEY, n int NOT NULL, note text)")
        defer { _ = try? setup.query("DROP TABLE \(table)") }

        let database = try TestDatabase.connect(pipeline: true)
        #expect(database.connection.pipelineStatus == .on)
        try database.connection.sendPrepare(
            name: "insert", "INSERT INTO \(table) (id, n, note) VALUES ($1, $2, $3)",
            parameterTypes: [PostgresType.text, PostgresType.int4, PostgresType.text])
        for n in 0..<50 {
            try database.connection.sendPrepared(
                name: "insert", [.text("row-\(n)"), .int(n), n % 10 == 0 ? .null : .text("note \"\(n)\"")])
        }
        try database.connection.pipelineSync()
        let results = try database.pipelineResults(syncs: 1)
        #expect(results.count == 52, "prepare, 50 inserts, sync")
        #expect(results.first?.status == .commandOK)
        #expect(results.dropFirst().prefix(50).allSatisfy { $0.status == .commandOK && $0.affectedRows == 1 })
        #expect(results.last?.status == .pipelineSync)

        try database.connection.sendQuery("SELECT id, n, note FROM \(table) ORDER BY n")
        try database.connection.pipelineSync()
        let readBack = try database.pipelineResults(syncs: 1)
        let rows = try #require(readBack.first)
        #expect(rows.rowCount == 50)
        #expect(rows.string(row: 7, column: 0) == "row-7")
        #expect(rows.int(row: 7, column: 1) == 7)
        #expect(rows.string(row: 7, column: 2) == "note \"7\"")
        #expect(rows.string(row: 10, column: 2) == nil)
        try database.connection.exitPipelineMode()
        #expect(database.connection.pipelineStatus == .off)
    }

    @Test func aFailedStatementAbortsTheRestOfItsPipelineSegmentAndRollsItBack() throws {
        let table = TestDatabase.uniqueName("segment")
        let setup = try TestDatabase.connect()
        try setup.query("CREATE TABLE \(table) (id int PRIMARY KEY)")
        defer { _ = try? setup.query("DROP TABLE \(table)") }

        let database = try TestDatabase.connect(pipeline: true)
        try database.connection.sendQuery("INSERT INTO \(table) VALUES (1)")
        try database.connection.sendQuery("INSERT INTO \(table) VALUES (1)")
        try database.connection.sendQuery("INSERT INTO \(table) VALUES (2)")
        try database.connection.pipelineSync()
        try database.connection.sendQuery("INSERT INTO \(table) VALUES (3)")
        try database.connection.pipelineSync()
        let results = try database.pipelineResults(syncs: 2)
        #expect(
            results.map(\.status) == [
                .commandOK, .fatalError, .pipelineAborted, .pipelineSync, .commandOK, .pipelineSync,
            ])
        #expect(results[1].error?.sqlState == PostgresServerError.uniqueViolation)
        let left = try setup.query("SELECT id FROM \(table) ORDER BY id")
        #expect(left.textRows == [["3"]], "the first segment is one implicit transaction: rolled back whole")
    }

    /// What the loop sees, in order: each statement's result then an end marker; a sync with no end marker
    /// before the next segment's results; an end marker once nothing is pending.
    @Test func aPipelineYieldsResultsEndMarkersAndSyncsInOrder() throws {
        let database = try TestDatabase.connect(pipeline: true)
        try database.connection.sendQuery("SELECT 1")
        try database.connection.sendQuery("SELECT 2")
        try database.connection.pipelineSync()
        try database.connection.sendQuery("SELECT 3")
        try database.connection.pipelineSync()
        try database.flushAll()
        var events: [String] = []
        var syncs = 0
        let deadline = Deadline()
        while true {
            switch database.connection.nextResult() {
            case .result(let result):
                if result.status == .pipelineSync {
                    events.append("sync")
                    syncs += 1
                } else {
                    events.append(result.string(row: 0, column: 0) ?? "?")
                }
                continue
            case .statementEnded:
                events.append("end")
                if syncs == 2 { break }
                continue
            case .needsInput:
                _ = try Poll.wait(
                    database.connection.socket!, for: .readable, timeoutMilliseconds: try deadline.remaining("results"))
                try database.connection.consumeInput()
                continue
            }
            break
        }
        #expect(events == ["1", "end", "2", "end", "sync", "3", "end", "sync", "end"])
        #expect(database.connection.pipelineStatus == .on)
    }

    @Test func byteaRoundTripsThroughBinaryParametersAndBothResultFormats() throws {
        let table = TestDatabase.uniqueName("bytes")
        let database = try TestDatabase.connect()
        try database.query("CREATE TABLE \(table) (id int PRIMARY KEY, data bytea)")
        defer { _ = try? database.query("DROP TABLE \(table)") }
        let payload: [UInt8] = Array(0...255) + [0, 0, 92, 120, 39, 34]
        try database.query(
            "INSERT INTO \(table) VALUES (1, $1), (2, $2), (3, $3)", [.bytes(payload), .bytes([]), .null])

        let text = try database.query("SELECT data FROM \(table) ORDER BY id")
        #expect(text.binaryColumns == [false])
        #expect(text.bytea(row: 0, column: 0) == payload)
        #expect(text.bytea(row: 1, column: 0) == [])
        #expect(text.bytea(row: 2, column: 0) == nil)

        let binary = try database.query("SELECT data FROM \(table) ORDER BY id", binaryResults: true)
        #expect(binary.binaryColumns == [true])
        #expect(binary.bytes(row: 0, column: 0) == payload)
        #expect(binary.bytea(row: 1, column: 0) == [])
        #expect(binary.bytea(row: 2, column: 0) == nil)

        let length = try database.query("SELECT octet_length($1)", [.bytes(payload)])
        #expect(length.int(row: 0, column: 0) == payload.count)
    }

    @Test func aUniqueViolationComesBackAsAResultWithItsSQLState() throws {
        let table = TestDatabase.uniqueName("unique")
        let database = try TestDatabase.connect()
        try database.query("CREATE TABLE \(table) (id text PRIMARY KEY)")
        defer { _ = try? database.query("DROP TABLE \(table)") }
        try database.query("INSERT INTO \(table) VALUES ($1)", [.text("a")])
        try database.connection.sendQuery("INSERT INTO \(table) VALUES ($1)", [.text("a")])
        let results = try database.results()
        let error = try #require(results.first?.error)
        #expect(results.first?.status == .fatalError)
        #expect(results.first?.failed == true)
        #expect(error.sqlState == "23505")
        #expect(error.severity == "ERROR")
        #expect(error.constraint == "\(table)_pkey")
        #expect(error.table == table)
        #expect(error.detail == "Key (id)=(a) already exists.")
        #expect(error.message.hasPrefix("duplicate key value violates unique constraint"))
        #expect(try database.query("SELECT 1").int(row: 0, column: 0) == 1, "the connection goes on")
    }

    @Test func notificationsArriveWithChannelPayloadAndSender() throws {
        let channel = TestDatabase.uniqueName("channel")
        let listener = try TestDatabase.connect()
        try listener.query("LISTEN \(channel)")
        let sender = try TestDatabase.connect()
        let senderPID = try sender.query("SELECT pg_backend_pid()").int(row: 0, column: 0)
        try sender.query("SELECT pg_notify($1, $2)", [.text(channel), .text("job-1")])
        try sender.query("NOTIFY \(channel)")
        let received = try listener.notifications(atLeast: 2)
        #expect(received.count == 2)
        #expect(
            received[0] == PostgresNotification(channel: channel, payload: "job-1", senderPID: Int32(senderPID ?? 0)))
        #expect(received[1].payload == "")
        #expect(listener.connection.notifications().isEmpty, "drained")
    }

    @Test func aClosedConnectionRefusesToSend() throws {
        let database = try TestDatabase.connect()
        database.connection.close()
        database.connection.close()
        #expect(!database.connection.isConnected)
        #expect(throws: PostgresError(call: "PQsendQueryParams", message: "the connection is closed")) {
            try database.connection.sendQuery("SELECT 1")
        }
    }
}

/// Connections that cannot be made: they need libpq, not a server.
@Suite struct ConnectFailureTests {
    @Test func aMissingSocketFailsNamingIt() throws {
        let message = connectionFailure("host=/nonexistent-prefork-dir port=5432 dbname=x user=postgres")
        #expect(message.contains("/nonexistent-prefork-dir/.s.PGSQL.5432"), "\(message)")
        #expect(message.contains("No such file or directory"), "\(message)")
    }

    @Test func aClosedPortFailsWithConnectionRefused() throws {
        // A port we bound and closed: nothing listens there now.
        let (listener, address) = try Socket.listen(SocketAddress(host: "127.0.0.1", port: 0)!)
        listener.close()
        let message = connectionFailure(
            "hostaddr=127.0.0.1 port=\(address.port) dbname=x user=postgres connect_timeout=5")
        #expect(message.contains("Connection refused"), "\(message)")
        #expect(message.contains("127.0.0.1"), "\(message)")
    }

    @Test func aMalformedConninfoIsRefusedAtStart() {
        #expect {
            try PostgresConnection.start("host=/tmp nonsense_option=1")
        } throws: { error in
            String(describing: error).contains("invalid connection option \"nonsense_option\"")
        }
    }

    /// The message of a connection attempt that must fail, whether libpq gives up in PQconnectStart or later.
    private func connectionFailure(_ conninfo: String) -> String {
        do {
            _ = try TestConnection.connect(conninfo)
            return "connected, unexpectedly"
        } catch {
            return String(describing: error)
        }
    }
}

/// Pieces that need no server.
@Suite struct ClientUnitTests {
    @Test func arrayLiteralsQuoteEscapeAndNull() {
        #expect(PostgresArray.literal(["a", nil, "q\"b\\c", ""]) == #"{"a",NULL,"q\"b\\c",""}"#)
        #expect(PostgresArray.literal([1, -2, 3]) == "{1,-2,3}")
        #expect(PostgresArray.literal([String?]()) == "{}")
        #expect(PostgresArray.byteaLiteral([[0, 255], nil, []]) == #"{"\\x00ff",NULL,"\\x"}"#)
    }

    @Test func handBuiltResultsReadLikeReceivedOnes() {
        let result = PostgresResult(
            status: .tuplesOK, columns: ["id", "n", "data"],
            rows: [[Array("a".utf8), Array("7".utf8), Array(#"\x00ff"#.utf8)], [Array("b".utf8), nil, nil]],
            affectedRows: 2)
        #expect(result.rowCount == 2)
        #expect(result.string(row: 0, column: 0) == "a")
        #expect(result.int(row: 0, column: 1) == 7)
        #expect(result.bytea(row: 0, column: 2) == [0, 255])
        #expect(result.int(row: 1, column: 1) == nil)
        #expect(result.column(named: "data") == 2)
        #expect(result.textRows == [["a", "7", #"\x00ff"#], ["b", nil, nil]])
        #expect(!result.failed)
        #expect(PostgresResult(status: .pipelineAborted).failed)
    }

    @Test func connectionStringsQuoteEveryValue() {
        #expect(
            PostgresConnectionString.make(["host": "/tmp/a b", "password": "it's\\"])
                == #"host='/tmp/a b' password='it\'s\\'"#)
    }

    @Test func literalAddressesResolveToThemselves() throws {
        #expect(try PostgresHostResolver.addresses(of: "127.0.0.1") == ["127.0.0.1"])
        #expect(try PostgresHostResolver.addresses(of: "localhost").contains { $0 == "127.0.0.1" || $0 == "::1" })
    }

    @Test func aTextParameterWithANulByteIsRefusedBeforeSending() throws {
        #expect(throws: PostgresError(call: nil, message: "parameter $2 contains a NUL byte")) {
            try ParameterArrays.with([.text("ok"), .text("a\u{0}b")]) { _, _, _, _, _ in 1 }
        }
    }
}
