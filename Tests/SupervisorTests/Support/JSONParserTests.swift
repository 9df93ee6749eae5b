import Testing

@testable import Supervisor

@Suite struct JSONParserTests {
    private func parse(_ text: String) throws(JSONError) -> JSONValue {
        try JSONParser.parse(Array(text.utf8))
    }

    static let validDocuments: [(text: String, value: JSONValue)] = [
        ("null", .null),
        ("true", .bool(true)),
        (" \t\r\nfalse \n", .bool(false)),
        ("0", .integer(0)),
        ("-0", .integer(0)),
        ("42", .integer(42)),
        ("-17", .integer(-17)),
        ("9223372036854775807", .integer(Int.max)),
        ("-9223372036854775808", .integer(Int.min)),
        ("9223372036854775808", .double(9_223_372_036_854_775_808)),
        ("1.5", .double(1.5)),
        ("-0.25", .double(-0.25)),
        ("1e3", .double(1000)),
        ("1E+2", .double(100)),
        ("2.5e-3", .double(0.0025)),
        ("\"\"", .string("")),
        ("\"plain ascii\"", .string("plain ascii")),
        ("\"h\u{e9}llo \u{1F600}\"", .string("h\u{e9}llo \u{1F600}")),
        (#""\"\\\/\b\f\n\r\t""#, .string("\"\\/\u{8}\u{c}\n\r\t")),
        (#""\u0041\u00e9\u20AC""#, .string("A\u{e9}\u{20ac}")),
        (#""\ud83d\ude00 smile""#, .string("\u{1F600} smile")),
        (#""nul\u0000byte""#, .string("nul\u{0}byte")),
        ("[]", .array([])),
        ("[ 1 , \"a\" , [ ] , { } ]", .array([.integer(1), .string("a"), .array([]), .object([:])])),
        ("{}", .object([:])),
        (
            #"{"a": {"b": [true, null]}, "c": -1.5}"#,
            .object(["a": .object(["b": .array([.bool(true), .null])]), "c": .double(-1.5)])
        ),
    ]

    @Test(arguments: validDocuments)
    func parsesValidDocument(text: String, value: JSONValue) throws {
        #expect(try parse(text) == value)
    }

    static let malformedDocuments: [(text: String, message: String, offset: Int)] = [
        ("", "unexpected end of input", 0),
        ("   ", "unexpected end of input", 3),
        ("nul", "invalid literal", 0),
        ("True", "expected a value", 0),
        ("nulll", "trailing characters after the JSON value", 4),
        ("1 2", "trailing characters after the JSON value", 2),
        ("{} x", "trailing characters after the JSON value", 3),
        ("'a'", "expected a value", 0),
        ("[1,]", "expected a value", 3),
        ("[1 2]", "expected ',' or ']' after array element", 3),
        ("[1", "unexpected end of input", 2),
        ("[", "unexpected end of input", 1),
        ("{", "unexpected end of input", 1),
        ("{1:2}", "expected string key or '}'", 1),
        (#"{"a":1,}"#, "expected string key", 7),
        (#"{"a" 1}"#, "expected ':' after object key", 5),
        (#"{"a":1 "b":2}"#, "expected ',' or '}' after object member", 7),
        (#"{"a":}"#, "expected a value", 5),
        (#"{"a":1,"a":2}"#, "duplicate object key \"a\"", 7),
        ("01", "leading zeros are not allowed", 0),
        ("-", "unexpected end of input", 1),
        ("1.", "unexpected end of input", 2),
        ("1e+", "unexpected end of input", 3),
        ("-x", "expected digit after '-'", 1),
        ("[-]", "expected digit after '-'", 2),
        ("+1", "expected a value", 0),
        (".5", "expected a value", 0),
        ("[1.]", "expected digit after decimal point", 3),
        ("1.e3", "expected digit after decimal point", 2),
        ("[1e]", "expected digit in exponent", 3),
        ("[1E-x]", "expected digit in exponent", 4),
        ("1e400", "number out of range", 0),
        ("NaN", "expected a value", 0),
        ("\"abc", "unterminated string", 4),
        ("\"a\nb\"", "unescaped control character 0x0A in string", 2),
        ("\"\u{1}\"", "unescaped control character 0x01 in string", 1),
        (#""\x""#, "invalid escape '\\x'", 1),
        (#""\u12""#, "expected 4 hex digits after \\u", 5),
        (#""\u12G4""#, "expected 4 hex digits after \\u", 5),
        (#""\ud83d""#, "unpaired surrogate in \\u escape", 1),
        (#""\ud83dx""#, "unpaired surrogate in \\u escape", 1),
        (#""\ud83d\u0041""#, "unpaired surrogate in \\u escape", 1),
        (#""\ude00""#, "unpaired surrogate in \\u escape", 1),
        ("\"\\", "unterminated string", 2),
    ]

    @Test(arguments: malformedDocuments)
    func rejectsMalformedDocument(text: String, message: String, offset: Int) {
        #expect(throws: JSONError(message: message, offset: offset)) { try parse(text) }
    }

    static let invalidUTF8: [(bytes: [UInt8], offset: Int)] = [
        ([0x22, 0xFF, 0x22], 1),  // never valid
        ([0x22, 0x61, 0x80, 0x22], 2),  // lone continuation byte
        ([0x22, 0xC0, 0xAF, 0x22], 1),  // overlong '/'
        ([0x22, 0xE0, 0x80, 0xAF, 0x22], 1),  // overlong three-byte form
        ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),  // UTF-16 surrogate encoded in UTF-8
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1),  // above U+10FFFF
        ([0x22, 0xE2, 0x82, 0x22], 1),  // truncated sequence
        ([0x22, 0xF0, 0x9F, 0x98], 1),  // truncated at end of input
    ]

    @Test(arguments: invalidUTF8)
    func rejectsInvalidUTF8(bytes: [UInt8], offset: Int) {
        #expect(throws: JSONError(message: "invalid UTF-8 in string", offset: offset)) {
            try JSONParser.parse(bytes)
        }
    }

    @Test func acceptsNestingUpToTheLimit() throws {
        let depth = JSONParser.maximumDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try parse(text)
        for _ in 1..<depth {
            guard case .array(let elements) = value, elements.count == 1 else {
                Issue.record("expected nested arrays")
                return
            }
            value = elements[0]
        }
        #expect(value == .array([]))
    }

    @Test func rejectsNestingBeyondTheLimit() {
        let depth = JSONParser.maximumDepth + 1
        let text = String(repeating: "{\"a\":[", count: depth / 2 + 1)
        let expected = JSONError(message: "nesting deeper than 64 levels", offset: 32 * 6)
        #expect(throws: expected) { try parse(text) }
        let arrays = String(repeating: "[", count: 10_000)
        #expect(throws: JSONError(message: "nesting deeper than 64 levels", offset: 64)) { try parse(arrays) }
    }

    @Test func parsesSlicesAndRawBuffersWithOffsetsFromTheirStart() throws {
        let bytes = Array("xx[1,]".utf8)
        #expect(throws: JSONError(message: "expected a value", offset: 3)) { try JSONParser.parse(bytes[2...]) }
        let value = try Array("{\"k\":\"v\"}".utf8).withUnsafeBytes { raw in try JSONParser.parse(raw) }
        #expect(value == .object(["k": .string("v")]))
    }

    @Test func describesErrorWithByteOffset() {
        let error = JSONError(message: "expected ':' after object key", offset: 12)
        #expect(error.description == "invalid JSON at byte 12: expected ':' after object key")
    }

    @Test func serializesCompactlyWithSortedKeys() {
        let value = JSONValue.object([
            "b": .array([.integer(1), .double(2.5), .null]),
            "a": .string("q\"\\\n\u{1}"),
            "c": .object([:]),
            "d": .bool(false),
        ])
        #expect(value.serialized() == #"{"a":"q\"\\\n\u0001","b":[1,2.5,null],"c":{},"d":false}"#)
    }

    @Test func serializesPrettyWithTwoSpaceIndent() {
        let value = JSONValue.object(["list": .array([.integer(1), .array([])]), "name": .string("x")])
        let expected = """
            {
              "list": [
                1,
                []
              ],
              "name": "x"
            }
            """
        #expect(value.serialized(pretty: true) == expected)
    }

    @Test func serializesDoublesInShortestRoundTripForm() throws {
        for number in [0.1, 1.0, -2.5e-7, 1e300, 123_456.789, Double.leastNonzeroMagnitude] {
            let text = JSONValue.double(number).serialized()
            #expect(try parse(text) == .double(number), "\(text)")
        }
        #expect(JSONValue.double(.infinity).serialized() == "null")
    }

    @Test(arguments: [false, true])
    func roundTripsThroughSerialization(pretty: Bool) throws {
        for (text, value) in Self.validDocuments {
            #expect(try parse(value.serialized(pretty: pretty)) == value, "\(text)")
        }
    }
}
