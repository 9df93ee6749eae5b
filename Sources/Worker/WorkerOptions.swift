/// The worker's command line, as the supervisor writes it.
struct WorkerOptions: Equatable {
    /// The built-in handlers a worker can run.
    enum HandlerKind: String, CaseIterable {
        /// Sleeps and fails at random; honours directives when enabled.
        case simulate
        /// Runs the `--exec` command per job.
        case exec
    }

    /// One line of usage, shown with `--help` and after a bad argument.
    static let usage = """
        usage: prefork-worker [--handler simulate|exec] [--min-ms N] [--max-ms N] [--fail-rate F] [--directives] \
        [--exec ARG]... [--memory-limit-mb N] [--cpu-limit-s N] [--slot N]
        """

    /// Which handler runs the jobs.
    var handler = HandlerKind.simulate
    /// Settings of the `simulate` handler.
    var simulate = SimulateHandler.Configuration()
    /// Settings of the `exec` handler: `--exec` once per word of the command.
    var exec = ExecHandler.Configuration()
    /// RLIMIT_AS and RLIMIT_CPU to set before announcing readiness.
    var limits = ResourceLimits()
    /// The supervisor's slot number for this worker, for messages only.
    var slot: Int?

    /// Parses the arguments after the program name; `--name value` and `--name=value` are both accepted.
    static func parse(_ arguments: [String]) throws(UsageError) -> WorkerOptions {
        var options = WorkerOptions()
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            switch name {
            case "--help", "-h":
                throw .helpRequested
            case "--directives":
                guard inlineValue == nil else { throw .unexpectedValue(option: name) }
                options.simulate.directivesEnabled = true
            case "--handler", "--min-ms", "--max-ms", "--fail-rate", "--slot", "--exec", "--memory-limit-mb",
                "--cpu-limit-s":
                // The next argument is the value even if it starts with "-": `--exec -c` is a command word.
                guard let value = inlineValue ?? remaining.popFirst() else { throw .missingValue(option: name) }
                try options.set(name, to: value)
            default:
                throw .unknownArgument(argument)
            }
        }
        if options.handler == .exec {
            guard let program = options.exec.command.first else { throw .missingExecCommand }
            guard !program.isEmpty else {
                throw .invalidValue(option: "--exec", value: program, expected: "a program name first")
            }
        }
        // `@oom` runs into the same limit the worker sets on itself.
        options.simulate.memoryLimitMegabytes = options.limits.memoryMegabytes
        let simulate = options.simulate
        guard simulate.minimumMilliseconds <= simulate.maximumMilliseconds else {
            throw .invalidValue(
                option: "--min-ms", value: String(simulate.minimumMilliseconds),
                expected: "at most --max-ms (\(simulate.maximumMilliseconds))")
        }
        return options
    }

    private mutating func set(_ option: String, to value: String) throws(UsageError) {
        switch option {
        case "--handler":
            guard let kind = HandlerKind(rawValue: value) else {
                let known = HandlerKind.allCases.map(\.rawValue).joined(separator: ", ")
                throw .invalidValue(option: option, value: value, expected: "one of: \(known)")
            }
            handler = kind
        case "--exec": exec.command.append(value)
        case "--memory-limit-mb":
            limits.memoryMegabytes = try Self.positive(
                option, value, upTo: ResourceLimits.maximumMemoryMegabytes, unit: "MiB")
        case "--cpu-limit-s":
            limits.cpuSeconds = try Self.positive(
                option, value, upTo: ResourceLimits.maximumCPUSeconds, unit: "seconds")
        case "--min-ms": simulate.minimumMilliseconds = try Self.milliseconds(option, value)
        case "--max-ms": simulate.maximumMilliseconds = try Self.milliseconds(option, value)
        case "--fail-rate":
            guard let rate = Double(value), (0...1).contains(rate) else {
                throw .invalidValue(option: option, value: value, expected: "a number from 0 to 1")
            }
            simulate.failureRate = rate
        default:
            guard let number = Int(value), number >= 0 else {
                throw .invalidValue(option: option, value: value, expected: "a non-negative integer")
            }
            slot = number
        }
    }

    private static func positive(
        _ option: String, _ value: String, upTo maximum: Int, unit: String
    ) throws(UsageError) -> Int {
        guard let number = Int(value), (1...maximum).contains(number) else {
            throw .invalidValue(option: option, value: value, expected: "a positive integer (\(unit))")
        }
        return number
    }

    private static func milliseconds(_ option: String, _ value: String) throws(UsageError) -> Int {
        guard let number = Int(value), number >= 0 else {
            throw .invalidValue(option: option, value: value, expected: "a non-negative integer (milliseconds)")
        }
        return number
    }
}

/// A command line the worker cannot run with, or a request for help.
enum UsageError: Error, Equatable, CustomStringConvertible {
    /// `--help`: print usage and exit 0.
    case helpRequested
    /// An argument that names no option.
    case unknownArgument(String)
    /// An option that needs a value came last.
    case missingValue(option: String)
    /// A flag was given a value.
    case unexpectedValue(option: String)
    /// A value out of range or of the wrong type.
    case invalidValue(option: String, value: String, expected: String)
    /// `--handler exec` without any `--exec`.
    case missingExecCommand

    /// A one-line reason naming the argument.
    var description: String {
        switch self {
        case .helpRequested: return "help requested"
        case .unknownArgument(let argument): return "unknown argument \"\(argument)\""
        case .missingValue(let option): return "\(option) needs a value"
        case .unexpectedValue(let option): return "\(option) takes no value"
        case .invalidValue(let option, let value, let expected):
            return "\(option): invalid value \"\(value)\" (expected \(expected))"
        case .missingExecCommand:
            return "--handler exec needs a command: --exec PROGRAM, then --exec ARG once per argument"
        }
    }
}
