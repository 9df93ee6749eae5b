/// Bytes a client or a handler produced: a job's payload and its result. Binary-safe; shown in JSON as a string
/// when they are valid UTF-8 and as base64 otherwise (`payload` / `payload_base64`, `result` / `result_base64`).
struct ByteString: Equatable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The bytes.
    var bytes: [UInt8]

    /// These bytes.
    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The UTF-8 bytes of `text`.
    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    /// A literal's UTF-8 bytes.
    init(stringLiteral text: String) {
        self.init(text)
    }

    /// An interpolated literal's UTF-8 bytes.
    init(stringInterpolation: DefaultStringInterpolation) {
        self.init(String(stringInterpolation: stringInterpolation))
    }

    /// An empty byte string.
    static let empty = ByteString([UInt8]())

    /// How many bytes.
    var count: Int { bytes.count }

    /// Whether there are none.
    var isEmpty: Bool { bytes.isEmpty }

    /// The bytes as text when they are valid UTF-8, else nil.
    var text: String? {
        bytes.withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) }
    }

    /// The text, with invalid UTF-8 replaced (for logs and tests).
    var description: String { String(decoding: bytes, as: UTF8.self) }
}

extension [UInt8] {
    /// Appends `"<name>":<value>` for a byte string: a JSON string under `name` when the bytes are valid UTF-8,
    /// else base64 under `<name>_base64` (a client tells them apart by the key).
    mutating func appendJSONBytes(name: String, _ value: ByteString) {
        append(UInt8(ascii: "\""))
        append(contentsOf: name.utf8)
        if let text = value.text {
            appendASCII("\":")
            appendJSONString(text)
        } else {
            appendASCII("_base64\":\"")
            append(contentsOf: Base64.encode(value.bytes).utf8)
            append(UInt8(ascii: "\""))
        }
    }
}
