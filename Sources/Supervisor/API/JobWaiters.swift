/// Long-polls: requests held until their job finishes or their deadline passes (`?wait_ms=N`).
///
/// A waiter costs a timer and an entry under its job's id; nothing polls. The ledger's observer wakes the waiters
/// of a job when it reaches a final state; a waiter whose client hangs up is dropped at once; at shutdown every
/// waiter is answered with the record as it stands.
final class JobWaiters {
    /// One held request.
    private final class Waiter {
        let exchange: HTTPExchange
        let answer: (Job) -> HTTPResponse
        var timer: TimerID?

        init(exchange: HTTPExchange, answer: @escaping (Job) -> HTTPResponse) {
            self.exchange = exchange
            self.answer = answer
        }
    }

    private let loop: EventLoop
    private var waiting: [String: [Waiter]] = [:]
    /// Requests held now.
    private(set) var count = 0

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// Holds `exchange` until job `id` finishes (then `answer` builds the reply from the final record) or
    /// `milliseconds` pass (then from the record `current` returns).
    func wait(
        for id: String, exchange: HTTPExchange, milliseconds: Int, current: @escaping () -> Job?,
        answer: @escaping (Job) -> HTTPResponse
    ) {
        wait(for: id, exchange: exchange, milliseconds: milliseconds, answer: answer) { exchange in
            exchange.respond(Self.reply(current(), id: id, answer: answer))
        }
    }

    /// Holds `exchange` until job `id` finishes (then `answer` builds the reply from the final record) or
    /// `milliseconds` pass (then `atDeadline` answers it, for a record it may first have to fetch).
    func wait(
        for id: String, exchange: HTTPExchange, milliseconds: Int, answer: @escaping (Job) -> HTTPResponse,
        atDeadline: @escaping (HTTPExchange) -> Void
    ) {
        let waiter = Waiter(exchange: exchange, answer: answer)
        waiting[id, default: []].append(waiter)
        count += 1
        waiter.timer = loop.schedule(after: Milliseconds(milliseconds)) { [unowned self, waiter] in
            waiter.timer = nil
            remove(waiter, id: id)
            atDeadline(waiter.exchange)
        }
        exchange.onClose = { [unowned self, unowned waiter] in
            loop.cancel(waiter.timer)
            waiter.timer = nil
            remove(waiter, id: id)
        }
    }

    /// The ids of the jobs waited on.
    var jobIDs: [String] { Array(waiting.keys) }

    /// Whether a request waits on job `id`.
    func isWaiting(for id: String) -> Bool { waiting[id] != nil }

    /// A job changed: answers its waiters if it reached a final state.
    func jobChanged(_ job: Job) {
        guard job.state.isFinished else { return }
        answer(job)
    }

    /// Answers the waiters of `job` now with this record, whatever its state.
    func answer(_ job: Job) {
        guard let waiters = waiting.removeValue(forKey: job.id) else { return }
        count -= waiters.count
        for waiter in waiters {
            loop.cancel(waiter.timer)
            waiter.timer = nil
            waiter.exchange.respond(waiter.answer(job))
        }
    }

    /// Answers every waiter now with its job as it stands (shutdown).
    func answerAll(current: (String) -> Job?) {
        answerAll { id, waiter in Self.reply(current(id), id: id, answer: waiter.answer) }
    }

    /// Answers every waiter now with `response` (shutdown, when no record can be had).
    func answerAll(with response: HTTPResponse) {
        answerAll { _, _ in response }
    }

    private func answerAll(_ reply: (String, Waiter) -> HTTPResponse) {
        let all = waiting
        waiting = [:]
        count = 0
        for (id, waiters) in all {
            for waiter in waiters {
                loop.cancel(waiter.timer)
                waiter.timer = nil
                waiter.exchange.respond(reply(id, waiter))
            }
        }
    }

    /// The reply for a job as it stands: `answer`'s, or 404 when it is gone.
    private static func reply(_ job: Job?, id: String, answer: (Job) -> HTTPResponse) -> HTTPResponse {
        guard let job else { return .error(404, "job \(id) is gone (dropped by retention)") }
        return answer(job)
    }

    private func remove(_ waiter: Waiter, id: String) {
        guard var list = waiting[id], let index = list.firstIndex(where: { $0 === waiter }) else { return }
        list.remove(at: index)
        count -= 1
        waiting[id] = list.isEmpty ? nil : list
    }
}
