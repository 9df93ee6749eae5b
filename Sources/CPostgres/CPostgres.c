#include "CPostgres.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The libpq functions Prefork calls, by their libpq names. Adding one means a field here, a line in
// CPQ_SYMBOLS and a cpq_ wrapper.
struct cpq_table {
    cpq_conn *(*PQconnectStart)(const char *);
    int (*PQconnectPoll)(cpq_conn *);
    int (*PQstatus)(const cpq_conn *);
    int (*PQsocket)(const cpq_conn *);
    int (*PQsetnonblocking)(cpq_conn *, int);
    int (*PQflush)(cpq_conn *);
    int (*PQsendQueryParams)(cpq_conn *, const char *, int, const cpq_oid *, const char *const *, const int *,
                             const int *, int);
    int (*PQsendPrepare)(cpq_conn *, const char *, const char *, int, const cpq_oid *);
    int (*PQsendQueryPrepared)(cpq_conn *, const char *, int, const char *const *, const int *, const int *, int);
    int (*PQconsumeInput)(cpq_conn *);
    int (*PQisBusy)(cpq_conn *);
    cpq_result *(*PQgetResult)(cpq_conn *);
    cpq_notify *(*PQnotifies)(cpq_conn *);
    void (*PQfreemem)(void *);
    int (*PQenterPipelineMode)(cpq_conn *);
    int (*PQexitPipelineMode)(cpq_conn *);
    int (*PQpipelineSync)(cpq_conn *);
    int (*PQsendFlushRequest)(cpq_conn *);
    int (*PQpipelineStatus)(const cpq_conn *);
    int (*PQresultStatus)(const cpq_result *);
    const char *(*PQresultErrorField)(const cpq_result *, int);
    const char *(*PQresultErrorMessage)(const cpq_result *);
    const char *(*PQerrorMessage)(const cpq_conn *);
    int (*PQntuples)(const cpq_result *);
    int (*PQnfields)(const cpq_result *);
    const char *(*PQfname)(const cpq_result *, int);
    int (*PQfformat)(const cpq_result *, int);
    const char *(*PQgetvalue)(const cpq_result *, int, int);
    int (*PQgetlength)(const cpq_result *, int, int);
    int (*PQgetisnull)(const cpq_result *, int, int);
    const char *(*PQcmdTuples)(cpq_result *);
    void (*PQclear)(cpq_result *);
    void (*PQfinish)(cpq_conn *);
    int (*PQlibVersion)(void);
    void *(*PQsetNoticeProcessor)(cpq_conn *, void (*)(void *, const char *), void *);
};

#define CPQ_SYMBOLS(X)                                                                                        \
    X(PQconnectStart) X(PQconnectPoll) X(PQstatus) X(PQsocket) X(PQsetnonblocking) X(PQflush)                 \
    X(PQsendQueryParams) X(PQsendPrepare) X(PQsendQueryPrepared) X(PQconsumeInput) X(PQisBusy)                \
    X(PQgetResult) X(PQnotifies) X(PQfreemem) X(PQenterPipelineMode) X(PQexitPipelineMode)                    \
    X(PQpipelineSync) X(PQsendFlushRequest) X(PQpipelineStatus) X(PQresultStatus)                             \
    X(PQresultErrorField) X(PQresultErrorMessage) X(PQerrorMessage) X(PQntuples) X(PQnfields)                 \
    X(PQfname) X(PQfformat) X(PQgetvalue) X(PQgetlength) X(PQgetisnull) X(PQcmdTuples) X(PQclear)             \
    X(PQfinish) X(PQlibVersion) X(PQsetNoticeProcessor)

static struct cpq_table table;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[1024];
static int load_failed;

/// dlopen()s `name` and fills `out`; on failure closes what it opened, writes the reason and returns NULL.
/// `hint` ends the message: what the operator should do about it.
static void *open_library(const char *name, struct cpq_table *out, char *error, size_t error_size,
                          const char *hint) {
    void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *reason = dlerror();
        snprintf(error, error_size, "cannot load %s: %s (%s)", name, reason ? reason : "unknown error", hint);
        return NULL;
    }
    // POSIX's idiom for a function pointer out of dlsym: the object pointer is copied into its storage.
#define CPQ_RESOLVE(symbol)                                                                                      \
    *(void **)(&out->symbol) = dlsym(handle, #symbol);                                                           \
    if (!out->symbol) {                                                                                          \
        snprintf(error, error_size, "cannot load %s: it has no %s (libpq 14 or newer is needed; %s)", name,      \
                 #symbol, hint);                                                                                 \
        dlclose(handle);                                                                                         \
        return NULL;                                                                                             \
    }
    CPQ_SYMBOLS(CPQ_RESOLVE)
#undef CPQ_RESOLVE
    return handle;
}

/// pthread_once body: the process-wide load. The handle is never closed: libpq stays for the process's life.
static void load_table(void) {
    const char *configured = getenv(CPQ_LIBRARY_VARIABLE);
    int overridden = configured && configured[0];
    const char *name = overridden ? configured : CPQ_DEFAULT_LIBRARY;
    const char *hint = overridden ? "install libpq5, or fix " CPQ_LIBRARY_VARIABLE : "install libpq5";
    load_failed = open_library(name, &table, load_error, sizeof load_error, hint) == NULL;
}

const char *cpq_load(void) {
    pthread_once(&load_once, load_table);
    return load_failed ? load_error : NULL;
}

int cpq_probe(const char *name, int *version, char *error, size_t error_size) {
    struct cpq_table probe;
    void *handle = open_library(name, &probe, error, error_size, "install libpq5");
    if (!handle) return -1;
    if (version) *version = probe.PQlibVersion();
    dlclose(handle);
    return 0;
}

cpq_conn *cpq_connect_start(const char *conninfo) { return table.PQconnectStart(conninfo); }
int cpq_connect_poll(cpq_conn *conn) { return table.PQconnectPoll(conn); }
int cpq_status(const cpq_conn *conn) { return table.PQstatus(conn); }
int cpq_socket(const cpq_conn *conn) { return table.PQsocket(conn); }
int cpq_set_nonblocking(cpq_conn *conn, int arg) { return table.PQsetnonblocking(conn, arg); }
int cpq_flush(cpq_conn *conn) { return table.PQflush(conn); }

int cpq_send_query_params(cpq_conn *conn, const char *command, int n_params, const cpq_oid *param_types,
                          const char *const *param_values, const int *param_lengths, const int *param_formats,
                          int result_format) {
    return table.PQsendQueryParams(conn, command, n_params, param_types, param_values, param_lengths,
                                   param_formats, result_format);
}

int cpq_send_prepare(cpq_conn *conn, const char *name, const char *query, int n_params,
                     const cpq_oid *param_types) {
    return table.PQsendPrepare(conn, name, query, n_params, param_types);
}

int cpq_send_query_prepared(cpq_conn *conn, const char *name, int n_params, const char *const *param_values,
                            const int *param_lengths, const int *param_formats, int result_format) {
    return table.PQsendQueryPrepared(conn, name, n_params, param_values, param_lengths, param_formats,
                                     result_format);
}

int cpq_consume_input(cpq_conn *conn) { return table.PQconsumeInput(conn); }
int cpq_is_busy(cpq_conn *conn) { return table.PQisBusy(conn); }
cpq_result *cpq_get_result(cpq_conn *conn) { return table.PQgetResult(conn); }
cpq_notify *cpq_notifies(cpq_conn *conn) { return table.PQnotifies(conn); }
void cpq_freemem(void *pointer) { table.PQfreemem(pointer); }
int cpq_enter_pipeline_mode(cpq_conn *conn) { return table.PQenterPipelineMode(conn); }
int cpq_exit_pipeline_mode(cpq_conn *conn) { return table.PQexitPipelineMode(conn); }
int cpq_pipeline_sync(cpq_conn *conn) { return table.PQpipelineSync(conn); }
int cpq_send_flush_request(cpq_conn *conn) { return table.PQsendFlushRequest(conn); }
int cpq_pipeline_status(const cpq_conn *conn) { return table.PQpipelineStatus(conn); }
int cpq_result_status(const cpq_result *result) { return table.PQresultStatus(result); }
const char *cpq_result_error_field(const cpq_result *result, int field) {
    return table.PQresultErrorField(result, field);
}
const char *cpq_result_error_message(const cpq_result *result) { return table.PQresultErrorMessage(result); }
const char *cpq_error_message(const cpq_conn *conn) { return table.PQerrorMessage(conn); }
int cpq_ntuples(const cpq_result *result) { return table.PQntuples(result); }
int cpq_nfields(const cpq_result *result) { return table.PQnfields(result); }
const char *cpq_fname(const cpq_result *result, int column) { return table.PQfname(result, column); }
int cpq_fformat(const cpq_result *result, int column) { return table.PQfformat(result, column); }
const char *cpq_getvalue(const cpq_result *result, int row, int column) {
    return table.PQgetvalue(result, row, column);
}
int cpq_getlength(const cpq_result *result, int row, int column) { return table.PQgetlength(result, row, column); }
int cpq_getisnull(const cpq_result *result, int row, int column) { return table.PQgetisnull(result, row, column); }
const char *cpq_cmd_tuples(cpq_result *result) { return table.PQcmdTuples(result); }
void cpq_clear(cpq_result *result) { table.PQclear(result); }
void cpq_finish(cpq_conn *conn) { table.PQfinish(conn); }
int cpq_lib_version(void) { return table.PQlibVersion(); }

/// A notice processor that drops the message: libpq's default prints notices to stderr, where they would
/// interleave with the supervisor's JSON log lines.
static void discard_notice(void *argument, const char *message) {
    (void)argument;
    (void)message;
}

void cpq_discard_notices(cpq_conn *conn) { table.PQsetNoticeProcessor(conn, discard_notice, NULL); }
