import Testing

@testable import Supervisor

/// The connection lifecycle transition by transition: which deadline applies, when it lingers, when it closes.
@Suite struct HTTPConnectionStateTests {
    private let timeouts = HTTPConnectionState.Timeouts(request: 100, idle: 1000, linger: 50)

    private func makeState(now: Milliseconds = 0) -> HTTPConnectionState {
        HTTPConnectionState(now: now, timeouts: timeouts)
    }

    @Test func freshConnectionWaitsForTheIdleDeadline() {
        let state = makeState(now: 10)
        #expect(state.isOpen)
        #expect(state.requestStartedAt == nil)
        #expect(state.deadline == 1010)
    }

    @Test func firstBytesOfARequestStartTheRequestClock() {
        var state = makeState()
        state.received(now: 20, hadPendingInput: false)
        #expect(state.requestStartedAt == 20)
        #expect(state.deadline == 120)
        state.received(now: 60, hadPendingInput: true)  // more of the same request
        #expect(state.requestStartedAt == 20)
        #expect(state.lastActivity == 60)
    }

    @Test func completedRequestGoesBackToIdleOrStartsTheNextPipelinedOne() {
        var state = makeState()
        state.received(now: 20, hadPendingInput: false)
        state.requestCompleted(now: 30, keepAlive: true, moreInputPending: false)
        #expect(state.requestStartedAt == nil)
        #expect(state.deadline == 1020)
        state.received(now: 40, hadPendingInput: false)
        state.requestCompleted(now: 45, keepAlive: true, moreInputPending: true)
        #expect(state.requestStartedAt == 45)
        #expect(state.isOpen)
    }

    @Test func requestAskingForCloseEndsTheConnectionAfterItsResponse() {
        var state = makeState()
        state.requestCompleted(now: 5, keepAlive: false, moreInputPending: false)
        #expect(state.phase == .closingAfterFlush)
        #expect(state.drained(now: 6, inputPendingOrWatched: true) == .linger(until: 56))
        #expect(state.isLingering)
        #expect(state.deadline == 56)
        #expect(state.timerFired(now: 56, held: false) == .close)
        #expect(state.isClosed)
    }

    @Test func closingWithNothingLeftToReadClosesAtOnce() {
        var state = makeState()
        state.requestFailed()
        #expect(state.drained(now: 1, inputPendingOrWatched: false) == .close)
        #expect(state.isClosed)
    }

    @Test func drainedOpenConnectionKeepsReading() {
        var state = makeState()
        #expect(state.drained(now: 1, inputPendingOrWatched: true) == .keepReading)
        #expect(state.isOpen)
    }

    @Test func peerFinishingWithNothingQueuedClosesAndOtherwiseFlushesFirst() {
        var idle = makeState()
        let closeIdle = idle.peerFinished(outputEmpty: true)
        #expect(closeIdle)
        #expect(idle.isClosed)
        var busy = makeState()
        busy.received(now: 1, hadPendingInput: false)
        let closeBusy = busy.peerFinished(outputEmpty: false)
        #expect(!closeBusy)
        #expect(busy.phase == .closingAfterFlush)
        #expect(busy.requestStartedAt == nil)
    }

    @Test func peerFinishingWhileLingeringCloses() {
        var state = makeState()
        state.requestFailed()
        _ = state.drained(now: 1, inputPendingOrWatched: true)
        let close = state.peerFinished(outputEmpty: true)
        #expect(close)
        #expect(state.isClosed)
    }

    @Test func idleConnectionClosesAtItsDeadlineNotBefore() {
        var state = makeState()
        #expect(state.timerFired(now: 999, held: false) == .rearm(at: 1000))
        #expect(state.isOpen)
        #expect(state.timerFired(now: 1000, held: false) == .close)
        #expect(state.isClosed)
    }

    @Test func activityMovesTheIdleDeadline() {
        var state = makeState()
        state.wrote(now: 500)
        #expect(state.timerFired(now: 1000, held: false) == .rearm(at: 1500))
    }

    @Test func slowRequestGetsA408ThenClosesAfterTheLinger() {
        var state = makeState()
        state.received(now: 10, hadPendingInput: false)
        #expect(state.timerFired(now: 110, held: false) == .requestTimedOut(closeAt: 160))
        #expect(state.phase == .closingAfterFlush)
        #expect(state.deadline == 160)
        // The 408 is sent; lingering keeps the same end.
        #expect(state.drained(now: 115, inputPendingOrWatched: true) == .linger(until: 160))
        #expect(state.timerFired(now: 160, held: false) == .close)
    }

    @Test func connectionWaitingOnTheDiskIsNotIdle() {
        var state = makeState()
        #expect(state.timerFired(now: 5000, held: true) == .rearm(at: 6000))
        #expect(state.isOpen)
        #expect(state.lastActivity == 5000)
    }

    @Test func closedIsFinal() {
        var state = makeState()
        state.closed()
        #expect(state.isClosed)
        #expect(!state.isOpen)
    }
}
