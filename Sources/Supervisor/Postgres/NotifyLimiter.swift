/// At most one NOTIFY on a channel per `interval`, with what came in between carried by the next one.
///
/// Every transaction that notifies takes one database-wide lock at commit and holds it through the WAL flush,
/// so commits that notify take turns instead of sharing a flush; and each notification costs every listening
/// backend a transaction to read it. Sent once per job batch, the notifications would serialise the nodes'
/// commits. River limits its insert notifications the same way. Listeners lose nothing by it: a node that
/// inserted or finished jobs acts on them itself at once; other nodes hear within `interval` (and poll every
/// second regardless).
struct NotifyLimiter {
    /// The least time between two notifications on the channel.
    let interval: Milliseconds
    /// Monotonic time of the last notification sent; nil before the first.
    private(set) var lastSent: Milliseconds?
    /// A notification is owed: something happened since the last one.
    private(set) var owed = false
    /// Payload lines owed (finished job ids); empty for channels without a payload.
    private(set) var lines: [String] = []

    init(interval: Milliseconds) {
        self.interval = interval
    }

    /// Something happened worth a notification, carrying `lines` (if any).
    mutating func note(_ lines: [String] = []) {
        owed = true
        self.lines += lines
    }

    /// When the owed notification may be sent (now or later); nil when nothing is owed.
    func due(at now: Milliseconds) -> Milliseconds? {
        guard owed else { return nil }
        guard let lastSent else { return now }
        return max(now, lastSent + interval)
    }

    /// The payloads to send now, each at most `maximumPayloadBytes` long (PostgreSQL's limit is 8000 bytes), or
    /// nil when nothing is owed or the interval has not passed. What it returns counts as sent at `now`.
    mutating func take(at now: Milliseconds, maximumPayloadBytes: Int = 7900) -> [String]? {
        guard let due = due(at: now), due <= now else { return nil }
        lastSent = now
        owed = false
        defer { lines = [] }
        guard !lines.isEmpty else { return [""] }
        var payloads: [String] = []
        var current = ""
        for line in lines where line.utf8.count <= maximumPayloadBytes {
            if !current.isEmpty && current.utf8.count + 1 + line.utf8.count > maximumPayloadBytes {
                payloads.append(current)
                current = ""
            }
            current += current.isEmpty ? line : "\n" + line
        }
        if !current.isEmpty { payloads.append(current) }
        return payloads.isEmpty ? [""] : payloads
    }
}
