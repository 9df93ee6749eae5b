import CLinux
import Glibc

// Resource limits and the raw allocation loop of `@oom`.

/// setrlimit(2) calls.
enum Resource {
    /// RLIMIT_AS to `addressSpaceBytes` and RLIMIT_CPU to `cpuSeconds` soft, one more hard (SIGXCPU, then
    /// SIGKILL a second later); 0 leaves that limit alone.
    static func setLimits(addressSpaceBytes: UInt64, cpuSeconds: UInt64) throws(SystemError) {
        guard c_set_limits(addressSpaceBytes, cpuSeconds) == 0 else {
            throw SystemError(errno: errno, call: "setrlimit")
        }
    }
}

/// Raw heap calls.
enum Memory {
    /// Mallocs `chunkBytes` at a time, writing every byte so each page is really backed, until malloc returns
    /// NULL; then frees everything and returns how many chunks it got.
    ///
    /// Nothing Swift-side is allocated while the heap is full: the chunks form a linked list through their own
    /// first word, so neither an array's growth nor the runtime can be the allocation that hits the limit.
    static func allocateUntilExhausted(chunkBytes: Int) -> Int {
        precondition(chunkBytes >= MemoryLayout<UnsafeMutableRawPointer?>.size, "chunk too small for a link")
        var newest: UnsafeMutableRawPointer? = nil
        var count = 0
        while let chunk = malloc(chunkBytes) {
            memset(chunk, 0x5A, chunkBytes)
            chunk.storeBytes(of: newest, as: UnsafeMutableRawPointer?.self)
            newest = chunk
            count += 1
        }
        while let chunk = newest {
            newest = chunk.load(as: UnsafeMutableRawPointer?.self)
            free(chunk)
        }
        return count
    }
}
