/// Exponential backoff with jitter before a retry.
///
/// Before attempt n+1 the nominal delay is `min(maximum, base * 2^(n-1))`; jitter then takes a random
/// fraction of up to `jitter` of it away, so the delay lies in `[nominal * (1 - jitter), nominal]`.
/// Spreading retries this way keeps a burst of failures from retrying in lockstep.
struct Backoff: Equatable {
    /// Delay before the second attempt, in milliseconds.
    var baseMilliseconds: Milliseconds
    /// Cap on the nominal delay.
    var maximumMilliseconds: Milliseconds
    /// Fraction (0...1) of the nominal delay that is randomized.
    var jitter: Double

    /// The nominal (unjittered) delay after `attempts` attempts have run (attempts >= 1).
    func nominalDelay(afterAttempts attempts: Int) -> Milliseconds {
        let exponent = max(0, attempts - 1)
        guard baseMilliseconds > 0 else { return 0 }
        // Past 2^40 any sane cap has been hit; stop doubling before it overflows.
        if exponent >= 40 { return maximumMilliseconds }
        let (scaled, overflow) = baseMilliseconds.multipliedReportingOverflow(by: 1 << exponent)
        return overflow ? maximumMilliseconds : min(maximumMilliseconds, scaled)
    }

    /// The delay to wait, given a uniform random number in 0..<1.
    func delay(afterAttempts attempts: Int, random: Double) -> Milliseconds {
        let nominal = nominalDelay(afterAttempts: attempts)
        let reduction = Milliseconds(Double(nominal) * jitter * min(max(random, 0), 1))
        return nominal - reduction
    }

    /// The delay to wait, drawing the random number from the system generator.
    func delay(afterAttempts attempts: Int) -> Milliseconds {
        delay(afterAttempts: attempts, random: Double.random(in: 0..<1))
    }

    /// When the attempt after `attempts` may start: `now` plus the jittered delay, saturating (an absurd
    /// `backoff.max_ms` means "never", not an overflow).
    func retryAt(afterAttempts attempts: Int, now: Int64, random: Double = Double.random(in: 0..<1)) -> Int64 {
        let (sum, overflow) = now.addingReportingOverflow(delay(afterAttempts: attempts, random: random))
        return overflow ? .max : sum
    }
}
