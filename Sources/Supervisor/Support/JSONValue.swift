/// A parsed JSON document: the tree `JSONParser` produces and `serialized(pretty:)` prints.
enum JSONValue: Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number written without fraction or exponent that fits in `Int`.
    case integer(Int)
    /// Any other number (always finite).
    case double(Double)
    /// A string, already unescaped.
    case string(String)
    /// An array, in document order.
    case array([JSONValue])
    /// An object; keys are unique (the parser rejects duplicates).
    case object([String: JSONValue])
}

extension JSONValue {
    /// The value as JSON text; object keys are sorted so output is stable. `pretty` indents by two spaces.
    func serialized(pretty: Bool = false) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(64)
        append(to: &output, pretty: pretty, indent: 0)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends the JSON text of the value to `output`; `indent` is the current nesting level when `pretty`.
    func append(to output: inout [UInt8], pretty: Bool = false, indent: Int = 0) {
        switch self {
        case .null:
            output.appendASCII("null")
        case .bool(let value):
            if value { output.appendASCII("true") } else { output.appendASCII("false") }
        case .integer(let value):
            output.appendDecimal(value)
        case .double(let value):
            // JSON has no NaN or infinity; print them as null like JavaScript's JSON.stringify does.
            if value.isFinite {
                output.append(contentsOf: value.description.utf8)
            } else {
                output.appendASCII("null")
            }
        case .string(let value):
            output.appendJSONString(value)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                Self.appendNewline(to: &output, pretty: pretty, indent: indent + 1)
                element.append(to: &output, pretty: pretty, indent: indent + 1)
            }
            if !elements.isEmpty { Self.appendNewline(to: &output, pretty: pretty, indent: indent) }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (position, key) in members.keys.sorted().enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                Self.appendNewline(to: &output, pretty: pretty, indent: indent + 1)
                output.appendJSONString(key)
                output.append(UInt8(ascii: ":"))
                if pretty { output.append(UInt8(ascii: " ")) }
                members[key]!.append(to: &output, pretty: pretty, indent: indent + 1)
            }
            if !members.isEmpty { Self.appendNewline(to: &output, pretty: pretty, indent: indent) }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static func appendNewline(to output: inout [UInt8], pretty: Bool, indent: Int) {
        guard pretty else { return }
        output.append(UInt8(ascii: "\n"))
        output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
    }
}

extension JSONValue {
    /// The members when the value is an object, else nil.
    var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The string when the value is a string, else nil.
    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The integer when the value is an integer, else nil (a double with an integral value is not converted).
    var integerValue: Int? {
        if case .integer(let number) = self { return number }
        return nil
    }

    /// The number when the value is an integer or a double, else nil.
    var doubleValue: Double? {
        switch self {
        case .integer(let number): return Double(number)
        case .double(let number): return number
        default: return nil
        }
    }

    /// The boolean when the value is `true` or `false`, else nil.
    var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    /// Member `key` when the value is an object, else nil (so `body["id"]` reads naturally).
    subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}
