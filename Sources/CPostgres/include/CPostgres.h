// libpq, loaded at run time. Prefork links against no PostgreSQL library: the default build and single-host
// mode never need one, and a machine without libpq5 still runs them. Only the PostgreSQL backend calls
// cpq_load(), which dlopen()s libpq.so.5 once and resolves the functions below into a private table; every
// cpq_* function calls through that table, so none may be called before cpq_load() succeeded.
//
// The constants and the PGnotify layout are copied from libpq-fe.h / postgres_ext.h under our own names
// (libpq's ABI has kept them stable since 9.x, pipeline mode since 14); Tests/PostgresTests checks every one
// against the real header with _Static_assert when libpq-dev is installed.
#ifndef CPOSTGRES_H
#define CPOSTGRES_H

#include <stddef.h>

/// PGconn, opaque.
typedef struct cpq_conn cpq_conn;
/// PGresult, opaque.
typedef struct cpq_result cpq_result;
/// Oid.
typedef unsigned int cpq_oid;

/// PGnotify: one LISTEN/NOTIFY message, freed with cpq_freemem.
typedef struct cpq_notify {
    /// The channel.
    char *relname;
    /// The notifying server process.
    int be_pid;
    /// The payload ("" when none).
    char *extra;
    /// Private to libpq.
    struct cpq_notify *next;
} cpq_notify;

// ConnStatusType (only the two states a program may rely on).
enum { CPQ_CONNECTION_OK = 0, CPQ_CONNECTION_BAD = 1 };

// PostgresPollingStatusType.
enum {
    CPQ_POLLING_FAILED = 0,
    CPQ_POLLING_READING = 1,
    CPQ_POLLING_WRITING = 2,
    CPQ_POLLING_OK = 3,
};

// ExecStatusType.
enum {
    CPQ_EMPTY_QUERY = 0,
    CPQ_COMMAND_OK = 1,
    CPQ_TUPLES_OK = 2,
    CPQ_COPY_OUT = 3,
    CPQ_COPY_IN = 4,
    CPQ_BAD_RESPONSE = 5,
    CPQ_NONFATAL_ERROR = 6,
    CPQ_FATAL_ERROR = 7,
    CPQ_COPY_BOTH = 8,
    CPQ_SINGLE_TUPLE = 9,
    CPQ_PIPELINE_SYNC = 10,
    CPQ_PIPELINE_ABORTED = 11,
};

// PGpipelineStatus.
enum { CPQ_PIPELINE_OFF = 0, CPQ_PIPELINE_ON = 1, CPQ_PIPELINE_ABORTED_STATUS = 2 };

// PG_DIAG_* field codes for cpq_result_error_field.
enum {
    CPQ_DIAG_SEVERITY_NONLOCALIZED = 'V',
    CPQ_DIAG_SQLSTATE = 'C',
    CPQ_DIAG_MESSAGE_PRIMARY = 'M',
    CPQ_DIAG_MESSAGE_DETAIL = 'D',
    CPQ_DIAG_MESSAGE_HINT = 'H',
    CPQ_DIAG_TABLE_NAME = 't',
    CPQ_DIAG_CONSTRAINT_NAME = 'n',
};

/// The library name cpq_load() opens when PREFORK_LIBPQ is unset or empty.
#define CPQ_DEFAULT_LIBRARY "libpq.so.5"
/// The environment variable that overrides it (a path or another soname), read once by cpq_load().
#define CPQ_LIBRARY_VARIABLE "PREFORK_LIBPQ"

/// Loads libpq once per process (later calls return the first outcome): dlopen of $PREFORK_LIBPQ or
/// libpq.so.5 with RTLD_NOW | RTLD_LOCAL, then dlsym of every function. Returns NULL on success, else a
/// message that stays valid for the life of the process, e.g.
/// "cannot load libpq.so.5: libpq.so.5: cannot open shared object file: ... (install libpq5)".
const char *cpq_load(void);

/// Tries to load `name` without installing it or touching the process-wide table, and unloads it again:
/// for tests and diagnostics. Returns 0 and libpq's version, or -1 with the message in `error`.
int cpq_probe(const char *name, int *version, char *error, size_t error_size);

// Thin calls through the table, named after the libpq function they call (see its documentation).
cpq_conn *cpq_connect_start(const char *conninfo);
int cpq_connect_poll(cpq_conn *conn);
int cpq_status(const cpq_conn *conn);
int cpq_socket(const cpq_conn *conn);
int cpq_set_nonblocking(cpq_conn *conn, int arg);
int cpq_flush(cpq_conn *conn);
int cpq_send_query_params(cpq_conn *conn, const char *command, int n_params, const cpq_oid *param_types,
                          const char *const *param_values, const int *param_lengths, const int *param_formats,
                          int result_format);
int cpq_send_prepare(cpq_conn *conn, const char *name, const char *query, int n_params,
                     const cpq_oid *param_types);
int cpq_send_query_prepared(cpq_conn *conn, const char *name, int n_params, const char *const *param_values,
                            const int *param_lengths, const int *param_formats, int result_format);
int cpq_consume_input(cpq_conn *conn);
int cpq_is_busy(cpq_conn *conn);
cpq_result *cpq_get_result(cpq_conn *conn);
cpq_notify *cpq_notifies(cpq_conn *conn);
void cpq_freemem(void *pointer);
int cpq_enter_pipeline_mode(cpq_conn *conn);
int cpq_exit_pipeline_mode(cpq_conn *conn);
int cpq_pipeline_sync(cpq_conn *conn);
int cpq_send_flush_request(cpq_conn *conn);
int cpq_pipeline_status(const cpq_conn *conn);
int cpq_result_status(const cpq_result *result);
const char *cpq_result_error_field(const cpq_result *result, int field);
const char *cpq_result_error_message(const cpq_result *result);
const char *cpq_error_message(const cpq_conn *conn);
int cpq_ntuples(const cpq_result *result);
int cpq_nfields(const cpq_result *result);
const char *cpq_fname(const cpq_result *result, int column);
int cpq_fformat(const cpq_result *result, int column);
const char *cpq_getvalue(const cpq_result *result, int row, int column);
int cpq_getlength(const cpq_result *result, int row, int column);
int cpq_getisnull(const cpq_result *result, int row, int column);
const char *cpq_cmd_tuples(cpq_result *result);
void cpq_clear(cpq_result *result);
void cpq_finish(cpq_conn *conn);
int cpq_lib_version(void);
/// PQsetNoticeProcessor with one that drops notices and warnings ("relation ... already exists, skipping"),
/// which libpq would otherwise print on stderr.
void cpq_discard_notices(cpq_conn *conn);

#endif
