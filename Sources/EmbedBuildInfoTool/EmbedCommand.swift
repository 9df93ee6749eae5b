/// The tool's command line, parsed; `run()` generates the file.
enum EmbedCommand: Equatable {
    case buildInfo(packageDirectory: String, versionFile: String, output: String)
    case assets(root: String, output: String)

    static let usage = """
        usage: EmbedBuildInfoTool build-info --package-dir DIR --version-file FILE --output FILE [--watch FILE]...
               EmbedBuildInfoTool assets --root DIR --output FILE [--watch FILE]...
        """

    /// Parses the arguments after the program name.
    static func parse(_ arguments: [String]) throws(ToolError) -> EmbedCommand {
        guard let mode = arguments.first else { throw ToolError("no command given\n\(usage)") }
        var options: [String: String] = [:]
        var index = 1
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else { throw ToolError("unexpected argument \"\(argument)\"\n\(usage)") }
            guard index < arguments.count else { throw ToolError("\(argument) needs a value\n\(usage)") }
            if argument != "--watch" { options[argument] = arguments[index] }
            index += 1
        }
        func required(_ name: String) throws(ToolError) -> String {
            guard let value = options[name] else { throw ToolError("\(mode) needs \(name)\n\(usage)") }
            return value
        }
        switch mode {
        case "build-info":
            return .buildInfo(
                packageDirectory: try required("--package-dir"), versionFile: try required("--version-file"),
                output: try required("--output"))
        case "assets":
            return .assets(root: try required("--root"), output: try required("--output"))
        default:
            throw ToolError("unknown command \"\(mode)\"\n\(usage)")
        }
    }

    /// Generates and writes the output file.
    func run() throws(ToolError) {
        switch self {
        case .buildInfo(let packageDirectory, let versionFile, let output):
            guard let versionText = FileSystem.readText(versionFile) else {
                throw ToolError("cannot read the version file \(versionFile)")
            }
            let checkout = GitCheckout.locate(from: packageDirectory, read: FileSystem.readText)
            let commit = checkout?.headCommit(read: FileSystem.readText)
            let source = try BuildInfoSource(versionFile: versionText, fullCommit: commit)
            try FileSystem.writeIfChanged(source.render(), to: output)
        case .assets(let root, let output):
            var files: [AssetSource.File] = []
            for path in AssetDirectory.files(under: root) {
                guard let bytes = FileSystem.read(root + "/" + path) else {
                    throw ToolError("cannot read \(root)/\(path)")
                }
                files.append(AssetSource.File(path: path, bytes: bytes))
            }
            let name = root.split(separator: "/").last.map(String.init) ?? root
            try FileSystem.writeIfChanged(AssetSource(files: files, directoryName: name).render(), to: output)
        }
    }
}
