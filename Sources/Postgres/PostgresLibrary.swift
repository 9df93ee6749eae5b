import CPostgres

/// libpq, loaded on first use with dlopen: Prefork never links against it, so the default build and
/// single-host mode run on machines without it and only the PostgreSQL backend needs the package (libpq5).
///
/// The library opened is `libpq.so.5`, or what the environment variable `PREFORK_LIBPQ` names (a path or
/// another soname) when it is set and not empty. It is read once: the first `load()` decides for the life of
/// the process. libpq 14 or newer is needed (pipeline mode).
public enum PostgresLibrary {
    /// The soname opened by default.
    public static let defaultName = CPQ_DEFAULT_LIBRARY
    /// The environment variable that overrides `defaultName`.
    public static let environmentVariable = CPQ_LIBRARY_VARIABLE

    /// Loads libpq (once per process; later calls repeat the first outcome) and returns its version, as
    /// PQlibVersion() gives it: 150013 for 15.13. Throws "cannot load libpq.so.5: <dlerror> (install libpq5)"
    /// when the library or one of its functions is missing.
    @discardableResult
    public static func load() throws(PostgresError) -> Int {
        if let failure = cpq_load() {
            throw PostgresError(call: nil, message: String(cString: failure))
        }
        return Int(cpq_lib_version())
    }

    /// Tries to load the library at `name` (a path or soname) without making it the process's libpq, then
    /// unloads it: tells whether a candidate would work, and why not. Returns its version.
    public static func probe(_ name: String) throws(PostgresError) -> Int {
        var version: CInt = 0
        var error = [CChar](repeating: 0, count: 1024)
        let code = cpq_probe(name, &version, &error, error.count)
        guard code == 0 else {
            let message = error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw PostgresError(call: nil, message: message)
        }
        return Int(version)
    }
}
