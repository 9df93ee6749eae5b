import Glibc
import IPC
import PreforkWorker
import System

// prefork-worker: spawned by the prefork supervisor with fd 3 = job pipe (read end) and fd 4 = result pipe
// (write end). It runs the built-in `simulate` and `exec` handlers through the PreforkWorker SDK, or, for
// `handler: "program"`, sets up the process and becomes the user's program. No Foundation, so it starts in
// milliseconds.

let line: WorkerCommandLine
do {
    switch try WorkerCommandLine.parse(Array(CommandLine.arguments.dropFirst())) {
    case .run(let parsed): line = parsed
    case .help:
        try? FileDescriptor.standardOutput.writeAll(Array((WorkerCommandLine.usage + "\n").utf8))
        Process.exit(0)
    case .version:
        let version = "prefork-worker \(PreforkVersion.current) (commit \(PreforkVersion.commit))\n"
        try? FileDescriptor.standardOutput.writeAll(Array(version.utf8))
        Process.exit(0)
    }
} catch {
    PreforkWorker.standardError("prefork-worker: \(error)")
    PreforkWorker.standardError(WorkerCommandLine.usage)
    Process.exit(WorkerExitCode.usage.rawValue)
}

WorkerSetup.prepare(line)
switch line.handler {
case .simulate:
    PreforkWorker.run(SimulateHandler(line), version: "prefork-worker \(PreforkVersion.current)")
case .exec:
    PreforkWorker.run(
        ExecHandler(command: line.command, cgroup: line.cgroup), version: "prefork-worker \(PreforkVersion.current)")
case .program:
    WorkerSetup.become(line)
}
