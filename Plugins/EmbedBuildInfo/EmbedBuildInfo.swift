import Foundation
import PackagePlugin

/// Compiles the release version and the git commit into a target as `GeneratedBuildInfo.version` and
/// `GeneratedBuildInfo.commit` (see `BuildInfo` in the supervisor and `PreforkVersion` in the worker SDK).
///
/// Inputs: the package's `VERSION` file and the git files that name the commit (`HEAD`, the loose file of the
/// branch it points at, `packed-refs`; in a linked worktree the worktree's `HEAD` and the shared refs), so
/// editing VERSION, committing or switching branches regenerates the file and nothing else does. Without a git
/// checkout (a source tarball) the commit is "unknown".
@main
struct EmbedBuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let packageDirectory = context.package.directoryURL.path(percentEncoded: false)
        let versionFile = context.package.directoryURL.appending(path: "VERSION")
        let output = context.pluginWorkDirectoryURL.appending(path: "GeneratedBuildInfo.swift")
        let read: GitCheckout.ReadFile = { path in try? String(contentsOfFile: path, encoding: .utf8) }
        let watched = GitCheckout.locate(from: packageDirectory, read: read)?.watchedFiles(read: read) ?? []
        var arguments = [
            "build-info", "--package-dir", packageDirectory, "--version-file", versionFile.path(percentEncoded: false),
            "--output", output.path(percentEncoded: false),
        ]
        // Named on the command line too: a different set of files (a branch packed, a new worktree) changes the
        // command, which makes the build run it again.
        for file in watched { arguments += ["--watch", file] }
        return [
            .buildCommand(
                displayName: "Embedding the version and commit in \(target.name)",
                executable: try context.tool(named: "EmbedBuildInfoTool").url,
                arguments: arguments,
                inputFiles: [versionFile] + watched.map { URL(fileURLWithPath: $0) },
                outputFiles: [output])
        ]
    }
}
