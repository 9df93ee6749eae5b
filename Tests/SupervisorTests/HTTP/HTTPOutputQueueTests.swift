import Testing

@testable import Supervisor

/// A queue under test, by reference so the helpers below can change it.
private final class Queue {
    var queue = HTTPOutputQueue()
    var sendable: Int { queue.sendable }
    var holds: [HTTPOutputQueue.Hold] { queue.holds }
    var isHeld: Bool { queue.isHeld }
    var output: [UInt8] { queue.bytes }
    func release(durableThrough: Int) -> Bool { queue.release(durableThrough: durableThrough) }
    func consumedOutput(_ count: Int) { queue.consumed(count) }
}

@Suite struct HTTPOutputQueueTests {
    private func makeConnection() -> Queue { Queue() }

    /// Appends a response of `count` bytes that depends on journal position `ticket`.
    private func respond(_ connection: Queue, count: Int, ticket: Int, durableThrough: Int, byte: UInt8 = 0x41) {
        connection.queue.append(ticket: ticket, durableThrough: durableThrough) {
            $0.append(contentsOf: [UInt8](repeating: byte, count: count))
        }
    }

    private func ends(_ connection: Queue) -> [Int] { connection.holds.map(\.end) }
    private func tickets(_ connection: Queue) -> [Int] { connection.holds.map(\.ticket) }

    /// Three holds of 10 bytes each, for tickets 5, 8 and 12, with nothing durable yet.
    private func makeThreeHolds() -> Queue {
        let connection = makeConnection()
        respond(connection, count: 10, ticket: 5, durableThrough: 0)
        respond(connection, count: 10, ticket: 8, durableThrough: 0)
        respond(connection, count: 10, ticket: 12, durableThrough: 0)
        return connection
    }

    /// A fresh connection has nothing to send and nothing held.
    @Test func freshConnectionHoldsNothing() {
        let connection = makeConnection()
        #expect(connection.sendable == 0)
        #expect(connection.holds.isEmpty)
        #expect(!connection.isHeld)
    }

    /// Output whose ticket is already durable, with nothing held before it, is sendable at once.
    @Test(arguments: [(ticket: 0, durable: 0), (ticket: 7, durable: 7), (ticket: 3, durable: 9)])
    func durableOutputIsSendableAtOnce(_ ticket: Int, _ durable: Int) {
        let connection = makeConnection()
        respond(connection, count: 17, ticket: ticket, durableThrough: durable)
        #expect(connection.sendable == 17)
        #expect(!connection.isHeld)
        respond(connection, count: 5, ticket: ticket, durableThrough: durable)
        #expect(connection.sendable == 22)
        #expect(!connection.isHeld)
    }

    /// Output whose ticket is past the durable position is held, none of it sendable.
    @Test func undurableOutputIsHeld() {
        let connection = makeConnection()
        respond(connection, count: 12, ticket: 8, durableThrough: 7)
        #expect(connection.sendable == 0)
        #expect(connection.isHeld)
        #expect(ends(connection) == [12])
        #expect(tickets(connection) == [8])
    }

    /// Output after a held response stays held even when its own ticket is durable, so replies keep their order.
    @Test func outputAfterAHoldStaysHeldEvenWhenDurable() {
        let connection = makeConnection()
        respond(connection, count: 4, ticket: 1, durableThrough: 5)  // sendable at once
        respond(connection, count: 10, ticket: 9, durableThrough: 5)  // held
        respond(connection, count: 6, ticket: 2, durableThrough: 5)  // durable, but behind the hold
        #expect(connection.sendable == 4)
        #expect(connection.isHeld)
        #expect(ends(connection) == [20])
        #expect(tickets(connection) == [9])
    }

    /// A later ticket no greater than the last hold's extends that hold instead of adding one.
    @Test(arguments: [9, 4])
    func laterTicketNotPastTheLastHoldMergesIntoIt(_ laterTicket: Int) {
        let connection = makeConnection()
        respond(connection, count: 10, ticket: 9, durableThrough: 0)
        respond(connection, count: 5, ticket: laterTicket, durableThrough: 0)
        #expect(ends(connection) == [15])
        #expect(tickets(connection) == [9])
        #expect(connection.sendable == 0)
    }

    /// A later ticket past the last hold's starts a new hold, so tickets increase from hold to hold.
    @Test func laterTicketPastTheLastHoldAddsAHold() {
        let connection = makeThreeHolds()
        #expect(ends(connection) == [10, 20, 30])
        #expect(tickets(connection) == [5, 8, 12])
        #expect(connection.sendable == 0)
        respond(connection, count: 3, ticket: 10, durableThrough: 0)  // merges into the ticket-12 hold
        #expect(ends(connection) == [10, 20, 33])
        #expect(tickets(connection) == [5, 8, 12])
    }

    /// Release frees holds one by one as durability advances, never a hold whose ticket is not durable yet.
    @Test func releaseFollowsDurabilityStepByStep() {
        let connection = makeThreeHolds()
        #expect(connection.release(durableThrough: 6))  // the first hold only
        #expect(connection.sendable == 10)
        #expect(ends(connection) == [20, 30])
        #expect(tickets(connection) == [8, 12])

        #expect(connection.release(durableThrough: 11))  // the second hold; 12 is not durable yet
        #expect(connection.sendable == 20)
        #expect(ends(connection) == [30])
        #expect(tickets(connection) == [12])
        #expect(connection.isHeld)

        #expect(connection.release(durableThrough: 12))  // a ticket equal to the durable position is durable
        #expect(connection.sendable == 30)
        #expect(connection.holds.isEmpty)
        #expect(!connection.isHeld)
    }

    /// One release past every ticket frees all holds at once.
    @Test func releasePastEveryTicketFreesEverything() {
        let connection = makeThreeHolds()
        #expect(connection.release(durableThrough: 100))
        #expect(connection.sendable == 30)
        #expect(!connection.isHeld)
    }

    /// Release reports false, and changes nothing, when no hold becomes durable.
    @Test func releaseReturnsFalseWhenNothingChanges() {
        let empty = makeConnection()
        #expect(!empty.release(durableThrough: 100))
        #expect(empty.sendable == 0)

        let connection = makeThreeHolds()
        #expect(!connection.release(durableThrough: 4))
        #expect(connection.sendable == 0)
        #expect(ends(connection) == [10, 20, 30])
        #expect(tickets(connection) == [5, 8, 12])

        #expect(connection.release(durableThrough: 5))
        #expect(!connection.release(durableThrough: 5))  // already released
        #expect(!connection.release(durableThrough: 7))
        #expect(connection.sendable == 10)
        #expect(tickets(connection) == [8, 12])
    }

    /// Output appended after everything held was released is sendable at once again.
    @Test func outputAfterAFullReleaseIsSendableAtOnce() {
        let connection = makeConnection()
        respond(connection, count: 10, ticket: 5, durableThrough: 0)
        #expect(connection.release(durableThrough: 5))
        respond(connection, count: 7, ticket: 5, durableThrough: 5)
        #expect(connection.sendable == 17)
        #expect(!connection.isHeld)
    }

    /// Consuming sent bytes drops them from the output and shifts `sendable` and every hold's end.
    @Test func consumedOutputShiftsSendableAndHoldEnds() {
        let connection = makeConnection()
        respond(connection, count: 10, ticket: 1, durableThrough: 1, byte: 0x61)
        respond(connection, count: 10, ticket: 8, durableThrough: 1, byte: 0x62)
        respond(connection, count: 10, ticket: 12, durableThrough: 1, byte: 0x63)
        #expect(connection.sendable == 10)

        connection.consumedOutput(4)
        #expect(connection.output.count == 26)
        #expect(connection.output.first == 0x61)
        #expect(connection.sendable == 6)
        #expect(ends(connection) == [16, 26])
        #expect(tickets(connection) == [8, 12])

        connection.consumedOutput(6)  // all that was sendable
        #expect(connection.output.count == 20)
        #expect(connection.output.first == 0x62)
        #expect(connection.sendable == 0)
        #expect(ends(connection) == [10, 20])

        // Held bytes keep their place: releasing now makes exactly the next response sendable.
        #expect(connection.release(durableThrough: 8))
        #expect(connection.sendable == 10)
        #expect(connection.output[0..<10].allSatisfy { $0 == 0x62 })
        #expect(ends(connection) == [20])
    }
}
