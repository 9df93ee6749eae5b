import IPC
import Testing

/// The worker's command line is written by the supervisor and read by the worker through this one type.
@Suite struct WorkerCommandLineTests {
    private static func line(_ change: (inout WorkerCommandLine) -> Void) -> WorkerCommandLine {
        var line = WorkerCommandLine()
        change(&line)
        return line
    }

    static let lines: [WorkerCommandLine] = [
        WorkerCommandLine(),
        line {
            $0.slot = 3
            $0.simulateMinimumMilliseconds = 1
            $0.simulateMaximumMilliseconds = 2
            $0.simulateFailureRate = 0.5
            $0.directives = true
            $0.memoryLimitMegabytes = 64
            $0.cpuLimitSeconds = 5
        },
        line {
            $0.handler = .exec
            $0.command = ["/bin/sh", "-c", "--looks like a flag", ""]
        },
        line {
            $0.handler = .program
            $0.command = ["python3", "worker.py"]
            $0.workingDirectory = "/srv/app"
            $0.cgroup = "/sys/fs/cgroup/prefork/worker-0"
        },
    ]

    @Test(arguments: lines)
    func writtenArgumentsParseBackToTheSameLine(_ line: WorkerCommandLine) throws {
        #expect(try WorkerCommandLine.parse(line.arguments) == .run(line))
    }

    @Test func inlineValuesAndHelpAndVersionAreUnderstood() throws {
        #expect(try WorkerCommandLine.parse(["--handler=exec", "--command=/bin/true"]) == .run(Self.line {
            $0.handler = .exec
            $0.command = ["/bin/true"]
        }))
        #expect(try WorkerCommandLine.parse(["--version"]) == .version)
        #expect(try WorkerCommandLine.parse(["--slot", "1", "-h"]) == .help)
    }

    static let refused: [(arguments: [String], error: WorkerUsageError)] = [
        (["--bogus"], .unknownArgument("--bogus")),
        (["--slot"], .missingValue(option: "--slot")),
        (["--directives=yes"], .unexpectedValue(option: "--directives")),
        (["--handler", "fork"], .invalidValue(option: "--handler", value: "fork", expected: "one of: simulate, exec, program")),
        (["--handler", "exec"], .missingCommand(.exec)),
        (["--handler", "program"], .missingCommand(.program)),
        (["--handler", "exec", "--command", ""], .invalidValue(option: "--command", value: "", expected: "a program name first")),
        (["--fail-rate", "2"], .invalidValue(option: "--fail-rate", value: "2", expected: "a number from 0 to 1")),
        (["--memory-limit-mb", "0"], .invalidValue(option: "--memory-limit-mb", value: "0", expected: "a positive integer (MiB)")),
        (
            ["--min-ms", "9", "--max-ms", "3"],
            .invalidValue(option: "--min-ms", value: "9", expected: "at most --max-ms (3)")
        ),
    ]

    @Test func badArgumentsAreRefusedNamingTheOption() {
        for (arguments, error) in Self.refused {
            #expect(throws: error, "\(arguments)") { try WorkerCommandLine.parse(arguments) }
        }
    }
}
