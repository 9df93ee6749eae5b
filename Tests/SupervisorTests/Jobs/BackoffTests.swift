import Testing

@testable import Supervisor

@Suite struct BackoffTests {
    private let standard = Backoff(baseMilliseconds: 100, maximumMilliseconds: 10_000, jitter: 0.5)

    static let nominalDelays: [(attempts: Int, delay: Milliseconds)] = [
        (0, 100),  // attempts < 1 is treated as the first
        (1, 100),
        (2, 200),
        (3, 400),
        (4, 800),
        (5, 1_600),
        (6, 3_200),
        (7, 6_400),
        (8, 10_000),  // 12_800 capped
        (9, 10_000),
        (30, 10_000),
    ]

    @Test(arguments: nominalDelays)
    func nominalDelayDoublesFromBaseAndIsCapped(attempts: Int, delay: Milliseconds) {
        #expect(standard.nominalDelay(afterAttempts: attempts) == delay)
    }

    @Test func nominalDelayHitsCapExactlyWhenAPowerOfTwoMatches() {
        let backoff = Backoff(baseMilliseconds: 250, maximumMilliseconds: 1_000, jitter: 0)
        #expect((1...5).map { backoff.nominalDelay(afterAttempts: $0) } == [250, 500, 1_000, 1_000, 1_000])
    }

    @Test func nominalDelayIsNonDecreasing() {
        var previous: Milliseconds = 0
        for attempts in 1...200 {
            let delay = standard.nominalDelay(afterAttempts: attempts)
            #expect(delay >= previous)
            #expect(delay <= standard.maximumMilliseconds)
            previous = delay
        }
    }

    @Test(arguments: 1...10)
    func randomZeroGivesNominalDelay(attempts: Int) {
        #expect(standard.delay(afterAttempts: attempts, random: 0) == standard.nominalDelay(afterAttempts: attempts))
    }

    @Test(arguments: 1...10)
    func randomNearOneGivesNominalTimesOneMinusJitter(attempts: Int) {
        let nominal = standard.nominalDelay(afterAttempts: attempts)
        let lowest = Milliseconds(Double(nominal) * (1 - standard.jitter))
        let delay = standard.delay(afterAttempts: attempts, random: 1.0.nextDown)
        // The reduction is truncated to whole milliseconds, so the delay may be at most 1 ms above the floor.
        #expect(delay >= lowest)
        #expect(delay <= lowest + 1)
    }

    static let clampedRandoms: [(random: Double, delay: Milliseconds)] = [
        (-5, 400),
        (-0.1, 400),
        (0.5, 300),
        (1, 200),
        (7, 200),
    ]

    @Test(arguments: clampedRandoms)
    func randomIsClampedToUnitInterval(random: Double, delay: Milliseconds) {
        #expect(standard.delay(afterAttempts: 3, random: random) == delay)
    }

    static let configurations: [Backoff] = [
        Backoff(baseMilliseconds: 100, maximumMilliseconds: 10_000, jitter: 0.5),
        Backoff(baseMilliseconds: 1, maximumMilliseconds: 1_000, jitter: 1),
        Backoff(baseMilliseconds: 3, maximumMilliseconds: 7_777, jitter: 0.33),
        Backoff(baseMilliseconds: 1_000, maximumMilliseconds: 1_000, jitter: 0.9),
        Backoff(baseMilliseconds: 50, maximumMilliseconds: 60_000, jitter: 0.01),
    ]

    @Test(arguments: configurations)
    func randomDelayStaysWithinJitterBounds(backoff: Backoff) {
        for attempts in 1...20 {
            let nominal = backoff.nominalDelay(afterAttempts: attempts)
            let lowest = Milliseconds(Double(nominal) * (1 - backoff.jitter)) - 1
            for _ in 0..<500 {
                let delay = backoff.delay(afterAttempts: attempts)
                #expect(
                    delay >= lowest && delay <= nominal, "attempts \(attempts): \(delay) not in \(lowest)...\(nominal)")
            }
        }
    }

    @Test func zeroJitterGivesExactNominalDelay() {
        let backoff = Backoff(baseMilliseconds: 100, maximumMilliseconds: 10_000, jitter: 0)
        for attempts in 1...12 {
            let nominal = backoff.nominalDelay(afterAttempts: attempts)
            for _ in 0..<50 {
                #expect(backoff.delay(afterAttempts: attempts) == nominal)
            }
            #expect(backoff.delay(afterAttempts: attempts, random: 1.0.nextDown) == nominal)
        }
    }

    @Test func zeroBaseGivesZeroDelay() {
        let backoff = Backoff(baseMilliseconds: 0, maximumMilliseconds: 10_000, jitter: 0.5)
        for attempts in [0, 1, 2, 10, 63, 64, 1_000, Int.max] {
            #expect(backoff.nominalDelay(afterAttempts: attempts) == 0)
            #expect(backoff.delay(afterAttempts: attempts) == 0)
            #expect(backoff.delay(afterAttempts: attempts, random: 0.7) == 0)
        }
    }

    @Test func hugeAttemptNumbersGiveTheCapWithoutOverflow() {
        for attempts in [39, 40, 41, 62, 63, 64, 65, 1_000, Int.max] {
            #expect(standard.nominalDelay(afterAttempts: attempts) == 10_000)
            let delay = standard.delay(afterAttempts: attempts)
            #expect(delay >= 4_999 && delay <= 10_000)
        }
    }

    @Test func hugeBaseSaturatesAtTheCapInsteadOfOverflowing() {
        let backoff = Backoff(baseMilliseconds: .max / 2 + 1, maximumMilliseconds: .max, jitter: 0.5)
        #expect(backoff.nominalDelay(afterAttempts: 1) == .max / 2 + 1)
        #expect(backoff.nominalDelay(afterAttempts: 2) == .max)
        #expect(backoff.nominalDelay(afterAttempts: 3) == .max)
        #expect(backoff.nominalDelay(afterAttempts: Int.max) == .max)
        let delay = backoff.delay(afterAttempts: 3)
        #expect(delay > 0 && delay <= .max)
    }

    @Test func uncappedDoublingIsExactUpToTwoToTheThirtyNinth() {
        let backoff = Backoff(baseMilliseconds: 1, maximumMilliseconds: .max, jitter: 0)
        for attempts in 1...40 {
            #expect(backoff.nominalDelay(afterAttempts: attempts) == Milliseconds(1) << (attempts - 1))
        }
    }

    @Test func retryTimeSaturatesInsteadOfOverflowing() {
        let absurd = Backoff(baseMilliseconds: .max, maximumMilliseconds: .max, jitter: 0)
        #expect(absurd.retryAt(afterAttempts: 1, now: 1_700_000_000_000, random: 0) == .max)
        #expect(standard.retryAt(afterAttempts: 2, now: 1_000, random: 0) == 1_200)
    }
}
