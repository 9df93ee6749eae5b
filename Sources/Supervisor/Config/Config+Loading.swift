import Glibc
import System

/// What the command line asks for besides configuration values.
struct LaunchOptions: Equatable {
    /// `--config PATH`: the JSON config file to read, if any.
    var configPath: String?
    /// `--check-config`: print the effective config as JSON and exit.
    var checkConfig = false
    /// `--help` / `-h`: print `Config.helpText` and exit.
    var showHelp = false
    /// `--check-journal`: report what a start would find in `data_dir`'s journal and exit.
    var checkJournal = false
    /// `--version`: print the version and exit.
    var showVersion = false
}

extension Config {
    /// Builds the effective config: defaults < config file < environment < flags, then `validate()`.
    /// `arguments` excludes argv[0]; `readFile` is injected so tests need no files. When `--help` or `-h` is
    /// seen, returns the defaults at once with `showHelp` set and reads nothing else.
    static func load(
        arguments: [String], environment: [String: String],
        readFile: (String) throws(ConfigError) -> [UInt8]
    ) throws(ConfigError) -> (Config, LaunchOptions) {
        let (options, flags) = try parseArguments(arguments)
        var config = Config()
        if options.showHelp { return (config, options) }
        if let path = options.configPath {
            let bytes = try readFile(path)
            let file: JSONValue
            do throws(JSONError) {
                file = try JSONParser.parse(bytes)
            } catch {
                throw .invalidJSON(path: path, error)
            }
            try config.apply(file: file)
        }
        // Which layer set each layered key last, so range errors can name the variable or flag.
        var origins: [String: String] = [:]
        for (name, key) in environmentKeys {
            guard let value = environment[name], !value.isEmpty else { continue }
            guard let reason = config.setLayered(key, to: value) else {
                origins[key] = "environment variable \(name)"
                continue
            }
            throw .badEnvironment(name: name, value: value, reason: reason)
        }
        for (flag, value) in flags {
            let key = flagKeys[flag]!
            if let reason = config.setLayered(key, to: value) {
                throw .badFlag(flag: flag, value: value, reason: reason)
            }
            origins[key] = "flag \(flag)"
        }
        do throws(ConfigError) {
            try config.validate()
        } catch .outOfRange(let key, let message) where origins[key] != nil {
            throw .outOfRange(key: key, message: "\(message) (set by \(origins[key]!))")
        }
        return (config, options)
    }

    /// Reads a whole config file; the error names the path and carries `strerror`'s text.
    static func readFileFromDisk(_ path: String) throws(ConfigError) -> [UInt8] {
        let maximumSize = 16 << 20
        do throws(SystemError) {
            return try Posix.readFile(path, limit: maximumSize)
        } catch where error.errno == EFBIG {
            throw .unreadableFile(path: path, reason: "larger than \(maximumSize) bytes")
        } catch {
            throw .unreadableFile(path: path, reason: error.message)
        }
    }

    /// Usage text for `--help`.
    static let helpText = """
        usage: prefork [--config PATH] [--listen HOST:PORT] [--workers N] [--queue-size N] [--data-dir DIR]
                       [--log-format F] [--log-level L] [--check-config] [--check-journal] [--version] [--help]
               prefork journal check DATA_DIR

        flags (also accepted as --flag=value):
          --config PATH        read the JSON config file PATH (see config/prefork.json)
          --listen HOST:PORT   address to serve HTTP on; port 0 picks a free port (default 127.0.0.1:8080)
          --workers N          number of worker processes, 1-256 (default 4)
          --queue-size N       maximum number of queued jobs (default 64)
          --data-dir DIR       directory for the journal (default data)
          --log-format F       json, text, or auto: text on a terminal, JSON otherwise (default auto)
          --log-level L        debug, info, warn or error (default info)
          --check-config       print the effective configuration as JSON and exit
          --check-journal      report what a start would find in data_dir's journal (and repair), change nothing
          --version            print the version and the build's commit, and exit
          -h, --help           print this help and exit

        commands:
          journal check DIR    the same report as --check-journal for the data directory DIR; exit 0 when the
                               journal is whole, 1 when a start would repair it, 2 when a start would refuse it
          submit, job, jobs, cancel, retry, pause, resume
                               the command-line client of a running supervisor (prefork submit --help)
          ctl reload|stop|scale N|status
                               signal the supervisor that owns a data directory (prefork ctl --help)

        environment (overrides the config file, overridden by flags; empty values are ignored):
          PREFORK_LISTEN, WORKERS, QUEUE_SIZE, PREFORK_DATA_DIR, PREFORK_LOG_LEVEL, PREFORK_LOG_FORMAT,
          PREFORK_AUTH_TOKEN, PREFORK_QUEUE_BACKEND, PREFORK_POSTGRES_URL, PREFORK_NODE_ID

        precedence: defaults < config file < environment < flags.
        Every config file key is described in README.md ("Configuration").
        """

    /// Environment variables and the config key each one sets, in the order they are applied.
    private static let environmentKeys: [(name: String, key: String)] = [
        ("PREFORK_LISTEN", "listen"), ("WORKERS", "workers"), ("QUEUE_SIZE", "queue_size"),
        ("PREFORK_DATA_DIR", "data_dir"), ("PREFORK_LOG_LEVEL", "log_level"), ("PREFORK_AUTH_TOKEN", "auth_token"),
        ("PREFORK_LOG_FORMAT", "log_format"), ("PREFORK_QUEUE_BACKEND", "queue.backend"),
        ("PREFORK_POSTGRES_URL", "postgres.url"), ("PREFORK_NODE_ID", "postgres.node_id"),
    ]

    /// Flags that set a config key.
    private static let flagKeys: [String: String] = [
        "--listen": "listen", "--workers": "workers", "--queue-size": "queue_size", "--data-dir": "data_dir",
        "--log-format": "log_format", "--log-level": "log_level",
    ]

    /// Splits the command line into launch options and (flag, value) pairs for config keys, in order.
    private static func parseArguments(
        _ arguments: [String]
    ) throws(ConfigError) -> (LaunchOptions, [(flag: String, value: String)]) {
        var options = LaunchOptions()
        var flags: [(flag: String, value: String)] = []
        var position = 0
        while position < arguments.count {
            let argument = arguments[position]
            position += 1
            if argument == "--help" || argument == "-h" {
                options.showHelp = true
                return (options, flags)
            }
            var flag = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                flag = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            if flag == "--check-config" || flag == "--check-journal" || flag == "--version" {
                if let inlineValue { throw .badFlag(flag: flag, value: inlineValue, reason: "takes no value") }
                switch flag {
                case "--check-config": options.checkConfig = true
                case "--check-journal": options.checkJournal = true
                default: options.showVersion = true
                }
                continue
            }
            guard flag == "--config" || flagKeys[flag] != nil else { throw .unknownFlag(flag) }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else if position < arguments.count && !arguments[position].hasPrefix("--") {
                value = arguments[position]
                position += 1
            } else {
                throw .missingFlagValue(flag)
            }
            if flag == "--config" { options.configPath = value } else { flags.append((flag, value)) }
        }
        return (options, flags)
    }

    /// Sets one of the keys that environment variables and flags can set; returns why `text` is bad, else nil.
    private mutating func setLayered(_ key: String, to text: String) -> String? {
        switch key {
        case "listen": listen = text
        case "data_dir": dataDir = text
        case "auth_token": authToken = text
        case "workers", "queue_size":
            guard let number = Int(text) else { return "expected an integer" }
            if key == "workers" { workers = number } else { queueSize = number }
        case "log_level":
            guard let level = LogLevel(rawValue: text) else {
                return "expected one of " + LogLevel.allCases.map(\.rawValue).joined(separator: ", ")
            }
            logLevel = level
        case "postgres.url":
            postgresURL = text
        case "postgres.node_id":
            postgresNodeID = text
        case "queue.backend":
            guard let backend = QueueBackend(rawValue: text) else {
                return "expected one of " + QueueBackend.allCases.map(\.rawValue).joined(separator: ", ")
            }
            queueBackend = backend
        case "log_format":
            guard let format = LogFormat(rawValue: text) else {
                return "expected one of " + LogFormat.allCases.map(\.rawValue).joined(separator: ", ")
            }
            logFormat = format
        default:
            preconditionFailure("no layered key \(key)")
        }
        return nil
    }
}
