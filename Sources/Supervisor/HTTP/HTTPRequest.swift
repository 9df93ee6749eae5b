/// The protocol versions the server speaks.
enum HTTPVersion: Equatable, Sendable {
    /// HTTP/1.0: connections close after each response unless `Connection: keep-alive`.
    case http10
    /// HTTP/1.1: persistent connections by default; `Host` is required.
    case http11
}

/// One parsed request, as produced by `HTTPParser`.
struct HTTPRequest {
    /// The method token, exactly as sent (methods are case-sensitive).
    var method: String
    /// The raw request target before `?`, still percent-encoded; always starts with "/".
    var path: String
    /// The raw request target after the first `?`, still encoded; nil when there was no `?`.
    var query: String?
    /// The protocol version of the request line.
    var version: HTTPVersion
    /// Header fields in arrival order; names are lowercased, values trimmed of spaces and tabs.
    var headers: [(name: String, value: String)]
    /// The body: exactly Content-Length bytes, empty without Content-Length.
    var body: [UInt8]
    /// Whether the connection stays open after the response.
    var keepAlive: Bool

    /// The value of the first header named `lowercaseName`, or nil.
    func header(_ lowercaseName: String) -> String? {
        for header in headers where header.name == lowercaseName {
            return header.value
        }
        return nil
    }

    /// The path split on "/" after its leading "/", each segment percent-decoded; "/" gives [], "/a/" gives ["a", ""].
    ///
    /// Segments are decoded after splitting, so "%2F" stays inside its segment. Nil when a segment has a bad
    /// percent-escape or decodes to invalid UTF-8.
    var pathSegments: [String]? {
        var rest = path.utf8.dropFirst()
        if rest.isEmpty { return [] }
        var segments: [String] = []
        while true {
            let end = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
            guard let segment = Self.percentDecode(Substring(rest[..<end])) else { return nil }
            segments.append(segment)
            if end == rest.endIndex { return segments }
            rest = rest[rest.index(after: end)...]
        }
    }

    /// The query as application/x-www-form-urlencoded pairs: "+" is a space, then percent-decoded.
    ///
    /// Empty items ("a=1&&b=2") are skipped, an item without "=" has value "". [] without a query; nil on a bad escape.
    var queryItems: [(name: String, value: String)]? {
        guard let query else { return [] }
        var items: [(name: String, value: String)] = []
        for item in query.utf8.split(separator: UInt8(ascii: "&")) {
            let equals = item.firstIndex(of: UInt8(ascii: "="))
            let rawName = Substring(item[..<(equals ?? item.endIndex)])
            let rawValue = equals.map { Substring(item[item.index(after: $0)...]) } ?? ""
            guard let name = Self.percentDecode(rawName, plusAsSpace: true),
                let value = Self.percentDecode(rawValue, plusAsSpace: true)
            else { return nil }
            items.append((name: name, value: value))
        }
        return items
    }

    /// Decodes `%XX` escapes (and "+" as space when `plusAsSpace`); nil on a bad escape or invalid UTF-8.
    static func percentDecode(_ text: some StringProtocol, plusAsSpace: Bool = false) -> String? {
        let utf8 = text.utf8
        let needsWork = utf8.contains { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }
        guard needsWork else { return String(text) }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                decoded.append(high << 4 | low)
            case UInt8(ascii: "+") where plusAsSpace:
                decoded.append(UInt8(ascii: " "))
            default:
                decoded.append(byte)
            }
        }
        return String(validating: decoded, as: UTF8.self)
    }

    /// Encodes `segment` for use as one path segment (e.g. in `Location: /jobs/{id}`): all but unreserved bytes
    /// become `%XX`.
    static func percentEncode(pathSegment segment: String) -> String {
        var segment = segment
        // Over the contiguous bytes: every accepted job's Location header is checked here.
        guard !segment.withUTF8({ $0.allSatisfy(isUnreserved) }) else { return segment }
        let digits: StaticString = "0123456789ABCDEF"
        var encoded: [UInt8] = []
        encoded.reserveCapacity(segment.utf8.count * 3)
        for byte in segment.utf8 {
            if isUnreserved(byte) {
                encoded.append(byte)
            } else {
                encoded.append(UInt8(ascii: "%"))
                encoded.append(digits.utf8Start[Int(byte >> 4)])
                encoded.append(digits.utf8Start[Int(byte & 0x0f)])
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
