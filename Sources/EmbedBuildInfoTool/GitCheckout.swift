/// The git metadata of a checkout, found and read without git itself: which commit HEAD names, and which files
/// change when it names another one (so a build can declare them as inputs and regenerate after a commit).
///
/// Handles a plain checkout (`.git` is a directory), a linked worktree or submodule (`.git` is a file
/// `gitdir: PATH`, whose directory has a `commondir` file pointing at the shared refs), branches stored as loose
/// files or in `packed-refs`, symbolic refs and a detached HEAD.
///
/// This file is shared, through a symbolic link, by the `EmbedBuildInfo` plugin (which lists the files to
/// watch) and `EmbedBuildInfoTool` (which resolves the commit when they change); it reads files only through the
/// `read` function it is given, so it needs neither Foundation nor a file system in tests.
struct GitCheckout: Equatable {
    /// The directory holding this checkout's `HEAD` (for a linked worktree, `.git/worktrees/NAME`).
    let gitDirectory: String
    /// The directory holding the shared refs and `packed-refs` (the same as `gitDirectory` unless a linked
    /// worktree).
    let commonDirectory: String

    /// Reads a whole file as text, or returns nil when it cannot (missing, a directory, unreadable).
    typealias ReadFile = (String) -> String?

    /// How many symbolic refs are followed before giving up (git's own limit is 5).
    static let maximumSymbolicDepth = 5

    /// Finds the checkout that `directory` belongs to: `.git` in it or in the nearest parent that has one.
    /// Returns nil when there is none (a source tarball).
    static func locate(from directory: String, read: ReadFile) -> GitCheckout? {
        var current = normalize(directory)
        while true {
            let dotGit = join(current, ".git")
            if read(join(dotGit, "HEAD")) != nil {
                return GitCheckout(gitDirectory: dotGit, commonDirectory: commonDirectory(of: dotGit, read: read))
            }
            if let pointer = read(dotGit), let target = value(after: "gitdir:", in: pointer) {
                let gitDirectory = normalize(target.hasPrefix("/") ? target : join(current, target))
                guard read(join(gitDirectory, "HEAD")) != nil else { return nil }
                return GitCheckout(
                    gitDirectory: gitDirectory, commonDirectory: commonDirectory(of: gitDirectory, read: read))
            }
            guard current != "/" else { return nil }
            current = parent(of: current)
        }
    }

    /// The files that change when HEAD names another commit: `HEAD`, its reflog `logs/HEAD`, the loose file of
    /// each ref it leads to, and `packed-refs`. Only files that exist are listed.
    ///
    /// The reflog is there because a build plans its inputs once and keeps them until the package changes: after
    /// switching to another branch, that branch's ref file is not among them, but every commit, checkout, reset
    /// or merge appends to `logs/HEAD` (git keeps it in every non-bare repository unless told not to).
    func watchedFiles(read: ReadFile) -> [String] {
        var files = [join(gitDirectory, "HEAD")]
        let reflog = join(gitDirectory, "logs/HEAD")
        if read(reflog) != nil { files.append(reflog) }
        var reference = Self.symbolicTarget(read(join(gitDirectory, "HEAD")))
        var depth = 0
        while let name = reference, depth < Self.maximumSymbolicDepth {
            depth += 1
            guard let (path, contents) = looseReference(name, read: read) else { break }
            files.append(path)
            reference = Self.symbolicTarget(contents)
        }
        let packed = join(commonDirectory, "packed-refs")
        if read(packed) != nil { files.append(packed) }
        return files
    }

    /// The full object name HEAD resolves to, or nil when it cannot be resolved (an unborn branch, damage).
    func headCommit(read: ReadFile) -> String? {
        guard var contents = read(join(gitDirectory, "HEAD")) else { return nil }
        for _ in 0...Self.maximumSymbolicDepth {
            guard let name = Self.symbolicTarget(contents) else {
                let object = contents.trimmingWhitespace()
                return Self.isObjectName(object) ? object : nil
            }
            if let (_, loose) = looseReference(name, read: read) {
                contents = loose
            } else {
                return packedReference(name, read: read)
            }
        }
        return nil
    }

    /// The loose file of ref `name` and its contents: per-worktree refs live in the git directory, shared ones
    /// in the common directory.
    private func looseReference(_ name: String, read: ReadFile) -> (path: String, contents: String)? {
        for directory in [gitDirectory, commonDirectory] {
            let path = join(directory, name)
            if let contents = read(path) { return (path, contents) }
        }
        return nil
    }

    /// The object name `packed-refs` records for `name` (lines `OBJECT NAME`; `#` headers and `^` peeled lines
    /// skipped).
    private func packedReference(_ name: String, read: ReadFile) -> String? {
        guard let packed = read(join(commonDirectory, "packed-refs")) else { return nil }
        for line in packed.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("^") {
            let fields = line.split(separator: " ", maxSplits: 1)
            if fields.count == 2, fields[1].trimmingWhitespace() == name, Self.isObjectName(String(fields[0])) {
                return String(fields[0])
            }
        }
        return nil
    }

    /// The ref a `ref: NAME` file points at, or nil when the contents are an object name (or missing).
    private static func symbolicTarget(_ contents: String?) -> String? {
        contents.flatMap { value(after: "ref:", in: $0) }
    }

    /// Whether `text` is a SHA-1 (40) or SHA-256 (64) object name in lowercase hex.
    static func isObjectName(_ text: String) -> Bool {
        (text.utf8.count == 40 || text.utf8.count == 64)
            && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    private static func commonDirectory(of gitDirectory: String, read: ReadFile) -> String {
        guard let pointer = read(join(gitDirectory, "commondir")) else { return gitDirectory }
        let target = pointer.trimmingWhitespace()
        guard !target.isEmpty else { return gitDirectory }
        return normalize(target.hasPrefix("/") ? target : join(gitDirectory, target))
    }

    /// The rest of the first line of `contents` after `prefix`, trimmed; nil when it does not start with it.
    private static func value(after prefix: String, in contents: String) -> String? {
        guard contents.hasPrefix(prefix) else { return nil }
        let line = contents.dropFirst(prefix.count).prefix { !$0.isNewline }
        let trimmed = line.trimmingWhitespace()
        return trimmed.isEmpty ? nil : trimmed
    }
}

/// Path helpers without Foundation: absolute paths made of `/`-separated components.
extension GitCheckout {
    /// `directory/name`.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private func join(_ directory: String, _ name: String) -> String { Self.join(directory, name) }

    /// `path` without `.` and `..` components or repeated slashes (lexically, like git's `commondir`).
    static func normalize(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/") {
            switch component {
            case ".": continue
            case "..": if !components.isEmpty { components.removeLast() }
            default: components.append(component)
            }
        }
        let joined = components.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : joined
    }

    /// The directory containing `path` ("/" for a top-level entry).
    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let head = String(path[..<slash])
        return head.isEmpty ? "/" : head
    }
}

extension StringProtocol {
    /// The text without leading and trailing white space (spaces, tabs, newlines, CR LF).
    func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }
}
