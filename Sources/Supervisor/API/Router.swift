/// The HTTP API (README, "API"): routing, authorization, and the routes.
extension Supervisor: HTTPResponder {
    /// Refuses a request without the bearer token on its header block alone, before its body is read. The probes
    /// need no token.
    func screen(_ head: HTTPRequest) -> HTTPResponse? {
        guard let token = config.authToken, let segments = head.pathSegments, !Self.isPublic(segments) else {
            return nil
        }
        guard !Self.isAuthorized(head, token: token) else { return nil }
        return .error(.unauthorized("missing or wrong bearer token (Authorization: Bearer <auth_token>)"))
    }

    /// Paths that need no token: the health probes and the dashboard's files (the page asks for the token and
    /// sends it with its API calls; the files hold no data).
    static func isPublic(_ segments: [String]) -> Bool {
        if segments.isEmpty { return true }
        if segments.count == 2 && segments[0] == "ui" { return true }
        return segments.count == 1 && (segments[0] == "healthz" || segments[0] == "readyz")
    }

    /// Answers one request (already screened), now or later (`?wait_ms`, `/events`). Never fails: every failure is
    /// an error response that says what was wrong. HEAD is answered as GET; the server leaves the body out.
    func reply(to request: HTTPRequest) -> HTTPReply {
        guard let segments = request.pathSegments else {
            return .response(.error(400, "request path has an invalid percent-encoding"))
        }
        let method = request.method == "HEAD" ? "GET" : request.method
        if let reply = postgresReply(to: request, segments: segments, method: method) { return reply }
        switch (segments.first, segments.count, method) {
        case ("enqueue", 1, "POST"): return enqueueRoute(request)
        case ("jobs", 2, "GET"): return jobRoute(id: segments[1], request)
        case ("events", 1, "GET"): return eventsRoute(request)
        default: return .response(respond(to: request))
        }
    }

    /// Answers one request now (every route but the waiting ones).
    func respond(to request: HTTPRequest) -> HTTPResponse {
        guard let segments = request.pathSegments else {
            return .error(400, "request path has an invalid percent-encoding")
        }
        let method = request.method == "HEAD" ? "GET" : request.method
        switch (segments.first, segments.count, method) {
        case ("enqueue", 1, _): return methodNotAllowed("POST")
        case ("jobs", 1, "GET"): return listJobsRoute(request)
        case ("jobs", 1, _): return methodNotAllowed("GET, HEAD")
        case ("jobs", 2, "POST") where segments[1] == "retry": return bulkRoute(.retry, request)
        case ("jobs", 2, "POST") where segments[1] == "cancel": return bulkRoute(.cancel, request)
        case ("jobs", 2, "DELETE"): return cancelRoute(id: segments[1])
        case ("jobs", 2, _): return methodNotAllowed("GET, HEAD, DELETE")
        case ("jobs", 3, "POST") where segments[2] == "retry": return retryRoute(id: segments[1])
        case ("jobs", 3, _) where segments[2] == "retry": return methodNotAllowed("POST")
        case ("pause", 1, "POST"): return pauseRoute(paused: true)
        case ("resume", 1, "POST"): return pauseRoute(paused: false)
        case ("pause", 1, _), ("resume", 1, _): return methodNotAllowed("POST")
        case ("schedules", 1, "GET"): return schedulesRoute()
        case ("stats", 1, "GET"): return statsRoute()
        case (nil, 0, "GET"): return dashboardRoute("index.html")
        case ("ui", 2, "GET"): return dashboardRoute(segments[1])
        case (nil, 0, _), ("ui", 2, _): return methodNotAllowed("GET, HEAD")
        case ("healthz", 1, "GET"): return healthRoute()
        case ("readyz", 1, "GET"): return readinessRoute()
        case ("workers", 1, "GET"): return workersRoute()
        case ("metrics", 1, "GET"): return metricsRoute()
        case ("healthz", 1, _), ("readyz", 1, _), ("workers", 1, _), ("metrics", 1, _), ("schedules", 1, _),
            ("events", 1, _), ("stats", 1, _):
            return methodNotAllowed("GET, HEAD")
        default:
            return .error(404, "no route for \(request.path)")
        }
    }

    /// Compares `Authorization: Bearer <token>` in time independent of where the first difference is.
    static func isAuthorized(_ request: HTTPRequest, token: String) -> Bool {
        let expected = Array(("Bearer " + token).utf8)
        let given = Array((request.header("authorization") ?? "").utf8)
        var difference = UInt8(truncatingIfNeeded: expected.count ^ given.count)
        for index in 0..<expected.count {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0 && expected.count == given.count
    }

    private func methodNotAllowed(_ allowed: String) -> HTTPResponse {
        .error(.methodNotAllowed(allowed))
    }

    // MARK: Dashboard

    /// The dashboard's files, compiled in from dashboard/ at build time. Everything the page loads comes from
    /// here (no CDN): the policy forbids anything else, inline scripts and styles included.
    private func dashboardRoute(_ name: String) -> HTTPResponse {
        guard let asset = EmbeddedAssets.files[name], !name.hasPrefix(".") else {
            return .error(404, "no dashboard file \(name)")
        }
        return HTTPResponse(
            status: 200,
            headers: [
                (
                    "Content-Security-Policy",
                    "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
                ),
                ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-cache"),
            ],
            body: asset.bytes, contentType: asset.contentType)
    }

    // MARK: Service

    private func healthRoute() -> HTTPResponse {
        var body: [UInt8] = []
        body.appendASCII("{\"status\":\"ok\",\"draining\":")
        body.append(contentsOf: (pool.draining ? "true" : "false").utf8)
        body.appendASCII(",\"workers_alive\":")
        body.appendDecimal(pool.liveWorkerCount)
        body.appendASCII(",\"queued\":")
        body.appendDecimal(postgres?.approximateQueued ?? ledger.store.queuedCount)
        body.appendASCII(",\"running\":")
        body.appendDecimal(ledger.store.runningCount)
        body.appendASCII(",\"version\":")
        body.appendJSONString(BuildInfo.version)
        body.appendASCII(",\"paused\":")
        body.appendASCII((postgres?.paused ?? ledger.paused) ? "true" : "false")
        body.appendASCII(",\"backend\":")
        body.appendJSONString(config.queueBackend.rawValue)
        if let postgres {
            body.appendASCII(",\"postgres\":{\"ready\":")
            body.appendASCII(postgres.isReady ? "true" : "false")
            body.appendASCII(",\"node_id\":")
            body.appendJSONString(postgres.nodeID)
            body.appendASCII(",\"error\":")
            body.appendJSONString(orNull: postgres.session.lastError)
            body.append(UInt8(ascii: "}"))
        }
        body.appendASCII(",\"containment\":")
        body.appendJSONString(containment?.mode.name ?? "subreaper")
        body.appendASCII("}\n")
        return .json(200, body)
    }

    private func metricsRoute() -> HTTPResponse {
        if let postgres { metrics.postgresReady = postgres.isReady }
        let gauges = Metrics.Gauges(
            queued: postgres?.approximateQueued ?? ledger.store.queuedCount, running: ledger.store.runningCount, liveWorkers: pool.liveWorkerCount,
            targetWorkers: pool.target, draining: pool.draining, retainedJobs: ledger.store.jobs.count,
            journalBytes: journal.size, retainedResultBytes: ledger.store.finishedResultBytes,
            evictedByCount: ledger.store.evictedByCount, evictedByBytes: ledger.store.evictedByBytes)
        return HTTPResponse(
            status: 200, body: metrics.exposition(gauges), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    private func readinessRoute() -> HTTPResponse {
        if pool.draining { return .error(503, "shutting down") }
        if let postgres, !postgres.isReady {
            return .error(.unavailable("not connected to PostgreSQL (\(postgres.session.lastError ?? "connecting"))", retryAfterSeconds: 1))
        }
        if pool.liveWorkerCount == 0 { return .error(503, "no worker is alive") }
        return .json(200, Array("{\"status\":\"ready\"}\n".utf8))
    }

    private func workersRoute() -> HTTPResponse {
        var body: [UInt8] = []
        body.appendASCII("{\"target\":")
        body.appendDecimal(pool.target)
        body.appendASCII(",\"workers\":[")
        for (index, slot) in pool.slots.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.appendASCII("{\"slot\":")
            body.appendDecimal(slot.index)
            body.appendASCII(",\"pid\":")
            if let pid = slot.state.child?.pid { body.appendDecimal(Int(pid)) } else { body.appendASCII("null") }
            body.appendASCII(",\"state\":\"")
            body.append(contentsOf: slot.state.name.utf8)
            body.appendASCII("\",\"job\":")
            body.appendJSONString(orNull: slot.state.assignment?.jobID)
            body.appendASCII(",\"jobs_run\":")
            body.appendDecimal(slot.jobsRun)
            body.appendASCII(",\"restarts\":")
            body.appendDecimal(slot.restarts)
            body.appendASCII(",\"recycles\":")
            body.appendDecimal(slot.recycles)
            body.appendASCII(",\"last_restart_cause\":")
            body.appendJSONString(orNull: slot.lastRestartCause?.rawValue)
            body.appendASCII(",\"started_at\":")
            body.appendJSONString(orNull: slot.state.child.map { rfc3339(milliseconds: $0.startedAtWall) })
            body.append(UInt8(ascii: "}"))
        }
        body.appendASCII("]}\n")
        return .json(200, body)
    }
}
