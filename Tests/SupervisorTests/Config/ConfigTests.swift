import Testing

@testable import Supervisor
import System

@Suite struct ConfigTests {
    /// Loads with `file` served as the contents of `--config test.json` (added first when `file` is given).
    private func load(
        _ arguments: [String] = [], environment: [String: String] = [:], file: String? = nil
    ) throws(ConfigError) -> (Config, LaunchOptions) {
        let arguments = (file == nil ? [] : ["--config", "test.json"]) + arguments
        return try Config.load(arguments: arguments, environment: environment) {
            (path: String) throws(ConfigError) -> [UInt8] in
            guard let file else { throw .unreadableFile(path: path, reason: "no file in this test") }
            return Array(file.utf8)
        }
    }

    private func config(file: String) throws(ConfigError) -> Config {
        try load(file: file).0
    }

    @Test func defaultsWithNoFileEnvironmentOrFlags() throws {
        let (config, options) = try load()
        #expect(config == Config())
        #expect(options == LaunchOptions())
        #expect(config.listen == "127.0.0.1:8080")
        #expect(config.workers == 4 && config.queueSize == 64 && config.dataDir == "data")
        #expect(config.journalFsync == .batch && config.handler == .simulate && config.logLevel == .info)
        #expect(config.authToken == nil && config.execCommand == nil && config.workerPath == nil)
    }

    @Test func defaultConfigFileSpellsOutTheDefaults() throws {
        let path = String(#filePath.split(separator: "/Tests/").first!) + "/config/prefork.json"
        let (config, options) = try Config.load(
            arguments: ["--config", path], environment: [:], readFile: Config.readFileFromDisk)
        #expect(config == Config())
        #expect(options.configPath == path)
    }

    @Test func unreadableFileNamesThePathAndReason() {
        let path = "/nonexistent/prefork.json"
        #expect(throws: ConfigError.unreadableFile(path: path, reason: "No such file or directory")) {
            try Config.readFileFromDisk(path)
        }
    }

    /// One layered key: the file sets `file`, the environment `environment`, the flag `flag`.
    struct Layer: Sendable, CustomStringConvertible {
        var key: String
        var fileValue: String
        var environmentName: String
        var flag: String?
        var values: (file: String, environment: String, flag: String)
        var description: String { key }
    }

    static let layers: [Layer] = [
        Layer(
            key: "listen", fileValue: #""0.0.0.0:1""#, environmentName: "PREFORK_LISTEN", flag: "--listen",
            values: ("0.0.0.0:1", "0.0.0.0:2", "0.0.0.0:3")),
        Layer(
            key: "workers", fileValue: "5", environmentName: "WORKERS", flag: "--workers", values: ("5", "6", "7")),
        Layer(
            key: "queue_size", fileValue: "10", environmentName: "QUEUE_SIZE", flag: "--queue-size",
            values: ("10", "20", "30")),
        Layer(
            key: "data_dir", fileValue: #""file-dir""#, environmentName: "PREFORK_DATA_DIR", flag: "--data-dir",
            values: ("file-dir", "env-dir", "flag-dir")),
        Layer(
            key: "log_level", fileValue: #""warn""#, environmentName: "PREFORK_LOG_LEVEL", flag: nil,
            values: ("warn", "debug", "")),
        Layer(
            key: "auth_token", fileValue: #""file-token""#, environmentName: "PREFORK_AUTH_TOKEN", flag: nil,
            values: ("file-token", "env-token", "")),
    ]

    private static func layered(_ config: Config, _ key: String) -> String? {
        switch key {
        case "listen": return config.listen
        case "workers": return String(config.workers)
        case "queue_size": return String(config.queueSize)
        case "data_dir": return config.dataDir
        case "log_level": return config.logLevel.rawValue
        case "auth_token": return config.authToken
        default: return nil
        }
    }

    @Test(arguments: layers)
    func precedenceIsFileThenEnvironmentThenFlag(layer: Layer) throws {
        let file = "{\"\(layer.key)\": \(layer.fileValue)}"
        let environment = [layer.environmentName: layer.values.environment]
        #expect(Self.layered(try load(file: file).0, layer.key) == layer.values.file)
        #expect(Self.layered(try load(environment: environment, file: file).0, layer.key) == layer.values.environment)
        // An empty variable counts as unset.
        #expect(
            Self.layered(try load(environment: [layer.environmentName: ""], file: file).0, layer.key)
                == layer.values.file)
        guard let flag = layer.flag else { return }
        let flagged = try load([flag, layer.values.flag], environment: environment, file: file).0
        #expect(Self.layered(flagged, layer.key) == layer.values.flag)
        let equalsForm = try load(["\(flag)=\(layer.values.flag)"], environment: environment).0
        #expect(Self.layered(equalsForm, layer.key) == layer.values.flag)
    }

    @Test func acceptsEqualsFormForEveryFlag() throws {
        let arguments = [
            "--config=c.json", "--listen=0.0.0.0:0", "--workers=8", "--queue-size=9", "--data-dir=/tmp/x=y",
            "--check-config",
        ]
        let (config, options) = try Config.load(arguments: arguments, environment: [:]) {
            (path: String) throws(ConfigError) -> [UInt8] in Array("{}".utf8)
        }
        #expect(options == LaunchOptions(configPath: "c.json", checkConfig: true, showHelp: false))
        #expect(config.listen == "0.0.0.0:0" && config.workers == 8 && config.queueSize == 9)
        #expect(config.dataDir == "/tmp/x=y")
    }

    @Test func helpReturnsAtOnceWithoutReadingTheFile() throws {
        let (config, options) = try load(["--workers", "nonsense", "-h", "--bogus"], file: "not json")
        #expect(options.showHelp)
        #expect(config == Config())
        #expect(Config.helpText.contains("--queue-size") && Config.helpText.contains("PREFORK_AUTH_TOKEN"))
    }

    static let fileErrors: [(file: String, error: ConfigError)] = [
        (#"{"colour": 1}"#, .unknownKey("colour")),
        (#"{"base_ms": 1}"#, .unknownKey("base_ms")),
        (#"{"backoff": {"base": 1}}"#, .unknownKey("backoff.base")),
        (#"{"http": {"max_body_bytes": 1, "timeout": 2}}"#, .unknownKey("http.timeout")),
        (#"{"http": 5}"#, .wrongType(key: "http", expected: "object")),
        (#"[]"#, .wrongType(key: "(top level)", expected: "object")),
        (#"{"workers": "4"}"#, .wrongType(key: "workers", expected: "integer")),
        (#"{"workers": 4.0}"#, .wrongType(key: "workers", expected: "integer")),
        (#"{"listen": 8080}"#, .wrongType(key: "listen", expected: "string")),
        (#"{"simulate": {"fail_rate": "0.1"}}"#, .wrongType(key: "simulate.fail_rate", expected: "number")),
        (#"{"simulate": {"directives": 1}}"#, .wrongType(key: "simulate.directives", expected: "boolean")),
        (#"{"worker_path": 3}"#, .wrongType(key: "worker_path", expected: "string or null")),
        (#"{"exec": {"command": "ls"}}"#, .wrongType(key: "exec.command", expected: "array of strings or null")),
        (#"{"exec": {"command": ["ls", 1]}}"#, .wrongType(key: "exec.command", expected: "array of strings")),
        (#"{"handler": 1}"#, .wrongType(key: "handler", expected: "string")),
        (
            #"{"handler": "fork"}"#,
            .outOfRange(key: "handler", message: #"must be one of "simulate", "exec", "program", got "fork""#)
        ),
        (
            #"{"journal": {"fsync": "always"}}"#,
            .outOfRange(key: "journal.fsync", message: #"must be one of "batch", "none", got "always""#)
        ),
        (#"{"workers": 0}"#, .outOfRange(key: "workers", message: "must be between 1 and 256, got 0")),
        (#"{"workers": 257}"#, .outOfRange(key: "workers", message: "must be between 1 and 256, got 257")),
        (
            #"{"worker": {"memory_limit_mb": 16}}"#,
            .outOfRange(key: "worker.memory_limit_mb", message: "must be 0 (off) or at least 32, got 16")
        ),
        (
            #"{"max_payload_bytes": 5000000}"#,
            .outOfRange(key: "max_payload_bytes", message: "must be between 0 and 4000000, got 5000000")
        ),
        (#"{"queue_size": 0}"#, .outOfRange(key: "queue_size", message: "must be between 1 and 10000000, got 0")),
        (#"{"job_timeout_ms": -1}"#, .outOfRange(key: "job_timeout_ms", message: "must be >= 0, got -1")),
        (#"{"shutdown_timeout_ms": -1}"#, .outOfRange(key: "shutdown_timeout_ms", message: "must be >= 0, got -1")),
        (
            #"{"backoff": {"base_ms": 500, "max_ms": 100}}"#,
            .outOfRange(key: "backoff.max_ms", message: "must be >= backoff.base_ms (500), got 100")
        ),
        (
            #"{"backoff": {"jitter": 1.5}}"#,
            .outOfRange(key: "backoff.jitter", message: "must be between 0 and 1, got 1.5")
        ),
        (
            #"{"simulate": {"fail_rate": -0.1}}"#,
            .outOfRange(key: "simulate.fail_rate", message: "must be between 0 and 1, got -0.1")
        ),
        (
            #"{"simulate": {"min_ms": 10, "max_ms": 5}}"#,
            .outOfRange(key: "simulate.max_ms", message: "must be >= simulate.min_ms (10), got 5")
        ),
        (#"{"worker": {"max_jobs": -1}}"#, .outOfRange(key: "worker.max_jobs", message: "must be >= 0, got -1")),
        (
            #"{"http": {"max_header_bytes": 255}}"#,
            .outOfRange(key: "http.max_header_bytes", message: "must be >= 256, got 255")
        ),
        (#"{"handler": "exec"}"#, .outOfRange(key: "exec.command", message: #"is required when handler is "exec""#)),
        (
            #"{"handler": "exec", "exec": {"command": []}}"#,
            .outOfRange(key: "exec.command", message: "must start with a non-empty program name")
        ),
        (
            #"{"auth_token": ""}"#,
            .outOfRange(key: "auth_token", message: "must not be empty (use null to disable auth)")
        ),
        (
            #"{"listen": "localhost"}"#,
            .outOfRange(key: "listen", message: #"must be host:port with port 0-65535, got "localhost""#)
        ),
        (
            #"{"listen": "h:65536"}"#,
            .outOfRange(key: "listen", message: #"must be host:port with port 0-65535, got "h:65536""#)
        ),
        (
            #"{"listen": ":80"}"#,
            .outOfRange(key: "listen", message: #"must be host:port with port 0-65535, got ":80""#)
        ),
        (
            #"{"listen": "h:+80"}"#,
            .outOfRange(key: "listen", message: #"must be host:port with port 0-65535, got "h:+80""#)
        ),
        (
            #"{"listen": "::1:80"}"#,
            .outOfRange(key: "listen", message: #"must be host:port with port 0-65535, got "::1:80""#)
        ),
        (
            #"{"workers": 4,}"#,
            .invalidJSON(path: "test.json", JSONError(message: "expected string key", offset: 14))
        ),
    ]

    @Test(arguments: fileErrors)
    func rejectsBadConfigFileNamingTheKey(file: String, error: ConfigError) {
        #expect(throws: error) { try config(file: file) }
    }

    @Test func acceptsValidFileValues() throws {
        let config = try config(
            file: """
                {"listen": "[::1]:0", "simulate": {"fail_rate": 1, "directives": true}, "backoff": {"jitter": 0},
                 "handler": "exec", "exec": {"command": ["/bin/cat", "-"]}, "worker_path": null, "auth_token": null}
                """)
        #expect(config.simulateFailRate == 1 && config.simulateDirectives && config.backoffJitter == 0)
        #expect(config.handler == .exec && config.execCommand == ["/bin/cat", "-"])
        #expect(config.listenAddress == SocketAddress(host: "::1", port: 0))
        #expect(SocketAddress(parsing: "127.0.0.1:8080") == SocketAddress(host: "127.0.0.1", port: 8080))
    }

    @Test func nullUnsetsOptionalKeys() throws {
        var config = Config()
        config.authToken = "secret"
        config.workerPath = "/usr/bin/w"
        config.execCommand = ["x"]
        try config.apply(
            file: .object(["auth_token": .null, "worker_path": .null, "exec": .object(["command": .null])]))
        #expect(config == Config())
    }

    @Test func failedApplyLeavesConfigUnchanged() {
        var config = Config()
        #expect(throws: ConfigError.unknownKey("zzz")) {
            try config.apply(file: .object(["workers": .integer(9), "zzz": .null]))
        }
        #expect(config == Config())
    }

    static let environmentErrors: [(environment: [String: String], error: ConfigError)] = [
        (["WORKERS": "abc"], .badEnvironment(name: "WORKERS", value: "abc", reason: "expected an integer")),
        (["QUEUE_SIZE": "1e3"], .badEnvironment(name: "QUEUE_SIZE", value: "1e3", reason: "expected an integer")),
        (
            ["PREFORK_LOG_LEVEL": "loud"],
            .badEnvironment(
                name: "PREFORK_LOG_LEVEL", value: "loud", reason: "expected one of debug, info, warn, error")
        ),
        (
            ["WORKERS": "0"],
            .outOfRange(
                key: "workers", message: "must be between 1 and 256, got 0 (set by environment variable WORKERS)")
        ),
        (
            ["PREFORK_LISTEN": "nowhere"],
            .outOfRange(
                key: "listen",
                message:
                    #"must be host:port with port 0-65535, got "nowhere" (set by environment variable PREFORK_LISTEN)"#)
        ),
    ]

    @Test(arguments: environmentErrors)
    func rejectsBadEnvironmentNamingTheVariable(environment: [String: String], error: ConfigError) {
        #expect(throws: error) { try load(environment: environment) }
    }

    static let flagErrors: [(arguments: [String], error: ConfigError)] = [
        (["--wokers", "3"], .unknownFlag("--wokers")),
        (["--wokers=3"], .unknownFlag("--wokers")),
        (["serve"], .unknownFlag("serve")),
        (["-w", "3"], .unknownFlag("-w")),
        (["--workers"], .missingFlagValue("--workers")),
        (["--config", "--check-config"], .missingFlagValue("--config")),
        (["--workers=abc"], .badFlag(flag: "--workers", value: "abc", reason: "expected an integer")),
        (["--queue-size", ""], .badFlag(flag: "--queue-size", value: "", reason: "expected an integer")),
        (["--check-config=yes"], .badFlag(flag: "--check-config", value: "yes", reason: "takes no value")),
        (
            ["--workers", "300"],
            .outOfRange(key: "workers", message: "must be between 1 and 256, got 300 (set by flag --workers)")
        ),
        (["--config", "missing.json"], .unreadableFile(path: "missing.json", reason: "no file in this test")),
    ]

    @Test(arguments: flagErrors)
    func rejectsBadFlagNamingTheFlag(arguments: [String], error: ConfigError) {
        #expect(throws: error) { try load(arguments) }
    }

    @Test func flagOverridingABadEnvironmentValueIsBlamedOnItself() {
        let error = ConfigError.outOfRange(
            key: "workers", message: "must be between 1 and 256, got 0 (set by flag --workers)")
        #expect(throws: error) { try load(["--workers", "0"], environment: ["WORKERS": "300"]) }
    }

    @Test func effectiveJSONRoundTripsThroughApply() throws {
        var config = Config()
        config.listen = "0.0.0.0:0"
        config.workers = 9
        config.queueSize = 1000
        config.dataDir = "/var/lib/prefork"
        config.journalFsync = .none
        config.jobTimeoutMs = 1
        config.shutdownTimeoutMs = 0
        config.backoffBaseMs = 7
        config.backoffMaxMs = 70
        config.backoffJitter = 0.25
        config.handler = .exec
        config.workerPath = "/opt/prefork-worker"
        config.simulateMinMs = 1
        config.simulateMaxMs = 2
        config.simulateFailRate = 0.75
        config.simulateDirectives = true
        config.execCommand = ["/bin/sh", "-c", "cat \"$1\""]
        config.workerMaxJobs = 10
        config.workerMaxRssMb = 11
        config.workerMemoryLimitMb = 128
        config.workerCpuLimitS = 13
        config.workerRestartDelayMaxMs = 14
        config.maxPayloadBytes = 15
        config.httpMaxBodyBytes = 16
        config.httpMaxHeaderBytes = 1700
        config.httpMaxConnections = 18
        config.httpIdleTimeoutMs = 19
        config.httpHeaderTimeoutMs = 20
        config.retentionMaxFinished = 21
        config.logLevel = .debug
        try config.validate()

        var restored = Config()
        try restored.apply(file: config.effectiveJSON)
        #expect(restored == config)
        var reparsed = Config()
        try reparsed.apply(file: JSONParser.parse(Array(config.effectiveJSON.serialized(pretty: true).utf8)))
        #expect(reparsed == config)
    }

    @Test func effectiveJSONMasksTheAuthTokenAndNestsSections() {
        var config = Config()
        #expect(config.effectiveJSON["auth_token"] == .null)
        config.authToken = "secret"
        #expect(config.effectiveJSON["auth_token"] == .string("***"))
        #expect(config.effectiveJSON["backoff"]?["max_ms"] == .integer(10_000))
        #expect(config.effectiveJSON["journal"]?["fsync"] == .string("batch"))
        #expect(config.effectiveJSON["exec"]?["command"] == .null)
    }

    @Test func errorDescriptionsNameTheCulprit() {
        let cases: [(ConfigError, String)] = [
            (.unknownKey("backoff.base"), #"config: unknown key "backoff.base""#),
            (
                .wrongType(key: "workers", expected: "integer"),
                #"config: "workers" has the wrong type, expected integer"#
            ),
            (
                .outOfRange(key: "simulate.fail_rate", message: "must be between 0 and 1, got 2.0"),
                #"config: "simulate.fail_rate" must be between 0 and 1, got 2.0"#
            ),
            (
                .invalidJSON(path: "c.json", JSONError(message: "expected ':' after object key", offset: 12)),
                "config file c.json: invalid JSON at byte 12: expected ':' after object key"
            ),
            (
                .unreadableFile(path: "c.json", reason: "Permission denied"),
                "cannot read config file c.json: Permission denied"
            ),
            (
                .badEnvironment(name: "WORKERS", value: "x", reason: "expected an integer"),
                #"environment variable WORKERS="x": expected an integer"#
            ),
            (
                .badFlag(flag: "--workers", value: "x", reason: "expected an integer"),
                #"flag --workers "x": expected an integer"#
            ),
            (.unknownFlag("--nope"), #"unknown flag "--nope" (see --help)"#),
            (.missingFlagValue("--listen"), "flag --listen needs a value"),
        ]
        for (error, text) in cases {
            #expect(error.description == text)
        }
    }

    @Test func logLevelsAreOrderedByVerbosity() {
        #expect(LogLevel.debug < .info && LogLevel.info < .warn && LogLevel.warn < .error)
        #expect(!(LogLevel.error < .debug))
    }
}
