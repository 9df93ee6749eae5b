extension Config {
    /// Overlays the keys present in a parsed config file; absent keys keep their current value and `null`
    /// unsets `worker_path`, `exec.command` and `auth_token`. Does not validate ranges: call `validate()` after
    /// every layer is merged. On error `self` is unchanged.
    mutating func apply(file: JSONValue) throws(ConfigError) {
        guard let root = file.objectValue else { throw .wrongType(key: "(top level)", expected: "object") }
        let fields = Dictionary(uniqueKeysWithValues: Self.fields.map { ($0.key, $0.field) })
        var next = self
        for name in root.keys.sorted() {
            let value = root[name]!
            if Self.sections.contains(name) {
                guard let members = value.objectValue else { throw .wrongType(key: name, expected: "object") }
                for member in members.keys.sorted() {
                    let key = name + "." + member
                    guard let field = fields[key] else { throw .unknownKey(key) }
                    try field.assign(members[member]!, to: &next, key: key)
                }
            } else {
                guard let field = fields[name] else { throw .unknownKey(name) }
                try field.assign(value, to: &next, key: name)
            }
        }
        self = next
    }

    /// The whole configuration in the config file's nested format (what `--check-config` prints); a set
    /// `auth_token` is shown as `"***"`.
    var effectiveJSON: JSONValue {
        var root: [String: JSONValue] = [:]
        var sections: [String: [String: JSONValue]] = [:]
        for (key, field) in Self.fields {
            var value = field.value(in: self)
            if key == "auth_token" && value != .null { value = .string("***") }
            if key == "postgres.url", case .string(let url) = value { value = .string(Config.redactingPassword(url)) }
            if let dot = key.firstIndex(of: ".") {
                sections[String(key[..<dot]), default: [:]][String(key[key.index(after: dot)...])] = value
            } else {
                root[key] = value
            }
        }
        for (name, members) in sections { root[name] = .object(members) }
        return .object(root)
    }

    /// Names of the nested objects a config file may contain.
    private static let sections: Set<String> = [
        "journal", "backoff", "simulate", "exec", "program", "worker", "http", "retention", "callbacks", "queue",
        "postgres",
    ]

    /// Every config file key, dotted, with the property it sets; the single source for `apply` and `effectiveJSON`.
    private static var fields: [(key: String, field: ConfigField)] {
        [
            ("listen", .string(\.listen)),
            ("workers", .integer(\.workers)),
            ("queue_size", .integer(\.queueSize)),
            ("data_dir", .string(\.dataDir)),
            ("journal.fsync", .word(\.journalFsync)),
            ("journal.compact_bytes", .integer(\.journalCompactBytes)),
            ("job_timeout_ms", .integer(\.jobTimeoutMs)),
            ("shutdown_timeout_ms", .integer(\.shutdownTimeoutMs)),
            ("backoff.base_ms", .integer(\.backoffBaseMs)),
            ("backoff.max_ms", .integer(\.backoffMaxMs)),
            ("backoff.jitter", .number(\.backoffJitter)),
            ("handler", .word(\.handler)),
            ("worker_path", .optionalString(\.workerPath)),
            ("simulate.min_ms", .integer(\.simulateMinMs)),
            ("simulate.max_ms", .integer(\.simulateMaxMs)),
            ("simulate.fail_rate", .number(\.simulateFailRate)),
            ("simulate.directives", .bool(\.simulateDirectives)),
            ("exec.command", .stringList(\.execCommand)),
            ("program.command", .stringList(\.programCommand)),
            ("program.cwd", .optionalString(\.programCwd)),
            ("program.env", .stringMap(\.programEnv)),
            ("worker.max_jobs", .integer(\.workerMaxJobs)),
            ("worker.max_rss_mb", .integer(\.workerMaxRssMb)),
            ("worker.memory_limit_mb", .integer(\.workerMemoryLimitMb)),
            ("worker.cpu_limit_s", .integer(\.workerCpuLimitS)),
            ("worker.restart_delay_max_ms", .integer(\.workerRestartDelayMaxMs)),
            ("worker.start_timeout_ms", .integer(\.workerStartTimeoutMs)),
            ("max_payload_bytes", .integer(\.maxPayloadBytes)),
            ("max_result_bytes", .integer(\.maxResultBytes)),
            ("http.max_body_bytes", .integer(\.httpMaxBodyBytes)),
            ("http.max_header_bytes", .integer(\.httpMaxHeaderBytes)),
            ("http.max_connections", .integer(\.httpMaxConnections)),
            ("http.idle_timeout_ms", .integer(\.httpIdleTimeoutMs)),
            ("http.header_timeout_ms", .integer(\.httpHeaderTimeoutMs)),
            ("http.max_buffered_bytes", .integer(\.httpMaxBufferedBytes)),
            ("http.max_wait_ms", .integer(\.httpMaxWaitMs)),
            ("http.max_batch_jobs", .integer(\.httpMaxBatchJobs)),
            ("http.max_event_clients", .integer(\.httpMaxEventClients)),
            ("callbacks.allowed_hosts", .stringList(\.callbacksAllowedHosts)),
            ("callbacks.secret", .optionalString(\.callbacksSecret)),
            ("callbacks.timeout_ms", .integer(\.callbacksTimeoutMs)),
            ("callbacks.max_attempts", .integer(\.callbacksMaxAttempts)),
            ("callbacks.max_concurrent", .integer(\.callbacksMaxConcurrent)),
            ("schedules", .custom(
                get: { .array($0.schedules.map(\.json)) },
                set: { (config: inout Config, value: JSONValue) throws(ConfigError) in
                    guard case .array(let entries) = value else {
                        throw .wrongType(key: "schedules", expected: "array of objects")
                    }
                    var schedules: [ScheduleSpec] = []
                    for (index, entry) in entries.enumerated() {
                        schedules.append(try ScheduleSpec(entry, index: index))
                    }
                    config.schedules = schedules
                })),
            ("schedules_catch_up_ms", .integer(\.schedulesCatchUpMs)),
            ("timezone_offset", .string(\.timezoneOffset)),
            ("retention.max_finished", .integer(\.retentionMaxFinished)),
            ("retention.max_result_bytes", .integer(\.retentionMaxResultBytes)),
            ("auth_token", .optionalString(\.authToken)),
            ("log_level", .word(\.logLevel)),
            ("log_format", .word(\.logFormat)),
            ("log_requests", .bool(\.logRequests)),
            ("pidfile", .optionalString(\.pidfile)),
            ("queue.backend", .word(\.queueBackend)),
            ("postgres.url", .optionalString(\.postgresURL)),
            ("postgres.node_id", .optionalString(\.postgresNodeID)),
            ("postgres.lease_ms", .integer(\.postgresLeaseMs)),
            ("postgres.claim_batch", .integer(\.postgresClaimBatch)),
            ("postgres.prefetch", .integer(\.postgresPrefetch)),
            ("postgres.connect_timeout_ms", .integer(\.postgresConnectTimeoutMs)),
        ]
    }
}

/// How one config file key maps to a `Config` property.
private enum ConfigField {
    case integer(WritableKeyPath<Config, Int>)
    /// Accepts JSON integers too (`"fail_rate": 0`).
    case number(WritableKeyPath<Config, Double>)
    case bool(WritableKeyPath<Config, Bool>)
    case string(WritableKeyPath<Config, String>)
    case optionalString(WritableKeyPath<Config, String?>)
    case stringList(WritableKeyPath<Config, [String]?>)
    /// An object whose values are strings.
    case stringMap(WritableKeyPath<Config, [String: String]>)
    /// A value with its own parser (`schedules`).
    case custom(get: (Config) -> JSONValue, set: (inout Config, JSONValue) throws(ConfigError) -> Void)
    /// A string restricted to the raw values of an enum.
    case choice(get: (Config) -> String, set: (inout Config, String) -> Bool, choices: [String])

    /// A `.choice` for a property whose type is a `String`-backed enum.
    static func word<Word: RawRepresentable & CaseIterable>(_ path: WritableKeyPath<Config, Word>) -> ConfigField
    where Word.RawValue == String {
        .choice(
            get: { $0[keyPath: path].rawValue },
            set: { config, text in
                guard let word = Word(rawValue: text) else { return false }
                config[keyPath: path] = word
                return true
            },
            choices: Word.allCases.map(\.rawValue))
    }

    func assign(_ value: JSONValue, to config: inout Config, key: String) throws(ConfigError) {
        switch self {
        case .integer(let path):
            guard let number = value.integerValue else { throw .wrongType(key: key, expected: "integer") }
            config[keyPath: path] = number
        case .number(let path):
            guard let number = value.doubleValue else { throw .wrongType(key: key, expected: "number") }
            config[keyPath: path] = number
        case .bool(let path):
            guard let flag = value.boolValue else { throw .wrongType(key: key, expected: "boolean") }
            config[keyPath: path] = flag
        case .string(let path):
            guard let text = value.stringValue else { throw .wrongType(key: key, expected: "string") }
            config[keyPath: path] = text
        case .optionalString(let path):
            guard value == .null || value.stringValue != nil else {
                throw .wrongType(key: key, expected: "string or null")
            }
            config[keyPath: path] = value.stringValue
        case .stringList(let path):
            if value == .null {
                config[keyPath: path] = nil
                return
            }
            guard case .array(let elements) = value else {
                throw .wrongType(key: key, expected: "array of strings or null")
            }
            var list: [String] = []
            for element in elements {
                guard let text = element.stringValue else { throw .wrongType(key: key, expected: "array of strings") }
                list.append(text)
            }
            config[keyPath: path] = list
        case .stringMap(let path):
            guard case .object(let members) = value else { throw .wrongType(key: key, expected: "object of strings") }
            var map: [String: String] = [:]
            for (name, member) in members {
                guard let text = member.stringValue else {
                    throw .wrongType(key: key + "." + name, expected: "string")
                }
                map[name] = text
            }
            config[keyPath: path] = map
        case .custom(_, let set):
            try set(&config, value)
        case .choice(_, let set, let choices):
            guard let text = value.stringValue else { throw .wrongType(key: key, expected: "string") }
            guard set(&config, text) else {
                let allowed = choices.map { "\"\($0)\"" }.joined(separator: ", ")
                throw .outOfRange(key: key, message: "must be one of \(allowed), got \"\(text)\"")
            }
        }
    }

    func value(in config: Config) -> JSONValue {
        switch self {
        case .integer(let path): return .integer(config[keyPath: path])
        case .number(let path): return .double(config[keyPath: path])
        case .bool(let path): return .bool(config[keyPath: path])
        case .string(let path): return .string(config[keyPath: path])
        case .optionalString(let path): return config[keyPath: path].map(JSONValue.string) ?? .null
        case .stringList(let path): return config[keyPath: path].map { .array($0.map(JSONValue.string)) } ?? .null
        case .stringMap(let path): return .object(config[keyPath: path].mapValues(JSONValue.string))
        case .choice(let get, _, _): return .string(get(config))
        case .custom(let get, _): return get(config)
        }
    }
}
