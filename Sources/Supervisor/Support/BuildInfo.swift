/// What this build is: the release version and the commit, compiled in by the `EmbedBuildInfo` plugin from the
/// `VERSION` file and the git HEAD at build time (so `--version`, `/healthz` and the `listening` line cannot
/// disagree with the release, and the worker built alongside reports the same version).
enum BuildInfo {
    /// The release version, "MAJOR.MINOR.PATCH", from the package's VERSION file.
    static let version = GeneratedBuildInfo.version
    /// The first 7 hex digits of the git commit it was built from, or "unknown" when built outside a checkout.
    static let commit = GeneratedBuildInfo.commit
}
