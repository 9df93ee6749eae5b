/// Which handler a worker runs: the one list both binaries and the configuration use.
public enum WorkerHandler: String, Equatable, CaseIterable, Sendable {
    /// Sleeps a random time and fails at a configured rate; directives steer it for crash tests.
    case simulate
    /// Runs a command per attempt with the payload on stdin.
    case exec
    /// Runs the user's own long-lived program, which speaks the worker protocol itself.
    case program
}

/// The worker's command line: written by the supervisor, parsed by `prefork-worker`, in this one place.
///
/// `--name value` and `--name=value` are both accepted; options that take a value take the next argument even
/// when it starts with "-" (`--exec -c` is a command word).
public struct WorkerCommandLine: Equatable, Sendable {
    /// Which handler runs the jobs.
    public var handler = WorkerHandler.simulate
    /// The supervisor's slot number for this worker, for messages only.
    public var slot: Int?
    /// `simulate`: shortest run, milliseconds.
    public var simulateMinimumMilliseconds = 100
    /// `simulate`: longest run, milliseconds.
    public var simulateMaximumMilliseconds = 500
    /// `simulate`: probability (0...1) that an attempt fails.
    public var simulateFailureRate = 0.2
    /// `simulate`: whether `@` payloads are directives.
    public var directives = false
    /// `exec`: the command run per attempt; `program`: the program the worker becomes.
    public var command: [String] = []
    /// `program`: its working directory.
    public var workingDirectory: String?
    /// RLIMIT_AS in MiB; nil is no limit.
    public var memoryLimitMegabytes: Int?
    /// RLIMIT_CPU (soft) in seconds; nil is no limit.
    public var cpuLimitSeconds: Int?
    /// A cgroup v2 directory the worker moves itself into before anything else (process containment).
    public var cgroup: String?

    /// The defaults: `simulate` with 100-500 ms runs and a 20% failure rate.
    public init() {}

    /// One line of usage, shown with `--help` and after a bad argument.
    public static let usage = """
        usage: prefork-worker [--handler simulate|exec|program] [--min-ms N] [--max-ms N] [--fail-rate F] \
        [--directives] [--command ARG]... [--cwd DIR] [--memory-limit-mb N] [--cpu-limit-s N] [--cgroup DIR] \
        [--slot N] [--version]
        """

    /// The arguments after the program name, as the supervisor passes them.
    public var arguments: [String] {
        var arguments = ["--handler", handler.rawValue]
        if let slot { arguments += ["--slot", String(slot)] }
        if handler == .simulate {
            arguments += [
                "--min-ms", String(simulateMinimumMilliseconds), "--max-ms", String(simulateMaximumMilliseconds),
                "--fail-rate", String(simulateFailureRate),
            ]
            if directives { arguments.append("--directives") }
        }
        for word in command { arguments += ["--command", word] }
        if let workingDirectory { arguments += ["--cwd", workingDirectory] }
        if let memoryLimitMegabytes { arguments += ["--memory-limit-mb", String(memoryLimitMegabytes)] }
        if let cpuLimitSeconds { arguments += ["--cpu-limit-s", String(cpuLimitSeconds)] }
        if let cgroup { arguments += ["--cgroup", cgroup] }
        return arguments
    }

    /// What the command line asks for besides running.
    public enum Request: Equatable, Sendable {
        /// Serve jobs with these settings.
        case run(WorkerCommandLine)
        /// `--help`.
        case help
        /// `--version`.
        case version
    }

    /// Parses the arguments after the program name.
    public static func parse(_ arguments: [String]) throws(WorkerUsageError) -> Request {
        var line = WorkerCommandLine()
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            switch name {
            case "--help", "-h": return .help
            case "--version": return .version
            case "--directives":
                guard inlineValue == nil else { throw .unexpectedValue(option: name) }
                line.directives = true
            case "--handler", "--min-ms", "--max-ms", "--fail-rate", "--slot", "--command", "--cwd",
                "--memory-limit-mb", "--cpu-limit-s", "--cgroup":
                guard let value = inlineValue ?? remaining.popFirst() else { throw .missingValue(option: name) }
                try line.set(name, to: value)
            default:
                throw .unknownArgument(argument)
            }
        }
        try line.validate()
        return .run(line)
    }

    private func validate() throws(WorkerUsageError) {
        if handler != .simulate {
            guard let program = command.first else { throw .missingCommand(handler) }
            guard !program.isEmpty else {
                throw .invalidValue(option: "--command", value: program, expected: "a program name first")
            }
        }
        guard simulateMinimumMilliseconds <= simulateMaximumMilliseconds else {
            throw .invalidValue(
                option: "--min-ms", value: String(simulateMinimumMilliseconds),
                expected: "at most --max-ms (\(simulateMaximumMilliseconds))")
        }
    }

    private mutating func set(_ option: String, to value: String) throws(WorkerUsageError) {
        switch option {
        case "--handler":
            guard let kind = WorkerHandler(rawValue: value) else {
                let known = WorkerHandler.allCases.map(\.rawValue).joined(separator: ", ")
                throw .invalidValue(option: option, value: value, expected: "one of: \(known)")
            }
            handler = kind
        case "--command": command.append(value)
        case "--cwd": workingDirectory = value
        case "--cgroup": cgroup = value
        case "--memory-limit-mb":
            memoryLimitMegabytes = try Self.positive(option, value, upTo: Int.max >> 20, unit: "MiB")
        case "--cpu-limit-s":
            cpuLimitSeconds = try Self.positive(option, value, upTo: Int.max - 1, unit: "seconds")
        case "--min-ms": simulateMinimumMilliseconds = try Self.nonNegative(option, value, unit: "milliseconds")
        case "--max-ms": simulateMaximumMilliseconds = try Self.nonNegative(option, value, unit: "milliseconds")
        case "--fail-rate":
            guard let rate = Double(value), (0...1).contains(rate) else {
                throw .invalidValue(option: option, value: value, expected: "a number from 0 to 1")
            }
            simulateFailureRate = rate
        default:
            slot = try Self.nonNegative(option, value, unit: "slot number")
        }
    }

    private static func positive(
        _ option: String, _ value: String, upTo maximum: Int, unit: String
    ) throws(WorkerUsageError) -> Int {
        guard let number = Int(value), (1...maximum).contains(number) else {
            throw .invalidValue(option: option, value: value, expected: "a positive integer (\(unit))")
        }
        return number
    }

    private static func nonNegative(_ option: String, _ value: String, unit: String) throws(WorkerUsageError) -> Int {
        guard let number = Int(value), number >= 0 else {
            throw .invalidValue(option: option, value: value, expected: "a non-negative integer (\(unit))")
        }
        return number
    }
}

/// A worker command line that cannot be run.
public enum WorkerUsageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An argument that names no option.
    case unknownArgument(String)
    /// An option that needs a value came last.
    case missingValue(option: String)
    /// A flag was given a value.
    case unexpectedValue(option: String)
    /// A value out of range or of the wrong type.
    case invalidValue(option: String, value: String, expected: String)
    /// `exec` or `program` without any `--command`.
    case missingCommand(WorkerHandler)

    /// A one-line reason naming the argument.
    public var description: String {
        switch self {
        case .unknownArgument(let argument): return "unknown argument \"\(argument)\""
        case .missingValue(let option): return "\(option) needs a value"
        case .unexpectedValue(let option): return "\(option) takes no value"
        case .invalidValue(let option, let value, let expected):
            return "\(option): invalid value \"\(value)\" (expected \(expected))"
        case .missingCommand(let handler):
            return "--handler \(handler.rawValue) needs a command: --command PROGRAM, then --command ARG once per argument"
        }
    }
}
