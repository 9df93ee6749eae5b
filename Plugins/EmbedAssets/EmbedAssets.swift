import Foundation
import PackagePlugin

/// Compiles the files under the package's `dashboard/` directory into a target as `EmbeddedAssets.files`
/// (path relative to `dashboard/` -> content type and bytes), so the binary serves the web dashboard with
/// nothing to install beside it.
///
/// Inputs: every file under `dashboard/` except hidden ones. A missing directory gives an empty table.
@main
struct EmbedAssets: BuildToolPlugin {
    /// The directory embedded, relative to the package root.
    static let directoryName = "dashboard"

    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let root = context.package.directoryURL.appending(path: Self.directoryName)
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedAssets.swift")
        let files = Self.files(under: root)
        // The files are on the command line: adding or removing one changes the command, so it runs again.
        let arguments =
            ["assets", "--root", root.path(percentEncoded: false), "--output", output.path(percentEncoded: false)]
            + files.map { $0.path(percentEncoded: false) }
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) files of \(Self.directoryName)/ in \(target.name)",
                executable: try context.tool(named: "EmbedBuildInfoTool").url,
                arguments: arguments, inputFiles: files, outputFiles: [output])
        ]
    }

    /// The regular files under `root`, hidden ones (and hidden directories) skipped, in path order.
    static func files(under root: URL) -> [URL] {
        guard
            let enumerator = FileManager.default.enumerator(
                at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
        else { return [] }
        var files: [URL] = []
        for case let url as URL in enumerator
        where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            files.append(url.standardizedFileURL)
        }
        return files.sorted { $0.path(percentEncoded: false) < $1.path(percentEncoded: false) }
    }
}
