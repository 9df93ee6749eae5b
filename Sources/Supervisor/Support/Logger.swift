import System

/// A value in a log line.
enum LogValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    case string(String)
    case integer(Int64)
    case double(Double)
    case bool(Bool)
    case strings([String])
    case null

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int64) { self = .integer(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }

    /// A string, or null when nil.
    static func optional(_ text: String?) -> LogValue { text.map(LogValue.string) ?? .null }
    /// An integer of any width.
    static func int<T: BinaryInteger>(_ value: T) -> LogValue { .integer(Int64(value)) }
}

/// How log lines are written (`log_format`).
enum LogFormat: String, CaseIterable {
    /// One JSON object per line: `{"ts":...,"level":...,"event":..., fields...}`.
    case json
    /// For people: `2026-12-01T14:03:05.123Z INFO job_done id=job-1 attempt=2 duration_ms=12`.
    case text
    /// `text` when stderr is a terminal, `json` otherwise.
    case auto

    /// The format in effect: `auto` resolved against stderr.
    var resolved: LogFormat {
        guard self == .auto else { return self }
        return Posix.isTerminal(.standardError) ? .text : .json
    }
}

/// Writes one line per event to stderr, as JSON or as text (`log_format`).
///
/// Writes are blocking and synchronous: a line is either whole on stderr or not written, and ordering
/// matches the order of events on the loop.
final class Logger {
    /// Lines below this level are dropped.
    var level: LogLevel
    /// JSON or text (never `auto`: resolved when set).
    var format: LogFormat {
        didSet { format = format.resolved }
    }
    /// Whether `request` lines are written (`log_requests`).
    var logsRequests = true
    private let clock: Clock
    private var line: [UInt8] = []

    /// Creates a logger at `level`.
    init(level: LogLevel, format: LogFormat = .json, clock: Clock = SystemClock()) {
        self.level = level
        self.format = format.resolved
        self.clock = clock
        line.reserveCapacity(512)
    }

    /// Whether a line at `level` would be written (to skip building costly fields).
    @inline(__always)
    func enabled(_ level: LogLevel) -> Bool { level >= self.level }

    // The fields are autoclosures: a line below the level builds none of them (the job lines are on the
    // path of every job, where building their fields cost an allocation each).

    /// Logs at debug level.
    func debug(_ event: StaticString, _ fields: @autoclosure () -> KeyValuePairs<String, LogValue> = [:]) {
        if enabled(.debug) { write(.debug, event, fields()) }
    }

    /// Logs at info level.
    func info(_ event: StaticString, _ fields: @autoclosure () -> KeyValuePairs<String, LogValue> = [:]) {
        if enabled(.info) { write(.info, event, fields()) }
    }

    /// Logs at warn level.
    func warn(_ event: StaticString, _ fields: @autoclosure () -> KeyValuePairs<String, LogValue> = [:]) {
        if enabled(.warn) { write(.warn, event, fields()) }
    }

    /// Logs at info level whatever the configured level: lines a script must always find (the bound address).
    func announce(_ event: StaticString, _ fields: KeyValuePairs<String, LogValue> = [:]) {
        write(.info, event, fields, force: true)
    }

    /// Logs at error level.
    func error(_ event: StaticString, _ fields: @autoclosure () -> KeyValuePairs<String, LogValue> = [:]) {
        if enabled(.error) { write(.error, event, fields()) }
    }

    private func write(
        _ level: LogLevel, _ event: StaticString, _ fields: KeyValuePairs<String, LogValue>, force: Bool = false
    ) {
        guard force || enabled(level) else { return }
        line.removeAll(keepingCapacity: true)
        switch format {
        case .text, .auto: appendText(level, event, fields)
        case .json: appendJSON(level, event, fields)
        }
        // Blocking and synchronous: a line is either whole on stderr or not written. A stderr that is gone or
        // full and non-blocking drops the line rather than stall the loop.
        try? FileDescriptor.standardError.writeAll(line)
    }

    private func appendJSON(_ level: LogLevel, _ event: StaticString, _ fields: KeyValuePairs<String, LogValue>) {
        line.appendASCII("{\"ts\":")
        line.append(UInt8(ascii: "\""))
        line.appendRFC3339(milliseconds: clock.wallMilliseconds())
        line.append(UInt8(ascii: "\""))
        line.appendASCII(",\"level\":")
        line.appendJSONString(level.rawValue)
        line.appendASCII(",\"event\":\"")
        event.withUTF8Buffer { line.append(contentsOf: $0) }
        line.append(UInt8(ascii: "\""))
        for (key, value) in fields {
            line.append(UInt8(ascii: ","))
            line.appendJSONString(key)
            line.append(UInt8(ascii: ":"))
            switch value {
            case .string(let text): line.appendJSONString(text)
            case .integer(let number): line.appendDecimal(Int(number))
            case .double(let number): line.append(contentsOf: (number.isFinite ? "\(number)" : "null").utf8)
            case .bool(let flag): line.append(contentsOf: (flag ? "true" : "false").utf8)
            case .strings(let list):
                line.append(UInt8(ascii: "["))
                for (index, text) in list.enumerated() {
                    if index > 0 { line.append(UInt8(ascii: ",")) }
                    line.appendJSONString(text)
                }
                line.append(UInt8(ascii: "]"))
            case .null: line.appendASCII("null")
            }
        }
        line.appendASCII("}\n")
    }

    /// `<time> <LEVEL> <event> key=value ...`: values with spaces, quotes, `=` or control characters are quoted
    /// JSON strings, so a line stays one line and splits unambiguously.
    private func appendText(_ level: LogLevel, _ event: StaticString, _ fields: KeyValuePairs<String, LogValue>) {
        line.appendRFC3339(milliseconds: clock.wallMilliseconds())
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: level.rawValue.uppercased().utf8)
        line.append(UInt8(ascii: " "))
        event.withUTF8Buffer { line.append(contentsOf: $0) }
        for (key, value) in fields {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: key.utf8)
            line.append(UInt8(ascii: "="))
            switch value {
            case .string(let text): appendTextValue(text)
            case .integer(let number): line.appendDecimal(Int(number))
            case .double(let number):
                let rounded = (number * 1000).rounded() / 1000
                line.append(contentsOf: (rounded.isFinite ? "\(rounded)" : "null").utf8)
            case .bool(let flag): line.append(contentsOf: (flag ? "true" : "false").utf8)
            case .strings(let list): appendTextValue(list.joined(separator: ","))
            case .null: line.appendASCII("-")
            }
        }
        line.append(UInt8(ascii: "\n"))
    }

    private func appendTextValue(_ text: String) {
        let plain = !text.isEmpty && text.utf8.allSatisfy { $0 > 0x20 && $0 != 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "=") }
        if plain { line.append(contentsOf: text.utf8) } else { line.appendJSONString(text) }
    }
}
