import Foundation
import Testing

/// The dashboard in a real browser: headless Chromium driven by Selenium (Debian's chromium, chromium-driver and
/// python3-selenium) through Tests/UI/dashboard_test.py, against a supervisor with jobs done, failed, crashed and
/// running. Screenshots go to .build/ui-screenshots/.
@Suite(.timeLimit(.minutes(3)))
struct DashboardTests {
    @Test func theDashboardShowsWorkersJobsAndActsOnThem() async throws {
        let python = "/usr/bin/python3"
        var hasSelenium = false
        if FileManager.default.isExecutableFile(atPath: python) {
            hasSelenium = (try? await CommandRun.run(python, ["-c", "import selenium"]))?.status == .exited(0)
        }
        guard Component.require(
            FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
                && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver") && hasSelenium,
            "Chromium with chromedriver and python3-selenium")
        else { return }
        let prefork = try await PreforkProcess.start(
            config: ["workers": 2, "auth_token": "dashboard-secret", "job_timeout_ms": 120_000],
            environment: [:])
        defer { prefork.terminateAndReap() }
        let auth = [("Authorization", "Bearer dashboard-secret")]
        for (id, payload) in [("ok-1", "@ok"), ("fail-1", "@fail"), ("crash-1", "@crash"), ("slow-1", "@sleep 60000")] {
            let response = try prefork.request(
                "POST", "/enqueue", body: PreforkProcess.enqueueBody(id: id, payload: payload), headers: auth)
            #expect(response.status == 202, "\(response)")
        }
        // The page is served without the token (it asks for it), with a policy that forbids anything external.
        let page = try prefork.request("GET", "/")
        #expect(page.status == 200)
        #expect(page.header("Content-Security-Policy")?.contains("default-src 'self'") == true)
        #expect(try prefork.request("GET", "/ui/app.js").status == 200)
        #expect(try prefork.request("GET", "/workers").status == 401)
        let screenshots = Repository.root + "/.build/ui-screenshots"
        try? FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        let run = try await CommandRun.run(
            python,
            [
                Repository.root + "/Tests/UI/dashboard_test.py", "--url", "http://127.0.0.1:\(prefork.port)", "--token",
                "dashboard-secret", "--screenshots", screenshots,
            ], timeout: .seconds(150))
        #expect(run.status == .exited(0), "dashboard_test.py:\n\(run.stdout)\n\(run.stderr)")
    }
}
