// libFuzzer target: the HTTP/1.x request parser (fuzz/README.md).
//
// The input is what a client sent on one connection. It is parsed as the server does: parse, drop
// `consumedBytes`, parse again (pipelining), until the rest is incomplete or an error ends the connection.
// Every parsed request's path and query are decoded as the router does. The same bytes are also parsed once
// with tiny limits, to reach the 413 and 431 paths with small inputs.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: count))
    parseConnection(bytes[...], limits: HTTPParser.Limits())
    parseConnection(bytes[...], limits: HTTPParser.Limits(maxHeaderBytes: 64, maxBodyBytes: 8))
    return 0
}

private func parseConnection(_ input: ArraySlice<UInt8>, limits: HTTPParser.Limits) {
    var rest = input
    while !rest.isEmpty {
        let result: HTTPParser.Result
        do throws(HTTPError) {
            result = try HTTPParser.parse(rest, limits: limits)
        } catch {
            precondition((400...599).contains(error.status), "parser error with status \(error.status)")
            return
        }
        switch result {
        case .complete(let request, let consumed):
            precondition(consumed > 0 && consumed <= rest.count, "consumedBytes \(consumed) of \(rest.count)")
            precondition(request.body.count <= limits.maxBodyBytes)
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

/// What the router and handlers do with a request's target and headers.
private func inspect(_ request: HTTPRequest) {
    precondition(request.path.utf8.first == UInt8(ascii: "/"))
    if let segments = request.pathSegments {
        for segment in segments {
            // Encoding a decoded segment and decoding it again gives it back.
            let encoded = HTTPRequest.percentEncode(pathSegment: segment)
            precondition(HTTPRequest.percentDecode(encoded) == segment, "percent-encoding round trip")
        }
    }
    _ = request.queryItems
    _ = request.header("host")
    _ = request.header("authorization")
}
