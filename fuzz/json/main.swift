// libFuzzer target: the JSON parser and serializer (fuzz/README.md).
//
// Whatever parses is serialized (compact and pretty) and parsed again: the result must equal the first value.
// A mismatch, or serialized text that does not parse, is a bug and traps.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: count))
    let value: JSONValue
    do throws(JSONError) {
        value = try JSONParser.parse(bytes)
    } catch {
        precondition(error.offset >= 0 && error.offset <= bytes.count, "error offset \(error.offset)")
        return 0
    }
    for pretty in [false, true] {
        let text = value.serialized(pretty: pretty)
        let again: JSONValue
        do throws(JSONError) {
            again = try JSONParser.parse(Array(text.utf8))
        } catch {
            fatalError("serialized JSON does not parse (\(error)): \(text)")
        }
        precondition(again == value, "round trip changed the value: \(text)")
    }
    return 0
}
