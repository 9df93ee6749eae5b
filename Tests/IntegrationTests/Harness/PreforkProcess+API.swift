import Foundation
import Glibc

/// HTTP API conveniences over one supervisor.
extension PreforkProcess {
    /// One request on a fresh connection.
    func request(
        _ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = []
    ) throws -> HTTPResponse {
        try HTTPClient.request(port: port, method, path, body: body, headers: headers)
    }

    /// A new keep-alive connection to this supervisor.
    func connect(timeout: Duration = .seconds(5)) throws -> HTTPConnection {
        try HTTPConnection(port: port, timeout: timeout)
    }

    /// `POST /enqueue` with a JSON body built from the arguments (`max_retries` omitted when nil).
    func enqueue(id: String, payload: String, maxRetries: Int? = nil) throws -> HTTPResponse {
        try request("POST", "/enqueue", body: Self.enqueueBody(id: id, payload: payload, maxRetries: maxRetries))
    }

    /// `POST /enqueue` that must answer 202, returning the job record.
    @discardableResult
    func enqueueAccepted(id: String, payload: String, maxRetries: Int? = nil) throws -> [String: Any] {
        let response = try enqueue(id: id, payload: payload, maxRetries: maxRetries)
        guard response.status == 202 else {
            throw HTTPClientError(description: "enqueue \(id) expected 202, got \(response)")
        }
        return try response.json()
    }

    /// The JSON body of an enqueue request.
    static func enqueueBody(id: String, payload: String, maxRetries: Int? = nil) -> String {
        var object: [String: Any] = ["id": id, "payload": payload]
        if let maxRetries { object["max_retries"] = maxRetries }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// `GET /jobs/{id}` that must answer 200.
    func job(_ id: String) throws -> [String: Any] {
        let response = try request("GET", "/jobs/\(id)")
        guard response.status == 200 else {
            throw HTTPClientError(description: "GET /jobs/\(id) expected 200, got \(response)")
        }
        return try response.json()
    }

    /// Polls `GET /jobs/{id}` until the record satisfies `predicate`.
    @discardableResult
    func waitForJob(
        _ id: String, _ what: String, timeout: Duration = .seconds(5), where predicate: ([String: Any]) -> Bool
    ) async throws -> [String: Any] {
        var last: [String: Any] = [:]
        let report = { "last record: \(last)\n" + self.logTail() }
        return try await eventuallyValue("job \(id): \(what)", timeout: timeout, context: report) {
            let record = try job(id)
            last = record
            return predicate(record) ? record : nil
        }
    }

    /// Polls until job `id` is in `state`.
    @discardableResult
    func waitForJob(_ id: String, state: String, timeout: Duration = .seconds(5)) async throws -> [String: Any] {
        try await waitForJob(id, "state \(state)", timeout: timeout) { $0.string("state") == state }
    }

    /// `GET /workers` that must answer 200.
    func workers() throws -> [String: Any] {
        let response = try request("GET", "/workers")
        guard response.status == 200 else {
            throw HTTPClientError(description: "GET /workers expected 200, got \(response)")
        }
        return try response.json()
    }

    /// The worker slots from `GET /workers`.
    func workerSlots() throws -> [[String: Any]] {
        try workers().objects("workers") ?? []
    }

    /// Pids of workers `/workers` reports alive (idle or busy).
    func liveWorkerPIDs() throws -> [pid_t] {
        try workerSlots()
            .filter { ["idle", "busy"].contains($0.string("state") ?? "") }
            .compactMap { $0.int("pid").map { pid_t($0) } }
    }

    /// Waits until exactly `count` workers are idle, and returns their pids.
    @discardableResult
    func waitForIdleWorkers(_ count: Int, timeout: Duration = .seconds(5)) async throws -> [pid_t] {
        var last: [[String: Any]] = []
        let report = { "last slots: \(last)\n" + self.logTail() }
        return try await eventuallyValue("\(count) idle workers", timeout: timeout, context: report) {
            let slots = try workerSlots()
            last = slots
            let idle = slots.filter { $0.string("state") == "idle" }
            guard slots.count == count, idle.count == count else { return nil }
            return idle.compactMap { $0.int("pid").map { pid_t($0) } }
        }
    }

    /// The pid of the worker `/workers` shows running job `id`, once there is one.
    func waitForWorker(runningJob id: String, timeout: Duration = .seconds(5)) async throws -> pid_t {
        try await eventuallyValue("a worker running job \(id)", timeout: timeout, context: logTail) {
            try workerSlots().first { $0.string("job") == id }?.int("pid").map { pid_t($0) }
        }
    }

    /// Waits until the supervisor has no zombie children.
    func waitForNoZombies(timeout: Duration = .seconds(5)) async throws {
        try await eventually("no zombie children of \(pid)", timeout: timeout) { zombieChildren.isEmpty }
    }
}
