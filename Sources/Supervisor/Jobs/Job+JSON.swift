extension Job {
    /// Appends the job record as the API shows it (README, "API").
    func appendJSON(to buffer: inout [UInt8]) {
        buffer.appendASCII("{\"id\":")
        buffer.appendJSONString(id)
        buffer.appendASCII(",\"state\":\"")
        buffer.append(contentsOf: state.rawValue.utf8)
        buffer.appendASCII("\",\"attempts\":")
        buffer.appendDecimal(attempts)
        buffer.appendASCII(",\"max_retries\":")
        buffer.appendDecimal(maxRetries)
        buffer.appendASCII(",\"last_error\":")
        buffer.appendJSONString(orNull: lastError)
        buffer.appendASCII(",\"result\":")
        buffer.appendJSONString(orNull: result)
        buffer.appendASCII(",\"created_at\":")
        buffer.appendQuotedRFC3339(milliseconds: createdAt)
        buffer.appendASCII(",\"updated_at\":")
        buffer.appendQuotedRFC3339(milliseconds: updatedAt)
        buffer.appendASCII(",\"next_attempt_at\":")
        if let nextAttemptAt {
            buffer.appendQuotedRFC3339(milliseconds: nextAttemptAt)
        } else {
            buffer.appendASCII("null")
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// The record as a JSON document with a trailing newline.
    var jsonBody: [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(256 + id.utf8.count + (result?.utf8.count ?? 0) + (lastError?.utf8.count ?? 0))
        appendJSON(to: &buffer)
        buffer.append(UInt8(ascii: "\n"))
        return buffer
    }
}

extension [UInt8] {
    /// Appends a timestamp as a JSON string (RFC 3339 needs no escaping).
    fileprivate mutating func appendQuotedRFC3339(milliseconds: Int64) {
        append(UInt8(ascii: "\""))
        appendRFC3339(milliseconds: milliseconds)
        append(UInt8(ascii: "\""))
    }
}
