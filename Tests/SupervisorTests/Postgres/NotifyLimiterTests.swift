import Testing

@testable import Supervisor

/// The PostgreSQL backend's notification limiter: at most one NOTIFY per interval, nothing lost in between.
@Suite struct NotifyLimiterTests {
    @Test func nothingOwedMeansNothingToSend() {
        var limiter = NotifyLimiter(interval: 20)
        #expect(limiter.due(at: 0) == nil)
        #expect(limiter.take(at: 0) == nil)
    }

    @Test func theFirstGoesAtOnceThenOnePerInterval() {
        var limiter = NotifyLimiter(interval: 20)
        limiter.note()
        #expect(limiter.due(at: 100) == 100)
        #expect(limiter.take(at: 100) == [""])
        #expect(!limiter.owed)
        limiter.note()
        limiter.note()
        #expect(limiter.due(at: 105) == 120)
        #expect(limiter.take(at: 105) == nil, "not before the interval has passed")
        #expect(limiter.take(at: 119) == nil)
        #expect(limiter.take(at: 120) == [""], "two notes, one notification")
        #expect(limiter.take(at: 200) == nil, "nothing owed since")
    }

    @Test func linesNotedInBetweenGoWithTheNextOne() {
        var limiter = NotifyLimiter(interval: 20)
        limiter.note(["a"])
        #expect(limiter.take(at: 0) == ["a"])
        limiter.note(["b", "c"])
        limiter.note(["d"])
        #expect(limiter.take(at: 10) == nil)
        #expect(limiter.take(at: 25) == ["b\nc\nd"])
        #expect(limiter.lines.isEmpty)
    }

    @Test func payloadsAreSplitAtTheLimitWithoutCuttingALine() {
        var limiter = NotifyLimiter(interval: 20)
        limiter.note(["aaaa", "bbbb", "cccc", "dd"])
        #expect(limiter.take(at: 0, maximumPayloadBytes: 9) == ["aaaa\nbbbb", "cccc\ndd"])
        limiter.note(["toolongforone", "ok"])
        #expect(limiter.take(at: 20, maximumPayloadBytes: 9) == ["ok"], "a line over the limit is left out")
        limiter.note(["toolongforone"])
        #expect(limiter.take(at: 40, maximumPayloadBytes: 9) == [""], "still a wake-up")
    }

    @Test func aLongQuietSpellMakesTheNextOneImmediate() {
        var limiter = NotifyLimiter(interval: 20)
        limiter.note()
        _ = limiter.take(at: 0)
        limiter.note()
        #expect(limiter.due(at: 1_000) == 1_000)
    }
}
