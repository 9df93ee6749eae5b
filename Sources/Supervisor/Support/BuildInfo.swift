/// What this build is.
enum BuildInfo {
    /// The release version, "MAJOR.MINOR.PATCH".
    static let version = "0.9.0"
    /// The git commit it was built from.
    static let commit = "unknown"
}
