/// Why the tool could not generate its file; the message names what was wrong and becomes the build error.
struct ToolError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
