import CLinux
import Glibc

/// Entry point of `prefork`: load the configuration, then run the supervisor until it has drained.

/// The process environment as a dictionary.
func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var cursor = environ
    while let entry = cursor.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        cursor += 1
    }
    return result
}

/// `prefork-worker` beside this executable (resolved through /proc/self/exe).
func defaultWorkerPath() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard length > 0 else { return "prefork-worker" }
    let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let slash = path.lastIndex(of: "/") else { return "prefork-worker" }
    return String(path[...slash]) + "prefork-worker"
}

func fail(_ message: String, code: Int32) -> Never {
    let line = "prefork: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(code)
}

let config: Config
let options: LaunchOptions
do throws(ConfigError) {
    (config, options) = try Config.load(
        arguments: Array(CommandLine.arguments.dropFirst()), environment: currentEnvironment(),
        readFile: Config.readFileFromDisk)
} catch {
    fail("configuration error: \(error)", code: 2)
}
if options.showHelp {
    print(Config.helpText)
    exit(0)
}
if options.checkConfig {
    print(config.effectiveJSON.serialized(pretty: true))
    exit(0)
}
guard let address = Socket.Address(config.listen) else {
    fail("configuration error: listen must be HOST:PORT, got \"\(config.listen)\"", code: 2)
}
let workerPath = config.workerPath ?? defaultWorkerPath()
guard access(workerPath, X_OK) == 0 else {
    fail("worker executable \(workerPath) is missing or not executable (set worker_path)", code: 2)
}

// Whatever our parent leaked to us (sockets, pipes) must not reach the workers.
_ = c_cloexec_from(3)
let logger = Logger(level: config.logLevel)
let journal: Journal
// Optional so it can be released once handed over: replay needs every record once, then never again.
var recovery: Journal.Recovery?
do throws(Journal.OpenError) {
    (journal, recovery) = try Journal.open(directory: config.dataDir, syncMode: config.journalFsync)
} catch {
    fail(error.description, code: 2)
}
do throws(SystemError) {
    let supervisor = try Supervisor(
        config: config, workerPath: workerPath, logger: logger, journal: journal, recovery: recovery!,
        launchArguments: Array(CommandLine.arguments.dropFirst()), launchEnvironment: currentEnvironment())
    recovery = nil
    exit(try supervisor.run(listenAddress: address))
} catch {
    logger.error("fatal", ["error": .string(error.description)])
    exit(1)
}
