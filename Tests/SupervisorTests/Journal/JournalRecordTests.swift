import Testing

@testable import Supervisor

@Suite struct JournalRecordTests {
    /// A job in `state` with every optional field set (or not) as that state would have it.
    static func job(_ id: String, _ state: JobState, sequence: UInt64 = 1) -> Job {
        Job(
            restoring: id, payload: "payload of \(id)", maxRetries: 3, sequence: sequence, createdAt: 1_700_000_000_000,
            state: state, attempts: state == .queued ? 0 : 2,
            lastError: state == .failed || state == .canceled ? "boom ✗" : nil,
            result: state == .done ? "result ✓" : nil, updatedAt: 1_700_000_000_500,
            nextAttemptAt: state == .queued ? 1_700_000_001_000 : nil)
    }

    /// One record of every kind, every snapshot state, and the edge values of each field.
    static let samples: [JobEvent] = {
        var records: [JobEvent] = [
            .accepted(id: "a", payload: "@sleep 5", maxRetries: 3, sequence: 1, at: 1_700_000_000_000),
            .accepted(id: "", payload: "", maxRetries: 0, sequence: 0, at: 0),
            .accepted(id: "ünïcødé-🚀", payload: "日本語 payload\n\t\"quoted\"", maxRetries: 10, sequence: .max, at: -1),
            .started(id: "a", attempt: 1, at: 5),
            .started(id: "", attempt: 0, at: Int64.max),
            .attemptFailed(
                id: "a", attempt: 1, error: "exit status 1", retryAt: 1_700_000_000_100, at: 1_700_000_000_000),
            .attemptFailed(id: "a", attempt: 2, error: "", retryAt: nil, at: 7),
            .attemptFailed(id: "é", attempt: 4, error: "💥 crashed", retryAt: 0, at: Int64.min),
            .succeeded(id: "a", result: "{\"ok\":true}", at: 9),
            .succeeded(id: "b", result: "", at: 0),
            .succeeded(id: "c", result: "ß∂ƒ©˙∆˚¬…æ", at: 1),
            .canceled(id: "a", at: 11),
            .canceled(id: "", at: 0),
            .interrupted(id: "a", attempt: 2, error: "killed at shutdown after 30000 ms", at: 12),
            .interrupted(id: "", attempt: 0, error: "", at: 0),
        ]
        for (index, state) in JobState.allCases.enumerated() {
            records.append(.snapshot(job("snap-\(state.rawValue)", state, sequence: UInt64(index))))
        }
        records.append(
            .snapshot(
                Job(
                    restoring: "", payload: "", maxRetries: 0, sequence: 0, createdAt: 0, state: .failed, attempts: 0,
                    lastError: "", result: "", updatedAt: 0, nextAttemptAt: 0)))
        records.append(
            .snapshot(
                Job(
                    restoring: "ид-✓", payload: "😀", maxRetries: 1, sequence: 42, createdAt: 1, state: .running,
                    attempts: 1, lastError: nil, result: nil, updatedAt: 2, nextAttemptAt: nil)))
        return records
    }()

    private func encoded(_ records: [JobEvent]) -> [UInt8] {
        var bytes: [UInt8] = []
        for record in records { record.encode(into: &bytes) }
        return bytes
    }

    /// Decodes records from the start until the bytes end or one fails.
    private func decodeStream(_ bytes: [UInt8]) -> (records: [JobEvent], error: JournalRecord.DecodeError?) {
        var records: [JobEvent] = []
        var offset = 0
        while offset < bytes.count {
            do throws(JournalRecord.DecodeError) {
                let (record, next) = try JournalRecord.decode(bytes, at: offset)
                records.append(record)
                offset = next
            } catch {
                return (records, error)
            }
        }
        return (records, nil)
    }

    private func decodeError(_ bytes: [UInt8]) -> JournalRecord.DecodeError? {
        do throws(JournalRecord.DecodeError) {
            _ = try JournalRecord.decode(bytes, at: 0)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: JournalRecordTests.samples)
    func everyRecordRoundTrips(_ record: JobEvent) throws {
        var bytes: [UInt8] = [0xAA, 0xBB]  // decoding at a non-zero offset
        record.encode(into: &bytes)
        let (decoded, next) = try JournalRecord.decode(bytes, at: 2)
        #expect(decoded == record)
        #expect(next == bytes.count)
    }

    @Test func snapshotCoversEveryJobState() throws {
        let states = JournalRecordTests.samples.compactMap { record -> JobState? in
            if case .snapshot(let job) = record { return job.state }
            return nil
        }
        #expect(Set(states) == Set(JobState.allCases))
    }

    /// A delayed job is journaled with the time its delay names from the acceptance, so a replay starts it then.
    @Test func aDelayIsJournaledAsTheTimeItNames() throws {
        var spec = JobSpec(id: "later", payload: "p", maxRetries: 0)
        spec.delayMilliseconds = 200
        var bytes: [UInt8] = []
        JobEvent.accepted(spec, sequence: 1, at: 1_000).encode(into: &bytes)
        let (decoded, _) = try JournalRecord.decode(bytes, at: 0)
        guard case .accepted(let replayed, _, let at) = decoded else {
            Issue.record("decoded \(decoded)")
            return
        }
        #expect(at == 1_000)
        #expect(replayed.runAt == 1_200)
        #expect(replayed.delayMilliseconds == nil)
    }

    @Test func streamOfAllRecordsDecodesInOrder() {
        let bytes = encoded(JournalRecordTests.samples)
        let (records, error) = decodeStream(bytes)
        #expect(error == nil)
        #expect(records == JournalRecordTests.samples)
    }

    @Test func headerHasTheMagicBodyLengthAndAChecksumOverLengthAndBody() {
        let bytes = encoded([.canceled(id: "x", at: 1)])
        #expect(Array(bytes[0..<4]) == JournalRecord.magic)
        let length = bytes[4..<8].reduce(0) { $0 << 8 | Int($1) }
        let checksum = bytes[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        #expect(length == bytes.count - JournalRecord.headerSize)
        #expect(checksum == CRC32.checksum(bytes[4..<8], bytes[12...]))
    }

    @Test func unknownFieldsAreSkippedSoLaterVersionsCanAddThem() throws {
        var bytes = encoded([.canceled(id: "x", at: 1)])
        // Append a field with a tag no version uses yet, and fix length and checksum.
        bytes += [250, 0, 0, 0, 3, 1, 2, 3]
        let length = UInt32(bytes.count - JournalRecord.headerSize)
        for index in 0..<4 { bytes[4 + index] = UInt8(truncatingIfNeeded: length >> (24 - 8 * index)) }
        let checksum = CRC32.checksum(bytes[4..<8], bytes[12...])
        for index in 0..<4 { bytes[8 + index] = UInt8(truncatingIfNeeded: checksum >> (24 - 8 * index)) }
        #expect(try JournalRecord.decode(bytes, at: 0).0 == .canceled(id: "x", at: 1))
    }

    @Test func truncationAtEveryOffsetOfTheLastRecordKeepsTheIntactPrefix() {
        let prefix: [JobEvent] = [
            .accepted(id: "a", payload: "p", maxRetries: 1, sequence: 1, at: 1),
            .started(id: "a", attempt: 1, at: 2),
            .attemptFailed(id: "a", attempt: 1, error: "e", retryAt: 3, at: 2),
        ]
        for last in [
            JobEvent.snapshot(JournalRecordTests.job("snap-ü", .done)),
            .accepted(id: "b", payload: "ünï", maxRetries: 0, sequence: 2, at: 4),
            .canceled(id: "a", at: 5),
        ] {
            let intact = encoded(prefix)
            let full = encoded(prefix + [last])
            #expect(decodeStream(full).records == prefix + [last])
            for cut in (intact.count + 1)..<full.count {
                let (records, error) = decodeStream(Array(full[..<cut]))
                #expect(records == prefix, "cut at \(cut)")
                #expect(error == .truncated, "cut at \(cut) of \(full.count)")
            }
        }
    }

    @Test func everySingleBitFlipInTheBodyFailsTheChecksum() {
        let record = JobEvent.attemptFailed(id: "job", attempt: 2, error: "é", retryAt: 77, at: 9)
        let bytes = encoded([record])
        for byte in JournalRecord.headerSize..<bytes.count {
            for bit in 0..<8 {
                var flipped = bytes
                flipped[byte] ^= UInt8(1 << bit)
                #expect(decodeError(flipped) == .checksumMismatch, "byte \(byte) bit \(bit)")
            }
        }
    }

    @Test func everySingleBitFlipInTheHeaderIsDetected() {
        let records: [JobEvent] = [
            .started(id: "j", attempt: 1, at: 3),
            .snapshot(JournalRecordTests.job("s", .queued)),
        ]
        for record in records {
            // Followed by another record, so a shorter length cannot simply run out of bytes.
            let bytes = encoded([record, .canceled(id: "j", at: 4)])
            for byte in 0..<JournalRecord.headerSize {
                for bit in 0..<8 {
                    var flipped = bytes
                    flipped[byte] ^= UInt8(1 << bit)
                    do throws(JournalRecord.DecodeError) {
                        let (decoded, _) = try JournalRecord.decode(flipped, at: 0)
                        Issue.record("byte \(byte) bit \(bit) decoded silently as \(decoded)")
                    } catch {
                        switch error {
                        case .truncated, .checksumMismatch, .malformed, .badMagic: break
                        }
                        if byte < 4 { #expect(error == .badMagic, "magic byte \(byte) bit \(bit)") }
                        if byte >= 8 { #expect(error == .checksumMismatch, "checksum byte \(byte) bit \(bit)") }
                    }
                }
            }
        }
    }

    @Test func validChecksumOverGarbageBodyIsMalformedNotACrash() {
        let bodies: [[UInt8]] = [
            [],  // no kind byte
            [0],  // unknown kind
            [99],
            [5, 1, 0, 0, 0, 9, 0x61],  // field length past the end
            [5, 1, 0, 0],  // field header past the end
            [5, 1, 0, 0, 0, 1, 0xFF, 5, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1],  // invalid UTF-8 id
            [5, 5, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1],  // missing id
            [5, 1, 0, 0, 0, 1, 0x61, 5, 0, 0, 0, 2, 0, 1],  // time of the wrong width
            [6, 1, 0, 0, 0, 0],  // snapshot missing its fields
        ]
        for body in bodies {
            var lengthBytes: [UInt8] = []
            let length = UInt32(body.count)
            lengthBytes = [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            let checksum = CRC32.checksum(lengthBytes[...], body[...])
            var bytes = JournalRecord.magic + lengthBytes
            bytes += [UInt8(checksum >> 24), UInt8(checksum >> 16 & 0xFF), UInt8(checksum >> 8 & 0xFF), UInt8(checksum & 0xFF)]
            bytes += body
            guard case .malformed = decodeError(bytes) else {
                Issue.record("body \(body) gave \(String(describing: decodeError(bytes)))")
                continue
            }
        }
    }

    @Test func snapshotWithUnknownStateIsMalformed() {
        var bytes = encoded([.snapshot(JournalRecordTests.job("s", .done))])
        // The state field: tag 12, length 1, then the state's code.
        let tagOffset = try! #require(
            (JournalRecord.headerSize..<(bytes.count - 5)).first { bytes[$0] == 12 && bytes[$0 + 1..<$0 + 5] == [0, 0, 0, 1] })
        bytes[tagOffset + 5] = 200
        let checksum = CRC32.checksum(bytes[4..<8], bytes[12...])
        for index in 0..<4 { bytes[8 + index] = UInt8(truncatingIfNeeded: checksum >> (24 - 8 * index)) }
        #expect(decodeError(bytes) == .malformed("unknown job state"))
    }

    @Test func oversizedLengthIsMalformed() {
        let length = UInt32(JournalRecord.maximumBodyLength + 1)
        let bytes: [UInt8] = JournalRecord.magic + [
            UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), 0, 0, 0,
            0,
        ]
        guard case .malformed = decodeError(bytes) else {
            Issue.record("expected malformed, got \(String(describing: decodeError(bytes)))")
            return
        }
    }

    @Test func shortHeaderIsTruncatedAndAnythingButTheMagicIsNoRecord() {
        let header = encoded([.canceled(id: "x", at: 1)]).prefix(JournalRecord.headerSize)
        for count in 0..<JournalRecord.headerSize {
            #expect(decodeError(Array(header.prefix(count))) == .truncated, "\(count) bytes")
        }
        #expect(decodeError([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) == .badMagic)
    }

    @Test func crc32MatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)[...]) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()[...]) == 0)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)[...]) == 0x414F_A339)
    }

    /// The eight-bytes-at-a-time checksum against the bit-by-bit definition, for every length up to 64 and
    /// every start within a word (the fast path loads unaligned words, then finishes byte by byte).
    @Test func crc32MatchesTheBitwiseDefinitionForAnyLengthAndOffset() {
        func bitwise(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
            }
            return crc ^ 0xFFFF_FFFF
        }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<80).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for start in 0..<8 {
            for count in 0...64 {
                let slice = bytes[start..<start + count]
                #expect(CRC32.checksum(slice) == bitwise(slice), "start \(start), count \(count)")
            }
        }
    }
}
