import IPC
import System

/// The worker slots as a state machine without I/O: events in (spawned, ready, result, exited, timer, cancel,
/// recycle, scale, drain), actions out (spawn, send, kill, set a timer, charge an attempt, log). The supervisor
/// performs the actions; tests drive the pool transition by transition with a fake clock and no processes.
struct WorkerPool {
    /// The settings the pool decides with.
    struct Settings: Equatable {
        /// A child that dies within this long of its spawn, without having run a job, counts as a crash loop.
        var quickDeathWindow: Milliseconds = 1000
        /// First delay of a crash-looping slot's respawn; doubles per further quick death up to the cap.
        var restartDelayBase: Milliseconds = 50
        /// Cap of the crash-loop delay (`worker.restart_delay_max_ms`).
        var restartDelayMaximum: Milliseconds = 5000
        /// A child that has not said `ready` by then is killed (`worker.start_timeout_ms`); 0 waits forever.
        var startTimeout: Milliseconds = 30_000
        /// Recycle a child after this many jobs (`worker.max_jobs`); 0 is off.
        var maximumJobs = 0
        /// Recycle a child whose resident set passed this many bytes (`worker.max_rss_mb`); 0 is off.
        var maximumResidentBytes = 0
        /// The built-in worker's `ready` version: a `prefork-worker` announcing another version is from another
        /// build and is refused. Workers built on the SDKs announce their own names and are not held to it.
        var builtInWorkerVersion: String?
    }

    /// What the supervisor must do after an event.
    enum Action: Equatable {
        /// Start a child in the slot with fresh pipes, then call `spawned` or `spawnFailed`.
        case spawn(slot: Int)
        /// Write a frame to the slot's job pipe.
        case send(slot: Int, Message)
        /// SIGKILL the child, its process group and everything it started.
        case kill(slot: Int, pid: Int32)
        /// Arm the slot's one timer for this monotonic time (nil: cancel it); then call `timerFired`.
        case setTimer(slot: Int, at: Milliseconds?)
        /// Charge the end of an attempt to its job.
        case attemptEnded(AttemptEnd)
        /// A running attempt reported progress.
        case progress(jobID: String, attempt: Int, percent: Int, note: String)
        /// Something to log and count.
        case note(Note)
        /// A slot became idle: hand out waiting jobs.
        case dispatch
    }

    /// How an attempt ended, for the job ledger.
    struct AttemptEnd: Equatable {
        /// How it ended.
        enum Kind: Equatable {
            /// The handler succeeded.
            case succeeded(output: [UInt8], truncated: Bool, detail: [UInt8])
            /// The attempt failed (handler error, crash, timeout, protocol error).
            case failed(AttemptOutcome, error: String, detail: [UInt8])
            /// The supervisor's shutdown cut it short.
            case interrupted(error: String)
            /// Its job was canceled; nothing to charge.
            case canceled
        }
        /// The job's id.
        var jobID: String
        /// The attempt number.
        var attempt: Int
        /// How it ended.
        var kind: Kind
        /// How long it ran.
        var runMicroseconds: Int64
        /// The worker that ran it.
        var workerPID: Int32
    }

    /// Things worth a log line or a metric.
    enum Note: Equatable {
        /// A child said `ready`.
        case ready(slot: Int, pid: Int32, version: String)
        /// A child was reaped; `expected` when it was told to stop and did.
        case exited(slot: Int, pid: Int32, status: TerminationStatus, reason: String, job: String?, expected: Bool)
        /// The slot's child was replaced; counted by cause.
        case restarted(slot: Int, cause: RestartCause)
        /// A crash-looping slot waits before its next child.
        case restartDelayed(slot: Int, quickDeaths: Int, delay: Milliseconds)
        /// A child will be replaced once free.
        case recycling(slot: Int, pid: Int32, reason: String)
        /// A recycled child exited and is replaced.
        case recycled(slot: Int, pid: Int32, reason: String)
        /// A child broke the protocol and is being killed.
        case protocolError(slot: Int, pid: Int32, message: String)
        /// An attempt passed its timeout and its child is being killed.
        case jobTimeout(jobID: String, attempt: Int, pid: Int32)
        /// A child did not say `ready` in time and is being killed.
        case startTimeout(slot: Int, pid: Int32, timeout: Milliseconds)
    }

    /// The settings in force.
    var settings: Settings
    /// Every slot, by index. Changed only by the pool's own events (here and in `WorkerPool+Events`).
    var slots: [WorkerSlot] = []
    /// Children wanted (WORKERS, changed by SIGTTIN/SIGTTOU and reloads).
    private(set) var target: Int
    /// SIGINT/SIGTERM received: no respawns, every slot retires.
    private(set) var draining = false
    /// The time source (a fake one in tests).
    let clock: Clock

    /// An empty pool wanting `target` children; `start()` asks for them.
    init(target: Int, settings: Settings, clock: Clock) {
        self.target = target
        self.settings = settings
        self.clock = clock
    }

    // MARK: Queries

    /// Slots whose child waits for a job.
    var idleSlots: [Int] {
        slots.indices.filter { slots[$0].isDispatchable }
    }

    /// The first slot from `start` on whose child waits for a job (no array built: called per job).
    func nextIdleSlot(from start: Int = 0) -> Int? {
        var index = start
        while index < slots.count {
            if slots[index].isDispatchable { return index }
            index += 1
        }
        return nil
    }

    /// Whether a child is running an attempt.
    var hasBusySlot: Bool {
        for index in slots.indices {
            if case .busy = slots[index].state { return true }
        }
        return false
    }

    /// The pid of the slot's child while it is alive and not being killed: frames are read from it.
    func listeningPID(_ index: Int) -> Int32? {
        switch slots[index].state {
        case .starting(let child), .idle(let child), .busy(let child, _), .stopping(let child):
            return child.kill == nil ? child.pid : nil
        case .vacant, .restartPending, .retired:
            return nil
        }
    }

    /// Children that have said `ready` and are alive.
    var liveWorkerCount: Int { slots.count(where: { $0.isServing }) }

    /// Whether no child is alive (the shutdown can end once draining).
    var allDown: Bool { slots.allSatisfy { !$0.isAlive } }

    /// The slot whose child has this pid.
    func slotIndex(pid: Int32) -> Int? {
        slots.firstIndex { $0.state.child?.pid == pid }
    }

    /// The slot running this job.
    func slotIndex(runningJob id: String) -> Int? {
        slots.firstIndex { $0.state.assignment?.jobID == id }
    }

    // MARK: Size

    /// Asks for children until the target is met (at start, and after changes).
    mutating func fill() -> [Action] {
        guard !draining else { return [] }
        var actions: [Action] = []
        while slots.count(where: \.isActive) < target {
            let index = slots.firstIndex { $0.state == .retired } ?? appendSlot()
            slots[index].state = .vacant
            slots[index].quickDeaths = 0
            actions.append(.spawn(slot: index))
        }
        return actions
    }

    /// SIGTTIN / SIGTTOU / reload: the new number of children (at least one); surplus ones retire once free.
    mutating func setTarget(_ count: Int) -> [Action] {
        guard !draining else { return [] }
        target = max(1, count)
        var actions: [Action] = []
        var active = slots.indices.filter { slots[$0].isActive }
        while active.count > target, let index = active.popLast() {
            actions += stop(index, reason: .retire)
        }
        return actions + fill()
    }

    private mutating func appendSlot() -> Int {
        slots.append(WorkerSlot(index: slots.count))
        return slots.count - 1
    }

    // MARK: Spawning

    /// The supervisor started a child in the slot.
    mutating func spawned(slot index: Int, pid: Int32) -> [Action] {
        let child = WorkerSlot.Child(pid: pid, spawnedAt: clock.monotonicMilliseconds(), startedAtWall: clock.wallMilliseconds())
        slots[index].state = .starting(child)
        guard settings.startTimeout > 0 else { return [.setTimer(slot: index, at: nil)] }
        return [.setTimer(slot: index, at: child.spawnedAt + settings.startTimeout)]
    }

    /// The supervisor could not start a child: try again after the crash-loop delay.
    mutating func spawnFailed(slot index: Int) -> [Action] {
        slots[index].quickDeaths += 1
        return [.note(.restarted(slot: index, cause: .spawnFailed))] + respawn(index)
    }

    /// Starts the next child now, or after a growing delay while the slot keeps dying at start (no fork bomb).
    mutating func respawn(_ index: Int) -> [Action] {
        guard slots[index].quickDeaths > 1 else {
            slots[index].state = .vacant
            return [.setTimer(slot: index, at: nil), .spawn(slot: index)]
        }
        let exponent = min(slots[index].quickDeaths - 2, 20)
        let delay = min(settings.restartDelayMaximum, settings.restartDelayBase << exponent)
        let at = clock.monotonicMilliseconds() + delay
        slots[index].state = .restartPending(at: at)
        return [
            .note(.restartDelayed(slot: index, quickDeaths: slots[index].quickDeaths, delay: delay)),
            .setTimer(slot: index, at: at),
        ]
    }

    // MARK: Stopping

    /// Asks the slot's child to exit once free: a `stop` frame now if it is idle or starting, after its job if
    /// busy. A slot without a child is retired at once (or left to respawn, for a recycle).
    mutating func stop(_ index: Int, reason: WorkerSlot.StopReason) -> [Action] {
        switch slots[index].state {
        case .vacant, .restartPending:
            if case .recycle = reason { return [] }
            slots[index].state = .retired
            return [.setTimer(slot: index, at: nil)]
        case .retired:
            return []
        case .starting(var child), .idle(var child):
            child.stopReason = mergedReason(child.stopReason, reason)
            return sendStop(index, child)
        case .busy(var child, let assignment):
            child.stopReason = mergedReason(child.stopReason, reason)
            slots[index].state = .busy(child, assignment)
            return []
        case .stopping(var child):
            child.stopReason = mergedReason(child.stopReason, reason)
            slots[index].state = .stopping(child)
            return []
        }
    }

    /// Retiring wins over recycling: a slot asked to go away does not come back.
    private func mergedReason(_ current: WorkerSlot.StopReason?, _ new: WorkerSlot.StopReason) -> WorkerSlot.StopReason {
        guard let current else { return new }
        if case .recycle = current { return new }
        return current
    }

    private mutating func sendStop(_ index: Int, _ child: WorkerSlot.Child) -> [Action] {
        var child = child
        child.stopSent = true
        slots[index].state = .stopping(child)
        return [.send(slot: index, .stop)]
    }

    /// Replaces the slot's child gracefully once it is free (max_jobs, max_rss_mb, reload).
    mutating func recycle(slot index: Int, reason: String) -> [Action] {
        guard let child = slots[index].state.child, child.stopReason == nil, child.kill == nil else { return [] }
        return [.note(.recycling(slot: index, pid: child.pid, reason: reason))] + stop(index, reason: .recycle(reason))
    }

    /// Replaces every active child gracefully (the worker settings changed).
    mutating func recycleAll(reason: String) -> [Action] {
        slots.indices.filter { slots[$0].isActive }.flatMap { recycle(slot: $0, reason: reason) }
    }

    /// SIGINT/SIGTERM: no more respawns; every child exits once its job is done.
    mutating func drain() -> [Action] {
        draining = true
        return slots.indices.flatMap { stop($0, reason: .drain) }
    }

    /// SIGKILLs every live child with `reason` (shutdown deadline, second signal): their attempts are
    /// interrupted, not failed.
    mutating func killAll(reason: String) -> [Action] {
        slots.indices.flatMap { kill($0, reason: reason, cause: .shutdown) }
    }

    /// SIGKILLs the slot's child; its job is charged with `reason` when it is reaped. A second kill keeps the
    /// first reason.
    mutating func kill(_ index: Int, reason: String, cause: WorkerSlot.KillCause) -> [Action] {
        guard var child = slots[index].state.child else { return [] }
        if child.kill == nil { child.kill = WorkerSlot.Kill(reason: reason, cause: cause) }
        switch slots[index].state {
        case .busy(_, let assignment): slots[index].state = .busy(child, assignment)
        default: slots[index].state = .stopping(child)
        }
        return [.kill(slot: index, pid: child.pid)]
    }
}
