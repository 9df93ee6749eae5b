import Glibc

/// The files of a directory to embed: every regular file below it (symbolic links followed), hidden files and
/// directories (names starting with ".") skipped, as paths relative to it with `/` separators, sorted.
///
/// Shared, through a symbolic link, by the `EmbedAssets` plugin (which declares these files as the build
/// command's inputs) and `EmbedBuildInfoTool` (which lists the directory again when the command runs, so a file
/// added since the build was planned is embedded as soon as the command runs again).
enum AssetDirectory {
    /// How deep directories are followed, against symbolic link loops.
    static let maximumDepth = 16

    /// The relative paths of the files under `root`; empty when `root` is missing or not a directory.
    static func files(under root: String) -> [String] {
        var found: [String] = []
        collect(root, relative: "", depth: 0, into: &found)
        return found.sorted()
    }

    private static func collect(_ directory: String, relative: String, depth: Int, into found: inout [String]) {
        guard depth <= maximumDepth, let stream = opendir(directory) else { return }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard !name.hasPrefix(".") else { continue }
            let path = directory + "/" + name
            let key = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFREG: found.append(key)
            case S_IFDIR: collect(path, relative: key, depth: depth + 1, into: &found)
            default: continue
            }
        }
    }
}
