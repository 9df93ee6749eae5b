import Postgres
import Testing

/// Every statement of `PostgresSchema` against the real server, each test in a schema of its own (through
/// search_path) so they run side by side.
@Suite(.enabled(if: TestDatabase.enabled, TestDatabase.skipReason))
struct SchemaTests {
    /// A migrated schema of one test, and helpers over its statements. `drop()` removes it.
    final class Fixture {
        let schema = TestDatabase.uniqueName("prefork")
        let main: TestConnection
        let now: Int64 = 1_800_000_000_000

        init() throws {
            main = try TestDatabase.connect(schema: schema)
            try main.query(PostgresSchema.migrate.sql)
        }

        /// Another connection on the same schema.
        func connection() throws -> TestConnection { try TestDatabase.connect(schema: schema) }

        func drop() { _ = try? main.query("DROP SCHEMA \(schema) CASCADE") }

        @discardableResult
        func run(
            _ statement: PostgresStatement, _ parameters: [PostgresParameter], on connection: TestConnection? = nil
        )
            throws -> PostgresResult
        {
            try (connection ?? main).query(statement.sql, parameters)
        }

        /// Registers `node` with a lease until `leaseUntil`; returns its epoch.
        func register(_ node: String, leaseUntil: Int64) throws -> Int {
            let result = try run(
                PostgresSchema.registerNode,
                [.text(node), .int(leaseUntil), .int(now), .text("host-\(node)"), .int(4242), .int(4)])
            return try #require(result.int(row: 0, column: 0))
        }

        /// Inserts job `id` runnable at `runAt` (default now); returns whether it was new.
        @discardableResult
        func insert(_ id: String, priority: Int = 0, maxRetries: Int = 0, runAt: Int64? = nil) throws -> Bool {
            let result = try run(
                PostgresSchema.insertJob,
                [
                    .text(id), .bytes(Array("payload \(id)".utf8)), .int(priority), .int(maxRetries), .null,
                    .int(runAt ?? now), .int(now), .null, .null,
                ])
            return result.rowCount == 1
        }

        /// Claims up to `limit` jobs for `node`; returns their ids and attempts, ordered by id.
        func claim(_ limit: Int, node: String, epoch: Int, at time: Int64? = nil, on connection: TestConnection? = nil)
            throws -> [(id: String, attempt: Int)]
        {
            let result = try run(
                PostgresSchema.claimJobs, [.int(time ?? now), .int(limit), .text(node), .int(epoch)], on: connection)
            return (0..<result.rowCount).map {
                (result.string(row: $0, column: 0)!, result.int(row: $0, column: 1)!)
            }.sorted { $0.id < $1.id }
        }

        /// Ends attempts of `node` with `state`; returns the ids that changed, sorted.
        func complete(
            _ jobs: [(id: String, attempt: Int)], node: String, epoch: Int, state: String = "done",
            result: [UInt8]? = Array("ok".utf8)
        ) throws -> [String] {
            let entry = #"{"outcome": "ok", "note": "a \"quoted\" word"}"#
            let changed = try run(
                PostgresSchema.completeJobs,
                [
                    .text(node), .int(epoch), .int(now + 10),
                    .text(PostgresArray.literal(jobs.map { Optional($0.id) })),
                    .text(PostgresArray.literal(jobs.map(\.attempt))),
                    .text(PostgresArray.literal(jobs.map { _ in Optional(state) })),
                    .text(PostgresArray.literal(jobs.map { _ in String?.none })),
                    .text(PostgresArray.literal(jobs.map { _ in state == "done" ? nil : Optional("boom") })),
                    .text(PostgresArray.byteaLiteral(jobs.map { _ in result })),
                    .text(PostgresArray.literal(jobs.map { _ in Optional("f") })),
                    .text(PostgresArray.literal(jobs.map { _ in Optional(entry) })),
                ])
            return (0..<changed.rowCount).compactMap { changed.string(row: $0, column: 0) }.sorted()
        }

        /// A job's fields by name.
        func job(_ id: String) throws -> [String: String?] {
            let result = try run(PostgresSchema.selectJob, [.text(id)])
            try #require(result.rowCount == 1, "job \(id) not found")
            var fields: [String: String?] = [:]
            for (column, name) in result.columns.enumerated() { fields[name] = result.string(row: 0, column: column) }
            return fields
        }
    }

    @Test func migrationCreatesTheTablesOnceAndIsSafeToRepeatConcurrently() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        // Two nodes starting at once: both migrate, one waits for the other's advisory lock.
        let other = try fixture.connection()
        try fixture.main.connection.sendQuery(PostgresSchema.migrate.sql)
        try other.connection.sendQuery(PostgresSchema.migrate.sql)
        for connection in [fixture.main, other] {
            let results = try connection.results()
            #expect(results.map(\.status) == [.commandOK], "\(results.compactMap(\.error))")
        }
        let versions = try fixture.main.query("SELECT version FROM prefork_schema")
        #expect(versions.textRows == [["\(PostgresSchema.version)"]])
        let tables = try fixture.main.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
            [.text(fixture.schema)])
        #expect(tables.textRows == [["prefork_jobs"], ["prefork_nodes"], ["prefork_schema"], ["prefork_settings"]])
    }

    @Test func migrationRefusesANewerSchemaNamingBothVersions() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        try fixture.main.query("UPDATE prefork_schema SET version = 99")
        #expect {
            try fixture.main.query(PostgresSchema.migrate.sql)
        } throws: { error in
            (error as? PostgresServerError)?.message
                == "the prefork schema in this database is version 99, newer than this build's 1: upgrade prefork"
        }
    }

    @Test func everyStatementPreparesAndTheTypeOIDsAreTheServers() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        for statement in PostgresSchema.prepared {
            try fixture.main.connection.sendPrepare(name: statement.name, statement.sql)
            let results = try fixture.main.results()
            #expect(results.first?.status == .commandOK, "\(statement.name): \(results.compactMap(\.error))")
        }
        let oids = try fixture.main.query(
            "SELECT typname, oid FROM pg_type WHERE typname IN ('bool','bytea','int8','int2','int4','text','jsonb')")
        let byName = Dictionary(uniqueKeysWithValues: oids.textRows.map { ($0[0]!, UInt32($0[1]!)!) })
        #expect(
            byName == [
                "bool": PostgresType.bool, "bytea": PostgresType.bytea, "int8": PostgresType.int8,
                "int2": PostgresType.int2, "int4": PostgresType.int4, "text": PostgresType.text,
                "jsonb": PostgresType.jsonb,
            ])
    }

    @Test func insertIsIdempotentByIdAndTheRowReadsBack() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        #expect(try fixture.insert("a"))
        #expect(try fixture.insert("a") == false, "ON CONFLICT DO NOTHING returns no row")
        let result = try fixture.run(PostgresSchema.selectJob, [.text("a")])
        #expect(result.bytea(row: 0, column: result.column(named: "payload")!) == Array("payload a".utf8))
        let job = try fixture.job("a")
        #expect(job["state"] == "queued")
        #expect(job["attempts"] == "0")
        #expect(job["history"] == "[]")
        #expect(job["owner"] == .some(nil))
    }

    @Test func claimTakesRunnableJobsByPriorityThenRunAtThenSeq() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let epoch = try fixture.register("n1", leaseUntil: fixture.now + 120_000)
        try fixture.insert("late", runAt: fixture.now + 60_000)
        try fixture.insert("first")
        try fixture.insert("second")
        try fixture.insert("urgent", priority: 5)
        let claimed = try fixture.run(
            PostgresSchema.claimJobs, [.int(fixture.now), .int(2), .text("n1"), .int(epoch)])
        #expect(Set(claimed.textRows.map { $0[0]! }) == ["urgent", "first"])
        #expect(
            claimed.columns == [
                "id", "attempts", "payload", "max_retries", "timeout_ms", "priority", "seq", "created_at",
                "attempts_before_retry", "callback_url",
            ])
        #expect(try fixture.job("first")["state"] == "running")
        #expect(try fixture.job("first")["owner"] == "n1")
        #expect(try fixture.job("first")["attempts"] == "1")
        let rest = try fixture.claim(10, node: "n1", epoch: epoch)
        #expect(rest.map(\.id) == ["second"], "the late job is not runnable yet")
        #expect(try fixture.claim(10, node: "n1", epoch: epoch, at: fixture.now + 60_000).map(\.id) == ["late"])
    }

    @Test func aNodeWithoutACurrentLeaseClaimsNothing() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let epoch = try fixture.register("n1", leaseUntil: fixture.now + 1000)
        try fixture.insert("a")
        #expect(try fixture.claim(10, node: "n1", epoch: epoch + 1).isEmpty, "wrong epoch")
        #expect(try fixture.claim(10, node: "n1", epoch: epoch, at: fixture.now + 2000).isEmpty, "lease lapsed")
        #expect(try fixture.claim(10, node: "n2", epoch: 1).isEmpty, "unregistered")
        #expect(try fixture.claim(10, node: "n1", epoch: epoch).map(\.id) == ["a"])
    }

    @Test func claimsANodeDoesNotKnowItHoldsGoBackUncounted() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let epoch = try fixture.register("n1", leaseUntil: fixture.now + 120_000)
        for id in ["kept", "lost"] { _ = try fixture.insert(id) }
        _ = try fixture.claim(10, node: "n1", epoch: epoch)
        let released = try fixture.run(
            PostgresSchema.releaseUnknownClaims,
            [.text("n1"), .int(epoch), .text(PostgresArray.literal(["kept"])), .int(fixture.now)])
        #expect(released.textRows == [["lost"]])
        #expect(try fixture.job("lost")["state"] == "queued")
        #expect(try fixture.job("lost")["attempts"] == "0")
        #expect(try fixture.job("kept")["state"] == "running")
    }

    @Test func claimsFromTwoConnectionsWithSkipLockedGetDisjointSets() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let epoch1 = try fixture.register("n1", leaseUntil: fixture.now + 30_000)
        let epoch2 = try fixture.register("n2", leaseUntil: fixture.now + 30_000)
        for n in 0..<10 { try fixture.insert("job-\(n)") }
        let first = try fixture.connection()
        let second = try fixture.connection()
        // The first claim holds its row locks in an open transaction; the second must skip those rows, not wait.
        try first.query("BEGIN")
        let claimed1 = try fixture.claim(6, node: "n1", epoch: epoch1, on: first)
        let claimed2 = try fixture.claim(6, node: "n2", epoch: epoch2, on: second)
        try first.query("COMMIT")
        #expect(claimed1.count == 6)
        #expect(claimed2.count == 4)
        #expect(Set(claimed1.map(\.id)).isDisjoint(with: claimed2.map(\.id)))
        let running = try fixture.main.query("SELECT owner, count(*) FROM prefork_jobs GROUP BY owner ORDER BY owner")
        #expect(running.textRows == [["n1", "6"], ["n2", "4"]])
    }

    @Test func fencedCompletionAppliesOnlyToTheOwnersCurrentAttempt() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let epoch = try fixture.register("n1", leaseUntil: fixture.now + 30_000)
        try fixture.insert("a")
        try fixture.insert("b")
        let claimed = try fixture.claim(2, node: "n1", epoch: epoch)
        #expect(claimed.map(\.id) == ["a", "b"])

        #expect(try fixture.complete(claimed, node: "n1", epoch: epoch + 1).isEmpty, "wrong epoch")
        #expect(try fixture.complete(claimed, node: "n2", epoch: epoch).isEmpty, "wrong owner")
        #expect(
            try fixture.complete(claimed.map { ($0.id, $0.attempt + 1) }, node: "n1", epoch: epoch).isEmpty,
            "wrong attempt")
        #expect(try fixture.job("a")["state"] == "running")

        #expect(try fixture.complete(claimed, node: "n1", epoch: epoch) == ["a", "b"])
        #expect(try fixture.complete(claimed, node: "n1", epoch: epoch).isEmpty, "a duplicate report changes nothing")
        let job = try fixture.job("a")
        #expect(job["state"] == "done")
        #expect(job["owner"] == .some(nil))
        #expect(job["result"] == #"\x6f6b"#)
        #expect(job["history"] == #"[{"note": "a \"quoted\" word", "outcome": "ok"}]"#)
    }

    @Test func aRetryGoesBackToTheQueueAtItsRunAt() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let epoch = try fixture.register("n1", leaseUntil: fixture.now + 30_000)
        try fixture.insert("a", maxRetries: 1)
        let claimed = try fixture.claim(1, node: "n1", epoch: epoch)
        let retryAt = fixture.now + 5000
        let changed = try fixture.run(
            PostgresSchema.completeJobs,
            [
                .text("n1"), .int(epoch), .int(fixture.now), .text("{a}"), .text("{\(claimed[0].attempt)}"),
                .text("{queued}"), .text("{\(retryAt)}"), .text(#"{"simulated failure"}"#), .text("{NULL}"),
                .text("{f}"), .text(#"{"{\"outcome\":\"error\"}"}"#),
            ])
        #expect(changed.rowCount == 1)
        let job = try fixture.job("a")
        #expect(job["state"] == "queued")
        #expect(job["run_at"] == "\(retryAt)")
        #expect(job["last_error"] == "simulated failure")
        #expect(try fixture.claim(1, node: "n1", epoch: epoch).isEmpty, "not before its run_at")
        #expect(try fixture.claim(1, node: "n1", epoch: epoch, at: retryAt).map(\.attempt) == [2])
    }

    @Test func rescueRequeuesALapsedNodesRunningJobsKeepingTheAttempt() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let lapsing = try fixture.register("lapsing", leaseUntil: fixture.now + 1000)
        let live = try fixture.register("live", leaseUntil: fixture.now + 60_000)
        try fixture.insert("lost")
        try fixture.insert("kept")
        let lostClaim = try fixture.claim(1, node: "lapsing", epoch: lapsing)
        let keptClaim = try fixture.claim(1, node: "live", epoch: live)
        #expect(lostClaim.map(\.id) == ["lost"])
        #expect(keptClaim.map(\.id) == ["kept"])

        #expect(try fixture.run(PostgresSchema.rescueJobs, [.int(fixture.now + 500)]).rowCount == 0, "lease holds")
        let later = fixture.now + 2000
        let rescued = try fixture.run(PostgresSchema.rescueJobs, [.int(later)])
        #expect(rescued.textRows == [["lost", "lapsing", "1", "queued"]])
        let job = try fixture.job("lost")
        #expect(job["state"] == "queued")
        #expect(job["attempts"] == "1")
        #expect(job["owner"] == .some(nil))
        #expect(job["run_at"] == "\(later)")
        #expect(job["last_error"] == "node lapsing lost during attempt 1")
        #expect(job["history"]??.contains(#""outcome": "interrupted""#) == true)
        #expect(try fixture.job("kept")["state"] == "running")

        // The lapsed node is fenced: it cannot renew, and its late completion changes nothing.
        let renewed = try fixture.run(
            PostgresSchema.renewLease, [.text("lapsing"), .int(lapsing), .int(later), .int(later + 30_000)])
        #expect(renewed.rowCount == 0)
        #expect(try fixture.complete(lostClaim, node: "lapsing", epoch: lapsing).isEmpty)
        let stillLive = try fixture.run(
            PostgresSchema.renewLease, [.text("live"), .int(live), .int(later), .int(later + 30_000)])
        #expect(stillLive.int(row: 0, column: 0) == Int(later + 30_000))
    }

    @Test func aReRegisteredNodesOldEpochJobsAreRescuedAndASecondLossBeyondTheRetriesFails() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let first = try fixture.register("n1", leaseUntil: fixture.now + 60_000)
        try fixture.insert("a", maxRetries: 0)
        _ = try fixture.claim(1, node: "n1", epoch: first)
        let second = try fixture.register("n1", leaseUntil: fixture.now + 60_000)
        #expect(second == first + 1, "a restart is a new epoch")
        #expect(
            try fixture.run(PostgresSchema.rescueJobs, [.int(fixture.now)]).textRows == [["a", "n1", "1", "queued"]],
            "the grace attempt")
        _ = try fixture.claim(1, node: "n1", epoch: second)
        _ = try fixture.register("n1", leaseUntil: fixture.now + 60_000)
        #expect(
            try fixture.run(PostgresSchema.rescueJobs, [.int(fixture.now)]).textRows == [["a", "n1", "2", "failed"]])
        #expect(try fixture.job("a")["last_error"] == "node n1 lost during attempt 2")
    }

    @Test func cancelReportsTheOwnerOfARunningJobAndRefusesAFinishedOne() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let epoch = try fixture.register("n1", leaseUntil: fixture.now + 60_000)
        try fixture.insert("queued")
        try fixture.insert("running", priority: 1)
        _ = try fixture.claim(1, node: "n1", epoch: epoch)
        let running = try fixture.run(PostgresSchema.cancelJob, [.text("running"), .int(fixture.now)])
        #expect(running.textRows == [["n1", "\(epoch)", "1"]])
        let queued = try fixture.run(PostgresSchema.cancelJob, [.text("queued"), .int(fixture.now)])
        #expect(queued.textRows == [[nil, nil, "0"]])
        #expect(try fixture.run(PostgresSchema.cancelJob, [.text("queued"), .int(fixture.now)]).rowCount == 0)
        #expect(try fixture.job("running")["state"] == "canceled")
        #expect(try fixture.complete([("running", 1)], node: "n1", epoch: epoch).isEmpty, "fenced by the cancel")
    }

    @Test func forgetNodesRemovesOnlyLapsedNodesWithoutRunningJobs() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        _ = try fixture.register("idle", leaseUntil: fixture.now)
        let busy = try fixture.register("busy", leaseUntil: fixture.now + 10)
        _ = try fixture.register("live", leaseUntil: fixture.now + 60_000)
        try fixture.insert("a")
        _ = try fixture.claim(1, node: "busy", epoch: busy)
        let forgotten = try fixture.run(PostgresSchema.forgetNodes, [.int(fixture.now + 1000)])
        #expect(forgotten.textRows == [["idle"]])
    }

    @Test func queuedNotificationsAreDeliveredOncePerTransaction() throws {
        let fixture = try Fixture()
        defer { fixture.drop() }
        let listener = try fixture.connection()
        try listener.query("LISTEN \(PostgresSchema.queuedChannel)")
        let sender = try TestDatabase.connect(schema: fixture.schema, pipeline: true)
        for n in 0..<3 {
            try sender.connection.sendQuery(
                PostgresSchema.insertJob.sql,
                [
                    .text("n\(n)"), .bytes([1]), .int(0), .int(0), .null, .int(fixture.now), .int(fixture.now), .null,
                    .null,
                ])
            try sender.connection.sendQuery(
                PostgresSchema.notify.sql, [.text(PostgresSchema.queuedChannel), .text("")])
        }
        try sender.connection.pipelineSync()
        let results = try sender.pipelineResults(syncs: 1)
        #expect(results.filter(\.failed).isEmpty, "\(results.compactMap(\.error))")
        let received = try listener.notifications(atLeast: 1)
        #expect(received.map(\.channel) == [PostgresSchema.queuedChannel])
        // A later transaction's notification arrives on its own: the first three were folded into one.
        try fixture.main.query(PostgresSchema.notify.sql, [.text(PostgresSchema.queuedChannel), .text("")])
        #expect(try listener.notifications(atLeast: 1).count == 1)
        #expect(PostgresSchema.cancelPayload(node: "n1", job: "job 1") == "n1\njob 1")
    }
}
