import Foundation

/// Where the `prefork` and `prefork-worker` executables under test live.
enum Binaries {
    /// `$PREFORK_BIN_DIR` if set, else the directory of the running test binary (`.build/debug/`).
    static let directory: String = {
        if let directory = ProcessInfo.processInfo.environment["PREFORK_BIN_DIR"], !directory.isEmpty {
            return directory
        }
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return (executable as NSString).deletingLastPathComponent
    }()

    /// The supervisor executable.
    static var supervisor: String { directory + "/prefork" }

    /// The worker executable.
    static var worker: String { directory + "/prefork-worker" }

    /// A prefix for echoed child output when `PREFORK_TEST_LOGS` is set, else nil.
    static var echoPrefix: String? {
        ProcessInfo.processInfo.environment["PREFORK_TEST_LOGS"].map { _ in "[it]" }
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let path: String

    /// Creates `/tmp/prefork-it-UUID/`.
    init() throws {
        path =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("prefork-it-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `object` as JSON to `name` in this directory and returns its path.
    func writeJSON(_ object: [String: Any], to name: String) throws -> String {
        let file = path + "/" + name
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: file))
        return file
    }

    /// Deletes the directory and everything in it.
    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// `base` with `overrides` merged in; nested objects merge key by key, anything else replaces.
func deepMerge(_ base: [String: Any], _ overrides: [String: Any]) -> [String: Any] {
    var result = base
    for (key, value) in overrides {
        if let nested = value as? [String: Any], let existing = result[key] as? [String: Any] {
            result[key] = deepMerge(existing, nested)
        } else {
            result[key] = value
        }
    }
    return result
}
