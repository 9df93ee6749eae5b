import Foundation
import Glibc
import Synchronization

// Integration tests run the real `prefork` and `prefork-worker` binaries. From the package root:
//     swift build --build-tests && swift test --filter IntegrationTests
// or against binaries elsewhere: PREFORK_BIN_DIR=/path/to/bin swift test --skip-build.
// PREFORK_TEST_LOGS=1 echoes every supervisor log line to the test runner's stderr.

/// A running `prefork` supervisor started for one test: temp config and data dir, `--listen 127.0.0.1:0`,
/// stderr log lines collected in the background. Call `terminateAndReap()` when done (also done on deinit).
final class PreforkProcess: Sendable {
    /// Fast settings for tests: millisecond jobs and backoff, directives on.
    static var defaultConfig: [String: Any] {
        [
            "workers": 2,
            "job_timeout_ms": 2000,
            "shutdown_timeout_ms": 3000,
            "backoff": ["base_ms": 1, "max_ms": 5],
            "simulate": ["min_ms": 1, "max_ms": 3, "fail_rate": 0, "directives": true],
        ]
    }

    /// The supervisor's pid.
    let pid: pid_t
    /// The port from the first `listening` log line.
    let port: UInt16
    /// The temp dir holding `config.json`; also the data dir.
    let directory: TemporaryDirectory
    /// The path of the config file passed with `--config`.
    let configPath: String
    /// The supervisor's stderr (JSON log lines).
    let stderr: LineCollector
    /// The supervisor's stdout.
    let stdout: LineCollector

    private let exitStatus = Mutex<ExitStatus?>(nil)
    /// The stderr lines parsed so far (see `logEvents`).
    private let parsedEvents = Mutex(ParsedEvents())
    private let keepsDirectory = Mutex(false)

    private init(child: SpawnedChild, port: UInt16, directory: TemporaryDirectory, configPath: String) {
        pid = child.pid
        self.port = port
        self.directory = directory
        self.configPath = configPath
        stderr = child.stderr
        stdout = child.stdout
    }

    deinit { terminateAndReap() }

    /// Starts a supervisor with `defaultConfig` deep-merged with `config`, plus extra `arguments` and
    /// `environment`, and waits (10 s) for its `listening` line.
    static func start(
        config: [String: Any] = [:],
        arguments: [String] = [],
        environment: [String: String] = [:],
        wrapper: [String] = []
    ) async throws -> PreforkProcess {
        let directory = try TemporaryDirectory()
        let fullConfig = deepMerge(defaultConfig.merging(["data_dir": directory.path]) { $1 }, config)
        let configPath = try directory.writeJSON(fullConfig, to: "config.json")
        return try await start(
            in: directory, configPath: configPath, arguments: arguments, environment: environment, wrapper: wrapper)
    }

    /// Starts a supervisor on an existing directory and config file (e.g. to restart on the same data dir).
    /// `wrapper` runs the supervisor through another program that execs it (e.g. `prlimit ... --`).
    static func start(
        in directory: TemporaryDirectory,
        configPath: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        wrapper: [String] = []
    ) async throws -> PreforkProcess {
        let child: SpawnedChild
        do {
            let command = wrapper + [Binaries.supervisor, "--config", configPath, "--listen", "127.0.0.1:0"] + arguments
            child = try Spawn.start(
                executable: command[0],
                arguments: Array(command.dropFirst()),
                environment: environment,
                echoPrefix: Binaries.echoPrefix)
        } catch {
            directory.remove()
            throw error
        }
        do {
            let port = try await waitForListeningPort(child)
            return PreforkProcess(child: child, port: port, directory: directory, configPath: configPath)
        } catch {
            kill(child.pid, SIGKILL)
            _ = Spawn.reap(child.pid)
            directory.remove()
            throw error
        }
    }

    private static func waitForListeningPort(_ child: SpawnedChild) async throws -> UInt16 {
        let output = { "stderr:\n" + child.stderr.text + "\nstdout:\n" + child.stdout.text }
        return try await eventuallyValue(
            "a \"listening\" log line from \(Binaries.supervisor)", timeout: .seconds(10), context: output
        ) {
            for line in child.stderr.lines {
                // JSON lines, or text lines: `<time> INFO listening addr=127.0.0.1:PORT ...`.
                let textAddress = line.range(of: " INFO listening addr=").map {
                    String(line[$0.upperBound...].prefix { $0 != " " })
                }
                guard let addr = LogLine.parse(line).flatMap({ $0.string("event") == "listening" ? $0.string("addr") : nil })
                    ?? textAddress
                else { continue }
                guard let colon = addr.lastIndex(of: ":"),
                    let port = UInt16(addr[addr.index(after: colon)...]), port != 0
                else { throw SpawnError(description: "bad listening line: \(line)") }
                return port
            }
            if let status = Spawn.tryReap(child.pid) {
                throw SpawnError(description: "supervisor exited (\(status)) before listening")
            }
            return nil
        }
    }

    // MARK: Logs

    /// Every stderr line parsed as JSON (lines that are not JSON objects are skipped).
    var logEvents: [[String: Any]] {
        // Each line is parsed once: tests poll the log every few milliseconds, and parsing thousands of lines on
        // every poll made a busy test run starve the supervisors it was testing.
        let lines = stderr.lines
        return parsedEvents.withLock { cache in
            while cache.parsedLines < lines.count {
                if let event = LogLine.parse(lines[cache.parsedLines]) { cache.events.append(event) }
                cache.parsedLines += 1
            }
            return cache.events
        }
    }

    /// The log events named `event` that satisfy `predicate`, in order.
    func logEvents(_ event: String, where predicate: ([String: Any]) -> Bool = { _ in true }) -> [[String: Any]] {
        logEvents.filter { $0.string("event") == event && predicate($0) }
    }

    /// Waits for a log line with `"event": event` satisfying `predicate` (already logged ones count).
    @discardableResult
    func waitForLog(
        event: String, where predicate: ([String: Any]) -> Bool = { _ in true }, timeout: Duration = .seconds(5)
    ) async throws -> [String: Any] {
        try await eventuallyValue("log event \(event)", timeout: timeout, context: logTail) {
            logEvents(event, where: predicate).first
        }
    }

    /// The last `count` stderr lines, for failure messages.
    @Sendable func logTail() -> String {
        "supervisor \(pid) stderr (tail):\n" + stderr.lines.suffix(40).joined(separator: "\n")
    }

    /// `eventually` with this supervisor's log tail attached on timeout.
    func eventually(
        _ what: String, timeout: Duration = .seconds(5), _ condition: () throws -> Bool
    ) async throws {
        try await IntegrationTests.eventually(what, timeout: timeout, context: logTail, condition)
    }

    // MARK: Process control

    /// Sends `signal` to the supervisor.
    func sendSignal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Whether the supervisor has not yet been seen to exit.
    var isRunning: Bool {
        exitStatus.withLock { status in
            if status == nil { status = Spawn.tryReap(pid) }
            return status == nil
        }
    }

    /// Waits for the supervisor to exit and returns how; throws `WaitTimeout` after `timeout`.
    func waitForExit(timeout: Duration = .seconds(10)) async throws -> ExitStatus {
        try await eventuallyValue("supervisor \(pid) to exit", timeout: timeout, context: logTail) {
            exitStatus.withLock { status in
                if status == nil { status = Spawn.tryReap(pid) }
                return status
            }
        }
    }

    /// Kills the supervisor (SIGKILL) and its workers if still running, reaps it and removes the temp dir.
    func terminateAndReap() {
        exitStatus.withLock { status in
            if status == nil { status = Spawn.tryReap(pid) }
            if status == nil {
                let workers = ProcessTable.children(of: pid).map(\.pid)
                kill(pid, SIGKILL)
                status = Spawn.reap(pid)
                // Workers notice EOF on their job pipe only between jobs; don't leave a sleeping one behind.
                for worker in workers where ProcessTable.isLiveWorker(worker) {
                    kill(worker, SIGKILL)
                }
            }
        }
        if !keepsDirectory.withLock({ $0 }) { directory.remove() }
    }

    /// Leaves the temp dir in place on teardown, for a restart on the same data dir (which then owns it).
    func keepDirectoryOnTeardown() {
        keepsDirectory.withLock { $0 = true }
    }

    // MARK: Children

    /// The supervisor's child processes (zombies included).
    var children: [ProcessEntry] { ProcessTable.children(of: pid) }

    /// Children in state `Z`: exited but not reaped.
    var zombieChildren: [ProcessEntry] { children.filter(\.isZombie) }

    /// Live (non-zombie) `prefork-worker` children.
    var liveWorkerChildren: [ProcessEntry] {
        children.filter { !$0.isZombie && $0.command == ProcessTable.workerCommand }
    }
}

/// JSON log line parsing.
enum LogLine {
    /// The line as a JSON object, or nil.
    static func parse(_ line: String) -> [String: Any]? {
        guard line.hasPrefix("{") else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}

/// Parsed log events, kept across calls. JSON objects are not Sendable; only this lock ever touches them.
struct ParsedEvents: @unchecked Sendable {
    var parsedLines = 0
    var events: [[String: Any]] = []
}

extension Dictionary where Key == String, Value == Any {
    /// The value at `key` as a string.
    func string(_ key: String) -> String? { self[key] as? String }

    /// The value at `key` as an integer (JSON numbers arrive as NSNumber).
    func int(_ key: String) -> Int? {
        if let value = self[key] as? Int { return value }
        return (self[key] as? NSNumber)?.intValue
    }

    /// The value at `key` as a bool.
    func bool(_ key: String) -> Bool? { self[key] as? Bool }

    /// Whether `key` is present with JSON `null`.
    func isNull(_ key: String) -> Bool { self[key] is NSNull }

    /// The value at `key` as an array of objects.
    func objects(_ key: String) -> [[String: Any]]? { self[key] as? [[String: Any]] }

    /// The value at `key` as an object.
    func object(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
}
