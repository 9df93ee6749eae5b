import Testing

@testable import Supervisor

@Suite struct TimerQueueTests {
    /// Records which timers fired, in order.
    private final class Recorder {
        var fired: [String] = []
    }

    /// Schedules one timer per (name, deadline), in the given order.
    private func schedule(
        _ timers: [(name: String, deadline: Milliseconds)], on queue: inout TimerQueue, recorder: Recorder
    ) -> [String: TimerID] {
        var ids: [String: TimerID] = [:]
        for (name, deadline) in timers {
            ids[name] = queue.schedule(at: deadline) { recorder.fired.append(name) }
        }
        return ids
    }

    private func runDue(_ queue: inout TimerQueue, now: Milliseconds) -> Int {
        let due = queue.popDue(now: now)
        for action in due { action() }
        return due.count
    }

    @Test func emptyQueueHasNothingDue() {
        var queue = TimerQueue()
        #expect(queue.count == 0)
        #expect(queue.nextDeadline() == nil)
        #expect(queue.popDue(now: .max).isEmpty)
    }

    @Test func popDueReturnsOnlyDueActionsInDeadlineOrder() {
        var queue = TimerQueue()
        let recorder = Recorder()
        _ = schedule(
            [("e", 50), ("a", 10), ("d", 40), ("b", 20), ("f", 60), ("c", 30)], on: &queue, recorder: recorder)
        #expect(runDue(&queue, now: 9) == 0)
        #expect(runDue(&queue, now: 35) == 3)
        #expect(recorder.fired == ["a", "b", "c"])
        #expect(queue.count == 3)
        #expect(runDue(&queue, now: 60) == 3)  // deadline == now is due
        #expect(recorder.fired == ["a", "b", "c", "d", "e", "f"])
        #expect(queue.count == 0)
        #expect(queue.nextDeadline() == nil)
    }

    @Test func tiesFireInScheduleOrder() {
        var queue = TimerQueue()
        let recorder = Recorder()
        let timers = (0..<40).map { (name: "t\($0)", deadline: Milliseconds($0 % 3 == 0 ? 5 : 7)) }
        _ = schedule(timers, on: &queue, recorder: recorder)
        _ = runDue(&queue, now: 100)
        let expected = timers.filter { $0.deadline == 5 }.map(\.name) + timers.filter { $0.deadline == 7 }.map(\.name)
        #expect(recorder.fired == expected)
    }

    @Test func manyShuffledTimersFireSortedByDeadlineThenScheduleOrder() {
        var queue = TimerQueue()
        let recorder = Recorder()
        var generator = SystemRandomNumberGenerator()
        let timers = (0..<500).map { (name: "t\($0)", deadline: Milliseconds.random(in: 0..<50, using: &generator)) }
        _ = schedule(timers, on: &queue, recorder: recorder)
        #expect(queue.count == 500)
        var now: Milliseconds = 0
        while let deadline = queue.nextDeadline() {
            #expect(deadline >= now)
            now = deadline
            _ = runDue(&queue, now: now)
        }
        let expected = timers.enumerated()
            .sorted { ($0.element.deadline, $0.offset) < ($1.element.deadline, $1.offset) }
            .map(\.element.name)
        #expect(recorder.fired == expected)
    }

    @Test func cancelRemovesTimer() {
        var queue = TimerQueue()
        let recorder = Recorder()
        let ids = schedule([("a", 10), ("b", 20), ("c", 30)], on: &queue, recorder: recorder)
        queue.cancel(ids["b"]!)
        #expect(queue.count == 2)
        _ = runDue(&queue, now: 100)
        #expect(recorder.fired == ["a", "c"])
        #expect(queue.count == 0)
    }

    @Test func cancelingFiredOrCanceledTimerDoesNothing() {
        var queue = TimerQueue()
        let recorder = Recorder()
        let ids = schedule([("a", 10), ("b", 20)], on: &queue, recorder: recorder)
        _ = runDue(&queue, now: 10)
        queue.cancel(ids["a"]!)  // already fired
        #expect(queue.count == 1)
        queue.cancel(ids["b"]!)
        queue.cancel(ids["b"]!)  // already canceled
        #expect(queue.count == 0)
        #expect(runDue(&queue, now: 100) == 0)
        #expect(recorder.fired == ["a"])
    }

    @Test func nextDeadlineSkipsCanceledTimers() {
        var queue = TimerQueue()
        let recorder = Recorder()
        let ids = schedule([("a", 10), ("b", 20), ("c", 30)], on: &queue, recorder: recorder)
        #expect(queue.nextDeadline() == 10)
        queue.cancel(ids["a"]!)
        #expect(queue.nextDeadline() == 20)
        queue.cancel(ids["b"]!)
        #expect(queue.nextDeadline() == 30)
        queue.cancel(ids["c"]!)
        #expect(queue.nextDeadline() == nil)
        #expect(queue.count == 0)
    }

    @Test func nextDeadlineIsTheEarliestLiveDeadline() {
        var queue = TimerQueue()
        let recorder = Recorder()
        _ = schedule([("late", 300), ("early", 100), ("middle", 200)], on: &queue, recorder: recorder)
        #expect(queue.nextDeadline() == 100)
        #expect(queue.nextDeadline() == 100)  // asking does not consume
        #expect(queue.count == 3)
        _ = runDue(&queue, now: 150)
        #expect(queue.nextDeadline() == 200)
    }

    @Test func countTracksScheduleCancelAndFire() {
        var queue = TimerQueue()
        let recorder = Recorder()
        var ids: [TimerID] = []
        for step in 0..<10 {
            ids.append(queue.schedule(at: Milliseconds(step)) { recorder.fired.append("\(step)") })
            #expect(queue.count == step + 1)
        }
        queue.cancel(ids[9])
        queue.cancel(ids[0])
        #expect(queue.count == 8)
        _ = runDue(&queue, now: 4)
        #expect(queue.count == 4)
        #expect(recorder.fired == ["1", "2", "3", "4"])
    }

    /// Cancels land anywhere in the heap: the timer moved into the hole may have to go up or down.
    @Test func cancelingRandomTimersKeepsTheRestInOrder() {
        var queue = TimerQueue()
        let recorder = Recorder()
        var generator = SystemRandomNumberGenerator()
        let timers = (0..<2_000).map { (name: "t\($0)", deadline: Milliseconds.random(in: 0..<300, using: &generator)) }
        let ids = schedule(timers, on: &queue, recorder: recorder)
        let canceled = Set(timers.map(\.name).filter { _ in Bool.random(using: &generator) })
        for name in canceled { queue.cancel(ids[name]!) }
        #expect(queue.count == timers.count - canceled.count)
        _ = runDue(&queue, now: 300)
        let expected = timers.enumerated().filter { !canceled.contains($0.element.name) }
            .sorted { ($0.element.deadline, $0.offset) < ($1.element.deadline, $1.offset) }
            .map(\.element.name)
        #expect(recorder.fired == expected)
        #expect(queue.count == 0)
    }

    /// A freed slot is reused; the old timer's id must not cancel the new one.
    @Test func staleIDDoesNotCancelTheTimerThatReusedItsSlot() {
        var queue = TimerQueue()
        let recorder = Recorder()
        let old = queue.schedule(at: 10) { recorder.fired.append("old") }
        queue.cancel(old)
        let new = queue.schedule(at: 20) { recorder.fired.append("new") }
        #expect(new != old)
        queue.cancel(old)
        #expect(queue.count == 1)
        _ = runDue(&queue, now: 20)
        #expect(recorder.fired == ["new"])
    }

    @Test func timerIDsAreDistinct() {
        var queue = TimerQueue()
        let ids = (0..<100).map { _ in queue.schedule(at: 0) {} }
        #expect(Set(ids).count == 100)
    }

    @Test func timerScheduledAfterPopDueIsKept() {
        var queue = TimerQueue()
        let recorder = Recorder()
        _ = schedule([("a", 10)], on: &queue, recorder: recorder)
        _ = runDue(&queue, now: 10)
        _ = schedule([("b", 5)], on: &queue, recorder: recorder)  // already in the past
        #expect(queue.nextDeadline() == 5)
        _ = runDue(&queue, now: 10)
        #expect(recorder.fired == ["a", "b"])
    }
}
