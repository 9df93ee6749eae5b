// Writes the generated seed files of the fuzz corpora (`fuzz/run seeds`): requests, JSON documents, frame
// streams and journals made with the project's own encoders. Compiled by fuzz/run with the journal target's
// sources, the JSON sources and the IPC module. Files named `gen-*` are overwritten; others (real journals
// copied from a data directory, inputs added by hand) are left alone.

import Glibc
import IPC

@main
struct MakeSeeds {
    static func main() {
        guard CommandLine.arguments.count == 2 else { fatalError("usage: make-seeds FUZZ_DIR") }
        let root = CommandLine.arguments[1]
        writeHTTP(to: root + "/http/corpus")
        writeJSON(to: root + "/json/corpus")
        writeFrames(to: root + "/frames/corpus")
        writeJournals(to: root + "/journal/corpus")
    }

    static func write(_ bytes: [UInt8], _ directory: String, _ name: String) {
        let path = directory + "/gen-" + name
        guard let file = fopen(path, "wb") else { fatalError("cannot write \(path)") }
        if !bytes.isEmpty { precondition(fwrite(bytes, 1, bytes.count, file) == bytes.count) }
        fclose(file)
    }

    // MARK: HTTP: every route and request shape the server handles

    static func writeHTTP(to directory: String) {
        let body = #"{"id":"job-1","payload":"hello","max_retries":2}"#
        let requests: [(String, String)] = [
            ("get-healthz", "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            ("get-readyz", "GET /readyz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n"),
            ("get-metrics", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"),
            ("get-workers", "GET /workers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\n\r\n"),
            ("post-enqueue",
             "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"),
            ("post-enqueue-expect",
             "POST /enqueue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n"),
            ("post-enqueue-partial-body",
             "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n{\"id\":"),
            ("get-jobs-query", "GET /jobs?state=queued&limit=10 HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("get-jobs-query-encoded", "GET /jobs?state=%71ueued&limit=1+0&&flag HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("get-job", "GET /jobs/job-1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("get-job-encoded", "GET /jobs/a%2Fb%20c%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("head-job", "HEAD /jobs/job-1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("delete-job", "DELETE /jobs/job-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            ("http10-keepalive", "GET /healthz HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\n\r\n"),
            ("http10-plain", "GET / HTTP/1.0\r\n\r\n"),
            ("lf-only", "GET /jobs/x/ HTTP/1.1\nHost: x\nX-Empty:\n\n"),
            ("leading-crlf", "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("pipelined",
             "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)DELETE /jobs/job-1 HTTP/1.1\r\nHost: x\r\n\r\nGET /jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            ("incomplete-headers", "GET /healthz HTTP/1.1\r\nHost: x\r\n"),
            ("chunked", "POST /enqueue HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            ("http20", "GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
            ("two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            ("conflicting-length", "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            ("same-length-twice", "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}"),
            ("huge-length", "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            ("folded-header", "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"),
        ]
        for (name, text) in requests { write(Array(text.utf8), directory, name) }
    }

    // MARK: JSON: every value kind, escapes, numbers at the edges, the documents the API reads and writes

    static func writeJSON(to directory: String) {
        let documents: [(String, String)] = [
            ("enqueue", #"{"id":"job-1","payload":"hello","max_retries":2}"#),
            ("enqueue-null-retries", #"{"id":"j","payload":"","max_retries":null,"extra":[1,2,3]}"#),
            ("literals", "[true,false,null]"),
            ("integers", "[0,-0,1,-1,9223372036854775807,-9223372036854775808,9223372036854775808]"),
            ("doubles", "[0.5,-1.25e-3,1E+300,6.02e23,5e-324,1.7976931348623157e308,0.1]"),
            ("strings", #"["","plain","q\"b\\s\/","\b\f\n\r\t","\u0000\u001f\u00e9\u20ac","\ud83d\ude00","é€😀"]"#),
            ("nested", #"{"a":{"b":{"c":[[[{}]]]}},"d":[{"e":[]}]}"#),
            ("whitespace", " \t\r\n{ \"k\" : [ 1 , 2 ] , \"l\" : { } } \n"),
            ("scalar-string", #""just a string""#),
            ("scalar-number", "-12.5e+2"),
            ("config", #"{"listen":"127.0.0.1:8080","workers":4,"backoff":{"base_ms":100,"jitter":0.5},"exec":{"command":null},"program":{"env":{}}}"#),
            ("job", #"{"id":"a","state":"done","attempts":1,"max_retries":0,"last_error":null,"result":"ok","created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:01.000Z","next_attempt_at":null}"#),
            ("deep", String(repeating: "[", count: 64) + String(repeating: "]", count: 64)),
        ]
        for (name, text) in documents { write(Array(text.utf8), directory, name) }
    }

    // MARK: Frames: every message kind; first byte of each file is the split point

    static func writeFrames(to directory: String) {
        let messages: [(String, [Message])] = [
            ("ready", [.ready(Message.Ready(pid: 4242, version: "prefork-worker 0.9.0"))]),
            ("ready-python", [.ready(Message.Ready(pid: 1, version: "prefork-python 0.9.0 (CPython 3.11)"))]),
            ("run", [.run(Message.Run(jobID: "job-1", attempt: 1, payload: Array("hello".utf8), timeoutMilliseconds: 30_000))]),
            ("run-waiting",
             [.run(Message.Run(jobID: "é", attempt: 7, payload: [], timeoutMilliseconds: 0, jobsWaiting: true, maximumOutputBytes: 16))]),
            ("result-ok",
             [.result(Message.Result(jobID: "job-1", attempt: 1, ok: true, output: Array("done".utf8), durationMicroseconds: 1234))]),
            ("result-error",
             [.result(Message.Result(jobID: "job-1", attempt: 2, ok: false, output: Array("boom".utf8), durationMicroseconds: 99,
                                     truncated: true, detail: Array("Traceback (most recent call last):\n".utf8)))]),
            ("stop", [.stop]),
            ("progress", [.progress(Message.Progress(jobID: "job-1", attempt: 1, percent: 50, note: "halfway"))]),
            ("progress-empty", [.progress(Message.Progress(jobID: "", attempt: 0, percent: 100, note: ""))]),
            ("conversation",
             [.ready(Message.Ready(pid: 9, version: "w")), .run(Message.Run(jobID: "a", attempt: 1, payload: [1, 2, 3], timeoutMilliseconds: 5)),
              .progress(Message.Progress(jobID: "a", attempt: 1, percent: 10, note: "n")),
              .result(Message.Result(jobID: "a", attempt: 1, ok: true, output: [], durationMicroseconds: 0)), .stop]),
        ]
        for (index, (name, list)) in messages.enumerated() {
            var bytes: [UInt8] = []
            for message in list { message.encode(into: &bytes) }
            // Vary where the stream is cut: in the header, in the body, at the end.
            let split = UInt8(truncatingIfNeeded: [3, 8, 13, 255, 0][index % 5])
            write([split] + bytes, directory, name)
        }
    }

    // MARK: Journals: both formats, every record kind, damage and a torn tail

    static func events() -> [JobEvent] {
        let spec = { (id: String) in JobSpec(id: id, payload: "payload of " + id, maxRetries: 2) }
        return [
            .accepted(spec("a"), sequence: 1, at: 1_700_000_000_000),
            .started(id: "a", attempt: 1, at: 1_700_000_000_010),
            .succeeded(id: "a", attempt: 1, result: "ok", runMicroseconds: 1500, at: 1_700_000_000_020),
            .accepted(spec("b"), sequence: 2, at: 1_700_000_000_030),
            .started(id: "b", attempt: 1, at: 1_700_000_000_040),
            .attemptFailed(id: "b", attempt: 1, outcome: .crash, error: "worker died", runMicroseconds: 10,
                           retryAt: 1_700_000_000_500, at: 1_700_000_000_050),
            .started(id: "b", attempt: 2, at: 1_700_000_000_600),
            .attemptFailed(id: "b", attempt: 2, outcome: .timeout, error: "timed out", runMicroseconds: 30_000_000,
                           retryAt: nil, at: 1_700_000_000_700),
            .accepted(spec("c"), sequence: 3, at: 1_700_000_000_800),
            .canceled(id: "c", at: 1_700_000_000_900),
            .accepted(spec("d"), sequence: 4, at: 1_700_000_001_000),
            .started(id: "d", attempt: 1, at: 1_700_000_001_100),
            .interrupted(id: "d", attempt: 1, error: "supervisor stopped", at: 1_700_000_001_200),
            .accepted(spec("e"), sequence: 5, at: 1_700_000_001_300),
            .started(id: "e", attempt: 1, at: 1_700_000_001_400),
        ]
    }

    static func snapshots() -> [JobEvent] {
        [
            .snapshot(Job(restoring: "s1", payload: "p", maxRetries: 0, sequence: 10, createdAt: 1, state: .done, attempts: 1,
                          lastError: nil, result: "r", updatedAt: 2, nextAttemptAt: nil)),
            .snapshot(Job(restoring: "s2", payload: "p", maxRetries: 3, sequence: 11, createdAt: 1, state: .queued, attempts: 1,
                          lastError: "e", result: nil, updatedAt: 2, nextAttemptAt: 5000)),
            .snapshot(Job(restoring: "s3", payload: "", maxRetries: 1, sequence: 12, createdAt: 1, state: .running, attempts: 2,
                          lastError: "e", result: nil, updatedAt: 3, nextAttemptAt: nil)),
            .snapshot(Job(restoring: "s4", payload: "x", maxRetries: 0, sequence: 13, createdAt: 1, state: .failed, attempts: 1,
                          lastError: "bad", result: nil, updatedAt: 3, nextAttemptAt: nil)),
            .snapshot(Job(restoring: "s5", payload: "x", maxRetries: 0, sequence: 14, createdAt: 1, state: .canceled, attempts: 0,
                          lastError: "canceled", result: nil, updatedAt: 3, nextAttemptAt: nil)),
        ]
    }

    static func current(_ events: [JobEvent]) -> [UInt8] {
        var bytes = JournalFile.header
        for event in events { JournalRecord.encode(event, into: &bytes) }
        return bytes
    }

    static func legacy(_ events: [JobEvent]) -> [UInt8] {
        var bytes: [UInt8] = []
        for event in events { LegacyJournalRecord.encode(event, into: &bytes) }
        return bytes
    }

    static func writeJournals(to directory: String) {
        let all = events()
        write([], directory, "empty")
        write(JournalFile.header, directory, "header-only")
        write(Array(JournalFile.header[0..<7]), directory, "torn-header")
        write(current(all), directory, "current-all-kinds")
        write(current(snapshots()), directory, "current-snapshots")
        write(current(snapshots() + all), directory, "current-compacted-then-events")
        var torn = current(Array(all.prefix(4)))
        torn.removeLast(3)
        write(torn, directory, "current-torn-tail")
        var damaged = current(Array(all.prefix(6)))
        damaged[JournalFile.header.count + 20] ^= 0x40  // in the first record's body
        write(damaged, directory, "current-damaged-middle")
        write(legacy(all), directory, "legacy-all-kinds")
        write(legacy(snapshots()), directory, "legacy-snapshots")
        var legacyTorn = legacy(Array(all.prefix(5)))
        legacyTorn.removeLast(2)
        write(legacyTorn, directory, "legacy-torn-tail")
        for (index, event) in (all + snapshots()).enumerated() {
            var record: [UInt8] = []
            JournalRecord.encode(event, into: &record)
            write(record, directory, "record-\(index)")
        }
    }
}
