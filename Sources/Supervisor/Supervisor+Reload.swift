import IPC
import System

/// SIGHUP: re-read the configuration and apply what can change while running.
extension Supervisor {
    /// Re-reads the config (file, environment and flags as at start). A bad file is logged and changes nothing;
    /// listen address, data dir and journal.fsync need a restart.
    func reloadConfiguration() {
        guard !pool.draining else { return }
        var next: Config
        do throws(ConfigError) {
            (next, _) = try Config.load(
                arguments: launchArguments, environment: launchEnvironment, readFile: Config.readFileFromDisk)
        } catch {
            logger.error("reload_failed", ["error": .string(error.description)])
            return
        }
        let nextWorkerPath = next.workerPath ?? Config.defaultWorkerPath()
        guard Posix.isExecutable(nextWorkerPath) else {
            logger.error("reload_failed", ["error": .string("worker executable \(nextWorkerPath) is not executable")])
            return
        }
        if let problem = next.programProblem(environment: launchEnvironment) {
            logger.error("reload_failed", ["error": .string(problem)])
            return
        }
        var ignored: [String] = []
        if next.listen != config.listen { ignored.append("listen") }
        if next.dataDir != config.dataDir { ignored.append("data_dir") }
        if next.journalFsync != config.journalFsync { ignored.append("journal.fsync") }
        if next.journalCompactBytes != config.journalCompactBytes { ignored.append("journal.compact_bytes") }
        if next.httpMaxEventClients != config.httpMaxEventClients { ignored.append("http.max_event_clients") }
        if next.pidfile != config.pidfile { ignored.append("pidfile") }
        if next.queueBackend != config.queueBackend { ignored.append("queue.backend") }
        if next.postgresURL != config.postgresURL { ignored.append("postgres.url") }
        if next.postgresNodeID != config.postgresNodeID { ignored.append("postgres.node_id") }
        if next.postgresLeaseMs != config.postgresLeaseMs { ignored.append("postgres.lease_ms") }
        if next.postgresConnectTimeoutMs != config.postgresConnectTimeoutMs { ignored.append("postgres.connect_timeout_ms") }
        (next.listen, next.dataDir, next.journalFsync) = (config.listen, config.dataDir, config.journalFsync)
        (next.journalCompactBytes, next.httpMaxEventClients, next.pidfile) =
            (config.journalCompactBytes, config.httpMaxEventClients, config.pidfile)
        (next.queueBackend, next.postgresURL, next.postgresNodeID) = (config.queueBackend, config.postgresURL, config.postgresNodeID)
        (next.postgresLeaseMs, next.postgresConnectTimeoutMs) = (config.postgresLeaseMs, config.postgresConnectTimeoutMs)

        // A worker count changed with SIGTTIN/SIGTTOU stays unless the file's `workers` changed.
        let workersChanged = next.workers != config.workers
        let workerSettingsChanged =
            next.workerCommandLine != config.workerCommandLine || next.programEnvironment != config.programEnvironment
            || nextWorkerPath != workerPath
        config = next
        workerPath = nextWorkerPath
        backoff = Backoff(config: next)
        logger.level = next.logLevel
        logger.format = next.logFormat
        logger.logsRequests = next.logRequests
        ledger.setRetention(
            maximumFinished: next.retentionMaxFinished, maximumResultBytes: next.retentionMaxResultBytes)
        server?.settings = clampedHTTPSettings(next)
        pool.settings = next.poolSettings
        if workerSettingsChanged {
            perform(pool.recycleAll(reason: "config reloaded with new worker settings"))
        }
        if workersChanged { perform(pool.setTarget(next.workers)) }
        reloadSchedules()
        logger.info(
            "config_reloaded",
            [
                "workers": .int(pool.target), "workers_replaced": .bool(workerSettingsChanged),
                "ignored_until_restart": .strings(ignored),
            ])
    }
}
