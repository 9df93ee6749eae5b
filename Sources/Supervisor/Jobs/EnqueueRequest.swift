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
        guard !Self.containsControlCharacter(id) else {
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
