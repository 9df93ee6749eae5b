/// A validated `POST /enqueue` body: one job `{"id": ..., "payload": ..., ...}` or a batch `{"jobs": [...]}`.
///
/// Each invalid field is a 400 naming it; in a batch, each item is accepted or refused on its own. Unknown fields
/// are ignored.
struct EnqueueRequest: Equatable {
    /// Longest id, in UTF-8 bytes.
    static let maximumIDBytes = 128
    /// Largest `max_retries`.
    static let maximumRetries = 100
    /// Largest `timeout_ms` (one day).
    static let maximumTimeoutMilliseconds = 86_400_000
    /// Largest `delay_ms` (365 days).
    static let maximumDelayMilliseconds: Int64 = 31_536_000_000

    /// What the request may contain.
    struct Rules: Equatable {
        /// `max_payload_bytes`.
        var maximumPayloadBytes: Int
        /// `callbacks.allowed_hosts`: hosts (or `host:port`) a `callback_url` may name; empty refuses callbacks.
        var allowedCallbackHosts: [String] = []
        /// `http.max_batch_jobs`.
        var maximumBatchJobs = 1000
    }

    /// The job of a single-job request.
    var spec: JobSpec

    /// The job's id.
    var id: String { spec.id }
    /// The job's payload.
    var payload: ByteString { spec.payload }
    /// Retries after the first attempt (0 when absent).
    var maxRetries: Int { spec.maxRetries }

    /// Parses and validates a single-job request body.
    init(body: [UInt8], maximumPayloadBytes: Int) throws(HTTPError) {
        guard case .single(let spec) = try Self.parse(body: body, rules: Rules(maximumPayloadBytes: maximumPayloadBytes))
        else { throw .badRequest("expected one job, got a batch") }
        self.spec = spec
    }

    /// What a request body holds.
    enum Body: Equatable {
        /// One job.
        case single(JobSpec)
        /// A batch: per item, in order, its job or why it is refused (status 400).
        case batch([Result<JobSpec, HTTPError>])
    }

    /// Parses a request body: one job, or `{"jobs": [...]}`. Throws when the body as a whole is unusable.
    static func parse(body: [UInt8], rules: Rules) throws(HTTPError) -> Body {
        let document: JSONValue
        do throws(JSONError) {
            document = try JSONParser.parse(body)
        } catch {
            throw .badRequest(error.description)
        }
        guard case .object(let fields) = document else {
            throw .badRequest("body must be a JSON object: one job (id, payload, ...) or {\"jobs\": [...]}")
        }
        guard let items = fields["jobs"] else { return .single(try spec(fields, rules: rules)) }
        guard case .array(let elements) = items else { throw .badRequest("field jobs must be an array of job objects") }
        guard (1...rules.maximumBatchJobs).contains(elements.count) else {
            throw .badRequest(
                "field jobs must hold 1 to \(rules.maximumBatchJobs) jobs (http.max_batch_jobs); got \(elements.count)")
        }
        return .batch(
            elements.map { element in
                guard case .object(let item) = element else {
                    return .failure(.badRequest("must be a JSON object with fields id, payload, ..."))
                }
                return Result { () throws(HTTPError) in try spec(item, rules: rules) }
            })
    }

    /// Whether some job could have `id` (lookups of any other answer 404 without asking the backend).
    static func isPossibleID(_ id: String) -> Bool {
        (1...maximumIDBytes).contains(id.utf8.count) && !containsControlCharacter(id)
    }

    /// Validates one job object.
    static func spec(_ fields: [String: JSONValue], rules: Rules) throws(HTTPError) -> JobSpec {
        guard let idValue = fields["id"] else { throw .badRequest("field id is required") }
        guard case .string(let id) = idValue else { throw .badRequest("field id must be a string") }
        let idBytes = id.utf8.count
        guard (1...Self.maximumIDBytes).contains(idBytes) else {
            throw .badRequest("field id must be 1 to \(Self.maximumIDBytes) bytes long; got \(idBytes)")
        }
        guard !Self.containsControlCharacter(id) else {
            throw .badRequest("field id must not contain control characters")
        }

        let payload: ByteString
        switch (fields["payload"], fields["payload_base64"]) {
        case (nil, nil):
            throw .badRequest("field payload (or payload_base64) is required")
        case (.some, .some):
            throw .badRequest("give either payload or payload_base64, not both")
        case (let value?, nil):
            guard case .string(let text) = value else { throw .badRequest("field payload must be a string") }
            payload = ByteString(text)
        case (nil, let value?):
            guard case .string(let text) = value, let bytes = Base64.decode(text) else {
                throw .badRequest("field payload_base64 must be a base64 string")
            }
            payload = ByteString(bytes)
        }
        guard payload.count <= rules.maximumPayloadBytes else {
            throw .badRequest(
                "field payload is \(payload.count) bytes; the limit is \(rules.maximumPayloadBytes) (max_payload_bytes)")
        }

        var spec = JobSpec(id: id, payload: payload, maxRetries: 0)
        spec.maxRetries = try integer(fields, "max_retries", in: 0...Self.maximumRetries) ?? 0
        spec.priority = try integer(fields, "priority", in: JobSpec.priorities) ?? 0
        spec.timeoutMilliseconds = try integer(fields, "timeout_ms", in: 1...Self.maximumTimeoutMilliseconds)

        switch (fields["run_at"], fields["delay_ms"]) {
        case (.some(let value), .some) where value != .null:
            throw .badRequest("give either run_at or delay_ms, not both")
        case (.string(let text)?, _):
            guard let at = RFC3339.parse(text) else {
                throw .badRequest("field run_at must be an RFC 3339 time such as 2026-12-01T03:00:00Z; got \"\(text)\"")
            }
            spec.runAt = at
        case (nil, _), (.null?, _):
            if let delay = try integer(fields, "delay_ms", in: 0...Int(Self.maximumDelayMilliseconds)) {
                spec.delayMilliseconds = Int64(delay)
            }
        case (_?, _):
            throw .badRequest("field run_at must be a string (RFC 3339)")
        }

        switch fields["callback_url"] {
        case nil, .null?:
            break
        case .string(let text)?:
            let url: CallbackURL
            do throws(CallbackURLError) {
                url = try CallbackURL(parsing: text)
            } catch {
                throw .badRequest("field callback_url \(error)")
            }
            guard url.isAllowed(by: rules.allowedCallbackHosts) else {
                throw .badRequest(
                    rules.allowedCallbackHosts.isEmpty
                        ? "field callback_url: callbacks are off; list the hosts they may reach in callbacks.allowed_hosts"
                        : "field callback_url: host \(url.host) is not in callbacks.allowed_hosts")
            }
            spec.callbackURL = text
        default:
            throw .badRequest("field callback_url must be a string (http://host[:port]/path)")
        }
        return spec
    }

    /// An optional integer field within `range`; the error names the field and the range.
    private static func integer(
        _ fields: [String: JSONValue], _ name: String, in range: ClosedRange<Int>
    ) throws(HTTPError) -> Int? {
        switch fields[name] {
        case nil, .null?:
            return nil
        case .integer(let value)? where range.contains(value):
            return value
        case .integer(let value)?:
            throw .badRequest("field \(name) must be from \(range.lowerBound) to \(range.upperBound); got \(value)")
        default:
            throw .badRequest("field \(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    /// Whether `text` holds a C0 control, DEL or a C1 control (U+0080 to U+009F, UTF-8 C2 80 to C2 9F), checked
    /// over its UTF-8 bytes: walking unicode scalars cost more than the rest of the id's validation.
    static func containsControlCharacter(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in
            for index in utf8.indices {
                let byte = utf8[index]
                if byte < 0x20 || byte == 0x7f { return true }
                if byte == 0xc2, index + 1 < utf8.count, (0x80...0x9f).contains(utf8[index + 1]) { return true }
            }
            return false
        }
    }
}
