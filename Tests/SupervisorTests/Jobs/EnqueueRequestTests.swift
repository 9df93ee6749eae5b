import Testing

@testable import Supervisor

@Suite struct EnqueueRequestTests {
    private static let payloadLimit = 16

    private func parse(_ body: String) throws(HTTPError) -> EnqueueRequest {
        try EnqueueRequest(body: Array(body.utf8), maximumPayloadBytes: Self.payloadLimit)
    }

    /// 64 two-byte scalars: 128 UTF-8 bytes.
    private static let id128Bytes = String(repeating: "\u{e9}", count: 64)

    static let invalidBodies: [(body: String, message: String)] = [
        (#"{"payload": "p"}"#, "field id is required"),
        (#"{"id": 5, "payload": "p"}"#, "field id must be a string"),
        (#"{"id": null, "payload": "p"}"#, "field id must be a string"),
        (#"{"id": ["a"], "payload": "p"}"#, "field id must be a string"),
        (#"{"id": "", "payload": "p"}"#, "field id must be 1 to 128 bytes long; got 0"),
        (
            #"{"id": "\#(String(repeating: "x", count: 129))", "payload": "p"}"#,
            "field id must be 1 to 128 bytes long; got 129"
        ),
        (#"{"id": "\#(id128Bytes)x", "payload": "p"}"#, "field id must be 1 to 128 bytes long; got 129"),
        (#"{"id": "a\u0001b", "payload": "p"}"#, "field id must not contain control characters"),
        (#"{"id": "a\u007fb", "payload": "p"}"#, "field id must not contain control characters"),
        (#"{"id": "\u0000", "payload": "p"}"#, "field id must not contain control characters"),
        (#"{"id": "tab\t", "payload": "p"}"#, "field id must not contain control characters"),
        (#"{"id": "a\u0085b", "payload": "p"}"#, "field id must not contain control characters"),
        (#"{"id": "a"}"#, "field payload (or payload_base64) is required"),
        (#"{"id": "a", "payload": 42}"#, "field payload must be a string"),
        (#"{"id": "a", "payload": null}"#, "field payload must be a string"),
        (#"{"id": "a", "payload": {"x": 1}}"#, "field payload must be a string"),
        (#"{"id": "a", "payload": "12345678901234567"}"#, "field payload is 17 bytes; the limit is 16"),
        (
            #"{"id": "a", "payload": "\#(String(repeating: "\u{e9}", count: 9))"}"#,
            "field payload is 18 bytes; the limit is 16"
        ),
        (#"{"id": "a", "payload": "p", "max_retries": -1}"#, "field max_retries must be from 0 to 100; got -1"),
        (#"{"id": "a", "payload": "p", "max_retries": 101}"#, "field max_retries must be from 0 to 100; got 101"),
        (#"{"id": "a", "payload": "p", "max_retries": "3"}"#, "field max_retries must be an integer"),
        (#"{"id": "a", "payload": "p", "max_retries": 1.5}"#, "field max_retries must be an integer"),
        (#"{"id": "a", "payload": "p", "max_retries": 3.0}"#, "field max_retries must be an integer"),
        (#"{"id": "a", "payload": "p", "max_retries": 1e1}"#, "field max_retries must be an integer"),
        (#"{"id": "a", "payload": "p", "max_retries": true}"#, "field max_retries must be an integer"),
        (#"{"id": "a", "payload": "p", "max_retries": 99999999999999999999}"#, "field max_retries must be an integer"),
        (#"{"id": "a", "payload": "p""#, "invalid JSON"),
        (#"{"id": "a", "payload": "p",}"#, "invalid JSON"),
        (#"{"id": "a", "id": "b", "payload": "p"}"#, "invalid JSON"),
        ("", "invalid JSON"),
        ("not json", "invalid JSON"),
        (#"[{"id": "a", "payload": "p"}]"#, "body must be a JSON object"),
        (#""a string""#, "body must be a JSON object"),
        ("null", "body must be a JSON object"),
        ("42", "body must be a JSON object"),
    ]

    @Test(arguments: invalidBodies)
    func invalidBodyIsRejectedWith400NamingTheProblem(body: String, message: String) {
        #expect {
            _ = try parse(body)
        } throws: { error in
            guard let error = error as? HTTPError else { return false }
            return error.status == 400 && error.message.contains(message)
        }
    }

    @Test func invalidJSONMessageSaysWhereItWentWrong() {
        #expect(throws: HTTPError.badRequest("invalid JSON at byte 5: unexpected end of input")) {
            _ = try EnqueueRequest(body: Array(#"{"id""#.utf8), maximumPayloadBytes: 10)
        }
    }

    @Test func fieldsAreCheckedInOrderIdPayloadMaxRetries() {
        #expect(throws: HTTPError.badRequest("field id is required")) {
            _ = try parse(#"{"payload": 1, "max_retries": -1}"#)
        }
        #expect(throws: HTTPError.badRequest("field payload must be a string")) {
            _ = try parse(#"{"id": "a", "payload": 1, "max_retries": -1}"#)
        }
    }

    /// The fields a valid body must produce (EnqueueRequest has no memberwise initializer).
    struct Expected: Equatable, Sendable {
        var id: String
        var payload: String
        var maxRetries: Int
    }

    static let validBodies: [(body: String, expected: Expected)] = [
        (
            #"{"id": "job-1", "payload": "hello", "max_retries": 3}"#,
            Expected(id: "job-1", payload: "hello", maxRetries: 3)
        ),
        (#"{"id": "a", "payload": "p"}"#, Expected(id: "a", payload: "p", maxRetries: 0)),
        (#"{"id": "a", "payload": "p", "max_retries": null}"#, Expected(id: "a", payload: "p", maxRetries: 0)),
        (#"{"id": "a", "payload": "p", "max_retries": 0}"#, Expected(id: "a", payload: "p", maxRetries: 0)),
        (#"{"id": "a", "payload": "p", "max_retries": 100}"#, Expected(id: "a", payload: "p", maxRetries: 100)),
        (#"{"id": "a", "payload": "p", "max_retries": -0}"#, Expected(id: "a", payload: "p", maxRetries: 0)),
        (
            #"{"id": "a", "payload": "p", "priority": 9, "tags": ["x"], "extra": {"nested": null}}"#,
            Expected(id: "a", payload: "p", maxRetries: 0)
        ),
        (#"{"id": "a", "payload": ""}"#, Expected(id: "a", payload: "", maxRetries: 0)),
        (#"{"id": "a", "payload": "1234567890123456"}"#, Expected(id: "a", payload: "1234567890123456", maxRetries: 0)),
        (
            #"{"id": "a", "payload": "\#(String(repeating: "\u{e9}", count: 8))"}"#,
            Expected(id: "a", payload: String(repeating: "\u{e9}", count: 8), maxRetries: 0)
        ),
        (#"{"id": "\#(id128Bytes)", "payload": "p"}"#, Expected(id: id128Bytes, payload: "p", maxRetries: 0)),
        (
            #"{"id": "\#(String(repeating: "x", count: 128))", "payload": "p"}"#,
            Expected(id: String(repeating: "x", count: 128), payload: "p", maxRetries: 0)
        ),
        (
            #"{"id": "\#(String(repeating: "\u{1F600}", count: 32))", "payload": "p"}"#,
            Expected(id: String(repeating: "\u{1F600}", count: 32), payload: "p", maxRetries: 0)
        ),
        (
            #"{"id": "with space/and:punct", "payload": "p"}"#,
            Expected(id: "with space/and:punct", payload: "p", maxRetries: 0)
        ),
        (#"{"id": "\u00e9\u00a0", "payload": "p"}"#, Expected(id: "\u{e9}\u{a0}", payload: "p", maxRetries: 0)),
        (
            #"{"id": "a", "payload": "line\nbreak\u0000"}"#,
            Expected(id: "a", payload: "line\nbreak\u{0}", maxRetries: 0)
        ),
        (
            " \n{\"max_retries\": 2, \"payload\": \"p\", \"id\": \"a\"}\n",
            Expected(id: "a", payload: "p", maxRetries: 2)
        ),
    ]

    @Test(arguments: validBodies)
    func validBodyIsParsed(body: String, expected: Expected) throws {
        let request = try parse(body)
        #expect(Expected(id: request.id, payload: request.payload.description, maxRetries: request.maxRetries) == expected)
    }

    @Test func payloadLimitZeroAllowsOnlyEmptyPayload() throws {
        #expect(
            try EnqueueRequest(body: Array(#"{"id": "a", "payload": ""}"#.utf8), maximumPayloadBytes: 0).payload == "")
        #expect(throws: HTTPError.badRequest("field payload is 1 bytes; the limit is 0 (max_payload_bytes)")) {
            _ = try EnqueueRequest(body: Array(#"{"id": "a", "payload": "x"}"#.utf8), maximumPayloadBytes: 0)
        }
    }

    /// `delay_ms` stays a delay until the job is accepted, so it counts from the record's `created_at`, however
    /// long the backend takes to create it; `run_at` is a time.
    @Test func delayIsKeptAsADelayAndRunAtAsATime() throws {
        let delayed = try parse(#"{"id": "a", "payload": "p", "delay_ms": 200}"#).spec
        #expect(delayed.runAt == nil)
        #expect(delayed.delayMilliseconds == 200)
        #expect(delayed.runAt(acceptedAt: 1_000) == 1_200)
        let timed = try parse(#"{"id": "a", "payload": "p", "run_at": "2001-09-09T01:46:40Z"}"#).spec
        #expect(timed.runAt == 1_000_000_000_000)
        #expect(timed.delayMilliseconds == nil)
        #expect(timed.runAt(acceptedAt: 5) == 1_000_000_000_000)
        #expect(try parse(#"{"id": "a", "payload": "p"}"#).spec.runAt(acceptedAt: 5) == nil)
    }

    /// C1 controls are the two-byte sequences C2 80 to C2 9F; C2 A0 (no-break space) and other
    /// non-ASCII text are allowed.
    @Test(arguments: [
        ("plain-id", false), ("\u{1F}", true), ("\u{7F}", true), ("\u{80}", true), ("a\u{9F}", true),
        ("\u{A0}", false), ("caf\u{E9}", false), ("\u{20AC}", false), ("\u{1F600}", false), ("x\u{85}y", true),
    ])
    func controlCharactersAreFoundInTheUTF8(text: String, expected: Bool) {
        #expect(EnqueueRequest.containsControlCharacter(text) == expected)
    }
}
