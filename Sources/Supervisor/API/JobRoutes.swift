/// The job routes: enqueue (one or a batch, optionally waiting), look up (optionally waiting), list, cancel,
/// retry, and pause.
extension Supervisor {
    // MARK: Enqueue

    func enqueueRoute(_ request: HTTPRequest) -> HTTPReply {
        let wait: Int?
        let body: EnqueueRequest.Body
        switch enqueueArguments(request) {
        case .failure(let error): return .response(.error(error))
        case .success(let arguments): (wait, body) = arguments
        }
        switch body {
        case .single(let spec):
            let job: Job
            let created: Bool
            do throws(EnqueueRefusal) {
                (job, created) = try enqueue(spec)
            } catch {
                metrics.jobRejected(error.metricsReason)
                return .response(refusal(error, id: spec.id))
            }
            guard let wait, !job.state.isFinished else {
                return .response(enqueued(job, status: created ? 202 : 200))
            }
            // Accepted (the 202 is held until it is durable) and now waiting for the job's end.
            return waitFor(job.id, milliseconds: wait) { [unowned self] job in
                enqueued(job, status: job.state.isFinished ? 200 : 202)
            }
        case .batch(let items):
            return .response(batchReply(items))
        }
    }

    /// An enqueue's `wait_ms` and body (for both backends), or what is wrong with them; an invalid body counts as
    /// a rejected job.
    func enqueueArguments(_ request: HTTPRequest) -> Result<(wait: Int?, body: EnqueueRequest.Body), HTTPError> {
        do throws(HTTPError) {
            let wait = try waitMilliseconds(request)
            let body: EnqueueRequest.Body
            do throws(HTTPError) {
                body = try EnqueueRequest.parse(body: request.body, rules: enqueueRules)
            } catch {
                metrics.jobRejected(.invalid)
                throw error
            }
            if case .batch = body, wait != nil {
                throw .badRequest("wait_ms is not supported for a batch; wait on each job with GET /jobs/{id}")
            }
            return .success((wait, body))
        } catch {
            return .failure(error)
        }
    }

    /// What an enqueue may contain, from the config.
    var enqueueRules: EnqueueRequest.Rules {
        EnqueueRequest.Rules(
            maximumPayloadBytes: config.maxPayloadBytes, allowedCallbackHosts: config.callbacksAllowedHosts ?? [],
            maximumBatchJobs: config.httpMaxBatchJobs)
    }

    /// A `202`/`200` with the record (and the progress of a job running here) and its `Location`.
    func enqueued(_ job: Job, status: Int) -> HTTPResponse {
        HTTPResponse.json(status, job.jsonBody(progress: ledger.progress[job.id]))
            .withHeader("Location", "/jobs/" + HTTPRequest.percentEncode(pathSegment: job.id))
    }

    /// The error response of a refused enqueue.
    func refusal(_ error: EnqueueRefusal, id: String) -> HTTPResponse {
        switch error {
        case .conflict:
            return .error(409, "job \(id) already exists with different content (payload, max_retries, priority, timeout_ms or callback_url)")
        case .queueFull:
            return .error(
                .unavailable("queue is full (\(config.queueSize) jobs waiting); retry later", retryAfterSeconds: 1))
        case .draining:
            return .error(.unavailable("shutting down; not accepting jobs", retryAfterSeconds: 5))
        }
    }

    /// `200 {"results": [...]}`: per item, in request order, its status and record or its error.
    private func batchReply(_ items: [Result<JobSpec, HTTPError>]) -> HTTPResponse {
        var specs: [JobSpec] = []
        specs.reserveCapacity(items.count)
        for case .success(let spec) in items { specs.append(spec) }
        var outcomes = enqueueBatch(specs).makeIterator()
        for case .failure in items { metrics.jobRejected(.invalid) }
        return batchResults(items) { _, spec in
            switch outcomes.next()! {
            case .success(let (job, created)):
                return .enqueued(job, created: created)
            case .failure(let refused):
                metrics.jobRejected(refused.metricsReason)
                return .refused(refusal(refused, id: spec.id))
            }
        }
    }

    /// What became of one valid item of a batch.
    enum BatchItemOutcome {
        /// Its record, and whether this request created it.
        case enqueued(Job, created: Bool)
        /// The error response it got.
        case refused(HTTPResponse)
    }

    /// `200 {"results": [...]}` for a batch (both backends): per item, in request order, its index and either its
    /// id, status and record or its error. `outcome` is asked once per valid item, in order: its record and
    /// whether it was created, or the error response it got.
    func batchResults(
        _ items: [Result<JobSpec, HTTPError>], outcome: (_ index: Int, _ spec: JobSpec) -> BatchItemOutcome
    ) -> HTTPResponse {
        var body: [UInt8] = []
        body.reserveCapacity(items.count * 400)
        body.appendASCII("{\"results\":[")
        for (index, item) in items.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.appendASCII("{\"index\":")
            body.appendDecimal(index)
            switch item {
            case .failure(let error):
                body.appendASCII(",\"status\":400,\"error\":")
                body.appendJSONString(error.message)
            case .success(let spec):
                body.appendASCII(",\"id\":")
                body.appendJSONString(spec.id)
                switch outcome(index, spec) {
                case .enqueued(let job, let created):
                    body.appendASCII(created ? ",\"status\":202,\"job\":" : ",\"status\":200,\"job\":")
                    job.appendJSON(to: &body)
                case .refused(let response):
                    body.appendASCII(",\"status\":")
                    body.appendDecimal(response.status)
                    body.appendASCII(",\"error\":")
                    // The error body is {"error":"..."}\n: take its message.
                    body.append(contentsOf: response.body.dropFirst(9).dropLast(2))
                }
            }
            body.append(UInt8(ascii: "}"))
        }
        body.appendASCII("]}\n")
        return .json(200, body)
    }

    // MARK: Lookup

    func jobRoute(id: String, _ request: HTTPRequest) -> HTTPReply {
        let wait: Int?
        do throws(HTTPError) {
            wait = try waitMilliseconds(request)
        } catch {
            return .response(.error(error))
        }
        guard let job = ledger[id] else { return .response(.error(404, "no job with id \(id)")) }
        guard let wait, wait > 0, !job.state.isFinished else { return .response(fullRecord(job)) }
        return waitFor(id, milliseconds: wait) { [unowned self] job in fullRecord(job) }
    }

    /// `200` with the whole record: payload and progress too.
    private func fullRecord(_ job: Job) -> HTTPResponse {
        .json(200, job.jsonBody(detail: .full, progress: ledger.progress[job.id]))
    }

    /// Holds the request until job `id` finishes or `milliseconds` pass, then answers with `answer`.
    private func waitFor(_ id: String, milliseconds: Int, answer: @escaping (Job) -> HTTPResponse) -> HTTPReply {
        .deferred { [unowned self] exchange in
            waiters.wait(
                for: id, exchange: exchange, milliseconds: milliseconds, current: { [unowned self] in ledger[id] },
                answer: answer)
        }
    }

    /// `?wait_ms=N`: nil when absent; 400 outside 0...`http.max_wait_ms`.
    func waitMilliseconds(_ request: HTTPRequest) throws(HTTPError) -> Int? {
        guard let items = request.queryItems else { throw .badRequest("query string has an invalid encoding") }
        guard let value = items.last(where: { $0.name == "wait_ms" })?.value else { return nil }
        guard let milliseconds = Int(value), (0...config.httpMaxWaitMs).contains(milliseconds) else {
            throw .badRequest("wait_ms must be an integer from 0 to \(config.httpMaxWaitMs) (http.max_wait_ms); got \"\(value)\"")
        }
        return milliseconds
    }

    // MARK: List

    func listJobsRoute(_ request: HTTPRequest) -> HTTPResponse {
        let filter: JobFilter
        let limit: Int
        let cursor: UInt64?
        do throws(HTTPError) {
            (filter, limit, cursor) = try listQuery(request)
        } catch {
            return .error(error)
        }
        let page = ledger.store.list(filter, before: cursor, limit: limit)
        return listBody(page.jobs, nextCursor: page.nextCursor)
    }

    /// `GET /jobs`'s query: the filter (state, priority, created_after, created_before), the page size and the
    /// cursor; a 400 names the parameter at fault.
    func listQuery(_ request: HTTPRequest) throws(HTTPError) -> (JobFilter, limit: Int, cursor: UInt64?) {
        guard let items = request.queryItems else { throw .badRequest("query string has an invalid encoding") }
        var filter = JobFilter()
        var limit = 100
        var cursor: UInt64?
        for (name, value) in items {
            switch name {
            case "state":
                guard let parsed = JobState(rawValue: value) else {
                    let names = JobState.allCases.map(\.rawValue).joined(separator: ", ")
                    throw .badRequest("state must be one of \(names); got \"\(value)\"")
                }
                filter.state = parsed
            case "priority":
                guard let parsed = Int(value), JobSpec.priorities.contains(parsed) else {
                    throw .badRequest("priority must be an integer from 0 to 9; got \"\(value)\"")
                }
                filter.priority = parsed
            case "created_after", "created_before":
                guard let at = RFC3339.parse(value) else {
                    throw .badRequest("\(name) must be an RFC 3339 time such as 2026-12-01T03:00:00Z; got \"\(value)\"")
                }
                if name == "created_after" { filter.createdAfter = at } else { filter.createdBefore = at }
            case "limit":
                guard let parsed = Int(value), (1...10_000).contains(parsed) else {
                    throw .badRequest("limit must be an integer from 1 to 10000; got \"\(value)\"")
                }
                limit = parsed
            case "cursor":
                guard let parsed = JobCursor.decode(value) else {
                    throw .badRequest("cursor is not one this server gave out (use next_cursor as returned)")
                }
                cursor = parsed
            default:
                continue  // unknown parameters are ignored, like unknown JSON fields
            }
        }
        return (filter, limit, cursor)
    }

    /// A page of records as `GET /jobs` answers it.
    func listBody(_ jobs: [Job], nextCursor: UInt64?) -> HTTPResponse {
        var body: [UInt8] = []
        body.appendASCII("{\"jobs\":[")
        for (index, job) in jobs.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            job.appendJSON(to: &body, progress: ledger.progress[job.id])
        }
        body.appendASCII("],\"next_cursor\":")
        body.appendJSONString(orNull: nextCursor.map(JobCursor.encode))
        body.appendASCII("}\n")
        return .json(200, body)
    }

    // MARK: Changes

    func cancelRoute(id: String) -> HTTPResponse {
        guard let job = ledger[id] else { return .error(404, "no job with id \(id)") }
        do throws(InvalidTransition) {
            return .json(200, try cancel(id: id).jsonBody)
        } catch {
            return .error(409, "job \(id) already finished (\(job.state.rawValue)); nothing to cancel")
        }
    }

    func retryRoute(id: String) -> HTTPResponse {
        guard let job = ledger[id] else { return .error(404, "no job with id \(id)") }
        do throws(InvalidTransition) {
            return .json(200, try retry(id: id).jsonBody)
        } catch {
            return .error(409, "job \(id) is \(job.state.rawValue); only failed or canceled jobs can be retried")
        }
    }

    /// `POST /jobs/retry?state=failed` and `POST /jobs/cancel?state=queued` (optional `&limit=N`).
    func bulkRoute(_ change: BulkChange, _ request: HTTPRequest) -> HTTPResponse {
        guard let items = request.queryItems else { return .error(400, "query string has an invalid encoding") }
        let allowed: [JobState] = change == .retry ? [.failed, .canceled] : [.queued, .running]
        let names = allowed.map(\.rawValue).joined(separator: " or ")
        guard let value = items.last(where: { $0.name == "state" })?.value else {
            return .error(400, "state is required (\(names))")
        }
        guard let state = JobState(rawValue: value), allowed.contains(state) else {
            return .error(400, "state must be \(names); got \"\(value)\"")
        }
        var limit = Int.max
        if let text = items.last(where: { $0.name == "limit" })?.value {
            guard let parsed = Int(text), parsed >= 1 else {
                return .error(400, "limit must be a positive integer; got \"\(text)\"")
            }
            limit = parsed
        }
        let count = changeAll(change, state: state, limit: limit)
        return .json(200, Array("{\"count\":\(count)}\n".utf8))
    }

    func pauseRoute(paused: Bool) -> HTTPResponse {
        setPaused(paused)
        return .json(200, Array("{\"paused\":\(paused),\"queued\":\(ledger.store.queuedCount)}\n".utf8))
    }
}

/// The opaque `next_cursor` of `GET /jobs`: the sequence to continue below, so a page stays stable while jobs
/// are added.
enum JobCursor {
    static func encode(_ sequence: UInt64) -> String {
        Base64.encode(Array("s\(sequence)".utf8))
    }

    static func decode(_ text: String) -> UInt64? {
        guard let bytes = Base64.decode(text), bytes.first == UInt8(ascii: "s") else { return nil }
        return UInt64(String(decoding: bytes.dropFirst(), as: UTF8.self))
    }
}
