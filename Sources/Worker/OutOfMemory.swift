import PreforkWorker
import System

/// The `@oom` directive: allocate until the worker's memory limit stops it, then give it all back.
enum OutOfMemory {
    /// Size of each allocation, in MiB.
    static let chunkMegabytes = 8

    /// The refusal when no limit is set: without one, `@oom` would take the machine's memory, not the worker's.
    static let refusal = "@oom needs worker.memory_limit_mb (refusing to allocate without a limit)"

    /// Runs the directive under `limitMegabytes` (nil: refuse) and returns the failed attempt it makes.
    static func run(limitMegabytes: Int?) -> JobFailure {
        guard let limitMegabytes else { return JobFailure(refusal) }
        let chunks = Memory.allocateUntilExhausted(chunkBytes: chunkMegabytes << 20)
        return JobFailure(
            "out of memory: allocation failed after \(chunks * chunkMegabytes) MiB "
                + "(worker.memory_limit_mb = \(limitMegabytes))")
    }
}
