import System

/// Name resolution for connection strings, off the event loop.
///
/// libpq resolves a `host` name with getaddrinfo inside PQconnectPoll, which blocks the calling thread for as
/// long as DNS takes. A supervisor that must not stall resolves the name first, on a thread of its own, and
/// passes both: `host=db.internal hostaddr=10.1.2.3` (libpq then connects to `hostaddr` and still uses `host`
/// for TLS verification and .pgpass). Unix socket directories (`host=/run/postgresql`) and IP literals need no
/// resolution.
public enum PostgresHostResolver {
    /// The addresses of `host` as IP text, in getaddrinfo's order. Blocks: call it off the event loop.
    public static func addresses(of host: String) throws(PostgresError) -> [String] {
        do {
            return try Socket.resolve(host: host, port: 0).map(\.host)
        } catch {
            throw PostgresError(call: "getaddrinfo", message: "cannot resolve \(host): \(error.message)")
        }
    }
}

/// Building conninfo strings in libpq's keyword/value form, with quoting, so values with spaces or quotes (a
/// password, a socket directory) cannot change the meaning of the string.
public enum PostgresConnectionString {
    /// `host='/tmp/x' dbname='jobs'`: each value in single quotes, with `\` and `'` escaped by a backslash.
    public static func make(_ parameters: KeyValuePairs<String, String>) -> String {
        parameters.map { key, value in
            var quoted = "'"
            for character in value {
                if character == "'" || character == "\\" { quoted.append("\\") }
                quoted.append(character)
            }
            return key + "=" + quoted + "'"
        }.joined(separator: " ")
    }
}
