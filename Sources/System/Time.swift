import CLinux
import Glibc

/// Clock calls.
public enum Time {
    /// CLOCK_MONOTONIC in microseconds (durations; never jumps with the wall clock).
    @inlinable
    public static func monotonicMicroseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }

    /// CLOCK_REALTIME in milliseconds since the Unix epoch.
    @inlinable
    public static func wallMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// nanosleep(2) for the whole `milliseconds`: a signal interrupting it restarts it with the time left.
    public static func sleep(milliseconds: Int) {
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while Glibc.nanosleep(&request, &remaining) == -1 && errno == EINTR {
            request = remaining
        }
    }
}
