import Glibc
import System

/// `prefork ctl reload|stop|scale N|status [--data-dir DIR | --config PATH]`: signals the supervisor that owns a
/// data directory, found through the directory's lock (which holds its pid, and which only a live supervisor holds
/// locked), so nobody has to guess with `pgrep`.
enum Ctl {
    static let usageText = """
        usage: prefork ctl reload|stop|scale N|status [--data-dir DIR | --config PATH]
          reload    re-read the configuration (SIGHUP)
          stop      drain and exit (SIGTERM); waits until it has exited
          scale N   run N workers (1-256)
          status    print the owner's pid and, when the API answers, its /healthz
        The data directory is --data-dir, else data_dir from --config (or config/prefork.json), else "data".
        """

    static func run(_ arguments: [String], environment: [String: String]) -> Int32 {
        if arguments.contains("--help") || arguments.contains("-h") {
            print(usageText)
            return 0
        }
        var words: [String] = []
        var dataDirectory: String?
        var configPath: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            switch argument {
            case "--data-dir", "--config":
                guard index < arguments.count else { return usage("\(argument) needs a value") }
                if argument == "--data-dir" { dataDirectory = arguments[index] } else { configPath = arguments[index] }
                index += 1
            case _ where argument.hasPrefix("--data-dir="): dataDirectory = String(argument.dropFirst("--data-dir=".count))
            case _ where argument.hasPrefix("--config="): configPath = String(argument.dropFirst("--config=".count))
            case _ where argument.hasPrefix("-"): return usage("unknown flag \(argument)")
            default: words.append(argument)
            }
        }
        guard let action = words.first else { return usage("expected reload, stop, scale N or status") }
        var config = Config()
        if dataDirectory == nil || action == "status" {
            let path = configPath ?? (Posix.exists("config/prefork.json") ? "config/prefork.json" : nil)
            do throws(ConfigError) {
                (config, _) = try Config.load(
                    arguments: path.map { ["--config", $0] } ?? [], environment: environment,
                    readFile: Config.readFileFromDisk)
            } catch {
                return fail("\(error)")
            }
        }
        let directory = dataDirectory ?? config.dataDir
        let pid: Int32
        switch owner(of: directory) {
        case .success(let found): pid = found
        case .failure(let problem): return fail(problem.description)
        }
        do throws(SystemError) {
            switch action {
            case "reload":
                guard words.count == 1 else { return usage("reload takes no argument") }
                try Signal.send(SIGHUP, to: pid)
                print("sent SIGHUP to prefork \(pid) (data directory \(directory))")
            case "stop":
                guard words.count == 1 else { return usage("stop takes no argument") }
                try Signal.send(SIGTERM, to: pid)
                print("sent SIGTERM to prefork \(pid); waiting for it to drain")
                while Process.isRunning(pid) { Time.sleep(milliseconds: 50) }
                print("prefork \(pid) has exited")
            case "scale":
                guard words.count == 2, let count = Int32(words[1]), (1...256).contains(count) else {
                    return usage("scale needs a worker count from 1 to 256")
                }
                try Signal.queue(Signal.scale, to: pid, value: count)
                print("asked prefork \(pid) for \(count) workers")
            case "status":
                print("prefork \(pid) owns \(directory)")
                var listen = config.listen
                if listen.hasPrefix("0.0.0.0:") { listen = "127.0.0.1:" + listen.dropFirst("0.0.0.0:".count) }
                let url = environment["PREFORK_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://" + listen
                if let client = try? APIClient(url: url, token: environment["PREFORK_AUTH_TOKEN"]),
                    let health = try? client.request("GET", "/healthz", timeout: 2000)
                {
                    print(health.text, terminator: "")
                } else {
                    print("(its API at \(url) did not answer)")
                }
            default:
                return usage("unknown action \(action)")
            }
        } catch {
            return fail("cannot signal prefork \(pid): \(error)")
        }
        return 0
    }

    /// Why no supervisor could be found.
    struct NotFound: Error, CustomStringConvertible {
        var description: String
    }

    /// The pid of the supervisor holding `directory`'s lock.
    static func owner(of directory: String) -> Result<Int32, NotFound> {
        let path = directory + "/" + JournalFile.lockName
        let lock: FileDescriptor
        do throws(SystemError) {
            lock = try Posix.open(path, O_RDONLY, noFollow: true)
        } catch {
            return .failure(NotFound(description: "no prefork runs on \(directory) (\(path): \(error.message))"))
        }
        defer { lock.close() }
        // The supervisor holds an exclusive lock; if we can take a shared one, nobody holds it.
        if (try? lock.tryLockShared()) == true {
            return .failure(NotFound(description: "no prefork runs on \(directory) (its lock is free)"))
        }
        guard let bytes = try? lock.readToEnd(limit: 64),
            let pid = Int32(String(decoding: bytes, as: UTF8.self).trimmingSpaces.split(separator: "\n").first ?? ""),
            pid > 0
        else {
            return .failure(NotFound(description: "the lock \(path) does not hold a pid"))
        }
        return .success(pid)
    }

    private static func usage(_ message: String) -> Int32 {
        ClientCommands.standardError("prefork ctl: \(message)\n\(usageText)")
        return 2
    }

    private static func fail(_ message: String) -> Int32 {
        ClientCommands.standardError("prefork ctl: \(message)")
        return 1
    }
}
