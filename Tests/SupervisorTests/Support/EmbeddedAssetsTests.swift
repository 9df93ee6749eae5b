import Foundation
import Testing

@testable import Supervisor

/// The EmbedAssets plugin compiled `dashboard/` into the supervisor byte for byte, with content types.
struct EmbeddedAssetsTests {
    /// The package's dashboard directory, found from this file's path.
    private let dashboard: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // the file, Support, SupervisorTests, Tests
        return url.appendingPathComponent("dashboard")
    }()

    @Test func everyDashboardFileIsEmbeddedExactly() throws {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dashboard.path)) ?? [])
            .filter { !$0.hasPrefix(".") }.sorted()
        #expect(
            EmbeddedAssets.files.keys.sorted() == names,
            "embedded files differ from dashboard/ (a file added since the build was planned? touch Package.swift)")
        for name in names {
            let bytes = try [UInt8](Data(contentsOf: dashboard.appendingPathComponent(name)))
            #expect(EmbeddedAssets.files[name]?.bytes == bytes, "\(name) differs from its embedded copy")
        }
    }

    @Test func contentTypesFollowTheExtensions() {
        let expected = [
            "index.html": "text/html; charset=utf-8", "app.css": "text/css; charset=utf-8",
            "app.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml",
        ]
        for (name, type) in expected {
            guard let asset = EmbeddedAssets.files[name] else { continue }  // not every checkout has them all
            #expect(asset.contentType == type, "\(name)")
        }
    }
}
