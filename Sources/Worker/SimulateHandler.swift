import Glibc
import IPC

/// The `simulate` handler: sleeps a uniform random time and fails at a configured rate. With directives on,
/// a payload starting with `@` steers the attempt instead (see `Directive`).
struct SimulateHandler: JobHandler {
    /// Sleep range, failure rate and whether directives are honoured.
    struct Configuration: Equatable {
        /// Shortest simulated run, in milliseconds.
        var minimumMilliseconds = 100
        /// Longest simulated run, in milliseconds.
        var maximumMilliseconds = 500
        /// Probability (0...1) that an ordinary attempt fails.
        var failureRate = 0.2
        /// Whether `@` payloads are directives rather than ordinary work.
        var directivesEnabled = false
        /// The worker's memory limit in MiB, which `@oom` runs into; nil makes `@oom` refuse.
        var memoryLimitMegabytes: Int?
    }

    /// How this handler behaves.
    let configuration: Configuration
    private var generator = SystemRandomNumberGenerator()

    /// Creates a handler with `configuration`.
    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Runs one attempt: a directive when enabled and the payload starts with `@`, else a random sleep.
    mutating func run(_ job: Message.Run) -> HandlerOutcome {
        if configuration.directivesEnabled && Directive.isDirective(job.payload) {
            do {
                return perform(try Directive.parse(job.payload))
            } catch {
                return .failure(error.description)
            }
        }
        let range = configuration.minimumMilliseconds...configuration.maximumMilliseconds
        let milliseconds = Int.random(in: range, using: &generator)
        Time.nanosleep(milliseconds: milliseconds)
        if Double.random(in: 0..<1, using: &generator) < configuration.failureRate {
            return .failure("simulated failure after \(milliseconds) ms")
        }
        return .success("simulated success after \(milliseconds) ms")
    }

    private func perform(_ directive: Directive) -> HandlerOutcome {
        switch directive {
        case .ok: return .success("ok")
        case .fail: return .failure("simulated failure (@fail)")
        case .sleep(let milliseconds):
            Time.nanosleep(milliseconds: milliseconds)
            return .success("slept \(milliseconds) ms")
        case .crash: dieOfSignal(SIGSEGV)
        case .abort:
            Signal.restoreDefault(SIGABRT)
            Posix.abort()
        case .exit(let status): Posix._exit(status)
        case .hang:
            while true { Posix.pause() }
        case .garbage: return .garbage
        case .oom: return OutOfMemory.run(limitMegabytes: configuration.memoryLimitMegabytes)
        }
    }

    private func dieOfSignal(_ number: CInt) -> Never {
        Signal.restoreDefault(number)
        Signal.raise(number)
        // Only reachable if the signal could not be delivered; dying is what was asked for.
        Posix.abort()
    }
}
