import Foundation
import Testing

/// Where a test's supervisor keeps its jobs. The HTTP API's tests run against both: the same requests must
/// get the same answers from the embedded journal and from PostgreSQL.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case journal
    case postgres

    var testDescription: String { rawValue }

    /// The config for this backend: nothing for the journal; for PostgreSQL a fresh schema of the shared test
    /// cluster. Nil when the backend is not available here (the test then skips with a printed reason, or fails
    /// under CI=true).
    func config() async throws -> [String: Any]? {
        switch self {
        case .journal:
            return [:]
        case .postgres:
            guard Component.require(PostgresCluster.sharedURL != nil, "PostgreSQL (PREFORK_TEST_POSTGRES_URL)"),
                let url = try await PostgresCluster.freshSchema()
            else { return nil }
            return ["queue": ["backend": "postgres"], "postgres": ["url": url, "node_id": "api", "lease_ms": 4000]]
        }
    }
}

extension PreforkProcess {
    /// A supervisor on `backend`, ready to answer job routes (a PostgreSQL node connected and registered); nil
    /// when the backend is not available here.
    static func start(_ backend: Backend, config: [String: Any] = [:]) async throws -> PreforkProcess? {
        guard let base = try await backend.config() else { return nil }
        let prefork = try await start(config: deepMerge(base, config))
        do {
            try await prefork.waitUntilReady(backend)
        } catch {
            prefork.terminateAndReap()
            throw error
        }
        return prefork
    }

    /// Waits until a PostgreSQL node is connected and registered (a journal node answers as soon as it listens).
    func waitUntilReady(_ backend: Backend) async throws {
        guard backend == .postgres else { return }
        try await eventually("node connected to PostgreSQL", timeout: .seconds(20)) {
            try self.request("GET", "/readyz").status == 200
        }
    }
}
