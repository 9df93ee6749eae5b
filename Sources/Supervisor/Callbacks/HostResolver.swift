import Dispatch
import Glibc
import Synchronization
import System

/// Resolves host names off the event loop: getaddrinfo(3) blocks on DNS, so each lookup runs on a background
/// queue and its answer comes back through `notification` (the same inbox pattern as `JournalSyncer`). IP
/// literals and `localhost` never leave the loop. Answers are cached for a minute.
final class HostResolver {
    private struct Answer: Sendable {
        var host: String
        var port: UInt16
        var addresses: [SocketAddress]
        var error: String?
    }

    /// Where the background lookups leave their answers, shared with them.
    private final class Inbox: Sendable {
        let answers = Mutex<[Answer]>([])
        let notifier: FileDescriptor

        init(notifier: FileDescriptor) {
            self.notifier = notifier
        }

        func post(_ answer: Answer) {
            answers.withLock { $0.append(answer) }
            // A full pipe already holds a wake-up for the loop.
            _ = try? [UInt8(1)].withUnsafeBytes { try notifier.write($0) }
        }
    }

    /// Readable when answers are waiting; then call `deliverAnswers()`.
    let notification: FileDescriptor
    private let inbox: Inbox
    private let queue = DispatchQueue(label: "prefork.resolve", qos: .utility, attributes: .concurrent)
    private var waiting: [String: [(Result<SocketAddress, ResolveError>) -> Void]] = [:]
    private var cache: [String: (addresses: [SocketAddress], until: Milliseconds)] = [:]
    private let clock: Clock

    /// Why a name did not resolve.
    struct ResolveError: Error, CustomStringConvertible {
        var description: String
    }

    init(clock: Clock) throws(SystemError) {
        self.clock = clock
        let (notification, notifier) = try Posix.pipe(O_NONBLOCK)
        self.notification = notification
        inbox = Inbox(notifier: notifier)
    }

    /// Calls `done` (on the loop) with an address of `host`, at once when it is a literal or cached.
    func resolve(host: String, port: UInt16, _ done: @escaping (Result<SocketAddress, ResolveError>) -> Void) {
        let name = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let literal = SocketAddress(host: name == "localhost" ? "127.0.0.1" : name, port: port) {
            return done(.success(literal))
        }
        let key = "\(name):\(port)"
        if let cached = cache[key], cached.until > clock.monotonicMilliseconds(), let first = cached.addresses.first {
            return done(.success(first))
        }
        if waiting[key] != nil {
            waiting[key]!.append(done)
            return
        }
        waiting[key] = [done]
        queue.async { [inbox] in
            var answer = Answer(host: name, port: port, addresses: [], error: nil)
            do throws(SystemError) {
                answer.addresses = try Socket.resolve(host: name, port: port)
                if answer.addresses.isEmpty { answer.error = "no address for \(name)" }
            } catch {
                answer.error = "cannot resolve \(name): \(error)"
            }
            inbox.post(answer)
        }
    }

    /// Hands the answers that came in to their callers (call when `notification` is readable).
    func deliverAnswers() {
        var scratch = [UInt8](repeating: 0, count: 64)
        while case .processed(let count)? = try? scratch.withUnsafeMutableBytes({ try notification.read(into: $0) }),
            count > 0
        {}
        let answers = inbox.answers.withLock { answers in
            defer { answers.removeAll() }
            return answers
        }
        for answer in answers {
            let key = "\(answer.host):\(answer.port)"
            let callers = waiting.removeValue(forKey: key) ?? []
            if let first = answer.addresses.first, answer.error == nil {
                cache[key] = (answer.addresses, clock.monotonicMilliseconds() + 60_000)
                for caller in callers { caller(.success(first)) }
            } else {
                for caller in callers { caller(.failure(ResolveError(description: answer.error ?? "no address"))) }
            }
        }
    }

    func close() {
        notification.close()
        inbox.notifier.close()
    }
}
