extension Job {
    /// How much of the record a reply shows.
    enum JSONDetail {
        /// Everything but the payload: lists, `202`s, events.
        case summary
        /// Everything, the payload too: `GET /jobs/{id}`.
        case full
    }

    /// Appends the job record as the API shows it (README, "API"). `progress` is what the running attempt last
    /// reported.
    func appendJSON(to buffer: inout [UInt8], detail: JSONDetail = .summary, progress: JobProgress? = nil) {
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
        buffer.append(UInt8(ascii: ","))
        appendBytes(name: "result", result, to: &buffer)
        buffer.appendASCII(",\"result_truncated\":")
        buffer.appendASCII(resultTruncated ? "true" : "false")
        buffer.appendASCII(",\"created_at\":")
        buffer.appendQuotedRFC3339(milliseconds: createdAt)
        buffer.appendASCII(",\"updated_at\":")
        buffer.appendQuotedRFC3339(milliseconds: updatedAt)
        buffer.appendASCII(",\"next_attempt_at\":")
        buffer.appendQuotedRFC3339(orNull: nextAttemptAt)
        buffer.appendASCII(",\"priority\":")
        buffer.appendDecimal(priority)
        buffer.appendASCII(",\"timeout_ms\":")
        if let timeoutMilliseconds { buffer.appendDecimal(timeoutMilliseconds) } else { buffer.appendASCII("null") }
        buffer.appendASCII(",\"progress\":")
        if state == .running, let progress {
            buffer.appendASCII("{\"percent\":")
            buffer.appendDecimal(progress.percent)
            buffer.appendASCII(",\"note\":")
            buffer.appendJSONString(progress.note)
            buffer.append(UInt8(ascii: "}"))
        } else {
            buffer.appendASCII("null")
        }
        buffer.appendASCII(",\"callback_url\":")
        buffer.appendJSONString(orNull: callbackURL)
        buffer.appendASCII(",\"callback\":")
        if let callback {
            buffer.appendASCII("{\"state\":\"")
            buffer.append(contentsOf: callback.state.rawValue.utf8)
            buffer.appendASCII("\",\"attempts\":")
            buffer.appendDecimal(callback.attempts)
            buffer.appendASCII(",\"last_error\":")
            buffer.appendJSONString(orNull: callback.lastError)
            buffer.append(UInt8(ascii: "}"))
        } else if callbackURL != nil && state.isFinished {
            buffer.appendASCII("{\"state\":\"pending\",\"attempts\":0,\"last_error\":null}")
        } else {
            buffer.appendASCII("null")
        }
        buffer.appendASCII(",\"history\":[")
        for (index, entry) in history.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            entry.appendJSON(to: &buffer)
        }
        buffer.append(UInt8(ascii: "]"))
        if case .full = detail {
            buffer.append(UInt8(ascii: ","))
            appendBytes(name: "payload", payload, to: &buffer)
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// The record as a JSON document with a trailing newline.
    func jsonBody(detail: JSONDetail = .summary, progress: JobProgress? = nil) -> [UInt8] {
        var buffer: [UInt8] = []
        var size = 512 + id.utf8.count + (result?.count ?? 0) + (lastError?.utf8.count ?? 0)
        if case .full = detail { size += payload.count }
        for entry in history { size += 160 + entry.stderr.count + (entry.error?.utf8.count ?? 0) }
        buffer.reserveCapacity(size)
        appendJSON(to: &buffer, detail: detail, progress: progress)
        buffer.append(UInt8(ascii: "\n"))
        return buffer
    }

    /// The record's summary as a JSON document.
    var jsonBody: [UInt8] { jsonBody() }

    /// `"name":"text"` for valid UTF-8, `"name":null,"name_base64":"..."` for other bytes, `"name":null` for none.
    private func appendBytes(name: String, _ value: ByteString?, to buffer: inout [UInt8]) {
        guard let value else {
            buffer.append(UInt8(ascii: "\""))
            buffer.append(contentsOf: name.utf8)
            buffer.appendASCII("\":null")
            return
        }
        if value.text == nil {
            buffer.append(UInt8(ascii: "\""))
            buffer.append(contentsOf: name.utf8)
            buffer.appendASCII("\":null,")
        }
        buffer.appendJSONBytes(name: name, value)
    }
}

extension AttemptRecord {
    /// One entry of a record's `history`.
    func appendJSON(to buffer: inout [UInt8]) {
        buffer.appendASCII("{\"attempt\":")
        buffer.appendDecimal(attempt)
        buffer.appendASCII(",\"started_at\":")
        buffer.appendQuotedRFC3339(milliseconds: startedAt)
        buffer.appendASCII(",\"finished_at\":")
        buffer.appendQuotedRFC3339(orNull: finishedAt)
        buffer.appendASCII(",\"worker_pid\":")
        if workerPID != 0 { buffer.appendDecimal(Int(workerPID)) } else { buffer.appendASCII("null") }
        buffer.appendASCII(",\"outcome\":")
        if let outcome {
            buffer.append(UInt8(ascii: "\""))
            buffer.append(contentsOf: outcome.rawValue.utf8)
            buffer.append(UInt8(ascii: "\""))
        } else {
            buffer.appendASCII("null")
        }
        buffer.appendASCII(",\"error\":")
        buffer.appendJSONString(orNull: error)
        buffer.appendASCII(",\"stderr\":")
        if stderr.isEmpty {
            buffer.appendASCII("null")
        } else {
            buffer.appendJSONString(String(decoding: stderr, as: UTF8.self))
        }
        buffer.append(UInt8(ascii: "}"))
    }
}

extension [UInt8] {
    /// Appends a timestamp as a JSON string (RFC 3339 needs no escaping).
    mutating func appendQuotedRFC3339(milliseconds: Int64) {
        append(UInt8(ascii: "\""))
        appendRFC3339(milliseconds: milliseconds)
        append(UInt8(ascii: "\""))
    }

    /// Appends a timestamp as a JSON string, or `null`.
    mutating func appendQuotedRFC3339(orNull milliseconds: Int64?) {
        if let milliseconds { appendQuotedRFC3339(milliseconds: milliseconds) } else { appendASCII("null") }
    }
}
