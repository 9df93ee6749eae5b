/// One periodic job from the config's `schedules`: a cron expression and the job each tick enqueues.
struct ScheduleSpec: Equatable {
    /// Unique name, 1-64 of `A-Z a-z 0-9 . _ -`; each tick's job id is `<name>@<RFC 3339 minute>`.
    var name: String
    /// The expression as written.
    var cronText: String
    /// The parsed expression.
    var cron: CronExpression
    /// The payload of each tick's job.
    var payload: ByteString
    /// `max_retries` of each tick's job.
    var maxRetries = 0
    /// `timeout_ms` of each tick's job; nil uses `job_timeout_ms`.
    var timeoutMilliseconds: Int?
    /// `priority` of each tick's job.
    var priority = 0

    /// The id of the job the tick at `at` (epoch milliseconds, a whole minute) enqueues.
    func jobID(tick at: Int64) -> String {
        var text = [UInt8]()
        text.appendRFC3339(milliseconds: at)
        // Whole minutes: "2026-12-02T03:00:00.000Z" is written "2026-12-02T03:00:00Z".
        text.removeSubrange(19..<23)
        return name + "@" + String(decoding: text, as: UTF8.self)
    }

    /// Parses one entry of `schedules`; errors name `schedules[index].field`.
    init(_ value: JSONValue, index: Int) throws(ConfigError) {
        let key = "schedules[\(index)]"
        guard case .object(let fields) = value else { throw .wrongType(key: key, expected: "object") }
        for name in fields.keys.sorted()
        where !["name", "cron", "payload", "payload_base64", "max_retries", "timeout_ms", "priority"].contains(name) {
            throw .unknownKey("\(key).\(name)")
        }
        guard let name = fields["name"]?.stringValue else { throw .wrongType(key: key + ".name", expected: "string") }
        guard (1...64).contains(name.utf8.count),
            name.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else {
            throw .outOfRange(key: key + ".name", message: "must be 1-64 of A-Z a-z 0-9 . _ -, got \"\(name)\"")
        }
        guard let cronText = fields["cron"]?.stringValue else {
            throw .wrongType(key: key + ".cron", expected: "string")
        }
        do throws(CronError) {
            cron = try CronExpression(parsing: cronText)
        } catch {
            throw .outOfRange(key: key + ".cron", message: error.description)
        }
        switch (fields["payload"], fields["payload_base64"]) {
        case (nil, nil): payload = .empty
        case (let text?, nil):
            guard let text = text.stringValue else { throw .wrongType(key: key + ".payload", expected: "string") }
            payload = ByteString(text)
        case (nil, let encoded?):
            guard let text = encoded.stringValue, let bytes = Base64.decode(text) else {
                throw .wrongType(key: key + ".payload_base64", expected: "base64 string")
            }
            payload = ByteString(bytes)
        case (.some, .some):
            throw .outOfRange(key: key + ".payload", message: "give either payload or payload_base64, not both")
        }
        self.name = name
        self.cronText = cronText
        maxRetries = try Self.integer(fields, "max_retries", key: key, in: 0...EnqueueRequest.maximumRetries) ?? 0
        timeoutMilliseconds = try Self.integer(
            fields, "timeout_ms", key: key, in: 1...EnqueueRequest.maximumTimeoutMilliseconds)
        priority = try Self.integer(fields, "priority", key: key, in: JobSpec.priorities) ?? 0
    }

    /// The entry as the config file writes it (`--check-config`).
    var json: JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(name), "cron": .string(cronText), "max_retries": .integer(maxRetries),
            "priority": .integer(priority), "timeout_ms": timeoutMilliseconds.map(JSONValue.integer) ?? .null,
        ]
        if let text = payload.text {
            object["payload"] = .string(text)
        } else {
            object["payload_base64"] = .string(Base64.encode(payload.bytes))
        }
        return .object(object)
    }

    private static func integer(
        _ fields: [String: JSONValue], _ name: String, key: String, in range: ClosedRange<Int>
    ) throws(ConfigError) -> Int? {
        guard let value = fields[name], value != .null else { return nil }
        guard let number = value.integerValue else { throw .wrongType(key: "\(key).\(name)", expected: "integer") }
        guard range.contains(number) else {
            throw .outOfRange(
                key: "\(key).\(name)", message: "must be between \(range.lowerBound) and \(range.upperBound), got \(number)")
        }
        return number
    }
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}

/// A fixed offset from UTC: `Z`, `+02:00` or `-05:30` (`timezone_offset`).
enum UTCOffset {
    /// The offset in minutes, or nil when `text` is not of that form.
    static func minutes(_ text: String) -> Int? {
        if text == "Z" || text == "UTC" { return 0 }
        let bytes = Array(text.utf8)
        guard bytes.count == 6, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-"), bytes[3] == UInt8(ascii: ":"),
            let hours = Int(String(decoding: bytes[1..<3], as: UTF8.self)),
            let minutes = Int(String(decoding: bytes[4..<6], as: UTF8.self)), (0...23).contains(hours), (0...59).contains(minutes)
        else { return nil }
        let total = hours * 60 + minutes
        return bytes[0] == UInt8(ascii: "-") ? -total : total
    }
}
