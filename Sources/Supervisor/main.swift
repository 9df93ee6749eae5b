import Postgres
import System

// Entry point of `prefork`: load the configuration, open the journal, then run the supervisor until it has
// drained.

/// Writes `prefork: message` to stderr and exits with `code`.
func fail(_ message: String, code: Int32) -> Never {
    try? FileDescriptor.standardError.writeAll(Array("prefork: \(message)\n".utf8))
    Process.exit(code)
}

let environment = Posix.environmentDictionary()
let arguments = Array(CommandLine.arguments.dropFirst())
if let status = Commands.run(arguments, environment: environment) { Process.exit(status) }
let config: Config
let options: LaunchOptions
do throws(ConfigError) {
    (config, options) = try Config.load(arguments: arguments, environment: environment, readFile: Config.readFileFromDisk)
} catch {
    fail("configuration error: \(error)", code: 2)
}
if options.showHelp {
    print(Config.helpText)
    Process.exit(0)
}
if options.showVersion {
    print("prefork \(BuildInfo.version) (commit \(BuildInfo.commit))")
    Process.exit(0)
}
if let problem = config.programProblem(environment: environment) { fail("configuration error: \(problem)", code: 2) }
if config.queueBackend == .postgres {
    do throws(PostgresError) {
        _ = try PostgresLibrary.load()
    } catch {
        fail(error.description, code: 2)
    }
}
if options.checkConfig {
    if config.queueBackend == .postgres, let url = config.postgresURL {
        if let problem = PostgresCheck.connect(url, timeoutMilliseconds: config.postgresConnectTimeoutMs) {
            fail("postgres.url: \(problem)", code: 2)
        }
        try? FileDescriptor.standardError.writeAll(Array("postgres: connected to \(Config.redactingPassword(url))\n".utf8))
    }
    print(config.effectiveJSON.serialized(pretty: true))
    for line in config.scheduleSummary(now: SystemClock().wallMilliseconds()) {
        try? FileDescriptor.standardError.writeAll(Array((line + "\n").utf8))
    }
    Process.exit(0)
}
if options.checkJournal { Process.exit(JournalCheck.run(dataDirectory: config.dataDir)) }
guard let address = config.listenAddress else {
    fail("configuration error: listen must be IP:PORT, got \"\(config.listen)\"", code: 2)
}
let workerPath = config.workerPath ?? Config.defaultWorkerPath()
guard Posix.isExecutable(workerPath) else {
    fail("worker executable \(workerPath) is missing or not executable (set worker_path)", code: 2)
}

// Whatever our parent leaked to us (sockets, pipes) must not reach the workers.
Process.closeOnExecFrom(3)
let metrics = Metrics()
let logger = Logger(level: config.logLevel, format: config.logFormat)
logger.logsRequests = config.logRequests
let opened: JournalFile.Opened
do throws(JournalFile.OpenError) {
    opened = try JournalFile.open(directory: config.dataDir, now: SystemClock().wallMilliseconds())
} catch {
    fail(error.description, code: 2)
}
do throws(SystemError) {
    let journal = try Journal(
        directory: config.dataDir, opened: opened, syncMode: config.journalFsync,
        compactBytes: config.journalCompactBytes, logger: logger, metrics: metrics)
    let supervisor = try Supervisor(
        config: config, workerPath: workerPath, logger: logger, journal: journal, recovery: opened.recovery,
        metrics: metrics, launchArguments: arguments, launchEnvironment: environment)
    Process.exit(try supervisor.run(listenAddress: address))
} catch {
    logger.error("fatal", ["error": .string(error.description)])
    Process.exit(1)
}
