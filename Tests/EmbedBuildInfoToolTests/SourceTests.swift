import Testing

@testable import EmbedBuildInfoTool

/// The generated sources: the version check, the commit's form, and literals that reproduce bytes exactly.
struct SourceTests {
    @Test func versionFileIsTrimmedAndValidated() throws {
        let source = try BuildInfoSource(
            versionFile: " 0.9.0\n", fullCommit: "8fc32521f0e6a8b0c52b3a6a0d2f9e0b6a1c2d3e")
        #expect(source == BuildInfoSource.expected(version: "0.9.0", commit: "8fc3252"))
        #expect(try BuildInfoSource(versionFile: "1.2.3", fullCommit: nil).commit == "unknown")
        for good in ["1.0.0-rc.1", "10.20.30+build.5", "0.0.1-alpha-2"] {
            #expect(BuildInfoSource.isSemanticVersion(good), "\(good)")
        }
        for bad in ["", "1.2", "1.2.3.4", "v1.2.3", "1.2.3-", "1.2.x", "1.2.3 beta", "1..3", "1.2.3\n4.5.6"] {
            #expect(throws: ToolError.self, "\(bad.debugDescription)") {
                try BuildInfoSource(versionFile: bad, fullCommit: nil)
            }
        }
    }

    @Test func badVersionErrorNamesTheFileAndTheValue() {
        do {
            _ = try BuildInfoSource(versionFile: "one\n", fullCommit: nil)
            Issue.record("accepted \"one\"")
        } catch {
            #expect(error.description.contains("VERSION") && error.description.contains("\"one\""))
        }
    }

    @Test func buildInfoRendersBothConstants() throws {
        let text = try BuildInfoSource(versionFile: "2.0.0", fullCommit: nil).render()
        #expect(text.contains("static let version = \"2.0.0\""))
        #expect(text.contains("static let commit = \"unknown\""))
        #expect(!text.contains("import"), "the worker links no Foundation; the file must import nothing")
    }

    @Test func stringLiteralsEscapeEverythingButPrintableASCII() {
        #expect(
            AssetSource.stringLiteral("a\"b\\c\n\t\r\u{0}é€😀\u{7f}")
                == #""a\"b\\c\n\t\r\u{0}\u{e9}\u{20ac}\u{1f600}\u{7f}""#)
    }

    @Test func contentTypesFollowTheExtension() {
        #expect(AssetSource.contentType(of: "index.html") == "text/html; charset=utf-8")
        #expect(AssetSource.contentType(of: "js/APP.JS") == "text/javascript; charset=utf-8")
        #expect(AssetSource.contentType(of: "favicon.svg") == "image/svg+xml")
        #expect(AssetSource.contentType(of: "README") == "application/octet-stream")
    }

    @Test func assetsRenderSortedTextAndBinaryFiles() {
        let source = AssetSource(
            files: [
                .init(path: "z.png", bytes: [0x89, 0x50, 0xff, 0x00]),
                .init(path: "a/index.html", bytes: Array("<p>\"hi\"</p>\n".utf8)),
            ], directoryName: "dashboard")
        let text = source.render()
        let html = text.firstRange(
            of: "\"a/index.html\": EmbeddedAsset(contentType: \"text/html; charset=utf-8\", "
                + #"text: "<p>\"hi\"</p>\n")"#)
        let png = text.firstRange(of: "\"z.png\": EmbeddedAsset(contentType: \"image/png\", bytes: [")
        #expect(html != nil && png != nil, "\(text)")
        if let html, let png { #expect(html.lowerBound < png.lowerBound, "sorted by path") }
        #expect(text.contains("0x89,0x50,0xff,0x00,"))
        #expect(AssetSource(files: [], directoryName: "dashboard").render().contains("= [\n    :\n    ]"))
    }

    @Test func commandLineParses() throws {
        #expect(
            try EmbedCommand.parse([
                "build-info", "--package-dir", "/p", "--version-file", "/p/VERSION", "--output", "/o.swift",
                "--watch", "/p/.git/HEAD",
            ]) == .buildInfo(packageDirectory: "/p", versionFile: "/p/VERSION", output: "/o.swift"))
        #expect(
            try EmbedCommand.parse(["assets", "--root", "/p/d", "--output", "/o.swift", "--watch", "/p/d/a"])
                == .assets(root: "/p/d", output: "/o.swift"))
        #expect(throws: ToolError.self) { try EmbedCommand.parse(["assets", "--root", "/p/d", "--output", "/o", "x"]) }
        #expect(throws: ToolError.self) { try EmbedCommand.parse(["build-info", "--output", "/o"]) }
        #expect(throws: ToolError.self) { try EmbedCommand.parse(["frobnicate"]) }
    }
}

extension BuildInfoSource {
    /// A value with the given fields, for comparisons.
    static func expected(version: String, commit: String) -> BuildInfoSource {
        let full = commit + String(repeating: "0", count: 40 - commit.count)
        return try! BuildInfoSource(versionFile: version, fullCommit: full)
    }
}
