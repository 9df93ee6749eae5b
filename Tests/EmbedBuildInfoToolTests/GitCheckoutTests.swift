import Testing

@testable import EmbedBuildInfoTool

/// Finding HEAD's commit from git's files alone, over an in-memory file tree.
struct GitCheckoutTests {
    private let commit = "8fc32521f0e6a8b0c52b3a6a0d2f9e0b6a1c2d3e"
    private let other = "0123456789abcdef0123456789abcdef01234567"

    /// Files by absolute path; a directory is a path with files below it (reading it gives nil).
    private func reader(_ files: [String: String]) -> GitCheckout.ReadFile { { files[$0] } }

    @Test func plainCheckoutWithALooseBranch() throws {
        let read = reader(["/src/.git/HEAD": "ref: refs/heads/main\n", "/src/.git/refs/heads/main": commit + "\n"])
        let checkout = try #require(GitCheckout.locate(from: "/src", read: read))
        #expect(checkout == GitCheckout(gitDirectory: "/src/.git", commonDirectory: "/src/.git"))
        #expect(checkout.headCommit(read: read) == commit)
        #expect(checkout.watchedFiles(read: read) == ["/src/.git/HEAD", "/src/.git/refs/heads/main"])
    }

    @Test func aPackageInASubdirectoryFindsTheRepositoryAbove() throws {
        let read = reader(["/src/.git/HEAD": commit])
        let checkout = try #require(GitCheckout.locate(from: "/src/tools/pkg/", read: read))
        #expect(checkout.gitDirectory == "/src/.git")
        #expect(checkout.headCommit(read: read) == commit, "a detached HEAD holds the object name itself")
        #expect(checkout.watchedFiles(read: read) == ["/src/.git/HEAD"])
    }

    @Test func aBranchOnlyInPackedRefs() throws {
        let read = reader([
            "/src/.git/HEAD": "ref: refs/heads/release\n",
            "/src/.git/packed-refs": "# pack-refs with: peeled fully-peeled sorted \n\(other) refs/heads/main\n"
                + "\(commit) refs/heads/release\n^\(other)\n",
        ])
        let checkout = try #require(GitCheckout.locate(from: "/src", read: read))
        #expect(checkout.headCommit(read: read) == commit)
        #expect(checkout.watchedFiles(read: read) == ["/src/.git/HEAD", "/src/.git/packed-refs"])
    }

    @Test func aLooseRefWinsOverPackedRefs() throws {
        let read = reader([
            "/src/.git/HEAD": "ref: refs/heads/main", "/src/.git/refs/heads/main": commit,
            "/src/.git/packed-refs": "\(other) refs/heads/main\n",
        ])
        let checkout = try #require(GitCheckout.locate(from: "/src", read: read))
        #expect(checkout.headCommit(read: read) == commit)
        #expect(
            checkout.watchedFiles(read: read) == [
                "/src/.git/HEAD", "/src/.git/refs/heads/main", "/src/.git/packed-refs",
            ])
    }

    @Test func aLinkedWorktreeReadsItsHeadAndTheSharedRefs() throws {
        let read = reader([
            "/work/wt/.git": "gitdir: /work/main/.git/worktrees/wt\n",
            "/work/main/.git/worktrees/wt/HEAD": "ref: refs/heads/feature\n",
            "/work/main/.git/worktrees/wt/commondir": "../..\n",
            "/work/main/.git/HEAD": "ref: refs/heads/main\n",
            "/work/main/.git/refs/heads/feature": commit + "\n",
            "/work/main/.git/refs/heads/main": other + "\n",
            "/work/main/.git/worktrees/wt/logs/HEAD": "reflog\n",
        ])
        let checkout = try #require(GitCheckout.locate(from: "/work/wt", read: read))
        #expect(
            checkout == GitCheckout(gitDirectory: "/work/main/.git/worktrees/wt", commonDirectory: "/work/main/.git"))
        #expect(checkout.headCommit(read: read) == commit)
        #expect(
            checkout.watchedFiles(read: read) == [
                "/work/main/.git/worktrees/wt/HEAD", "/work/main/.git/worktrees/wt/logs/HEAD",
                "/work/main/.git/refs/heads/feature",
            ])
    }

    @Test func aRelativeGitdirIsResolvedFromTheGitFile() throws {
        let read = reader([
            "/src/sub/.git": "gitdir: ../.git/modules/sub",
            "/src/.git/modules/sub/HEAD": commit,
        ])
        let checkout = try #require(GitCheckout.locate(from: "/src/sub", read: read))
        #expect(checkout.gitDirectory == "/src/.git/modules/sub")
        #expect(checkout.headCommit(read: read) == commit)
    }

    @Test func symbolicRefsAreFollowed() throws {
        let read = reader([
            "/src/.git/HEAD": "ref: refs/heads/alias", "/src/.git/refs/heads/alias": "ref: refs/heads/main",
            "/src/.git/refs/heads/main": commit,
        ])
        let checkout = try #require(GitCheckout.locate(from: "/src", read: read))
        #expect(checkout.headCommit(read: read) == commit)
        #expect(checkout.watchedFiles(read: read).count == 3)
    }

    @Test func noCheckoutOrAnUnbornBranchIsUnknown() throws {
        #expect(GitCheckout.locate(from: "/tarball/prefork-0.9.0", read: reader([:])) == nil)
        let read = reader(["/src/.git/HEAD": "ref: refs/heads/main\n"])
        let checkout = try #require(GitCheckout.locate(from: "/src", read: read))
        #expect(checkout.headCommit(read: read) == nil)
        #expect(GitCheckout.locate(from: "/src", read: reader(["/src/.git": "gitdir: /gone"])) == nil)
    }

    @Test func garbageInHeadIsNotACommit() throws {
        let read = reader(["/src/.git/HEAD": "not a commit\n"])
        let checkout = try #require(GitCheckout.locate(from: "/src", read: read))
        #expect(checkout.headCommit(read: read) == nil)
    }

    @Test func pathsAreNormalizedLexically() {
        #expect(GitCheckout.normalize("/a/b/../c/./d/") == "/a/c/d")
        #expect(GitCheckout.normalize("/../x") == "/x")
        #expect(GitCheckout.parent(of: "/a/b") == "/a")
        #expect(GitCheckout.parent(of: "/a") == "/")
    }
}
