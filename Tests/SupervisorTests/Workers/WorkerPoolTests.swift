import Glibc
import IPC
import System
import Testing

@testable import Supervisor

/// The pool driven event by event with a fake clock: no processes, no pipes.
@Suite struct WorkerPoolTests {
    private let version = "prefork-worker \(BuildInfo.version)"

    private func makePool(
        target: Int = 1, clock: FakeClock = FakeClock(), _ adjust: (inout WorkerPool.Settings) -> Void = { _ in }
    ) -> WorkerPool {
        var settings = WorkerPool.Settings(
            quickDeathWindow: 1000, restartDelayBase: 50, restartDelayMaximum: 5000, startTimeout: 30_000,
            builtInWorkerVersion: version)
        adjust(&settings)
        return WorkerPool(target: target, settings: settings, clock: clock)
    }

    /// Fills the pool and brings slot 0's child (pid) up to idle.
    private func readyPool(
        pid: Int32 = 100, clock: FakeClock = FakeClock(), _ adjust: (inout WorkerPool.Settings) -> Void = { _ in }
    ) -> WorkerPool {
        var pool = makePool(clock: clock, adjust)
        #expect(pool.fill() == [.spawn(slot: 0)])
        _ = pool.spawned(slot: 0, pid: pid)
        _ = pool.received(.ready(Message.Ready(pid: pid, version: version)), slot: 0)
        return pool
    }

    private func assign(_ pool: inout WorkerPool, job: String = "j", attempt: Int = 1, timeout: Int = 1000)
        -> [WorkerPool.Action]
    {
        pool.assign(
            slot: 0, jobID: job, attempt: attempt, payload: [1], timeoutMilliseconds: timeout, jobsWaiting: false,
            maximumOutputBytes: 100)
    }

    private func ends(_ actions: [WorkerPool.Action]) -> [WorkerPool.AttemptEnd] {
        actions.compactMap { if case .attemptEnded(let end) = $0 { end } else { nil } }
    }

    private func notes(_ actions: [WorkerPool.Action]) -> [WorkerPool.Note] {
        actions.compactMap { if case .note(let note) = $0 { note } else { nil } }
    }

    private func result(ok: Bool, job: String = "j", attempt: UInt32 = 1, output: String = "out") -> Message {
        .result(
            Message.Result(jobID: job, attempt: attempt, ok: ok, output: Array(output.utf8), durationMicroseconds: 5))
    }

    // MARK: Start

    @Test func fillAsksForOneChildPerTargetSlot() {
        var pool = makePool(target: 3)
        #expect(pool.fill() == [.spawn(slot: 0), .spawn(slot: 1), .spawn(slot: 2)])
        #expect(pool.fill().isEmpty)
        #expect(pool.slots.map(\.state.name) == ["restarting", "restarting", "restarting"])
    }

    @Test func spawnedChildStartsWithAStartDeadlineAndReadyMakesItIdle() {
        let clock = FakeClock(now: 500)
        var pool = makePool(clock: clock)
        _ = pool.fill()
        #expect(pool.spawned(slot: 0, pid: 7) == [.setTimer(slot: 0, at: 30_500)])
        #expect(pool.slots[0].state.name == "starting")
        #expect(pool.liveWorkerCount == 0)
        let actions = pool.received(.ready(Message.Ready(pid: 7, version: version)), slot: 0)
        #expect(actions == [.setTimer(slot: 0, at: nil), .note(.ready(slot: 0, pid: 7, version: version)), .dispatch])
        #expect(pool.idleSlots == [0])
        #expect(pool.liveWorkerCount == 1)
    }

    @Test func readyFromAnotherProtocolOrBuildIsAProtocolError() {
        for ready in [
            Message.Ready(pid: 7, protocolVersion: 2, version: version),
            Message.Ready(pid: 7, version: "prefork-worker 0.0.1"),
        ] {
            var pool = makePool()
            _ = pool.fill()
            _ = pool.spawned(slot: 0, pid: 7)
            let actions = pool.received(.ready(ready), slot: 0)
            #expect(actions.contains(.kill(slot: 0, pid: 7)))
            guard case .protocolError(_, _, let message)? = notes(actions).first else {
                Issue.record("no protocol error for \(ready)")
                continue
            }
            #expect(message.contains("version"))
        }
    }

    @Test func workerBuiltOnAnSDKMayAnnounceItsOwnVersion() {
        var pool = makePool()
        _ = pool.fill()
        _ = pool.spawned(slot: 0, pid: 7)
        _ = pool.received(.ready(Message.Ready(pid: 7, version: "prefork-python 0.9.0 (CPython 3.11.7)")), slot: 0)
        #expect(pool.idleSlots == [0])
    }

    @Test func childThatNeverSaysReadyIsKilledAtTheStartTimeoutAndCountsAsAQuickDeath() {
        let clock = FakeClock()
        var pool = makePool(clock: clock) { $0.startTimeout = 2000 }
        _ = pool.fill()
        _ = pool.spawned(slot: 0, pid: 7)
        clock.advance(by: 1999)
        #expect(pool.timerFired(slot: 0).isEmpty)
        clock.advance(by: 1)
        let actions = pool.timerFired(slot: 0)
        #expect(actions.contains(.kill(slot: 0, pid: 7)))
        #expect(notes(actions) == [.startTimeout(slot: 0, pid: 7, timeout: 2000)])
        _ = pool.exited(pid: 7, status: .signaled(SIGKILL))
        #expect(pool.slots[0].quickDeaths == 1)
        #expect(pool.slots[0].lastRestartCause == .crash)
    }

    // MARK: Jobs

    @Test func assignSendsTheRunFrameAndArmsTheJobDeadline() {
        let clock = FakeClock(now: 2_000)
        var pool = readyPool(clock: clock)
        let actions = assign(&pool, timeout: 300)
        #expect(actions.first == .setTimer(slot: 0, at: 2_300))
        guard case .send(0, .run(let run))? = actions.last else {
            Issue.record("no run frame: \(actions)")
            return
        }
        #expect(run.jobID == "j" && run.attempt == 1 && run.timeoutMilliseconds == 300 && run.maximumOutputBytes == 100)
        #expect(pool.slots[0].state.assignment?.jobID == "j")
        #expect(pool.idleSlots.isEmpty && pool.hasBusySlot)
    }

    @Test func zeroTimeoutMeansNoDeadline() {
        var pool = readyPool()
        #expect(assign(&pool, timeout: 0).first == .setTimer(slot: 0, at: nil))
    }

    @Test func resultEndsTheAttemptAndFreesTheChild() {
        let clock = FakeClock()
        var pool = readyPool(clock: clock)
        _ = assign(&pool)
        clock.advance(by: 12)
        let actions = pool.received(result(ok: true, output: "fine"), slot: 0)
        let end = WorkerPool.AttemptEnd(
            jobID: "j", attempt: 1, kind: .succeeded(output: Array("fine".utf8), truncated: false, detail: []),
            runMicroseconds: 12_000, workerPID: 100)
        #expect(actions == [.setTimer(slot: 0, at: nil), .attemptEnded(end), .dispatch])
        #expect(pool.idleSlots == [0])
        #expect(pool.slots[0].jobsRun == 1)
    }

    @Test func failedResultIsAnErrorOutcomeWithTheMessage() {
        var pool = readyPool()
        _ = assign(&pool)
        let end = ends(pool.received(result(ok: false, output: "boom"), slot: 0)).first
        #expect(end?.kind == .failed(.error, error: "boom", detail: []))
    }

    @Test func resultForAnotherJobOrAttemptIsAProtocolError() {
        for wrong in [result(ok: true, job: "other"), result(ok: true, attempt: 2)] {
            var pool = readyPool()
            _ = assign(&pool)
            let actions = pool.received(wrong, slot: 0)
            #expect(actions.contains(.kill(slot: 0, pid: 100)))
            #expect(ends(actions).isEmpty)
            // The attempt is charged when the child is reaped.
            let end = ends(pool.exited(pid: 100, status: .signaled(SIGKILL)) ?? []).first
            guard case .failed(.protocol, let error, _)? = end?.kind else {
                Issue.record("\(String(describing: end))")
                return
            }
            #expect(error.hasPrefix("protocol error: result for"))
        }
    }

    @Test func progressOfTheRunningAttemptIsPassedOnAndOtherwiseRefused() {
        var pool = readyPool()
        let progress = Message.progress(Message.Progress(jobID: "j", attempt: 1, percent: 40, note: "n"))
        #expect(pool.received(progress, slot: 0).contains(.kill(slot: 0, pid: 100)), "progress while idle")
        pool = readyPool()
        _ = assign(&pool)
        #expect(pool.received(progress, slot: 0) == [.progress(jobID: "j", attempt: 1, percent: 40, note: "n")])
    }

    @Test func framesAfterAKillAreIgnored() {
        var pool = readyPool()
        _ = assign(&pool)
        _ = pool.cancel(jobID: "j")
        #expect(pool.received(result(ok: true), slot: 0).isEmpty)
    }

    // MARK: Deaths

    @Test func crashDuringAJobFailsTheAttemptNamingTheSignalAndRespawns() {
        var pool = readyPool()
        _ = assign(&pool)
        let actions = pool.exited(pid: 100, status: .signaled(SIGSEGV)) ?? []
        let end = ends(actions).first
        #expect(end?.kind == .failed(.crash, error: "worker exited on signal 11 (SIGSEGV)", detail: []))
        #expect(actions.contains(.spawn(slot: 0)))
        #expect(notes(actions).contains(.restarted(slot: 0, cause: .crash)))
        #expect(pool.slots[0].restarts == 1 && pool.slots[0].lastRestartCause == .crash)
        #expect(pool.slots[0].quickDeaths == 0, "it ran a job: not a crash loop")
    }

    @Test func hungJobIsKilledAtItsDeadlineAndChargedAsATimeout() {
        let clock = FakeClock()
        var pool = readyPool(clock: clock)
        _ = assign(&pool, timeout: 300)
        clock.advance(by: 299)
        #expect(pool.timerFired(slot: 0).isEmpty)
        clock.advance(by: 1)
        let actions = pool.timerFired(slot: 0)
        #expect(notes(actions) == [.jobTimeout(jobID: "j", attempt: 1, pid: 100)])
        #expect(actions.contains(.kill(slot: 0, pid: 100)))
        let exit = pool.exited(pid: 100, status: .signaled(SIGKILL)) ?? []
        #expect(ends(exit).first?.kind == .failed(.timeout, error: "timeout after 300 ms", detail: []))
        #expect(pool.slots[0].lastRestartCause == .timeout)
    }

    @Test func secondKillKeepsTheFirstReason() {
        let clock = FakeClock()
        var pool = readyPool(clock: clock)
        _ = assign(&pool, timeout: 10)
        _ = pool.protocolError(slot: 0, message: "bad magic")
        clock.advance(by: 10)
        #expect(pool.timerFired(slot: 0).isEmpty, "already killed")
        let end = ends(pool.exited(pid: 100, status: .signaled(SIGKILL)) ?? []).first
        #expect(end?.kind == .failed(.protocol, error: "protocol error: bad magic", detail: []))
    }

    @Test func canceledJobsChildIsKilledWithoutChargingTheAttempt() {
        var pool = readyPool()
        _ = assign(&pool)
        #expect(pool.cancel(jobID: "j") == [.kill(slot: 0, pid: 100)])
        #expect(pool.cancel(jobID: "other").isEmpty)
        let actions = pool.exited(pid: 100, status: .signaled(SIGKILL)) ?? []
        #expect(ends(actions).first?.kind == .canceled)
        #expect(pool.slots[0].lastRestartCause == .canceled)
    }

    @Test func childrenDyingRightAfterStartAreRestartedWithAGrowingDelay() {
        let clock = FakeClock()
        var pool = makePool(clock: clock) { $0.restartDelayMaximum = 150 }
        _ = pool.fill()
        var delays: [Milliseconds?] = []
        var pid: Int32 = 10
        for _ in 0..<5 {
            _ = pool.spawned(slot: 0, pid: pid)
            let actions = pool.exited(pid: pid, status: .exited(1)) ?? []
            delays.append(notes(actions).compactMap { if case .restartDelayed(_, _, let delay) = $0 { delay } else { nil } }.first)
            if case .restartPending(let at) = pool.slots[0].state {
                clock.now = at
                #expect(pool.timerFired(slot: 0) == [.spawn(slot: 0)])
            }
            pid += 1
        }
        #expect(delays == [nil, 50, 100, 150, 150])
    }

    @Test func deathLongAfterStartIsNotAQuickDeath() {
        let clock = FakeClock()
        var pool = makePool(clock: clock)
        _ = pool.fill()
        _ = pool.spawned(slot: 0, pid: 10)
        clock.advance(by: 1000)
        _ = pool.exited(pid: 10, status: .exited(1))
        #expect(pool.slots[0].quickDeaths == 0)
    }

    @Test func unknownPidIsNotThePools() {
        var pool = readyPool()
        #expect(pool.exited(pid: 999, status: .exited(0)) == nil)
    }

    @Test func failedSpawnIsRetriedAfterADelayOnceItRepeats() {
        var pool = makePool()
        _ = pool.fill()
        #expect(pool.spawnFailed(slot: 0).contains(.spawn(slot: 0)))
        let second = pool.spawnFailed(slot: 0)
        #expect(!second.contains(.spawn(slot: 0)))
        #expect(notes(second).contains(.restarted(slot: 0, cause: .spawnFailed)))
    }

    // MARK: Recycling

    @Test func childIsRecycledAfterMaxJobsOnceItsJobEnds() {
        var pool = readyPool { $0.maximumJobs = 2 }
        _ = assign(&pool)
        #expect(!pool.received(result(ok: true), slot: 0).contains(.send(slot: 0, .stop)))
        _ = assign(&pool, job: "k")
        let actions = pool.received(result(ok: true, job: "k"), slot: 0)
        #expect(actions.contains(.send(slot: 0, .stop)))
        #expect(notes(actions).contains { if case .recycling = $0 { true } else { false } })
        #expect(pool.slots[0].state.name == "stopping")
        let exit = pool.exited(pid: 100, status: .exited(0)) ?? []
        #expect(exit.contains(.spawn(slot: 0)))
        #expect(notes(exit).contains(.restarted(slot: 0, cause: .recycled)))
        #expect(pool.slots[0].recycles == 1 && pool.slots[0].lastRestartCause == .recycled)
    }

    @Test func childOverMaxRSSIsRecycled() {
        var pool = readyPool { $0.maximumResidentBytes = 10 << 20 }
        _ = assign(&pool)
        #expect(pool.received(result(ok: true), slot: 0, residentBytes: 11 << 20).contains(.send(slot: 0, .stop)))
    }

    @Test func busyChildIsRecycledOnlyAfterItsJob() {
        var pool = readyPool()
        _ = assign(&pool)
        let recycle = pool.recycleAll(reason: "reload")
        #expect(!recycle.contains(.send(slot: 0, .stop)))
        #expect(pool.slots[0].state.assignment != nil)
        #expect(pool.received(result(ok: true), slot: 0).contains(.send(slot: 0, .stop)))
    }

    // MARK: Size and shutdown

    @Test func scaleDownRetiresTheLastChildOnceFreeAndScaleUpReusesIt() {
        var pool = makePool(target: 2)
        _ = pool.fill()
        for (slot, pid) in [(0, Int32(1)), (1, 2)] {
            _ = pool.spawned(slot: slot, pid: pid)
            _ = pool.received(.ready(Message.Ready(pid: pid, version: version)), slot: slot)
        }
        #expect(pool.setTarget(1) == [.send(slot: 1, .stop)])
        _ = pool.exited(pid: 2, status: .exited(0))
        #expect(pool.slots[1].state == .retired)
        #expect(pool.setTarget(0).isEmpty, "never fewer than one")
        #expect(pool.target == 1)
        #expect(pool.setTarget(2) == [.spawn(slot: 1)])
    }

    @Test func drainStopsIdleChildrenAtOnceAndBusyOnesAfterTheirJob() {
        var pool = makePool(target: 2)
        _ = pool.fill()
        for (slot, pid) in [(0, Int32(1)), (1, 2)] {
            _ = pool.spawned(slot: slot, pid: pid)
            _ = pool.received(.ready(Message.Ready(pid: pid, version: version)), slot: slot)
        }
        _ = pool.assign(
            slot: 0, jobID: "j", attempt: 1, payload: [], timeoutMilliseconds: 0, jobsWaiting: false,
            maximumOutputBytes: 1)
        #expect(pool.drain() == [.send(slot: 1, .stop)])
        #expect(pool.received(result(ok: true), slot: 0).contains(.send(slot: 0, .stop)))
        _ = pool.exited(pid: 1, status: .exited(0))
        #expect(!pool.allDown)
        let last = pool.exited(pid: 2, status: .exited(0)) ?? []
        #expect(!last.contains(.spawn(slot: 1)), "no respawn while draining")
        #expect(pool.allDown)
        #expect(pool.fill().isEmpty)
    }

    @Test func killAllAtTheShutdownDeadlineInterruptsRunningAttempts() {
        var pool = readyPool()
        _ = assign(&pool)
        _ = pool.drain()
        #expect(pool.killAll(reason: "killed at shutdown after 30000 ms") == [.kill(slot: 0, pid: 100)])
        let end = ends(pool.exited(pid: 100, status: .signaled(SIGKILL)) ?? []).first
        #expect(end?.kind == .interrupted(error: "killed at shutdown after 30000 ms"))
        #expect(pool.slots[0].state == .retired)
    }

    @Test func drainRetiresSlotsWaitingToRestart() {
        let clock = FakeClock()
        var pool = makePool(clock: clock)
        _ = pool.fill()
        _ = pool.spawned(slot: 0, pid: 1)
        _ = pool.exited(pid: 1, status: .exited(1))
        _ = pool.spawned(slot: 0, pid: 2)
        _ = pool.exited(pid: 2, status: .exited(1))
        guard case .restartPending = pool.slots[0].state else {
            Issue.record("\(pool.slots[0].state)")
            return
        }
        #expect(pool.drain() == [.setTimer(slot: 0, at: nil)])
        #expect(pool.slots[0].state == .retired)
        #expect(pool.allDown)
    }
}
