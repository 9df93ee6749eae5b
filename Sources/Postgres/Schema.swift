/// A statement of the PostgreSQL backend: its SQL and the name it is prepared under on each connection.
public struct PostgresStatement: Equatable, Sendable {
    /// The prepared statement's name (`PQsendPrepare` / `PQsendQueryPrepared`), unique per connection.
    public let name: String
    /// The SQL, one statement, parameters as `$1`, `$2`, ...
    public let sql: String

    /// A statement named `name`.
    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}

/// The tables and statements of the PostgreSQL scale-out backend, where several supervisors (nodes)
/// share one job table. A job is claimed by one node at a time; every change a node makes to a job it runs is
/// *fenced*: it applies only while the job is still running under that node's `(owner, owner_epoch)` and the
/// attempt it claimed, so a node presumed dead (its lease lapsed, its jobs rescued) cannot overwrite what
/// another node does with the job since.
///
/// Times are epoch milliseconds (bigint) passed in by the caller as `$now`, not the database's clock: the tests
/// drive time, and a node compares its lease with the clock it uses for everything else. Nodes' clocks must
/// agree to well within the lease duration (NTP); a rescuer whose clock runs ahead takes jobs early, which
/// costs a duplicate run, never a lost or doubly-completed job (completions are fenced).
///
/// Parameters are sent in text format except bytea ones (`PostgresParameter.bytes`); batches are arrays in
/// text format (`PostgresArray`) unpacked with `unnest`.
public enum PostgresSchema {
    /// The schema version these statements need; `migrate` creates it and refuses a newer one.
    public static let version = 1

    /// The advisory lock key that serialises migrations across nodes: "prefork" in ASCII.
    public static let migrationLockKey: Int64 = 0x70_7265_666f_726b

    /// Creates the tables when missing, under a transaction-scoped advisory lock so nodes starting together
    /// migrate one at a time; fails, naming both versions, when the database's schema is newer than this build.
    /// One statement (a DO block: the extended protocol takes no multi-statement strings), safe to run at every
    /// start. Not prepared: it runs once.
    public static let migrate = PostgresStatement(
        name: "prefork_migrate",
        sql: """
            DO $prefork$
            DECLARE
                found integer;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(migrationLockKey));
                CREATE TABLE IF NOT EXISTS prefork_schema (version integer NOT NULL);
                SELECT max(version) INTO found FROM prefork_schema;
                IF found > \(version) THEN
                    RAISE EXCEPTION 'the prefork schema in this database is version %, newer than this build''s '
                        '\(version): upgrade prefork', found;
                END IF;
                IF found IS NULL THEN
                    CREATE TABLE prefork_jobs (
                        id text PRIMARY KEY,
                        seq bigint GENERATED ALWAYS AS IDENTITY,
                        payload bytea NOT NULL,
                        state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'canceled')),
                        priority smallint NOT NULL DEFAULT 0,
                        attempts integer NOT NULL DEFAULT 0,
                        attempts_before_retry integer NOT NULL DEFAULT 0,
                        max_retries integer NOT NULL DEFAULT 0,
                        timeout_ms integer NULL,
                        run_at bigint NOT NULL,
                        created_at bigint NOT NULL,
                        updated_at bigint NOT NULL,
                        last_error text NULL,
                        result bytea NULL,
                        result_truncated boolean NOT NULL DEFAULT false,
                        history jsonb NOT NULL DEFAULT '[]',
                        callback_url text NULL,
                        callback jsonb NULL,
                        owner text NULL,
                        owner_epoch bigint NULL,
                        CONSTRAINT prefork_jobs_owned_while_running
                            CHECK ((state = 'running') = (owner IS NOT NULL AND owner_epoch IS NOT NULL))
                    );
                    CREATE INDEX prefork_jobs_claim ON prefork_jobs (priority DESC, run_at, seq)
                        WHERE state = 'queued';
                    CREATE INDEX prefork_jobs_running ON prefork_jobs (owner, owner_epoch)
                        WHERE state = 'running';
                    CREATE TABLE prefork_nodes (
                        node_id text PRIMARY KEY,
                        epoch bigint NOT NULL,
                        lease_until bigint NOT NULL,
                        started_at bigint NOT NULL,
                        host text NOT NULL,
                        pid integer NOT NULL,
                        workers integer NOT NULL
                    );
                    CREATE TABLE prefork_settings (
                        id boolean PRIMARY KEY DEFAULT true CHECK (id),
                        paused boolean NOT NULL DEFAULT false
                    );
                    INSERT INTO prefork_settings (id, paused) VALUES (true, false);
                    INSERT INTO prefork_schema (version) VALUES (\(version));
                END IF;
            END
            $prefork$
            """)

    /// Registers a node at start: a new row with epoch 1, or the next epoch for a node id seen before (a
    /// restart), which fences everything the previous incarnation still holds. `$1` node_id, `$2` lease_until,
    /// `$3` started_at (now), `$4` host, `$5` pid, `$6` workers. Returns `epoch`.
    public static let registerNode = PostgresStatement(
        name: "prefork_register_node",
        sql: """
            INSERT INTO prefork_nodes (node_id, epoch, lease_until, started_at, host, pid, workers)
            VALUES ($1, 1, $2, $3, $4, $5, $6)
            ON CONFLICT (node_id) DO UPDATE
                SET epoch = prefork_nodes.epoch + 1, lease_until = EXCLUDED.lease_until,
                    started_at = EXCLUDED.started_at, host = EXCLUDED.host, pid = EXCLUDED.pid,
                    workers = EXCLUDED.workers
            RETURNING epoch
            """)

    /// Extends a node's lease, only while it still holds it: `$1` node_id, `$2` epoch, `$3` now, `$4` the new
    /// lease_until. Returns `lease_until`; no row means the lease lapsed (or a newer epoch registered): the node
    /// is fenced, its running jobs are or will be rescued, and it must register again before claiming.
    public static let renewLease = PostgresStatement(
        name: "prefork_renew_lease",
        sql: """
            UPDATE prefork_nodes SET lease_until = $4
            WHERE node_id = $1 AND epoch = $2 AND lease_until >= $3
            RETURNING lease_until
            """)

    /// Accepts a job: `$1` id, `$2` payload (bytea), `$3` priority, `$4` max_retries, `$5` timeout_ms (NULL: the
    /// node's default), `$6` run_at, `$7` now, `$8` callback_url, `$9` callback (jsonb). Returns `seq`; no row
    /// when the id exists already (then `selectJob` tells a repeat of the same request from a conflict).
    public static let insertJob = PostgresStatement(
        name: "prefork_insert_job",
        sql: """
            INSERT INTO prefork_jobs (id, payload, state, priority, max_retries, timeout_ms, run_at, created_at,
                                      updated_at, callback_url, callback)
            VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $7, $8, $9)
            ON CONFLICT (id) DO NOTHING
            RETURNING seq
            """)

    /// One job by id (`$1`): `id, state, payload, priority, attempts, max_retries, timeout_ms, run_at,
    /// created_at, updated_at, last_error, result, result_truncated, history, callback_url, callback, owner`.
    public static let selectJob = PostgresStatement(
        name: "prefork_select_job",
        sql: """
            SELECT id, state, payload, priority, attempts, max_retries, timeout_ms, run_at, created_at, updated_at,
                   last_error, result, result_truncated, history, callback_url, callback, owner
            FROM prefork_jobs WHERE id = $1
            """)

    /// Claims up to `$2` runnable jobs for node `$3` at epoch `$4` at time `$1`: highest priority first, then
    /// earliest run_at, then acceptance order. `SKIP LOCKED` lets nodes claim side by side without waiting on
    /// each other's rows; a node whose lease is not current claims nothing. The attempt starts now: attempts
    /// is incremented here, so a node that dies mid-attempt has it counted. Returns `id, attempts, payload,
    /// max_retries, timeout_ms, priority, seq, created_at` in no particular order.
    public static let claimJobs = PostgresStatement(
        name: "prefork_claim_jobs",
        sql: """
            WITH claimable AS (
                SELECT id FROM prefork_jobs
                WHERE state = 'queued' AND run_at <= $1
                  AND EXISTS (SELECT 1 FROM prefork_nodes
                              WHERE node_id = $3 AND epoch = $4 AND lease_until >= $1)
                ORDER BY priority DESC, run_at, seq
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            )
            UPDATE prefork_jobs j
            SET state = 'running', attempts = j.attempts + 1, owner = $3, owner_epoch = $4, updated_at = $1
            FROM claimable c
            WHERE j.id = c.id
            RETURNING j.id, j.attempts, j.payload, j.max_retries, j.timeout_ms, j.priority, j.seq, j.created_at,
                      j.attempts_before_retry, j.callback_url
            """)

    /// Ends a batch of attempts of node `$1` at epoch `$2` at time `$3`, fenced: a row changes only if the job
    /// is still running under this owner and epoch *and* its attempts still equal the attempt being ended, so a
    /// late report from a fenced node, or a duplicate, changes nothing. One array element per job, all arrays
    /// the same length: `$4` ids text[], `$5` attempts int[], `$6` new states text[] ('done', 'failed', or
    /// 'queued' for a retry), `$7` run_at bigint[] (a retry's time; NULL keeps it), `$8` last_error text[],
    /// `$9` result bytea[], `$10` result_truncated bool[], `$11` history entries jsonb[] (appended to
    /// `history`). Returns the `id` of every job that changed; the others were no longer this node's.
    public static let completeJobs = PostgresStatement(
        name: "prefork_complete_jobs",
        sql: """
            UPDATE prefork_jobs j
            SET state = r.state, run_at = COALESCE(r.run_at, j.run_at), updated_at = $3,
                last_error = r.last_error, result = r.result, result_truncated = r.result_truncated,
                history = CASE WHEN jsonb_array_length(j.history) < 20 THEN j.history || jsonb_build_array(r.entry)
                    ELSE (SELECT jsonb_agg(x.e ORDER BY x.n) FROM jsonb_array_elements(j.history) WITH ORDINALITY
                          AS x(e, n) WHERE x.n > jsonb_array_length(j.history) - 19) || jsonb_build_array(r.entry)
                    END,
                owner = NULL, owner_epoch = NULL
            FROM unnest($4::text[], $5::integer[], $6::text[], $7::bigint[], $8::text[], $9::bytea[],
                        $10::boolean[], $11::jsonb[])
                AS r(id, attempt, state, run_at, last_error, result, result_truncated, entry)
            WHERE j.id = r.id AND j.owner = $1 AND j.owner_epoch = $2 AND j.attempts = r.attempt
              AND j.state = 'running'
            RETURNING j.id
            """)

    /// Rescues, at time `$1`, the jobs running under a node that no longer holds a current lease (lapsed, or
    /// re-registered with a newer epoch): each keeps its attempt counted and goes back to the queue, runnable
    /// now, with last_error 'node <id> lost during attempt <n>' and an entry in its history. Like an attempt
    /// interrupted in single-host mode it gets one grace attempt beyond max_retries: a job lost again after that
    /// fails. Skips rows another rescuer is holding. Returns `id, owner, attempts, state` (the new state).
    public static let rescueJobs = PostgresStatement(
        name: "prefork_rescue_jobs",
        sql: """
            WITH lost AS (
                SELECT j.id, j.owner, j.owner_epoch FROM prefork_jobs j
                WHERE j.state = 'running'
                  AND NOT EXISTS (SELECT 1 FROM prefork_nodes n
                                  WHERE n.node_id = j.owner AND n.epoch = j.owner_epoch AND n.lease_until >= $1)
                FOR UPDATE OF j SKIP LOCKED
            )
            UPDATE prefork_jobs j
            SET state = CASE WHEN j.attempts - j.attempts_before_retry > j.max_retries + 1 THEN 'failed'
                             ELSE 'queued' END,
                run_at = $1, updated_at = $1, owner = NULL, owner_epoch = NULL,
                last_error = 'node ' || lost.owner || ' lost during attempt ' || j.attempts,
                history = j.history || jsonb_build_array(jsonb_build_object(
                    'attempt', j.attempts, 'node', lost.owner,
                    'started_at', j.updated_at, 'finished_at', $1, 'outcome', 'interrupted',
                    'error', 'node ' || lost.owner || ' lost during attempt ' || j.attempts))
            FROM lost
            WHERE j.id = lost.id
            RETURNING j.id, lost.owner, j.attempts, j.state
            """)

    /// Cancels job `$1` at time `$2` if it is queued or running. Returns `owner, owner_epoch, attempts` as they
    /// were (owner NULL when it was queued): a running job's owner is told on `cancelChannel` to kill the
    /// worker. No row: unknown or already finished.
    public static let cancelJob = PostgresStatement(
        name: "prefork_cancel_job",
        sql: """
            WITH old AS (
                SELECT id, owner, owner_epoch, attempts FROM prefork_jobs
                WHERE id = $1 AND state IN ('queued', 'running')
                FOR UPDATE
            )
            UPDATE prefork_jobs j
            SET state = 'canceled', updated_at = $2, last_error = 'canceled', owner = NULL, owner_epoch = NULL
            FROM old
            WHERE j.id = old.id
            RETURNING old.owner, old.owner_epoch, old.attempts
            """)

    /// Removes nodes whose lease lapsed before `$1` and that own no running job (rescue first). Returns
    /// `node_id`.
    public static let forgetNodes = PostgresStatement(
        name: "prefork_forget_nodes",
        sql: """
            DELETE FROM prefork_nodes n
            WHERE n.lease_until < $1
              AND NOT EXISTS (SELECT 1 FROM prefork_jobs j WHERE j.state = 'running' AND j.owner = n.node_id)
            RETURNING n.node_id
            """)

    /// Sends `$2` on channel `$1` (pg_notify; delivered when the transaction commits, identical ones within a
    /// transaction once). Pipelined after a segment of inserts, it wakes idle nodes once per segment.
    public static let notify = PostgresStatement(name: "prefork_notify", sql: "SELECT pg_notify($1, $2)")

    /// Jobs were queued (payload: empty): idle nodes claim.
    public static let queuedChannel = "prefork_queued"

    /// A running job was canceled (payload: `cancelPayload`): its owner kills the worker. One channel for all
    /// nodes (channel names are limited to 63 bytes, node ids are not); cancels are rare.
    public static let cancelChannel = "prefork_cancel"

    /// The cancel notification's payload: node id, a newline, the job id (neither contains a control character).
    public static func cancelPayload(node: String, job: String) -> String { node + "\n" + job }

    /// Every statement a node prepares on each connection, in order.
    public static let prepared: [PostgresStatement] = [
        registerNode, renewLease, insertJob, selectJob, claimJobs, completeJobs, rescueJobs, cancelJob, forgetNodes,
        notify, insertJobs, listJobs, retryJob, setCallback, setPaused, readSettings, countQueued,
        runningCanceled, retryJobs, cancelJobs, pendingCallbacks, releaseUnknownClaims, releaseClaims,
    ]

    /// The columns of a whole job record, in this order, as every statement that returns records selects them.
    public static let recordColumns =
        "id, seq, payload, state, priority, attempts, attempts_before_retry, max_retries, timeout_ms, run_at, "
        + "created_at, updated_at, last_error, result, result_truncated, history, callback_url, callback, owner"

    /// Accepts a batch of jobs at time `$8` (one statement, so a batch costs one round trip and one commit):
    /// arrays of the same length, `$1` ids, `$2` payloads (bytea), `$3` priorities, `$4` max_retries, `$5`
    /// timeout_ms (NULL elements: the node's default), `$6` run_at, `$7` callback_url. Existing ids are left
    /// alone (`selectJobs` then tells a repeat from a conflict). Returns the ids inserted.
    public static let insertJobs = PostgresStatement(
        name: "prefork_insert_jobs",
        sql: """
            INSERT INTO prefork_jobs (id, payload, state, priority, max_retries, timeout_ms, run_at, created_at,
                                      updated_at, callback_url)
            SELECT r.id, r.payload, 'queued', r.priority, r.max_retries, r.timeout_ms, r.run_at, $8, $8, r.callback_url
            FROM unnest($1::text[], $2::bytea[], $3::smallint[], $4::integer[], $5::integer[], $6::bigint[],
                        $7::text[]) WITH ORDINALITY AS r(id, payload, priority, max_retries, timeout_ms, run_at,
                                                         callback_url, n)
            ORDER BY r.n
            ON CONFLICT (id) DO NOTHING
            RETURNING id
            """)

    /// Whole records of the jobs with ids in `$1` (text[]).
    ///
    /// Sent unprepared, so that it is planned for each call's ids: a prepared one settles on a generic plan made
    /// while the table was small (a sequential scan) and keeps it as the table grows, until an `ANALYZE`.
    public static let selectJobs = PostgresStatement(
        name: "prefork_select_jobs",
        sql: "SELECT \(recordColumns) FROM prefork_jobs WHERE id = ANY($1::text[])")

    /// A page of records, newest first: older than seq `$1` (NULL: from the newest), in state `$2` (NULL: any),
    /// of priority `$3` (NULL: any), created at or after `$4` and before `$5` (NULL: no bound), at most `$6`.
    public static let listJobs = PostgresStatement(
        name: "prefork_list_jobs",
        sql: """
            SELECT \(recordColumns) FROM prefork_jobs
            WHERE ($1::bigint IS NULL OR seq < $1) AND ($2::text IS NULL OR state = $2)
              AND ($3::smallint IS NULL OR priority = $3) AND ($4::bigint IS NULL OR created_at >= $4)
              AND ($5::bigint IS NULL OR created_at < $5)
            ORDER BY seq DESC LIMIT $6
            """)

    /// Queues a failed or canceled job `$1` again at time `$2` with a fresh budget of attempts. Returns the
    /// record; no row: unknown, or not failed or canceled.
    public static let retryJob = PostgresStatement(
        name: "prefork_retry_job",
        sql: """
            UPDATE prefork_jobs
            SET state = 'queued', attempts_before_retry = attempts, run_at = $2, updated_at = $2, result = NULL,
                result_truncated = false, callback = NULL
            WHERE id = $1 AND state IN ('failed', 'canceled')
            RETURNING \(recordColumns)
            """)

    /// Retries (`retryJobs`) up to `$2` jobs in state `$1` at time `$3`, oldest first. Returns their ids.
    public static let retryJobs = PostgresStatement(
        name: "prefork_retry_jobs",
        sql: """
            UPDATE prefork_jobs j
            SET state = 'queued', attempts_before_retry = attempts, run_at = $3, updated_at = $3, result = NULL,
                result_truncated = false, callback = NULL
            FROM (SELECT id FROM prefork_jobs WHERE state = $1 ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED) c
            WHERE j.id = c.id
            RETURNING j.id
            """)

    /// Cancels up to `$2` jobs in state `$1` ('queued' or 'running') at time `$3`, oldest first. Returns `id,
    /// owner` as they were (owners are told to kill their workers).
    public static let cancelJobs = PostgresStatement(
        name: "prefork_cancel_jobs",
        sql: """
            WITH old AS (
                SELECT id, owner FROM prefork_jobs WHERE state = $1 ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED
            )
            UPDATE prefork_jobs j
            SET state = 'canceled', updated_at = $3, last_error = 'canceled', owner = NULL, owner_epoch = NULL
            FROM old
            WHERE j.id = old.id
            RETURNING j.id, old.owner
            """)

    /// Sets job `$1`'s callback delivery state to `$2` (jsonb), while it is finished.
    public static let setCallback = PostgresStatement(
        name: "prefork_set_callback",
        sql: "UPDATE prefork_jobs SET callback = $2::jsonb WHERE id = $1 AND state IN ('done', 'failed', 'canceled')")

    /// Pauses (`$1` true) or resumes dispatch on every node.
    public static let setPaused = PostgresStatement(
        name: "prefork_set_paused", sql: "UPDATE prefork_settings SET paused = $1::boolean RETURNING paused")

    /// Whether dispatch is paused.
    public static let readSettings = PostgresStatement(
        name: "prefork_read_settings", sql: "SELECT paused FROM prefork_settings")

    /// How many jobs are queued, cluster-wide (`queue_size` is checked against it, refreshed every second).
    public static let countQueued = PostgresStatement(
        name: "prefork_count_queued", sql: "SELECT count(*) FROM prefork_jobs WHERE state = 'queued'")

    /// Which of the jobs `$1` (text[]) this node runs were canceled meanwhile (a notification may be lost while
    /// a node is disconnected).
    public static let runningCanceled = PostgresStatement(
        name: "prefork_running_canceled",
        sql: "SELECT id FROM prefork_jobs WHERE id = ANY($1::text[]) AND state = 'canceled'")

    /// Finished jobs whose callback is still to be delivered and whose record has not changed since `$1` (epoch
    /// ms): deliveries their node may have died with. A node adopts them at registration (at least once: a live
    /// node still retrying one delivers it too).
    public static let pendingCallbacks = PostgresStatement(
        name: "prefork_pending_callbacks",
        sql: """
            SELECT \(recordColumns) FROM prefork_jobs
            WHERE callback_url IS NOT NULL AND state IN ('done', 'failed', 'canceled')
              AND (callback IS NULL OR callback->>'state' = 'pending') AND updated_at < $1
            ORDER BY seq LIMIT 1000
            """)

    /// Gives back jobs claimed by node `$1` at epoch `$2` that the node does not know it holds (the claim
    /// committed but its answer was lost with the connection): all its running jobs but those in `$3` (text[])
    /// go back to the queue at time `$4`, their never-started attempt uncounted. Returns their ids.
    public static let releaseUnknownClaims = PostgresStatement(
        name: "prefork_release_unknown_claims",
        sql: """
            UPDATE prefork_jobs
            SET state = 'queued', attempts = attempts - 1, owner = NULL, owner_epoch = NULL, run_at = $4,
                updated_at = $4
            WHERE owner = $1 AND owner_epoch = $2 AND state = 'running' AND NOT (id = ANY($3::text[]))
            RETURNING id
            """)

    /// Gives back jobs node `$1` claimed at epoch `$2` but never started (`$3` text[]: claimed ahead, then the node
    /// began to stop): queued again, their attempt uncounted, keeping their place. Returns their ids.
    public static let releaseClaims = PostgresStatement(
        name: "prefork_release_claims",
        sql: """
            UPDATE prefork_jobs
            SET state = 'queued', attempts = attempts - 1, owner = NULL, owner_epoch = NULL, updated_at = $4
            WHERE owner = $1 AND owner_epoch = $2 AND state = 'running' AND id = ANY($3::text[])
            RETURNING id
            """)

    /// Settings changed (pause, resume): nodes re-read them.
    public static let settingsChannel = "prefork_settings"

    /// Jobs finished (payload: their ids, newline-separated): nodes holding long-polls on them look again.
    public static let finishedChannel = "prefork_finished"
}
