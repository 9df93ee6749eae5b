import Dispatch
import Glibc
import Testing

@testable import Supervisor
import System

@Suite struct EventLoopUrgentTests {
    /// Handler calls in the order they happened.
    private final class Recorder {
        var calls: [String] = []

        func count(of name: String) -> Int { calls.filter { $0 == name }.count }
    }

    /// A non-blocking pipe; `close()` releases both ends.
    private struct Pipe {
        let read: FileDescriptor
        let write: FileDescriptor

        init() throws {
            (read, write) = try Posix.pipe(O_NONBLOCK)
        }

        /// Makes the read end readable.
        func signal() throws {
            _ = try [UInt8(1)].withUnsafeBytes { bytes throws(SystemError) in try write.write(bytes) }
        }

        /// Reads everything buffered, so the level-triggered read end stops being ready.
        func drain() throws {
            var bytes = [UInt8](repeating: 0, count: 64)
            while case .processed(let count) = try bytes.withUnsafeMutableBytes({ buffer throws(SystemError) in
                try read.read(into: buffer)
            }), count > 0 {}
        }

        func close() {
            read.close()
            write.close()
        }
    }

    /// Long enough never to fire in a passing test; bounds a `runOnce()` whose wake-up went missing.
    private static let safetyMilliseconds: Milliseconds = 2_000
    /// Bounds a `runOnce()` that is expected to find nothing to do.
    private static let quietMilliseconds: Milliseconds = 20

    /// Registers `pipe`'s read end; the handler drains it and records `name`.
    @discardableResult
    private func watch(
        _ pipe: Pipe, as name: String, urgent: Bool = false, on loop: EventLoop, recorder: Recorder,
        then action: @escaping () throws -> Void = {}
    ) throws -> EventToken {
        try loop.register(pipe.read, events: Epoll.readable, urgent: urgent) { _ in
            recorder.calls.append(name)
            try? pipe.drain()
            try? action()
        }
    }

    /// Runs one iteration that a timer ends after `milliseconds` if no descriptor wakes it.
    private func runOnce(_ loop: EventLoop, timeout milliseconds: Milliseconds = safetyMilliseconds) throws {
        let timer = loop.schedule(after: milliseconds) {}
        try loop.runOnce()
        loop.cancel(timer)
    }

    /// A ready normal descriptor and a ready urgent one are both served by a single iteration.
    @Test(arguments: [true, false])
    func normalAndUrgentHandlersRunInOneIteration(_ expectsUrgentEvents: Bool) throws {
        let loop = try EventLoop()
        let normal = try Pipe()
        let urgent = try Pipe()
        defer {
            normal.close()
            urgent.close()
        }
        let recorder = Recorder()
        try watch(normal, as: "normal", on: loop, recorder: recorder)
        try watch(urgent, as: "urgent", urgent: true, on: loop, recorder: recorder)
        loop.expectsUrgentEvents = expectsUrgentEvents

        try normal.signal()
        try urgent.signal()
        try runOnce(loop)
        #expect(recorder.calls.sorted() == ["normal", "urgent"], "calls in order: \(recorder.calls)")
    }

    /// An urgent descriptor on its own wakes a loop blocked waiting for events.
    @Test func urgentDescriptorAloneWakesABlockingWait() throws {
        let loop = try EventLoop()
        let urgent = try Pipe()
        defer { urgent.close() }
        let recorder = Recorder()
        try watch(urgent, as: "urgent", urgent: true, on: loop, recorder: recorder)
        var timedOut = false
        let timer = loop.schedule(after: Self.safetyMilliseconds) { timedOut = true }

        // Written from another thread, usually once the loop is already inside epoll_wait.
        let writeEnd = urgent.write.rawValue
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(10)) {
            _ = [UInt8(1)].withUnsafeBytes { Glibc.write(writeEnd, $0.baseAddress, $0.count) }
        }
        try loop.runOnce()
        loop.cancel(timer)
        #expect(recorder.calls == ["urgent"])
        #expect(!timedOut)
    }

    /// Modifying an urgent registration's events changes whether its handler runs.
    @Test func modifyingAnUrgentRegistrationChangesItsEvents() throws {
        let loop = try EventLoop()
        let urgent = try Pipe()
        defer { urgent.close() }
        let recorder = Recorder()
        let token = try watch(urgent, as: "urgent", urgent: true, on: loop, recorder: recorder)
        loop.expectsUrgentEvents = true

        loop.modify(urgent.read, token: token, events: 0)
        try urgent.signal()
        try runOnce(loop, timeout: Self.quietMilliseconds)
        #expect(recorder.calls.isEmpty)

        loop.modify(urgent.read, token: token, events: Epoll.readable)
        try runOnce(loop)
        #expect(recorder.calls == ["urgent"])
    }

    /// After unregistering, an urgent handler is not called, and the descriptor can be registered again.
    @Test func unregisteredUrgentHandlerIsNotCalled() throws {
        let loop = try EventLoop()
        let urgent = try Pipe()
        defer { urgent.close() }
        let recorder = Recorder()
        let token = try watch(urgent, as: "old", urgent: true, on: loop, recorder: recorder)
        loop.expectsUrgentEvents = true

        loop.unregister(urgent.read, token: token)
        try urgent.signal()
        try runOnce(loop, timeout: Self.quietMilliseconds)
        #expect(recorder.calls.isEmpty)

        // EPOLL_CTL_ADD fails with EEXIST unless the unregistration removed it from the urgent instance.
        try watch(urgent, as: "new", urgent: true, on: loop, recorder: recorder)
        try runOnce(loop)
        #expect(recorder.calls == ["new"])
    }

    /// Registers normal pipes N1 and N2 and urgent pipe U, whose handler N1's makes ready; both N1 and N2 are ready.
    private func makeChain(
        on loop: EventLoop, recorder: Recorder
    ) throws -> (first: Pipe, second: Pipe, urgent: Pipe) {
        let first = try Pipe()
        let second = try Pipe()
        let urgent = try Pipe()
        try watch(first, as: "N1", on: loop, recorder: recorder) { try urgent.signal() }
        try watch(second, as: "N2", on: loop, recorder: recorder)
        try watch(urgent, as: "U", urgent: true, on: loop, recorder: recorder)
        loop.afterIteration = { recorder.calls.append("end") }
        try first.signal()
        try second.signal()
        return (first, second, urgent)
    }

    /// While urgent events are expected, an urgent descriptor made ready by one handler is served right after it,
    /// within the same iteration.
    @Test func urgentHandlerRunsRightAfterTheHandlerThatMadeItReady() throws {
        let loop = try EventLoop()
        let recorder = Recorder()
        let pipes = try makeChain(on: loop, recorder: recorder)
        defer {
            pipes.first.close()
            pipes.second.close()
            pipes.urgent.close()
        }
        loop.expectsUrgentEvents = true

        try runOnce(loop)
        // N1 and N2 come in one batch in an order epoll chooses; U must come straight after N1 either way.
        let calls = recorder.calls
        #expect(calls.sorted() == ["N1", "N2", "U", "end"], "calls: \(calls)")
        #expect(calls.last == "end", "calls: \(calls)")
        if let first = calls.firstIndex(of: "N1"), let urgent = calls.firstIndex(of: "U") {
            #expect(urgent == first + 1, "calls: \(calls)")
        }
    }

    /// Without urgent events expected, an urgent descriptor made ready mid-batch waits for the next iteration.
    @Test func urgentHandlerWaitsForTheNextIterationWhenNotExpected() throws {
        let loop = try EventLoop()
        let recorder = Recorder()
        let pipes = try makeChain(on: loop, recorder: recorder)
        defer {
            pipes.first.close()
            pipes.second.close()
            pipes.urgent.close()
        }
        loop.expectsUrgentEvents = false

        try runOnce(loop)
        #expect(recorder.calls.sorted() == ["N1", "N2", "end"], "calls: \(recorder.calls)")
        try runOnce(loop)
        #expect(Array(recorder.calls.suffix(2)) == ["U", "end"], "calls: \(recorder.calls)")
        #expect(recorder.count(of: "U") == 1)
    }
}
