/// A FIFO queue over an array with a moving head: O(1) amortized push and pop, compacted as it drains.
struct Deque<Element> {
    private var storage: [Element] = []
    private var head = 0

    /// Number of elements.
    var count: Int { storage.count - head }
    /// Whether it holds nothing.
    var isEmpty: Bool { head == storage.count }

    /// Adds at the back.
    mutating func append(_ element: Element) {
        storage.append(element)
    }

    /// Removes from the front.
    mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= storage.count {
            storage.removeSubrange(0..<head)
            head = 0
        }
        return element
    }

    /// Removes the elements that satisfy `predicate`, keeping the others' order; returns how many went.
    @discardableResult
    mutating func removeAll(where predicate: (Element) -> Bool) -> Int {
        let kept = storage[head...].filter { !predicate($0) }
        let removed = count - kept.count
        storage = kept
        head = 0
        return removed
    }
}

extension Deque: RandomAccessCollection {
    /// Positions from 0 (the front) to `count`.
    var startIndex: Int { 0 }
    var endIndex: Int { count }

    /// The element `position` places from the front.
    subscript(position: Int) -> Element { storage[head + position] }
}
