/// The worker's resource limits (`--memory-limit-mb`, `--cpu-limit-s`), applied once at start, before `ready`.
/// Commands the `exec` handler runs inherit them.
struct ResourceLimits: Equatable {
    /// RLIMIT_AS in MiB; nil is no limit.
    var memoryMegabytes: Int?
    /// RLIMIT_CPU (soft) in seconds; nil is no limit.
    var cpuSeconds: Int?

    /// Largest `--memory-limit-mb` whose byte count fits in 64 bits.
    static let maximumMemoryMegabytes = Int.max >> 20
    /// Largest `--cpu-limit-s`: the hard limit is one more.
    static let maximumCPUSeconds = Int.max - 1

    /// Sets the limits on this process.
    func apply() throws(SystemError) {
        let bytes = UInt64(memoryMegabytes ?? 0) << 20
        try Resource.setLimits(addressSpaceBytes: bytes, cpuSeconds: UInt64(cpuSeconds ?? 0))
    }
}
