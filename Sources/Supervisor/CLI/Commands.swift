import System

/// The `prefork` subcommands: words before any flag (`prefork journal check DIR`). Anything else starts the
/// supervisor.
enum Commands {
    /// Runs the subcommand `arguments` name and returns its exit status, or nil when they name none.
    static func run(_ arguments: [String], environment: [String: String]) -> Int32? {
        guard let word = arguments.first, !word.hasPrefix("-") else { return nil }
        switch word {
        case "journal":
            guard arguments.count == 3, arguments[1] == "check" else {
                return usage("usage: prefork journal check DATA_DIR")
            }
            return JournalCheck.run(dataDirectory: arguments[2])
        case _ where ClientCommands.names.contains(word):
            return ClientCommands.run(arguments, environment: environment)
        case "ctl":
            return Ctl.run(Array(arguments.dropFirst()), environment: environment)
        default:
            return usage("unknown command \"\(word)\" (see prefork --help)")
        }
    }

    /// Prints `message` on stderr and returns the usage status, 2.
    static func usage(_ message: String) -> Int32 {
        try? FileDescriptor.standardError.writeAll(Array("prefork: \(message)\n".utf8))
        return 2
    }
}
