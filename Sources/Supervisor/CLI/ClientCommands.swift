import Glibc
import System

/// The command-line client: `prefork submit`, `job`, `jobs`, `cancel`, `retry`, `pause`, `resume`. It talks to
/// the API at `PREFORK_URL` (default: `listen` from the config, `--config PATH` or `config/prefork.json` when
/// present) with `PREFORK_AUTH_TOKEN`, and prints the JSON it gets.
///
/// Exit status: 0 when the job is done (or the request succeeded), 1 when it failed or was canceled (or the
/// request was refused), 2 on usage or connection errors, 3 when `--wait` ended before the job did.
enum ClientCommands {
    /// The commands this enum runs.
    static let names: Set<String> = ["submit", "job", "jobs", "cancel", "retry", "pause", "resume"]

    static let usageText = """
        usage: prefork submit [--id ID] [--max-retries N] [--priority P] [--timeout-ms N] [--delay-ms N]
                              [--run-at TIME] [--callback-url URL] [--wait[=SECONDS]] PAYLOAD|-
               prefork submit --batch FILE|-          (one JSON job object per line)
               prefork job ID [--wait[=SECONDS]]
               prefork jobs [--state S] [--priority P] [--limit N] [--cursor C]
               prefork cancel ID | retry ID | pause | resume
        common flags: --url http://HOST:PORT (or PREFORK_URL), --config PATH (its listen address), and the token
        in PREFORK_AUTH_TOKEN. Exit status: 0 done, 1 failed or canceled, 2 usage or connection error, 3 the wait
        ended first.
        """

    /// Runs `arguments` (the command word first); returns the exit status.
    static func run(_ arguments: [String], environment: [String: String]) -> Int32 {
        if arguments.contains("--help") || arguments.contains("-h") {
            print(usageText)
            return 0
        }
        var options = Options(arguments: Array(arguments.dropFirst()))
        let command = arguments[0]
        do throws(Failure) {
            let client = try options.client(environment: environment)
            switch command {
            case "submit": return try submit(options, client: client)
            case "job": return try job(options, client: client)
            case "jobs": return try jobs(options, client: client)
            case "cancel", "retry":
                let id = try options.single("a job id")
                let path = command == "cancel" ? "/jobs/\(encode(id))" : "/jobs/\(encode(id))/retry"
                return try show(try call(client, command == "cancel" ? "DELETE" : "POST", path))
            case "pause", "resume":
                try options.none()
                return try show(try call(client, "POST", "/\(command)"))
            default:
                throw .usage("unknown command \(command)")
            }
        } catch {
            switch error {
            case .usage(let message):
                standardError("prefork \(command): \(message)\n\(usageText)")
            case .failed(let message):
                standardError("prefork \(command): \(message)")
            }
            return 2
        }
    }

    // MARK: Commands

    private static func submit(_ options: Options, client: APIClient) throws(Failure) -> Int32 {
        if let batch = options.value("--batch") { return try submitBatch(batch, options: options, client: client) }
        let payload: ByteString
        let argument = try options.single("a payload (or - for standard input)")
        if argument == "-" {
            do throws(SystemError) {
                payload = ByteString(try FileDescriptor.standardInput.readToEnd(limit: 64 << 20))
            } catch {
                throw .failed("cannot read the payload from standard input: \(error)")
            }
        } else {
            payload = ByteString(argument)
        }
        var job: [String: JSONValue] = ["id": .string(options.value("--id") ?? randomID())]
        if let text = payload.text { job["payload"] = .string(text) } else {
            job["payload_base64"] = .string(Base64.encode(payload.bytes))
        }
        for (flag, key) in [
            ("--max-retries", "max_retries"), ("--priority", "priority"), ("--timeout-ms", "timeout_ms"),
            ("--delay-ms", "delay_ms"),
        ] {
            if let text = options.value(flag) {
                guard let number = Int(text) else { throw .usage("\(flag) needs an integer, got \"\(text)\"") }
                job[key] = .integer(number)
            }
        }
        if let runAt = options.value("--run-at") { job["run_at"] = .string(runAt) }
        if let url = options.value("--callback-url") { job["callback_url"] = .string(url) }
        let response = try call(client, "POST", "/enqueue", body: Array(JSONValue.object(job).serialized().utf8))
        guard response.status == 200 || response.status == 202, let record = response.json else {
            return try show(response)
        }
        guard let seconds = try options.waitSeconds() else {
            print(response.text, terminator: "")
            return 0
        }
        let id = record.objectValue?["id"]?.stringValue ?? ""
        return try waitAndShow(id, seconds: seconds, client: client, current: response)
    }

    /// `--batch FILE|-`: JSON lines, sent in batches of 1000; prints one result line per job.
    private static func submitBatch(_ source: String, options: Options, client: APIClient) throws(Failure) -> Int32 {
        let bytes: [UInt8]
        do throws(SystemError) {
            bytes = source == "-"
                ? try FileDescriptor.standardInput.readToEnd(limit: 1 << 30) : try Posix.readFile(source, limit: 1 << 30)
        } catch {
            throw .failed("cannot read \(source == "-" ? "standard input" : source): \(error)")
        }
        var jobs: [JSONValue] = []
        for (number, line) in bytes.split(separator: UInt8(ascii: "\n")).enumerated() {
            let text = String(decoding: line, as: UTF8.self).trimmingSpaces
            if text.isEmpty { continue }
            do throws(JSONError) {
                jobs.append(try JSONParser.parse(Array(text.utf8)))
            } catch {
                throw .failed("line \(number + 1) is not JSON: \(error)")
            }
        }
        var refused = false
        var start = 0
        while start < jobs.count {
            let chunk = Array(jobs[start..<min(jobs.count, start + 1000)])
            let response = try call(
                client, "POST", "/enqueue", body: Array(JSONValue.object(["jobs": .array(chunk)]).serialized().utf8))
            guard response.status == 200, let results = response.json?.objectValue?["results"], case .array(let items) = results
            else { return try show(response) }
            for item in items {
                print(item.serialized())
                let status = item.objectValue?["status"]?.integerValue ?? 0
                if status != 200 && status != 202 { refused = true }
            }
            start += 1000
        }
        return refused ? 1 : 0
    }

    private static func job(_ options: Options, client: APIClient) throws(Failure) -> Int32 {
        let id = try options.single("a job id")
        let response = try call(client, "GET", "/jobs/\(encode(id))")
        guard response.status == 200, let seconds = try options.waitSeconds() else { return try show(response, exitByState: true) }
        return try waitAndShow(id, seconds: seconds, client: client, current: response)
    }

    private static func jobs(_ options: Options, client: APIClient) throws(Failure) -> Int32 {
        try options.none()
        var query: [String] = []
        for (flag, name) in [("--state", "state"), ("--priority", "priority"), ("--limit", "limit"), ("--cursor", "cursor")] {
            if let value = options.value(flag) { query.append("\(name)=\(encode(value))") }
        }
        return try show(try call(client, "GET", "/jobs" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))))
    }

    // MARK: Helpers

    /// Long-polls in steps of at most a minute until the job is finished or `seconds` passed; prints the record.
    private static func waitAndShow(
        _ id: String, seconds: Int, client: APIClient, current: APIClient.Response
    ) throws(Failure) -> Int32 {
        var response = current
        let deadline = Time.monotonicMicroseconds() / 1000 + Int64(seconds) * 1000
        while !isFinished(response) {
            let left = deadline - Time.monotonicMicroseconds() / 1000
            if left <= 0 { break }
            let step = min(left, 60_000)
            response = try call(client, "GET", "/jobs/\(encode(id))?wait_ms=\(step)", timeout: Int(step) + 10_000)
            if response.status != 200 { return try show(response) }
        }
        print(response.text, terminator: "")
        guard isFinished(response) else { return 3 }
        return state(response) == "done" ? 0 : 1
    }

    private static func state(_ response: APIClient.Response) -> String? {
        response.json?.objectValue?["state"]?.stringValue
    }

    private static func isFinished(_ response: APIClient.Response) -> Bool {
        ["done", "failed", "canceled"].contains(state(response) ?? "")
    }

    /// Prints an answer: the body on stdout for 2xx (exit 0, or by the job's state), the error on stderr otherwise
    /// (exit 1).
    private static func show(_ response: APIClient.Response, exitByState: Bool = false) throws(Failure) -> Int32 {
        guard (200...299).contains(response.status) else {
            standardError("error \(response.status): \(response.errorMessage)")
            return 1
        }
        print(response.text, terminator: "")
        if exitByState, let state = state(response) { return state == "failed" || state == "canceled" ? 1 : 0 }
        return 0
    }

    private static func call(
        _ client: APIClient, _ method: String, _ target: String, body: [UInt8]? = nil, timeout: Int = 10_000
    ) throws(Failure) -> APIClient.Response {
        do throws(APIClient.Failure) {
            return try client.request(method, target, body: body, timeout: timeout)
        } catch {
            throw .failed(error.description)
        }
    }

    private static func encode(_ segment: String) -> String {
        HTTPRequest.percentEncode(pathSegment: segment)
    }

    /// `job-` and 16 random hex digits from the kernel (the time when it has none to give).
    private static func randomID() -> String {
        var bytes = [UInt8](repeating: 0, count: 8)
        if let source = try? Posix.open("/dev/urandom", O_RDONLY) {
            _ = try? source.readBlocking(into: &bytes)
            source.close()
        }
        if bytes.allSatisfy({ $0 == 0 }) { return "job-\(Time.wallMilliseconds())" }
        return "job-" + bytes.lowercaseHex
    }

    static func standardError(_ line: String) {
        try? FileDescriptor.standardError.writeAll(Array((line + "\n").utf8))
    }

    /// What went wrong before a job's state could decide the exit status.
    enum Failure: Error {
        case usage(String)
        case failed(String)
    }

    /// The command's flags and positional arguments.
    struct Options {
        private(set) var flags: [String: String] = [:]
        private(set) var positional: [String] = []
        private(set) var problem: String?

        /// Flags that take a value.
        static let valued: Set<String> = [
            "--id", "--max-retries", "--priority", "--timeout-ms", "--delay-ms", "--run-at", "--callback-url", "--batch",
            "--state", "--limit", "--cursor", "--url", "--config",
        ]

        init(arguments: [String]) {
            var index = 0
            while index < arguments.count {
                let argument = arguments[index]
                index += 1
                if argument == "-" || !argument.hasPrefix("-") {
                    positional.append(argument)
                    continue
                }
                var name = argument
                var value: String?
                if let equals = argument.firstIndex(of: "=") {
                    name = String(argument[..<equals])
                    value = String(argument[argument.index(after: equals)...])
                }
                if name == "--wait" {
                    flags[name] = value ?? ""
                } else if Self.valued.contains(name) {
                    if value == nil {
                        guard index < arguments.count else {
                            problem = "\(name) needs a value"
                            continue
                        }
                        value = arguments[index]
                        index += 1
                    }
                    flags[name] = value
                } else {
                    problem = "unknown flag \(name)"
                }
            }
        }

        func value(_ flag: String) -> String? { flags[flag] }

        /// `--wait` (60 s) or `--wait=SECONDS`; nil without it.
        func waitSeconds() throws(Failure) -> Int? {
            guard let text = flags["--wait"] else { return nil }
            if text.isEmpty { return 60 }
            guard let seconds = Int(text), seconds >= 0 else { throw .usage("--wait=SECONDS needs a whole number") }
            return seconds
        }

        /// The one positional argument.
        func single(_ what: String) throws(Failure) -> String {
            if let problem { throw .usage(problem) }
            guard positional.count == 1 else { throw .usage("expected \(what)") }
            return positional[0]
        }

        /// No positional argument.
        func none() throws(Failure) {
            if let problem { throw .usage(problem) }
            guard positional.isEmpty else { throw .usage("unexpected argument \(positional[0])") }
        }

        /// The API client: `--url`, else `PREFORK_URL`, else `listen` of the config.
        mutating func client(environment: [String: String]) throws(Failure) -> APIClient {
            if let problem { throw .usage(problem) }
            let url: String
            if let given = flags["--url"] ?? environment["PREFORK_URL"].flatMap({ $0.isEmpty ? nil : $0 }) {
                url = given
            } else {
                let path = flags["--config"] ?? (Posix.exists("config/prefork.json") ? "config/prefork.json" : nil)
                var arguments: [String] = []
                if let path { arguments = ["--config", path] }
                do throws(ConfigError) {
                    let (config, _) = try Config.load(
                        arguments: arguments, environment: environment, readFile: Config.readFileFromDisk)
                    var listen = config.listen
                    if listen.hasPrefix("0.0.0.0:") { listen = "127.0.0.1:" + listen.dropFirst("0.0.0.0:".count) }
                    if listen.hasPrefix("[::]:") { listen = "[::1]:" + listen.dropFirst("[::]:".count) }
                    url = "http://" + listen
                } catch {
                    throw .failed("cannot find the API: set PREFORK_URL or --url (\(error))")
                }
            }
            let token = environment["PREFORK_AUTH_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            do throws(APIClient.Failure) {
                return try APIClient(url: url, token: token)
            } catch {
                throw .failed(error.description)
            }
        }
    }
}
