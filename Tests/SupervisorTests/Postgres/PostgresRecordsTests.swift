import Testing

@testable import Supervisor

/// What the PostgreSQL backend writes of a job: history entries that round-trip, and text PostgreSQL can hold.
@Suite struct PostgresRecordsTests {
    @Test func aNULBecomesTheReplacementCharacterAndOtherTextIsKept() {
        #expect(PostgresRecords.storable("plain") == "plain")
        #expect(PostgresRecords.storable("a\u{0}b\u{0}") == "a\u{FFFD}b\u{FFFD}")
        #expect(PostgresRecords.storable("ünï\u{0}cödé 🎉") == "ünï\u{FFFD}cödé 🎉")
        #expect(PostgresRecords.storable("") == "")
    }

    @Test func aHistoryEntryHoldsNoNULEscapeAndReadsBack() {
        let attempt = AttemptRecord(
            attempt: 2, startedAt: 1_000, finishedAt: 1_500, workerPID: 42, outcome: .crash,
            error: "bad\u{0}thing", stderr: Array("tail\u{0}end".utf8))
        let entry = PostgresRecords.historyEntry(attempt)
        #expect(!entry.contains("\\u0000"))
        let back = PostgresRecords.history("[" + entry + "]")
        #expect(back.count == 1)
        #expect(back.first?.error == "bad\u{FFFD}thing")
        #expect(back.first?.stderr == Array("tail\u{FFFD}end".utf8))
        #expect(back.first?.workerPID == 42)
        #expect(back.first?.finishedAt == 1_500)
        #expect(back.first?.outcome == .crash)
    }

    @Test func aHistoryThatIsNotJSONReadsAsEmpty() {
        #expect(PostgresRecords.history("not json").isEmpty)
        #expect(PostgresRecords.history("[{\"no_attempt\":1}]").isEmpty)
    }
}
