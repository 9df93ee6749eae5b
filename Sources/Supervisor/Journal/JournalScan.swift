/// What a journal file holds, read without changing it: the format, every intact event, the damaged spans that
/// were skipped, and an incomplete last record. Used to open the journal and by `prefork journal check`.
struct JournalScan: Equatable {
    /// Which format the file is in.
    enum Format: String, Equatable {
        /// No bytes at all: a new journal.
        case empty
        /// The current format (`JournalFile.header`, then `JournalRecord`s).
        case current
        /// The first format (`LegacyJournalRecord`s from byte 0), rewritten in the current one at start.
        case legacy
    }

    /// A span of bytes that holds no intact record, between two that do (or at the end).
    struct Damage: Equatable {
        /// Where it starts.
        var offset: Int
        /// How long it is.
        var length: Int
        /// Why the record there did not read.
        var reason: String
        /// The job of the last intact record before it, and of the first after it: the damaged records were
        /// most likely about jobs accepted around them.
        var jobBefore: String?
        var jobAfter: String?
    }

    /// Why a file cannot be read as a journal at all. It is never emptied or rewritten: the supervisor refuses
    /// to start.
    struct Unreadable: Error, Equatable, CustomStringConvertible {
        /// What was found instead.
        var reason: String
        /// One line for the user.
        var description: String { reason }
    }

    /// The file's format.
    var format: Format
    /// Every intact event, in order.
    var events: [JobEvent]
    /// Damaged spans skipped (their records are lost; every intact record after them is kept).
    var damage: [Damage]
    /// An incomplete final record: a write the crash interrupted, cut off at open.
    var tornTail: Damage?
    /// Where the intact bytes end (the file is cut here when only a torn tail follows).
    var intactEnd: Int

    /// Reads `bytes` as a journal. Throws when the file does not start like a journal of either format.
    static func read(_ bytes: [UInt8]) throws(Unreadable) -> JournalScan {
        if bytes.isEmpty { return JournalScan(format: .empty, events: [], damage: [], tornTail: nil, intactEnd: 0) }
        if bytes.count >= JournalFile.header.count && Array(bytes[0..<8]) == Array(JournalFile.header[0..<8]) {
            guard Array(bytes[0..<JournalFile.header.count]) == JournalFile.header else {
                throw Unreadable(
                    reason: "the journal header is damaged or from an unknown version (bytes "
                        + hex(bytes.prefix(JournalFile.header.count)) + ")")
            }
            return readCurrent(bytes)
        }
        if bytes.count < JournalFile.header.count && JournalFile.header.starts(with: bytes) {
            // A crash while the header itself was being written: nothing else can be in the file.
            return JournalScan(
                format: .current, events: [], damage: [],
                tornTail: Damage(offset: 0, length: bytes.count, reason: "incomplete journal header"), intactEnd: 0)
        }
        guard (try? LegacyJournalRecord.decode(bytes, at: 0)) != nil else {
            throw Unreadable(
                reason: "not a Prefork journal: no journal header, and the first bytes are no record of the first "
                    + "format either (bytes \(hex(bytes.prefix(16))))")
        }
        return readLegacy(bytes)
    }

    private static func readCurrent(_ bytes: [UInt8]) -> JournalScan {
        var scan = JournalScan(format: .current, events: [], damage: [], tornTail: nil, intactEnd: bytes.count)
        var offset = JournalFile.header.count
        while offset < bytes.count {
            do throws(JournalRecord.DecodeError) {
                let (event, next) = try JournalRecord.decode(bytes, at: offset)
                scan.events.append(event)
                offset = next
            } catch {
                let before = scan.events.last?.jobID
                guard let resume = nextRecord(in: bytes, after: offset) else {
                    let span = Damage(
                        offset: offset, length: bytes.count - offset, reason: error.description, jobBefore: before)
                    // Only an incomplete last record is a torn write; a complete one that fails its checksum
                    // is damage like any other.
                    if error == .truncated || bytes.count - offset < JournalRecord.headerSize {
                        scan.tornTail = span
                        scan.intactEnd = offset
                    } else {
                        scan.damage.append(span)
                    }
                    return scan
                }
                let after = (try? JournalRecord.decode(bytes, at: resume))?.0.jobID
                scan.damage.append(
                    Damage(
                        offset: offset, length: resume - offset, reason: error.description, jobBefore: before,
                        jobAfter: after))
                offset = resume
            }
        }
        return scan
    }

    /// The offset of the next intact record after `offset`, if any: the record magic, then a record that reads.
    private static func nextRecord(in bytes: [UInt8], after offset: Int) -> Int? {
        let magic = JournalRecord.magic
        var probe = offset + 1
        while probe + magic.count <= bytes.count {
            if bytes[probe] == magic[0] && bytes[probe + 1] == magic[1] && bytes[probe + 2] == magic[2]
                && bytes[probe + 3] == magic[3] && (try? JournalRecord.decode(bytes, at: probe)) != nil
            {
                return probe
            }
            probe += 1
        }
        return nil
    }

    /// The first format has no record markers: a damaged record ends what can be read.
    private static func readLegacy(_ bytes: [UInt8]) -> JournalScan {
        var scan = JournalScan(format: .legacy, events: [], damage: [], tornTail: nil, intactEnd: bytes.count)
        var offset = 0
        while offset < bytes.count {
            do throws(LegacyJournalRecord.DecodeError) {
                let (event, next) = try LegacyJournalRecord.decode(bytes, at: offset)
                scan.events.append(event)
                offset = next
            } catch {
                let span = Damage(
                    offset: offset, length: bytes.count - offset, reason: "\(error)", jobBefore: scan.events.last?.jobID)
                if error == .truncated { scan.tornTail = span } else { scan.damage.append(span) }
                scan.intactEnd = offset
                return scan
            }
        }
        return scan
    }

    /// Whether anything other than a torn tail was found (the file is then kept aside before it is rewritten).
    var isDamaged: Bool { !damage.isEmpty }
}

private func hex(_ bytes: ArraySlice<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    return bytes.map { String([digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]]) }.joined(separator: " ")
}
