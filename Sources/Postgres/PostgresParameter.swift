/// One parameter of a query (`$1`, `$2`, ...). Text parameters are sent in PostgreSQL's text format and the
/// server converts them to the parameter's type (`'42'` for an int, `'{a,b}'` for a text[]); byte parameters are
/// sent in binary format, untouched, so a bytea needs no hex or escape encoding.
public enum PostgresParameter: Equatable, Sendable {
    /// SQL NULL.
    case null
    /// A value in text format. It must not contain a NUL byte (PostgreSQL text cannot hold one).
    case text(String)
    /// Raw bytes in binary format, typed as bytea when the statement leaves the type open. Only for bytea
    /// parameters: other types have binary formats of their own that these bytes would have to follow.
    case bytes([UInt8])

    /// A text parameter from an integer.
    public static func int(_ value: some BinaryInteger) -> PostgresParameter { .text(String(value)) }

    /// A text parameter from a boolean ('t' or 'f').
    public static func bool(_ value: Bool) -> PostgresParameter { .text(value ? "t" : "f") }

    /// A text parameter, or NULL when `value` is nil.
    public static func optional(_ value: String?) -> PostgresParameter { value.map { .text($0) } ?? .null }
}

/// Type OIDs of the types Prefork's statements name when preparing them (pg_type.oid; fixed for built-in types).
public enum PostgresType {
    /// bool.
    public static let bool: UInt32 = 16
    /// bytea.
    public static let bytea: UInt32 = 17
    /// int8 (bigint).
    public static let int8: UInt32 = 20
    /// int2 (smallint).
    public static let int2: UInt32 = 21
    /// int4 (int).
    public static let int4: UInt32 = 23
    /// text.
    public static let text: UInt32 = 25
    /// jsonb.
    public static let jsonb: UInt32 = 3802
}

/// PostgreSQL array literals in text format, for passing a whole batch as one parameter (`$1::text[]`, then
/// `unnest`): one statement and one round trip for N rows instead of N statements.
public enum PostgresArray {
    /// `{"a","b",NULL}`: every element quoted, with `"` and `\` escaped, nil as NULL. Works for any element type
    /// whose text form the server parses (text, int, bigint, bool, jsonb).
    public static func literal(_ elements: [String?]) -> String {
        var out = "{"
        out.reserveCapacity(elements.count * 8 + 2)
        for (index, element) in elements.enumerated() {
            if index > 0 { out += "," }
            guard let element else {
                out += "NULL"
                continue
            }
            out += "\""
            for character in element.unicodeScalars {
                if character == "\"" || character == "\\" { out += "\\" }
                out.unicodeScalars.append(character)
            }
            out += "\""
        }
        out += "}"
        return out
    }

    /// A literal of integers: `{1,2,3}`.
    public static func literal(_ elements: [some BinaryInteger]) -> String {
        "{" + elements.map { String($0) }.joined(separator: ",") + "}"
    }

    /// A bytea[] literal: each element in bytea's hex text form (`\x0102`), nil as NULL. Twice the bytes on the
    /// wire; a binary array parameter would avoid that at the cost of encoding PostgreSQL's array format.
    public static func byteaLiteral(_ elements: [[UInt8]?]) -> String {
        literal(elements.map { $0.map(hexText) })
    }

    /// bytea's text output form: `\x` then two lowercase hex digits per byte.
    static func hexText(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(2 + bytes.count * 2)
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "x"))
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
