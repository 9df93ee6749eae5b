import Foundation

/// What the repository ships, for the tests of the release (the VERSION file, scripts/release, the Containerfile).
extension Repository {
    /// `root/relative`.
    static func path(_ relative: String) -> String { root + "/" + relative }

    /// The release version the build compiles in: the VERSION file without surrounding white space.
    static func version() throws -> String {
        let text = try String(contentsOfFile: path("VERSION"), encoding: .utf8)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
