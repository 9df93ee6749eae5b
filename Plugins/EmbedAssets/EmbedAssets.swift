import Foundation
import PackagePlugin

/// Compiles the files under the package's `dashboard/` directory into a target as `EmbeddedAssets.files`
/// (path relative to `dashboard/` -> content type and bytes), so the binary serves the web dashboard with
/// nothing to install beside it.
///
/// Inputs: every file under `dashboard/` except hidden ones (see `AssetDirectory`); a missing directory gives
/// an empty table. SwiftPM asks the plugin for its commands only when it plans the build (the package's
/// structure changed), so the tool lists the directory itself whenever the command runs: a file added later is
/// embedded at the next build after any embedded file changes, or after `touch Package.swift`.
@main
struct EmbedAssets: BuildToolPlugin {
    /// The directory embedded, relative to the package root.
    static let directoryName = "dashboard"

    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let root = context.package.directoryURL.appending(path: Self.directoryName)
        let rootPath = root.path(percentEncoded: false)
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedAssets.swift")
        let files = AssetDirectory.files(under: rootPath).map { root.appending(path: $0) }
        var arguments = ["assets", "--root", rootPath, "--output", output.path(percentEncoded: false)]
        // Named on the command line too: a different set of files changes the command, so it runs again.
        for file in files { arguments += ["--watch", file.path(percentEncoded: false)] }
        return [
            .buildCommand(
                displayName: "Embedding the files of \(Self.directoryName) in \(target.name)",
                executable: try context.tool(named: "EmbedBuildInfoTool").url,
                arguments: arguments, inputFiles: files, outputFiles: [output])
        ]
    }
}
