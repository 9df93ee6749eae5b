/// Values by worker slot number: an array that grows to the highest slot (slots are few and dense), where a
/// dictionary would hash on every job's hand-off.
struct SlotTable<Value> {
    private var values: [Value?] = []

    /// The value of `slot`, nil when none.
    subscript(slot: Int) -> Value? {
        get { slot < values.count ? values[slot] : nil }
        set {
            if slot >= values.count {
                guard newValue != nil else { return }
                values.append(contentsOf: repeatElement(nil, count: slot + 1 - values.count))
            }
            values[slot] = newValue
        }
    }

    /// Takes the value of `slot` out and returns it.
    mutating func remove(_ slot: Int) -> Value? {
        guard slot < values.count else { return nil }
        defer { values[slot] = nil }
        return values[slot]
    }
}
