/// Identifies a scheduled timer so it can be canceled: its slot, and which use of the slot it was.
struct TimerID: Hashable {
    fileprivate let slot: Int
    fileprivate let generation: UInt64
}

/// A min-heap of deadlines: the loop's timers (backoff, job deadlines, idle connections, restart delays) all
/// live here and set epoll_wait's timeout.
///
/// Timers live in reusable slots that know their place in the heap, so a cancel takes the timer out at once
/// (O(log n), no hashing). Every job schedules its deadline and almost every job cancels it a few
/// microseconds later; left in the heap until due, canceled deadlines piled up by the million under load
/// (`job_timeout_ms` times the job rate).
struct TimerQueue {
    private struct Slot {
        var deadline: Milliseconds = 0
        /// Schedule order, so timers with the same deadline fire in the order they were scheduled.
        var sequence: UInt64 = 0
        /// Bumped each time the slot is freed, so an old TimerID cannot cancel the slot's next timer.
        var generation: UInt64 = 0
        /// Where the slot is in `heap`; nil while free.
        var heapIndex: Int?
        var action: (() -> Void)?
    }

    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    /// Slot numbers, ordered as a binary min-heap by (deadline, sequence).
    private var heap: [Int] = []
    private var nextSequence: UInt64 = 1

    /// Number of live (not canceled, not fired) timers.
    var count: Int { heap.count }

    /// Schedules `action` to run at `deadline`.
    mutating func schedule(at deadline: Milliseconds, _ action: @escaping () -> Void) -> TimerID {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = slots.count
            slots.append(Slot())
        }
        slots[slot].deadline = deadline
        slots[slot].sequence = nextSequence
        nextSequence += 1
        slots[slot].action = action
        slots[slot].heapIndex = heap.count
        heap.append(slot)
        siftUp(heap.count - 1)
        return TimerID(slot: slot, generation: slots[slot].generation)
    }

    /// Cancels a timer; canceling a fired or canceled one does nothing.
    mutating func cancel(_ timer: TimerID) {
        guard timer.slot < slots.count, slots[timer.slot].generation == timer.generation,
            let index = slots[timer.slot].heapIndex
        else { return }
        _ = remove(at: index)
    }

    /// The earliest live deadline.
    func nextDeadline() -> Milliseconds? {
        heap.first.map { slots[$0].deadline }
    }

    /// Removes and returns the actions of every timer due at `now`, in deadline order.
    mutating func popDue(now: Milliseconds) -> [() -> Void] {
        var due: [() -> Void] = []
        while let top = heap.first, slots[top].deadline <= now {
            due.append(remove(at: 0))
        }
        return due
    }

    /// Takes the timer at heap position `index` out of the heap, frees its slot and returns its action.
    private mutating func remove(at index: Int) -> () -> Void {
        let slot = heap[index]
        let last = heap.removeLast()
        if index < heap.count {
            heap[index] = last
            slots[last].heapIndex = index
            siftDown(index)
            siftUp(slots[last].heapIndex!)
        }
        let action = slots[slot].action!
        slots[slot].action = nil
        slots[slot].heapIndex = nil
        slots[slot].generation += 1
        freeSlots.append(slot)
        return action
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        let (deadlineA, deadlineB) = (slots[a].deadline, slots[b].deadline)
        return deadlineA != deadlineB ? deadlineA < deadlineB : slots[a].sequence < slots[b].sequence
    }

    private mutating func swapAt(_ i: Int, _ j: Int) {
        heap.swapAt(i, j)
        slots[heap[i]].heapIndex = i
        slots[heap[j]].heapIndex = j
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(heap[child], heap[parent]) else { return }
            swapAt(child, parent)
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
            swapAt(parent, smallest)
            parent = smallest
        }
    }
}
