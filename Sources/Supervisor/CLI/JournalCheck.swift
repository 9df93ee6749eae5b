import System

/// `prefork journal check DATA_DIR` (or `prefork --check-journal`): what a start would find in the journal and
/// do about it, without locking or changing anything.
enum JournalCheck {
    /// Prints the report as JSON; exits 0 when the journal is whole, 1 when a start would repair something (cut a
    /// torn tail, skip damaged records after keeping the file aside), 2 when a start would refuse it.
    static func run(dataDirectory: String) -> Int32 {
        let scan: JournalScan
        let bytes: Int
        do throws(JournalFile.OpenError) {
            (scan, bytes) = try JournalFile.inspect(directory: dataDirectory)
        } catch {
            print(JSONValue.object(["path": .string(dataDirectory + "/journal"), "error": .string(error.description)])
                .serialized(pretty: true))
            return 2
        }
        let (store, problems) = JournalReplay.rebuild(scan.events, maximumFinished: .max, now: Time.wallMilliseconds())
        var states: [String: JSONValue] = [:]
        for state in JobState.allCases {
            states[state.rawValue] = .integer(store.jobs.values.count(where: { $0.state == state }))
        }
        var actions: [JSONValue] = []
        if scan.isDamaged {
            let skipped = scan.damage.reduce(0) { $0 + $1.length }
            actions.append(
                .string("keep the file aside as journal.corrupt-<time>, skip \(skipped) damaged bytes, replay the rest"))
        }
        if let torn = scan.tornTail, !scan.isDamaged {
            actions.append(.string("cut the incomplete last record (\(torn.length) bytes at offset \(torn.offset))"))
        }
        if scan.format == .legacy { actions.append(.string("rewrite the journal in the current format")) }
        if !scan.events.isEmpty {
            actions.append(.string("rewrite the journal to its \(store.jobs.count) jobs (compaction)"))
        }
        let report: JSONValue = .object([
            "path": .string(dataDirectory + "/journal"), "format": .string(scan.format.rawValue),
            "bytes": .integer(bytes), "records": .integer(scan.events.count), "jobs": .object(states),
            "damage": .array(scan.damage.map(describe)), "torn_tail": scan.tornTail.map(describe) ?? .null,
            "records_not_applied": .array(problems.map(JSONValue.string)), "start_would": .array(actions),
        ])
        print(report.serialized(pretty: true))
        return scan.isDamaged || scan.tornTail != nil || !problems.isEmpty ? 1 : 0
    }

    private static func describe(_ damage: JournalScan.Damage) -> JSONValue {
        .object([
            "offset": .integer(damage.offset), "bytes": .integer(damage.length), "reason": .string(damage.reason),
            "job_before": damage.jobBefore.map(JSONValue.string) ?? .null,
            "job_after": damage.jobAfter.map(JSONValue.string) ?? .null,
        ])
    }
}
