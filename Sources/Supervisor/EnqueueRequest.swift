/// A validated `POST /enqueue` body: `{"id": string, "payload": string, "max_retries": int}`.
///
/// Each invalid field is a 400 naming it. Unknown fields are ignored.
struct EnqueueRequest: Equatable {
    /// Longest id, in UTF-8 bytes.
    static let maximumIDBytes = 128
    /// Largest `max_retries`.
    static let maximumRetries = 100

    /// The job's id.
    var id: String
    /// The job's payload.
    var payload: String
    /// Retries after the first attempt (0 when absent).
    var maxRetries: Int

    /// Parses and validates a request body.
    init(body: [UInt8], maximumPayloadBytes: Int) throws(HTTPError) {
        let document: JSONValue
        do throws(JSONError) {
            document = try JSONParser.parse(body)
        } catch {
            throw .badRequest(error.description)
        }
        guard case .object(let fields) = document else {
            throw .badRequest("body must be a JSON object with fields id, payload and max_retries")
        }

        guard let idValue = fields["id"] else { throw .badRequest("field id is required") }
        guard case .string(let id) = idValue else { throw .badRequest("field id must be a string") }
        let idBytes = id.utf8.count
        guard (1...Self.maximumIDBytes).contains(idBytes) else {
            throw .badRequest("field id must be 1 to \(Self.maximumIDBytes) bytes long; got \(idBytes)")
        }
        guard !id.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }) else {
            throw .badRequest("field id must not contain control characters")
        }

        guard let payloadValue = fields["payload"] else { throw .badRequest("field payload is required") }
        guard case .string(let payload) = payloadValue else { throw .badRequest("field payload must be a string") }
        guard payload.utf8.count <= maximumPayloadBytes else {
            throw .badRequest(
                "field payload is \(payload.utf8.count) bytes; the limit is \(maximumPayloadBytes) (max_payload_bytes)")
        }

        var maxRetries = 0
        switch fields["max_retries"] {
        case nil, .null?:
            break
        case .integer(let value)?:
            guard (0...Self.maximumRetries).contains(value) else {
                throw .badRequest("field max_retries must be from 0 to \(Self.maximumRetries); got \(value)")
            }
            maxRetries = value
        default:
            throw .badRequest("field max_retries must be an integer from 0 to \(Self.maximumRetries)")
        }
        self.id = id
        self.payload = payload
        self.maxRetries = maxRetries
    }
}
