import System
import Testing

@testable import Supervisor

/// Every input of the fuzz corpora (fuzz/TARGET/corpus) and every input a fuzzer once crashed on
/// (fuzz/TARGET/regressions) goes through the same calls as the fuzz target (fuzz/TARGET/main.swift), with the
/// same checks, so that a fixed bug stays fixed without running a fuzzer. The frame corpus is read by
/// IPCTests/FrameCorpusTests.
@Suite struct FuzzCorpusTests {
    /// The repository's root, found from this file's path.
    static let root = String(#filePath.split(separator: "/Tests/").first!)

    /// The files of fuzz/TARGET/corpus and fuzz/TARGET/regressions, as paths relative to the root.
    static func inputs(_ target: String) -> [String] {
        ["corpus", "regressions"].flatMap { folder -> [String] in
            let directory = "fuzz/\(target)/\(folder)"
            let names = (try? Posix.listDirectory(root + "/" + directory)) ?? []
            return names.sorted().map { directory + "/" + $0 }
        }
    }

    static func read(_ path: String) throws -> [UInt8] {
        try Posix.readFile(root + "/" + path, limit: 64 << 20)
    }

    @Test(arguments: ["http", "json", "journal"])
    func corpusHasSeeds(target: String) {
        #expect(Self.inputs(target).filter { $0.contains("/corpus/") }.count >= 10)
    }

    // MARK: http (fuzz/http/main.swift)

    @Test(arguments: inputs("http"))
    func httpInput(path: String) throws {
        let bytes = try Self.read(path)
        Self.parseConnection(bytes[...], limits: HTTPParser.Limits())
        Self.parseConnection(bytes[...], limits: HTTPParser.Limits(maxHeaderBytes: 64, maxBodyBytes: 8))
    }

    /// Parses pipelined requests until the rest is incomplete or an error ends the connection.
    static func parseConnection(_ input: ArraySlice<UInt8>, limits: HTTPParser.Limits) {
        var rest = input
        while !rest.isEmpty {
            let result: HTTPParser.Result
            do throws(HTTPError) {
                result = try HTTPParser.parse(rest, limits: limits)
            } catch {
                #expect((400...599).contains(error.status))
                return
            }
            switch result {
            case .complete(let request, let consumed):
                #expect(consumed > 0 && consumed <= rest.count)
                guard consumed > 0 && consumed <= rest.count else { return }
                #expect(request.body.count <= limits.maxBodyBytes)
                inspect(request)
                rest = rest.dropFirst(consumed)
            case .awaitingBody(let head, _):
                inspect(head)
                return
            case .incomplete:
                return
            }
        }
    }

    static func inspect(_ request: HTTPRequest) {
        #expect(request.path.utf8.first == UInt8(ascii: "/"))
        for segment in request.pathSegments ?? [] {
            #expect(HTTPRequest.percentDecode(HTTPRequest.percentEncode(pathSegment: segment)) == segment)
        }
        _ = request.queryItems
        _ = request.header("host")
    }

    // MARK: json (fuzz/json/main.swift)

    @Test(arguments: inputs("json"))
    func jsonInput(path: String) throws {
        let bytes = try Self.read(path)
        let value: JSONValue
        do throws(JSONError) {
            value = try JSONParser.parse(bytes)
        } catch {
            #expect(error.offset >= 0 && error.offset <= bytes.count)
            return
        }
        for pretty in [false, true] {
            let text = value.serialized(pretty: pretty)
            #expect(try JSONParser.parse(Array(text.utf8)) == value, "\(text)")
        }
    }

    // MARK: journal (fuzz/journal/main.swift)

    @Test(arguments: inputs("journal"))
    func journalInput(path: String) throws {
        let bytes = try Self.read(path)
        Self.checkJournal(bytes)
        let fixed = Self.withChecksumsFixed(bytes)
        if fixed != bytes { Self.checkJournal(fixed) }
    }

    /// A record with the largest sequence (regressions/*sequence-max*) replays; no sequence is taken after it, so
    /// replay does not overflow, and the next job accepted gets one of its own.
    @Test(arguments: inputs("journal").filter { $0.contains("sequence-max") })
    func largestSequenceReplays(path: String) throws {
        let scan = try JournalScan.read(Self.withChecksumsFixed(try Self.read(path)))
        var store = JournalReplay.rebuild(scan.events, maximumFinished: .max, now: 0).store
        #expect(store.jobs.values.contains { $0.sequence == .max })
        #expect(store.takeSequence() < .max)
    }

    static func checkJournal(_ bytes: [UInt8]) {
        _ = try? JournalRecord.decode(bytes, at: 0)
        _ = try? LegacyJournalRecord.decode(bytes, at: 0)
        guard let scan = try? JournalScan.read(bytes) else { return }
        #expect(scan.intactEnd >= 0 && scan.intactEnd <= bytes.count)
        for span in scan.damage + (scan.tornTail.map { [$0] } ?? []) {
            #expect(span.offset >= 0 && span.length >= 0 && span.offset + span.length <= bytes.count)
        }
        for event in scan.events {
            var record: [UInt8] = []
            JournalRecord.encode(event, into: &record)
            let decoded = try? JournalRecord.decode(record, at: 0)
            #expect(decoded?.0 == event && decoded?.next == record.count, "\(event.summary)")
        }
        checkStore(JournalReplay.rebuild(scan.events, maximumFinished: .max, now: 0).store)
        checkStore(JournalReplay.rebuild(scan.events, maximumFinished: 1, maximumResultBytes: 16, now: 0).store)
    }

    static func checkStore(_ store: JobStore) {
        var counts: [JobState: Int] = [:]
        for job in store.jobs.values { counts[job.state, default: 0] += 1 }
        #expect(store.runningCount == 0 && counts[.running] == nil)
        #expect(store.queuedCount == counts[.queued, default: 0])
        let finished = counts[.done, default: 0] + counts[.failed, default: 0] + counts[.canceled, default: 0]
        #expect(store.finishedCount == finished)
        #expect(store.finishedCount <= store.maximumFinished)
        #expect(store.jobsInAcceptanceOrder.count >= store.jobs.count)
    }

    /// `bytes` with every record's checksum put right, as the journal fuzz target does before its second run.
    static func withChecksumsFixed(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        func bigEndian32(_ offset: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(bytes[offset + $1]) } }
        func patch(_ value: UInt32, at offset: Int) {
            for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
        }
        let header = JournalFile.header
        if bytes.count >= header.count && bytes.starts(with: header[0..<8]) {
            var offset = header.count
            while offset + JournalRecord.headerSize <= bytes.count {
                guard bytes[offset..<offset + 4].elementsEqual(JournalRecord.magic) else {
                    offset += 1
                    continue
                }
                let end = offset + JournalRecord.headerSize + bigEndian32(offset + 4)
                guard end <= bytes.count else { break }
                patch(CRC32.checksum(bytes[(offset + 4)..<(offset + 8)], bytes[(offset + 12)..<end]), at: offset + 8)
                offset = end
            }
        } else {
            var offset = 0
            while offset + LegacyJournalRecord.headerSize <= bytes.count {
                let end = offset + LegacyJournalRecord.headerSize + bigEndian32(offset)
                guard end <= bytes.count else { break }
                patch(CRC32.checksum(bytes[(offset + 8)..<end]), at: offset + 4)
                offset = end
            }
        }
        return bytes
    }
}
