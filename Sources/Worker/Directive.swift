/// A test directive: with directives enabled, a `simulate` payload starting with `@` steers the attempt
/// instead of sleeping at random, so crash recovery can be tested on demand.
enum Directive: Equatable {
    /// `@ok`: succeed at once.
    case ok
    /// `@fail`: fail at once.
    case fail
    /// `@sleep MS`: sleep, then succeed.
    case sleep(milliseconds: Int)
    /// `@progress STEPS MS`: report progress STEPS times, sleeping MS after each, then succeed.
    case progress(steps: Int, milliseconds: Int)
    /// `@crash`: die of SIGSEGV.
    case crash
    /// `@abort`: die of SIGABRT.
    case abort
    /// `@exit N`: exit with status N (0-255) mid-job.
    case exit(status: Int32)
    /// `@hang`: never answer.
    case hang
    /// `@garbage`: answer with bytes that are not a frame.
    case garbage
    /// `@oom`: allocate until the memory limit stops it, then fail the attempt (refused without a limit).
    case oom

    /// Longest directive name quoted back in an error, so a huge payload makes a short message.
    static let maximumQuotedLength = 64

    /// Whether `payload` is a directive (starts with `@`) rather than ordinary work.
    static func isDirective(_ payload: [UInt8]) -> Bool {
        payload.first == UInt8(ascii: "@")
    }

    /// Parses a payload that starts with `@`; trailing whitespace and newlines are ignored.
    static func parse(_ payload: [UInt8]) throws(DirectiveError) -> Directive {
        let words = self.words(payload)
        let name = words.first ?? String(decoding: payload, as: UTF8.self)
        let arguments = words.dropFirst()
        switch name {
        case "@ok":
            try expectNoArgument(name, arguments)
            return .ok
        case "@fail":
            try expectNoArgument(name, arguments)
            return .fail
        case "@crash":
            try expectNoArgument(name, arguments)
            return .crash
        case "@abort":
            try expectNoArgument(name, arguments)
            return .abort
        case "@hang":
            try expectNoArgument(name, arguments)
            return .hang
        case "@garbage":
            try expectNoArgument(name, arguments)
            return .garbage
        case "@oom":
            try expectNoArgument(name, arguments)
            return .oom
        case "@sleep":
            let argument = try onlyArgument(name, arguments, expected: "milliseconds")
            guard let milliseconds = Int(argument), milliseconds >= 0 else {
                throw .badArgument(directive: name, argument: argument, expected: "milliseconds")
            }
            return .sleep(milliseconds: milliseconds)
        case "@progress":
            guard arguments.count == 2 else {
                throw .missingArgument(directive: name, expected: "a step count 1-100 and milliseconds per step")
            }
            let (stepsText, millisecondsText) = (quoted(arguments.first!), quoted(arguments.last!))
            guard let steps = Int(stepsText), (1...100).contains(steps) else {
                throw .badArgument(directive: name, argument: stepsText, expected: "a step count 1-100")
            }
            guard let milliseconds = Int(millisecondsText), milliseconds >= 0 else {
                throw .badArgument(directive: name, argument: millisecondsText, expected: "milliseconds")
            }
            return .progress(steps: steps, milliseconds: milliseconds)
        case "@exit":
            let argument = try onlyArgument(name, arguments, expected: "an exit status 0-255")
            guard let status = Int32(argument), (0...255).contains(status) else {
                throw .badArgument(directive: name, argument: argument, expected: "an exit status 0-255")
            }
            return .exit(status: status)
        default:
            throw .unknown(String(name.prefix(maximumQuotedLength)))
        }
    }

    /// The payload's words, split at whitespace. ASCII (every valid directive) is split byte by byte, which
    /// costs a fraction of splitting Characters; other text goes through `Character.isWhitespace`, which
    /// also knows Unicode's spaces, so both give the same words.
    private static func words(_ payload: [UInt8]) -> [String] {
        guard payload.allSatisfy({ $0 < 0x80 }) else {
            let text = String(decoding: payload, as: UTF8.self)
            return text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        }
        return payload.split(whereSeparator: { $0 == 0x20 || (0x09...0x0D).contains($0) })
            .map { String(decoding: $0, as: UTF8.self) }
    }

    private static func expectNoArgument(_ name: String, _ arguments: ArraySlice<String>) throws(DirectiveError) {
        if let extra = arguments.first { throw .unexpectedArgument(directive: name, argument: quoted(extra)) }
    }

    private static func onlyArgument(
        _ name: String, _ arguments: ArraySlice<String>, expected: String
    ) throws(DirectiveError) -> String {
        guard let argument = arguments.first else { throw .missingArgument(directive: name, expected: expected) }
        if arguments.count > 1 {
            throw .unexpectedArgument(directive: name, argument: quoted(arguments[arguments.startIndex + 1]))
        }
        return quoted(argument)
    }

    private static func quoted(_ argument: String) -> String { String(argument.prefix(maximumQuotedLength)) }
}

/// Why a payload starting with `@` is not a usable directive; the attempt fails with this message.
enum DirectiveError: Error, Equatable, CustomStringConvertible {
    /// No directive has this name.
    case unknown(String)
    /// The directive needs an argument that is missing.
    case missingArgument(directive: String, expected: String)
    /// The argument does not parse as what the directive needs.
    case badArgument(directive: String, argument: String, expected: String)
    /// The directive got more arguments than it takes.
    case unexpectedArgument(directive: String, argument: String)

    /// The message the failed attempt carries.
    var description: String {
        switch self {
        case .unknown(let name): return "unknown directive \(name)"
        case .missingArgument(let directive, let expected): return "\(directive) needs an argument: \(expected)"
        case .badArgument(let directive, let argument, let expected):
            return "bad argument for \(directive): \"\(argument)\" (expected \(expected))"
        case .unexpectedArgument(let directive, let argument):
            return "unexpected argument for \(directive): \"\(argument)\""
        }
    }
}
