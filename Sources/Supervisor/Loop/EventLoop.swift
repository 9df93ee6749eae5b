import System

/// Identifies one registration of a descriptor with the loop. Tokens are never reused, so an event
/// still in the current batch for a descriptor that was closed (and its number reused) finds no handler.
typealias EventToken = UInt64

/// One epoll instance and a timer queue, run on the calling thread.
///
/// Handlers receive the epoll event mask. Timers fire after I/O in each iteration; `afterIteration`
/// runs last, which is where the supervisor flushes the journal and then the responses that waited on it.
///
/// Descriptors registered as urgent (the workers' result pipes) live in a second epoll instance, itself
/// watched by the first. While `expectsUrgentEvents` is set, that instance is polled (without waiting)
/// after every other handler, so a worker that finishes a job gets its next one while the loop is still
/// working through a batch of HTTP events, not once per batch.
final class EventLoop {
    private let epoll: FileDescriptor
    private let urgentEpoll: FileDescriptor
    private var handlers: [EventToken: (UInt32) -> Void] = [:]
    private var nextToken: EventToken = 1
    private var timers = TimerQueue()
    private var events = [UInt32](repeating: 0, count: 256)
    private var tokens = [UInt64](repeating: 0, count: 256)
    private var urgentEvents = [UInt32](repeating: 0, count: 64)
    private var urgentTokens = [UInt64](repeating: 0, count: 64)
    /// Set in the token of an urgent registration.
    private static let urgentBit: EventToken = 1 << 63
    /// The main instance's token for the urgent instance.
    private static let urgentEpollToken: EventToken = 0
    private let clock: Clock

    /// Runs at the end of every iteration, after I/O handlers and timers.
    var afterIteration: () -> Void = {}
    /// Whether urgent descriptors are polled between handlers (the supervisor sets it while a worker is busy
    /// and jobs wait for one).
    var expectsUrgentEvents = false

    /// Creates the epoll instance.
    init(clock: Clock = SystemClock()) throws(SystemError) {
        self.epoll = try Epoll.create()
        do throws(SystemError) {
            self.urgentEpoll = try Epoll.create()
        } catch {
            epoll.close()
            throw error
        }
        self.clock = clock
        do throws(SystemError) {
            try Epoll.control(epoll, Epoll.add, urgentEpoll, events: Epoll.readable, token: Self.urgentEpollToken)
        } catch {
            urgentEpoll.close()
            epoll.close()
            throw error
        }
    }

    deinit {
        urgentEpoll.close()
        epoll.close()
    }

    /// The current monotonic time.
    var now: Milliseconds { clock.monotonicMilliseconds() }

    /// Watches `fd` for `events`, calling `handler` with the ready mask; an `urgent` one is also served
    /// between other handlers while `expectsUrgentEvents` is set.
    @discardableResult
    func register(
        _ fd: FileDescriptor, events: UInt32, urgent: Bool = false, _ handler: @escaping (UInt32) -> Void
    ) throws(SystemError) -> EventToken {
        let token = nextToken | (urgent ? Self.urgentBit : 0)
        nextToken += 1
        try Epoll.control(instance(of: token), Epoll.add, fd, events: events, token: token)
        handlers[token] = handler
        return token
    }

    /// Watches `fd` under a new token whether or not the kernel still has it registered: for a descriptor owned
    /// by a library that may close it and open another with the same number (libpq while connecting). A
    /// registration still in place (the same open file) is taken over; otherwise the descriptor is added.
    func reregister(
        _ fd: FileDescriptor, events: UInt32, _ handler: @escaping (UInt32) -> Void
    ) throws(SystemError) -> EventToken {
        let token = nextToken
        nextToken += 1
        try Epoll.addOrModify(epoll, fd, events: events, token: token)
        handlers[token] = handler
        return token
    }

    /// Forgets a registration whose descriptor was already closed by its owner (a closed descriptor leaves the
    /// epoll set by itself; asking the kernel to remove it would name a descriptor that no longer exists).
    func forget(token: EventToken) {
        handlers[token] = nil
    }

    /// Changes the events watched for a registration.
    func modify(_ fd: FileDescriptor, token: EventToken, events: UInt32) {
        // Only fails for a descriptor that is not registered, which would be a bug.
        try! Epoll.control(instance(of: token), Epoll.modify, fd, events: events, token: token)
    }

    /// Stops watching `fd`; call before closing it.
    func unregister(_ fd: FileDescriptor, token: EventToken) {
        handlers[token] = nil
        try? Epoll.control(instance(of: token), Epoll.delete, fd, events: 0, token: 0)
    }

    private func instance(of token: EventToken) -> FileDescriptor {
        token & Self.urgentBit != 0 ? urgentEpoll : epoll
    }

    /// Runs `action` at `deadline` (monotonic milliseconds).
    @discardableResult
    func schedule(at deadline: Milliseconds, _ action: @escaping () -> Void) -> TimerID {
        timers.schedule(at: deadline, action)
    }

    /// Runs `action` after `delay` milliseconds.
    @discardableResult
    func schedule(after delay: Milliseconds, _ action: @escaping () -> Void) -> TimerID {
        // Saturating: a huge configured delay means "never", not an overflow trap.
        let (deadline, overflow) = now.addingReportingOverflow(delay)
        return timers.schedule(at: overflow ? .max : deadline, action)
    }

    /// Cancels a timer.
    func cancel(_ timer: TimerID?) {
        if let timer { timers.cancel(timer) }
    }

    /// Waits for events (or the next timer), runs their handlers, due timers, then `afterIteration`.
    func runOnce() throws(SystemError) {
        var timeout: CInt = -1
        if let deadline = timers.nextDeadline() {
            timeout = CInt(clamping: max(0, deadline - now))
        }
        let count = try Epoll.wait(epoll, events: &events, tokens: &tokens, timeoutMilliseconds: timeout)
        for index in 0..<count {
            if tokens[index] == Self.urgentEpollToken {
                try serveUrgent()
            } else {
                handlers[tokens[index]]?(events[index])
                if expectsUrgentEvents { try serveUrgent() }
            }
        }
        for action in timers.popDue(now: now) {
            action()
        }
        afterIteration()
    }

    /// Runs the handlers of the urgent descriptors that are ready now, without waiting.
    private func serveUrgent() throws(SystemError) {
        let count = try Epoll.wait(
            urgentEpoll, events: &urgentEvents, tokens: &urgentTokens, timeoutMilliseconds: 0)
        for index in 0..<count {
            handlers[urgentTokens[index]]?(urgentEvents[index])
        }
    }
}
