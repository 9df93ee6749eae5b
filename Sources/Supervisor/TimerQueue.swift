/// Identifies a scheduled timer so it can be canceled.
struct TimerID: Hashable {
    fileprivate let rawValue: UInt64
}

/// A min-heap of deadlines with lazy cancellation: the loop's timers (backoff, job deadlines, idle
/// connections, restart delays) all live here and set epoll_wait's timeout.
struct TimerQueue {
    private struct Entry {
        var deadline: Milliseconds
        var id: UInt64
    }

    private var heap: [Entry] = []
    private var actions: [UInt64: () -> Void] = [:]
    private var nextID: UInt64 = 1

    /// Number of live (not canceled, not fired) timers.
    var count: Int { actions.count }

    /// Schedules `action` to run at `deadline`.
    mutating func schedule(at deadline: Milliseconds, _ action: @escaping () -> Void) -> TimerID {
        let id = nextID
        nextID += 1
        actions[id] = action
        heap.append(Entry(deadline: deadline, id: id))
        siftUp(heap.count - 1)
        return TimerID(rawValue: id)
    }

    /// Cancels a timer; canceling a fired or canceled one does nothing.
    mutating func cancel(_ timer: TimerID) {
        actions[timer.rawValue] = nil
    }

    /// The earliest live deadline, dropping canceled entries on the way.
    mutating func nextDeadline() -> Milliseconds? {
        while let top = heap.first {
            if actions[top.id] != nil { return top.deadline }
            popTop()
        }
        return nil
    }

    /// Removes and returns the actions of every timer due at `now`, in deadline order.
    mutating func popDue(now: Milliseconds) -> [() -> Void] {
        var due: [() -> Void] = []
        while let top = heap.first, top.deadline <= now {
            popTop()
            if let action = actions.removeValue(forKey: top.id) { due.append(action) }
        }
        return due
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private func less(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.id < b.id
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && less(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count && less(heap[right], heap[smallest]) { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
