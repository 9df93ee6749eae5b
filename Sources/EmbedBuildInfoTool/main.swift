import Glibc

// EmbedBuildInfoTool: the generator behind the EmbedBuildInfo and EmbedAssets build tool plugins. It runs at
// build time only and writes one Swift source file:
//
//   EmbedBuildInfoTool build-info --package-dir DIR --version-file FILE --output FILE [--watch FILE]...
//       GeneratedBuildInfo.version (VERSION's content) and .commit (HEAD of the checkout holding DIR, or
//       "unknown"). The --watch files are the ones the plugin declared as inputs; they are on the command line
//       only so that a change in that set changes the command and makes the build run it again.
//   EmbedBuildInfoTool assets --root DIR --output FILE [--watch FILE]...
//       EmbeddedAssets.files: every file under DIR (hidden ones skipped) keyed by its path relative to DIR.

do throws(ToolError) {
    try EmbedCommand.parse(Array(CommandLine.arguments.dropFirst())).run()
} catch {
    let message = Array("EmbedBuildInfoTool: error: \(error)\n".utf8)
    _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}
