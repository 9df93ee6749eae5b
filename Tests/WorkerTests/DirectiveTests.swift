import Testing

@testable import Worker

/// `@` payloads of the simulate handler, parsed.
@Suite struct DirectiveParsingTests {
    static let parsed: [(payload: String, directive: Directive)] = [
        ("@ok", .ok), ("@fail", .fail), ("@crash", .crash), ("@abort", .abort), ("@hang", .hang),
        ("@garbage", .garbage), ("@oom", .oom), ("@sleep 25", .sleep(milliseconds: 25)), ("@sleep 0\n", .sleep(milliseconds: 0)),
        ("@exit 3", .exit(status: 3)), ("@exit 255", .exit(status: 255)), ("@progress 4 10", .progress(steps: 4, milliseconds: 10)),
        ("@ok \t\n", .ok),
    ]

    @Test func directivesParse() throws {
        for (payload, directive) in Self.parsed {
            #expect(try Directive.parse(Array(payload.utf8)) == directive, "\(payload)")
        }
    }

    static let refused: [(payload: String, error: DirectiveError)] = [
        ("@nope", .unknown("@nope")),
        ("@sleep", .missingArgument(directive: "@sleep", expected: "milliseconds")),
        ("@sleep soon", .badArgument(directive: "@sleep", argument: "soon", expected: "milliseconds")),
        ("@exit 256", .badArgument(directive: "@exit", argument: "256", expected: "an exit status 0-255")),
        ("@ok now", .unexpectedArgument(directive: "@ok", argument: "now")),
        ("@progress 0 5", .badArgument(directive: "@progress", argument: "0", expected: "a step count 1-100")),
        ("@progress 3", .missingArgument(directive: "@progress", expected: "a step count 1-100 and milliseconds per step")),
    ]

    @Test func badDirectivesFailWithAMessage() {
        for (payload, error) in Self.refused {
            #expect(throws: error, "\(payload)") { try Directive.parse(Array(payload.utf8)) }
        }
    }

    @Test func onlyPayloadsStartingWithAtAreDirectives() {
        #expect(Directive.isDirective(Array("@ok".utf8)))
        #expect(!Directive.isDirective(Array("ok".utf8)))
        #expect(!Directive.isDirective([]))
    }
}
