import Glibc
import IPC
import PreforkWorker
import System

/// What every worker does before its first job, whichever handler it runs: die with the supervisor, keep
/// inherited descriptors out of what it starts, and put its resource limits on, so a worker the supervisor
/// counts as up is already inside them.
enum WorkerSetup {
    /// Sets up this process for `line`; exits with a usage or failure status when it cannot.
    static func prepare(_ line: WorkerCommandLine) {
        // EOF on the job pipe already ends an idle worker when the supervisor dies; the death signal also ends
        // one that is busy (a hung job), so no orphan outlives a supervisor killed with SIGKILL.
        try? Process.setParentDeathSignal(SIGKILL)
        for (descriptor, role) in [(PreforkWorker.jobPipe, "job pipe"), (PreforkWorker.resultPipe, "result pipe")]
        where !descriptor.isOpen {
            PreforkWorker.standardError(
                "prefork-worker: fd \(descriptor.rawValue) (\(role)) is not open; the prefork supervisor starts workers")
            Process.exit(WorkerExitCode.usage.rawValue)
        }
        // Anything else inherited is kept from what the worker starts: commands get only their own 0/1/2.
        Process.closeOnExecFrom(5)
        // Into the worker's own cgroup first, so everything it (or the program it becomes) starts is in it and
        // can be killed as a whole. Without it, the subreaper and process groups still contain most things.
        if let cgroup = line.cgroup {
            do {
                try Posix.writeFile(cgroup + "/cgroup.procs", Array("0\n".utf8))
            } catch {
                PreforkWorker.standardError("prefork-worker: cannot join cgroup \(cgroup): \(error)")
            }
        }
        // The exec handler's commands run in process groups of their own; whatever they leave behind
        // (background children, setsid daemons) is reparented here when they exit, to be killed and reaped at
        // the end of the attempt. A user's program is not made one: it would have to reap such orphans itself.
        if line.handler == .exec { try? Process.becomeSubreaper() }
        do {
            try Process.setLimits(
                addressSpaceBytes: UInt64(line.memoryLimitMegabytes ?? 0) << 20,
                cpuSeconds: UInt64(line.cpuLimitSeconds ?? 0))
        } catch {
            PreforkWorker.standardError(
                "prefork-worker: cannot set resource limits (worker.memory_limit_mb, worker.cpu_limit_s): \(error)")
            Process.exit(WorkerExitCode.failure.rawValue)
        }
    }

    /// `handler: "program"`: becomes the user's program, keeping fds 3 and 4, the process group, the limits and
    /// the parent-death signal (all survive exec). Only returns by exiting.
    static func become(_ line: WorkerCommandLine) -> Never {
        if let directory = line.workingDirectory {
            do {
                try Process.changeDirectory(directory)
            } catch {
                PreforkWorker.standardError("prefork-worker: program.cwd: \(error)")
                Process.exit(WorkerExitCode.failure.rawValue)
            }
        }
        do {
            try Process.execute(arguments: line.command, environment: Posix.environment())
        } catch {
            PreforkWorker.standardError("prefork-worker: cannot run program \(line.command[0]): \(error.message)")
            Process.exit(127)
        }
    }
}
