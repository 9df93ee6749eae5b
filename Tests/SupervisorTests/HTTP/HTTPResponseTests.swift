import Testing

@testable import Supervisor

@Suite struct HTTPResponseTests {
    @Test func serializesJSONWithExtraHeaders() {
        var response = HTTPResponse.json(202, Array("{\"id\":\"a\"}".utf8))
        response.headers.append(("Location", "/jobs/a"))
        #expect(
            serialized(response, keepAlive: true)
                == "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 10\r\n"
                + "Location: /jobs/a\r\n\r\n{\"id\":\"a\"}")
    }

    @Test func serializesErrorWithConnectionClose() {
        let response = HTTPResponse.error(HTTPError(status: 431, message: "header block exceeds 16384 bytes"))
        #expect(
            serialized(response, keepAlive: false)
                == "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
                + "Content-Length: 45\r\nConnection: close\r\n\r\n{\"error\":\"header block exceeds 16384 bytes\"}\n")
    }

    @Test func serializesTextAndEmptyResponses() {
        #expect(
            serialized(.text(200, "up 1\n", contentType: "text/plain; version=0.0.4"), keepAlive: true)
                == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 5\r\n\r\nup 1\n")
        #expect(serialized(HTTPResponse(status: 204), keepAlive: true) == "HTTP/1.1 204 No Content\r\n\r\n")
        #expect(
            serialized(HTTPResponse(status: 405, headers: [("Allow", "GET, DELETE")]), keepAlive: true)
                == "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nAllow: GET, DELETE\r\n\r\n")
    }

    @Test func appendsToWhatIsAlreadyBuffered() {
        var buffer = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)
        HTTPResponse(status: 200).serialize(into: &buffer, keepAlive: true)
        #expect(
            String(decoding: buffer, as: UTF8.self)
                == String(repeating: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", count: 2))
    }

    @Test func errorBodyIsJSONWithTheMessageEscaped() {
        let response = HTTPResponse.error(400, "bad \"id\": back\\slash\nnew line\u{01} é")
        #expect(response.status == 400)
        #expect(response.contentType == "application/json")
        #expect(
            String(decoding: response.body, as: UTF8.self)
                == "{\"error\":\"bad \\\"id\\\": back\\\\slash\\nnew line\\u0001 é\"}\n")
    }

    @Test func headerValuesCannotSplitTheResponse() {
        let response = HTTPResponse(status: 200, headers: [("X-Id", "a\r\nSet-Cookie: b")])
        #expect(
            serialized(response, keepAlive: true)
                == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Id: a  Set-Cookie: b\r\n\r\n")
    }

    @Test func everyStatusTheServerSendsHasAReasonPhrase() {
        let statuses = [
            100, 200, 201, 202, 204, 400, 401, 404, 405, 408, 409, 411, 413, 414, 429, 431, 500, 501, 503, 505,
        ]
        for status in statuses {
            #expect(!HTTPResponse.reasonPhrase(status).isEmpty, "\(status)")
        }
        #expect(HTTPResponse.reasonPhrase(404) == "Not Found")
        #expect(HTTPResponse.reasonPhrase(599) == "")
    }

    @Test func continueHeadIsTheInterimResponse() {
        #expect(HTTPResponse.continueHead.description == "HTTP/1.1 100 Continue\r\n\r\n")
    }

    private func serialized(_ response: HTTPResponse, keepAlive: Bool) -> String {
        var buffer: [UInt8] = []
        response.serialize(into: &buffer, keepAlive: keepAlive)
        return String(decoding: buffer, as: UTF8.self)
    }
}
