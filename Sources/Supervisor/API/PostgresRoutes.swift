/// The job routes with the PostgreSQL backend: the same requests and records as with the journal, answered once
/// the database has committed (enqueue, cancel, retry, pause) or answered (lookups, lists). While the database is
/// unreachable they answer `503` with `Retry-After`.
extension Supervisor {
    /// The reply to a job route, or nil for a route the backend does not change (health, workers, metrics, ...).
    func postgresReply(to request: HTTPRequest, segments: [String], method: String) -> HTTPReply? {
        guard let postgres else { return nil }
        // An id no job can have (a NUL, say, which PostgreSQL text cannot even hold) is not looked up.
        if segments.first == "jobs", segments.count >= 2, !EnqueueRequest.isPossibleID(segments[1]) {
            return .response(.error(404, "no job with id \(segments[1])"))
        }
        switch (segments.first, segments.count, method) {
        case ("enqueue", 1, "POST"):
            return postgresEnqueue(request, postgres)
        case ("jobs", 2, "GET"):
            let id = segments[1]
            let wait: Int?
            do throws(HTTPError) {
                wait = try waitMilliseconds(request)
            } catch {
                return .response(.error(error))
            }
            return deferred { [unowned self] exchange in
                postgres.lookUp(id) { [unowned self] found in
                    switch found {
                    case .failure(let failure): exchange.respond(PostgresQueue.response(failure))
                    case .success(nil): exchange.respond(.error(404, "no job with id \(id)"))
                    case .success(let job?):
                        guard let wait, wait > 0, !job.state.isFinished else { return exchange.respond(fullRecord(job)) }
                        postgres.wait(for: id, exchange: exchange, milliseconds: wait) { [unowned self] in fullRecord($0) }
                    }
                }
            }
        case ("jobs", 1, "GET"):
            return postgresList(request, postgres)
        case ("jobs", 2, "DELETE"):
            let id = segments[1]
            return deferred { exchange in
                postgres.cancel(id) { result in
                    switch result {
                    case .success(let job): exchange.respond(.json(200, job.jsonBody))
                    case .failure(.notFound): exchange.respond(.error(404, "no job with id \(id)"))
                    case .failure(.conflict(let job)):
                        exchange.respond(.error(409, "job \(id) already finished (\(job.state.rawValue)); nothing to cancel"))
                    case .failure(let failure): exchange.respond(PostgresQueue.response(failure))
                    }
                }
            }
        case ("jobs", 3, "POST") where segments[2] == "retry":
            let id = segments[1]
            return deferred { exchange in
                postgres.retry(id) { result in
                    switch result {
                    case .success(let job): exchange.respond(.json(200, job.jsonBody))
                    case .failure(.notFound): exchange.respond(.error(404, "no job with id \(id)"))
                    case .failure(.conflict(let job)):
                        exchange.respond(
                            .error(409, "job \(id) is \(job.state.rawValue); only failed or canceled jobs can be retried"))
                    case .failure(let failure): exchange.respond(PostgresQueue.response(failure))
                    }
                }
            }
        case ("jobs", 2, "POST") where segments[1] == "retry" || segments[1] == "cancel":
            let change: BulkChange = segments[1] == "retry" ? .retry : .cancel
            let allowed: [JobState] = change == .retry ? [.failed, .canceled] : [.queued, .running]
            let items = request.queryItems ?? []
            guard let text = items.last(where: { $0.name == "state" })?.value, let state = JobState(rawValue: text),
                allowed.contains(state)
            else {
                return .response(.error(400, "state must be \(allowed.map(\.rawValue).joined(separator: " or "))"))
            }
            var limit = Int.max
            if let value = items.last(where: { $0.name == "limit" })?.value {
                guard let parsed = Int(value), parsed >= 1 else { return .response(.error(400, "limit must be a positive integer")) }
                limit = parsed
            }
            return deferred { exchange in
                postgres.changeAll(change, state: state, limit: limit) { result in
                    switch result {
                    case .success(let count): exchange.respond(.json(200, Array("{\"count\":\(count)}\n".utf8)))
                    case .failure(let failure): exchange.respond(PostgresQueue.response(failure))
                    }
                }
            }
        case ("pause", 1, "POST"), ("resume", 1, "POST"):
            let paused = segments[0] == "pause"
            return deferred { exchange in
                postgres.setPausedEverywhere(paused) { result in
                    switch result {
                    case .success: exchange.respond(.json(200, Array("{\"paused\":\(paused)}\n".utf8)))
                    case .failure(let failure): exchange.respond(PostgresQueue.response(failure))
                    }
                }
            }
        default:
            return nil
        }
    }

    private func deferred(_ start: @escaping (HTTPExchange) -> Void) -> HTTPReply {
        .deferred(start)
    }

    private func fullRecord(_ job: Job) -> HTTPResponse {
        .json(200, job.jsonBody(detail: .full, progress: ledger.progress[job.id]))
    }

    private func postgresEnqueue(_ request: HTTPRequest, _ postgres: PostgresQueue) -> HTTPReply {
        let wait: Int?
        let body: EnqueueRequest.Body
        switch enqueueArguments(request) {
        case .failure(let error): return .response(.error(error))
        case .success(let arguments): (wait, body) = arguments
        }
        switch body {
        case .single(let spec):
            return deferred { [unowned self] exchange in
                postgres.enqueue(spec) { [unowned self] result in
                    switch result {
                    case .success(let (job, created)):
                        // As the journal answers: without a wait, new or not; with one, finished or not.
                        guard let wait else { return exchange.respond(enqueued(job, status: created ? 202 : 200)) }
                        guard wait > 0, !job.state.isFinished else {
                            return exchange.respond(enqueued(job, status: job.state.isFinished ? 200 : 202))
                        }
                        postgres.wait(for: job.id, exchange: exchange, milliseconds: wait) { [unowned self] job in
                            enqueued(job, status: job.state.isFinished ? 200 : 202)
                        }
                    case .failure(let failure):
                        exchange.respond(enqueueFailureResponse(failure, id: spec.id))
                    }
                }
            }
        case .batch(let items):
            return deferred { [unowned self] exchange in
                var outcomes = [Result<(Job, Bool), PostgresQueue.EnqueueFailure>?](repeating: nil, count: items.count)
                var remaining = items.count
                func finish() {
                    exchange.respond(
                        batchResults(items) { [unowned self] index, spec in
                            switch outcomes[index] {
                            case .success(let (job, created))?: .enqueued(job, created: created)
                            case .failure(let failure)?: .refused(enqueueFailureResponse(failure, id: spec.id))
                            case nil: .refused(.error(500, "no outcome"))
                            }
                        })
                }
                for (index, item) in items.enumerated() {
                    guard case .success(let spec) = item else {
                        metrics.jobRejected(.invalid)
                        remaining -= 1
                        continue
                    }
                    postgres.enqueue(spec) { result in
                        outcomes[index] = result
                        remaining -= 1
                        if remaining == 0 { finish() }
                    }
                }
                if remaining == 0 { finish() }
            }
        }
    }

    private func enqueueFailureResponse(_ failure: PostgresQueue.EnqueueFailure, id: String) -> HTTPResponse {
        switch failure {
        case .refused(let refused):
            metrics.jobRejected(refused.metricsReason)
            return refusal(refused, id: id)
        case .unavailable(let why):
            return .error(
                .unavailable(
                    "database unavailable (\(why)); the job may or may not be stored: retry with the same id",
                    retryAfterSeconds: 1))
        }
    }

    private func postgresList(_ request: HTTPRequest, _ postgres: PostgresQueue) -> HTTPReply {
        let filter: JobFilter
        let limit: Int
        let cursor: UInt64?
        do throws(HTTPError) {
            (filter, limit, cursor) = try listQuery(request)
        } catch {
            return .response(.error(error))
        }
        return deferred { [unowned self] exchange in
            postgres.list(filter, before: cursor, limit: limit) { [unowned self] result in
                switch result {
                case .failure(let failure): exchange.respond(PostgresQueue.response(failure))
                case .success(let page): exchange.respond(listBody(page.jobs, nextCursor: page.nextCursor))
                }
            }
        }
    }
}
