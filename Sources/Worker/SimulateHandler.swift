import Glibc
import IPC
@_spi(ProtocolTesting) import PreforkWorker
import System

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

    /// The handler the worker command line describes.
    init(_ line: WorkerCommandLine) {
        self.init(
            configuration: Configuration(
                minimumMilliseconds: line.simulateMinimumMilliseconds,
                maximumMilliseconds: line.simulateMaximumMilliseconds, failureRate: line.simulateFailureRate,
                directivesEnabled: line.directives, memoryLimitMegabytes: line.memoryLimitMegabytes))
    }

    /// The bytes written instead of a result by `@garbage`: 16 bytes that are no frame (bad magic).
    static var garbage: [UInt8] { Array("this is garbage!".utf8) }

    /// Runs one attempt: a directive when enabled and the payload starts with `@`, else a random sleep.
    mutating func handle(_ job: Job) throws -> JobResult {
        if configuration.directivesEnabled && Directive.isDirective(job.payload) {
            let directive: Directive
            do {
                directive = try Directive.parse(job.payload)
            } catch {
                throw JobFailure(error.description)
            }
            return try perform(directive, job)
        }
        let range = configuration.minimumMilliseconds...configuration.maximumMilliseconds
        let milliseconds = Int.random(in: range, using: &generator)
        Time.sleep(milliseconds: milliseconds)
        if Double.random(in: 0..<1, using: &generator) < configuration.failureRate {
            throw JobFailure("simulated failure after \(milliseconds) ms")
        }
        return JobResult("simulated success after \(milliseconds) ms")
    }

    private func perform(_ directive: Directive, _ job: Job) throws -> JobResult {
        switch directive {
        case .ok: return "ok"
        case .fail: throw JobFailure("simulated failure (@fail)")
        case .sleep(let milliseconds):
            Time.sleep(milliseconds: milliseconds)
            return JobResult("slept \(milliseconds) ms")
        case .progress(let steps, let milliseconds):
            for step in 1...steps {
                job.progress(step * 100 / steps, "step \(step) of \(steps)")
                Time.sleep(milliseconds: milliseconds)
            }
            return JobResult("\(steps) steps")
        case .crash: dieOfSignal(SIGSEGV)
        case .abort:
            Signal.restoreDefault(SIGABRT)
            Process.abort()
        case .exit(let status): Process.exitImmediately(status)
        case .hang:
            while true { Process.pause() }
        case .garbage:
            // The supervisor kills a worker that breaks the protocol; wait for it rather than answer.
            job.writeRawBytesToSupervisor(Self.garbage)
            while true { Process.pause() }
        case .oom: throw OutOfMemory.run(limitMegabytes: configuration.memoryLimitMegabytes)
        }
    }

    private func dieOfSignal(_ number: CInt) -> Never {
        Signal.restoreDefault(number)
        Signal.raise(number)
        // Only reachable if the signal could not be delivered; dying is what was asked for.
        Process.abort()
    }
}
