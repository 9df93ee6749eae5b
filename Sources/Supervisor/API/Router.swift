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

    /// Paths that need no token: the health probes.
    static func isPublic(_ segments: [String]) -> Bool {
        segments.count == 1 && (segments[0] == "healthz" || segments[0] == "readyz")
    }

    /// Answers one request (already screened). Never throws: every failure is an error response that says what
    /// was wrong. HEAD is answered as GET; the server leaves the body out.
    func respond(to request: HTTPRequest) -> HTTPResponse {
        guard let segments = request.pathSegments else {
            return .error(400, "request path has an invalid percent-encoding")
        }
        let method = request.method == "HEAD" ? "GET" : request.method
        switch (segments.first, segments.count, method) {
        case ("enqueue", 1, "POST"): return enqueueRoute(request)
        case ("enqueue", 1, _): return methodNotAllowed("POST")
        case ("jobs", 1, "GET"): return listJobsRoute(request)
        case ("jobs", 1, _): return methodNotAllowed("GET, HEAD")
        case ("jobs", 2, "GET"): return jobRoute(id: segments[1])
        case ("jobs", 2, "DELETE"): return cancelRoute(id: segments[1])
        case ("jobs", 2, _): return methodNotAllowed("GET, HEAD, DELETE")
        case ("healthz", 1, "GET"): return healthRoute()
        case ("readyz", 1, "GET"): return readinessRoute()
        case ("workers", 1, "GET"): return workersRoute()
        case ("metrics", 1, "GET"): return metricsRoute()
        case ("healthz", 1, _), ("readyz", 1, _), ("workers", 1, _), ("metrics", 1, _):
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

    // MARK: Jobs

    private func enqueueRoute(_ request: HTTPRequest) -> HTTPResponse {
        let submission: EnqueueRequest
        do throws(HTTPError) {
            submission = try EnqueueRequest(body: request.body, maximumPayloadBytes: config.maxPayloadBytes)
        } catch {
            metrics.jobRejected(.invalid)
            return .error(error)
        }
        do throws(EnqueueRefusal) {
            let (job, created) = try enqueue(
                JobSpec(id: submission.id, payload: submission.payload, maxRetries: submission.maxRetries))
            return HTTPResponse.json(created ? 202 : 200, job.jsonBody)
                .withHeader("Location", "/jobs/" + HTTPRequest.percentEncode(pathSegment: job.id))
        } catch {
            metrics.jobRejected(error.metricsReason)
            switch error {
            case .conflict:
                return .error(409, "job \(submission.id) already exists with a different payload or max_retries")
            case .queueFull:
                return .error(
                    .unavailable("queue is full (\(config.queueSize) jobs waiting); retry later", retryAfterSeconds: 1))
            case .draining:
                return .error(.unavailable("shutting down; not accepting jobs", retryAfterSeconds: 5))
            }
        }
    }

    private func jobRoute(id: String) -> HTTPResponse {
        guard let job = ledger[id] else { return .error(404, "no job with id \(id)") }
        return .json(200, job.jsonBody)
    }

    private func cancelRoute(id: String) -> HTTPResponse {
        guard let job = ledger[id] else { return .error(404, "no job with id \(id)") }
        do throws(InvalidTransition) {
            return .json(200, try cancel(id: id).jsonBody)
        } catch {
            return .error(409, "job \(id) already finished (\(job.state.rawValue)); nothing to cancel")
        }
    }

    private func listJobsRoute(_ request: HTTPRequest) -> HTTPResponse {
        guard let items = request.queryItems else { return .error(400, "query string has an invalid encoding") }
        var state: JobState?
        var limit = 100
        for (name, value) in items {
            switch name {
            case "state":
                guard let parsed = JobState(rawValue: value) else {
                    let names = JobState.allCases.map(\.rawValue).joined(separator: ", ")
                    return .error(400, "state must be one of \(names); got \"\(value)\"")
                }
                state = parsed
            case "limit":
                guard let parsed = Int(value), (1...10_000).contains(parsed) else {
                    return .error(400, "limit must be an integer from 1 to 10000; got \"\(value)\"")
                }
                limit = parsed
            default:
                continue  // unknown parameters are ignored, like unknown JSON fields
            }
        }
        var body: [UInt8] = []
        body.appendASCII("{\"jobs\":[")
        for (index, job) in ledger.store.list(state: state, limit: limit).enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            job.appendJSON(to: &body)
        }
        body.appendASCII("]}\n")
        return .json(200, body)
    }

    // MARK: Service

    private func healthRoute() -> HTTPResponse {
        var body: [UInt8] = []
        body.appendASCII("{\"status\":\"ok\",\"draining\":")
        body.append(contentsOf: (pool.draining ? "true" : "false").utf8)
        body.appendASCII(",\"workers_alive\":")
        body.appendDecimal(pool.liveWorkerCount)
        body.appendASCII(",\"queued\":")
        body.appendDecimal(ledger.store.queuedCount)
        body.appendASCII(",\"running\":")
        body.appendDecimal(ledger.store.runningCount)
        body.appendASCII(",\"version\":")
        body.appendJSONString(BuildInfo.version)
        body.appendASCII(",\"containment\":")
        body.appendJSONString(containment?.mode.name ?? "subreaper")
        body.appendASCII("}\n")
        return .json(200, body)
    }

    private func metricsRoute() -> HTTPResponse {
        let gauges = Metrics.Gauges(
            queued: ledger.store.queuedCount, running: ledger.store.runningCount, liveWorkers: pool.liveWorkerCount,
            targetWorkers: pool.target, draining: pool.draining, retainedJobs: ledger.store.jobs.count,
            journalBytes: journal.size, retainedResultBytes: ledger.store.finishedResultBytes,
            evictedByCount: ledger.store.evictedByCount, evictedByBytes: ledger.store.evictedByBytes)
        return HTTPResponse(
            status: 200, body: metrics.exposition(gauges), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    private func readinessRoute() -> HTTPResponse {
        if pool.draining { return .error(503, "shutting down") }
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
