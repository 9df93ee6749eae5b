import Postgres

/// Job records to and from `prefork_jobs` rows: the same `Job` the journal backend keeps, so every field of the
/// API's record means the same with either backend.
enum PostgresRecords {
    /// The job in row `row` of a result selecting `PostgresSchema.recordColumns`.
    static func job(_ result: PostgresResult, row: Int, now: Int64) -> Job? {
        func text(_ column: Int) -> String? { result.string(row: row, column: column) }
        func int(_ column: Int) -> Int? { result.int(row: row, column: column) }
        guard let id = text(0), let seq = int(1), let payload = result.bytea(row: row, column: 2),
            let state = text(3).flatMap(JobState.init(rawValue:)), let priority = int(4), let attempts = int(5),
            let createdAt = int(10), let updatedAt = int(11)
        else { return nil }
        let runAt = int(9).map(Int64.init) ?? 0
        let spec = JobSpec(
            id: id, payload: ByteString(payload), maxRetries: int(7) ?? 0, priority: priority,
            timeoutMilliseconds: int(8), callbackURL: text(16))
        let snapshot = Job.Snapshot(
            spec: spec, sequence: UInt64(seq), createdAt: Int64(createdAt), state: state, attempts: attempts,
            attemptsBeforeRetry: int(6) ?? 0, lastError: text(12),
            result: result.bytea(row: row, column: 13).map(ByteString.init),
            resultTruncated: result.bool(row: row, column: 14) ?? false, updatedAt: Int64(updatedAt),
            nextAttemptAt: state == .queued && runAt > now ? runAt : nil, history: history(text(15) ?? "[]"),
            callback: text(17).flatMap(callback))
        return Job(restoring: snapshot)
    }

    /// Every job of a result selecting `recordColumns`.
    static func jobs(_ result: PostgresResult, now: Int64) -> [Job] {
        (0..<result.rowCount).compactMap { job(result, row: $0, now: now) }
    }

    /// `text` as PostgreSQL can store it: text and jsonb hold no NUL (not even jsonb's `\u0000`), so each one
    /// becomes U+FFFD, the replacement character. An error message or a stderr tail may carry one.
    static func storable(_ text: String) -> String {
        guard text.utf8.contains(0) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : $0 }))
    }

    // MARK: History

    /// One attempt as a `history` element of the row.
    static func historyEntry(_ entry: AttemptRecord) -> String {
        var object: [String: JSONValue] = [
            "attempt": .integer(entry.attempt), "started_at": .integer(Int(entry.startedAt)),
        ]
        if let finishedAt = entry.finishedAt { object["finished_at"] = .integer(Int(finishedAt)) }
        if entry.workerPID != 0 { object["worker_pid"] = .integer(Int(entry.workerPID)) }
        if let outcome = entry.outcome { object["outcome"] = .string(outcome.rawValue) }
        if let error = entry.error { object["error"] = .string(storable(error)) }
        if !entry.stderr.isEmpty { object["stderr"] = .string(storable(String(decoding: entry.stderr, as: UTF8.self))) }
        return JSONValue.object(object).serialized()
    }

    /// The row's `history`, newest last, at most `AttemptRecord.maximumKept`.
    static func history(_ text: String) -> [AttemptRecord] {
        guard case .array(let elements)? = try? JSONParser.parse(Array(text.utf8)) else { return [] }
        let records: [AttemptRecord] = elements.compactMap { element in
            guard let object = element.objectValue, let attempt = object["attempt"]?.integerValue else { return nil }
            return AttemptRecord(
                attempt: attempt, startedAt: Int64(object["started_at"]?.integerValue ?? 0),
                finishedAt: object["finished_at"]?.integerValue.map(Int64.init),
                workerPID: Int32(clamping: object["worker_pid"]?.integerValue ?? 0),
                outcome: object["outcome"]?.stringValue.flatMap(AttemptOutcome.init(rawValue:)),
                error: object["error"]?.stringValue, stderr: Array((object["stderr"]?.stringValue ?? "").utf8))
        }
        return Array(records.suffix(AttemptRecord.maximumKept))
    }

    // MARK: Callback

    /// The `callback` column.
    static func callbackJSON(_ status: CallbackStatus) -> String {
        var object: [String: JSONValue] = ["state": .string(status.state.rawValue), "attempts": .integer(status.attempts)]
        if let error = status.lastError { object["last_error"] = .string(error) }
        if let at = status.nextAttemptAt { object["next_attempt_at"] = .integer(Int(at)) }
        return JSONValue.object(object).serialized()
    }

    static func callback(_ text: String) -> CallbackStatus? {
        guard let object = (try? JSONParser.parse(Array(text.utf8)))?.objectValue,
            let state = object["state"]?.stringValue.flatMap(CallbackStatus.State.init(rawValue:))
        else { return nil }
        return CallbackStatus(
            state: state, attempts: object["attempts"]?.integerValue ?? 0, lastError: object["last_error"]?.stringValue,
            nextAttemptAt: object["next_attempt_at"]?.integerValue.map(Int64.init))
    }
}
