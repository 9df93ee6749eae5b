import CLinux
import Glibc

// prefork-worker: spawned by the prefork supervisor with fd 3 = job pipe (read end) and fd 4 = result pipe
// (write end). Exit statuses are in ExitCode.swift. No Foundation, so it starts in milliseconds.

let options: WorkerOptions
do {
    options = try WorkerOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch .helpRequested {
    Console.output(WorkerOptions.usage + "\n")
    Posix.exit(ExitCode.success.rawValue)
} catch {
    Console.error(error.description)
    Console.error(WorkerOptions.usage)
    Posix.exit(ExitCode.usage.rawValue)
}

// A write to a vanished supervisor must fail with EPIPE, not kill the worker before it can exit quietly.
Signal.ignore(SIGPIPE)

// EOF on the job pipe already ends an idle worker when the supervisor dies; the death signal also ends
// one that is busy (a hung job), so no orphan outlives a supervisor killed with SIGKILL.
_ = c_set_parent_death_signal(SIGKILL)

// The pipes must be there; close-on-exec keeps them out of any program a future handler runs.
for (descriptor, role) in [(FileDescriptor.jobs, "job pipe"), (FileDescriptor.results, "result pipe")] {
    do {
        try Posix.fcntl(descriptor, F_SETFD, FD_CLOEXEC)
    } catch {
        Console.error(
            "fd \(descriptor.rawValue) (\(role)) is unusable: \(error); the prefork supervisor starts workers")
        Posix.exit(ExitCode.usage.rawValue)
    }
}

// Anything else inherited is kept from the commands the exec handler runs: they get their own 0/1/2 only.
_ = c_cloexec_from(5)

// Limits go on before `ready`, so a worker the supervisor counts as up is already inside them.
do {
    try options.limits.apply()
} catch {
    Console.error("cannot set resource limits (--memory-limit-mb, --cpu-limit-s): \(error)")
    Posix.exit(ExitCode.failure.rawValue)
}

switch options.handler {
case .simulate:
    var loop = WorkerLoop(
        reader: FrameReader(descriptor: .jobs), writer: FrameWriter(descriptor: .results),
        handler: SimulateHandler(configuration: options.simulate))
    Posix.exit(loop.run().rawValue)
case .exec:
    var loop = WorkerLoop(
        reader: FrameReader(descriptor: .jobs), writer: FrameWriter(descriptor: .results),
        handler: ExecHandler(configuration: options.exec))
    Posix.exit(loop.run().rawValue)
}
