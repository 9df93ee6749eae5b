/*
 * limit.c: the "physical limit" for Prefork's benchmark 3, `POST /enqueue` of a zero-work job under
 * `wrk -t2 -c32 -d10s -s bench/enqueue.lua`.
 *
 * It does the least work that benchmark requires of Prefork, in the same system calls, and nothing
 * else: one epoll thread serving HTTP/1.1 keep-alive; per accepted job an "accepted" journal record,
 * the job handed to a prefork worker process over a pipe as a frame, the worker's result frame read
 * back, "started" and "succeeded" records; the journal written with one write() per loop iteration;
 * with `--fsync batch`, group commit by a background thread running fdatasync back to back, the 202
 * held until its record is durable. Its throughput on a machine is the ceiling Prefork's figure on
 * the same machine is compared with: the gap is what Prefork spends on top of the unavoidable.
 *
 * What it leaves out on purpose (not syscalls, and not needed to serve the benchmark): the job table
 * and its idempotency lookup, per-job timeout timers, metrics, logging, worker respawn, compaction.
 *
 * Build: gcc -O2 -Wall -Wextra -o limit limit.c -lpthread
 * Run:   ./limit --port 0 --workers 2 --fsync batch [--prealloc] --journal /tmp/limit.journal
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Limits as in Prefork (id 128 bytes) or generous enough for any sane request. */
#define MAX_WORKERS 64
#define MAX_HEADER_BYTES 8192
#define MAX_BODY_BYTES 65536
#define MAX_ID_BYTES 128
#define MAX_PAYLOAD_BYTES 32768
#define MAX_FRAME_BODY (1 << 20)
/* A client that pipelines without reading its replies is cut off past this much unsent output. */
#define MAX_UNSENT_BYTES (8u << 20)
#define PREALLOC_BYTES (64u << 20)
#define READ_ROOM 16384
#define EPOLL_BATCH 256
#define JOB_TIMEOUT_MS 30000

/* Frame header: 'P' 'F' version kind, then the body length (u32 big-endian), as Prefork's IPC. */
#define FRAME_HEADER 8
#define PROTOCOL_VERSION 1
enum frame_kind { FRAME_READY = 1, FRAME_RUN = 2, FRAME_RESULT = 3, FRAME_STOP = 4 };

/* Journal record kinds, as Prefork's JournalRecord. */
enum record_kind { RECORD_ACCEPTED = 1, RECORD_STARTED = 2, RECORD_SUCCEEDED = 4 };

enum fsync_mode { FSYNC_NONE, FSYNC_BATCH };

/* ------------------------------------------------------------------------------------------------ */
/* Errors and memory                                                                                 */

static void fail(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    fputs("limit: ", stderr);
    vfprintf(stderr, format, arguments);
    fputc('\n', stderr);
    va_end(arguments);
    exit(1);
}

static void fail_errno(const char *call)
{
    fail("%s: %s", call, strerror(errno));
}

static void *checked_realloc(void *pointer, size_t size)
{
    void *result = realloc(pointer, size);
    if (result == NULL) fail("out of memory (%zu bytes)", size);
    return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* Byte buffers: bytes live in data[start, end); consuming from the front only moves start.          */

struct buffer {
    char *data;
    size_t start, end, capacity;
};

static size_t buffer_length(const struct buffer *buffer)
{
    return buffer->end - buffer->start;
}

static void buffer_consume(struct buffer *buffer, size_t count)
{
    buffer->start += count;
    if (buffer->start == buffer->end) buffer->start = buffer->end = 0;
}

/* Room for `extra` bytes at the end; may move the content, so offsets must be relative to start. */
static char *buffer_reserve(struct buffer *buffer, size_t extra)
{
    if (buffer->capacity - buffer->end >= extra) return buffer->data + buffer->end;
    if (buffer->start > 0) {
        memmove(buffer->data, buffer->data + buffer->start, buffer_length(buffer));
        buffer->end -= buffer->start;
        buffer->start = 0;
    }
    if (buffer->capacity - buffer->end < extra) {
        size_t capacity = buffer->capacity ? buffer->capacity : 4096;
        while (capacity - buffer->end < extra) capacity *= 2;
        buffer->data = checked_realloc(buffer->data, capacity);
        buffer->capacity = capacity;
    }
    return buffer->data + buffer->end;
}

static void buffer_free(struct buffer *buffer)
{
    free(buffer->data);
    *buffer = (struct buffer){0};
}

static void put_bytes(struct buffer *buffer, const void *bytes, size_t count)
{
    memcpy(buffer_reserve(buffer, count), bytes, count);
    buffer->end += count;
}

#define put_literal(buffer, text) put_bytes((buffer), (text), sizeof(text) - 1)

static void put_u8(struct buffer *buffer, uint8_t value)
{
    put_bytes(buffer, &value, 1);
}

static void store_u32(char *at, uint32_t value)
{
    uint32_t big = htonl(value);
    memcpy(at, &big, 4);
}

static uint32_t load_u32(const char *at)
{
    uint32_t big;
    memcpy(&big, at, 4);
    return ntohl(big);
}

static void put_u32(struct buffer *buffer, uint32_t value)
{
    store_u32(buffer_reserve(buffer, 4), value);
    buffer->end += 4;
}

static void put_u64(struct buffer *buffer, uint64_t value)
{
    put_u32(buffer, (uint32_t)(value >> 32));
    put_u32(buffer, (uint32_t)value);
}

/* A length-prefixed (u32) field, the way Prefork encodes strings in frames and records. */
static void put_field(struct buffer *buffer, const char *bytes, size_t count)
{
    put_u32(buffer, (uint32_t)count);
    put_bytes(buffer, bytes, count);
}

static void put_decimal(struct buffer *buffer, uint64_t value)
{
    char digits[20];
    int count = 0;
    do {
        digits[sizeof digits - 1 - count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    put_bytes(buffer, digits + sizeof digits - count, (size_t)count);
}

/* ------------------------------------------------------------------------------------------------ */
/* FIFO of fixed-size items (jobs waiting for a worker, replies waiting for the journal).            */

struct fifo {
    char *items;
    size_t item_size, head, tail, capacity;
};

static void fifo_push(struct fifo *fifo, const void *item)
{
    if (fifo->tail == fifo->capacity) {
        /* Compacting only when half is free keeps pushes amortized O(1). */
        if (fifo->head >= fifo->capacity / 2 && fifo->head > 0) {
            memmove(fifo->items, fifo->items + fifo->head * fifo->item_size,
                    (fifo->tail - fifo->head) * fifo->item_size);
            fifo->tail -= fifo->head;
            fifo->head = 0;
        } else {
            fifo->capacity = fifo->capacity ? fifo->capacity * 2 : 256;
            fifo->items = checked_realloc(fifo->items, fifo->capacity * fifo->item_size);
        }
    }
    memcpy(fifo->items + fifo->tail * fifo->item_size, item, fifo->item_size);
    fifo->tail++;
}

static void *fifo_front(struct fifo *fifo)
{
    return fifo->head < fifo->tail ? fifo->items + fifo->head * fifo->item_size : NULL;
}

static void fifo_pop(struct fifo *fifo)
{
    if (++fifo->head == fifo->tail) fifo->head = fifo->tail = 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* CRC-32 (IEEE 802.3, reflected), table driven like Prefork's.                                       */

static uint32_t crc_table[256];

static void crc32_init(void)
{
    for (uint32_t index = 0; index < 256; index++) {
        uint32_t value = index;
        for (int bit = 0; bit < 8; bit++) value = (value & 1) ? 0xEDB88320u ^ (value >> 1) : value >> 1;
        crc_table[index] = value;
    }
}

static uint32_t crc32_of(const unsigned char *bytes, size_t count)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t index = 0; index < count; index++) crc = crc_table[(crc ^ bytes[index]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

/* ------------------------------------------------------------------------------------------------ */
/* Clocks                                                                                            */

static int64_t wall_milliseconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static uint64_t monotonic_microseconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
}

#define TIMESTAMP_LENGTH 24 /* 2026-11-25T06:38:21.509Z */

/* ISO 8601 UTC with milliseconds; gmtime_r runs once per second, not once per reply. */
static void format_timestamp(int64_t milliseconds, char out[TIMESTAMP_LENGTH])
{
    static time_t cached_second = -1;
    static char cached_prefix[20];
    time_t second = (time_t)(milliseconds / 1000);
    int millisecond = (int)(milliseconds % 1000);
    if (second != cached_second) {
        struct tm parts;
        gmtime_r(&second, &parts);
        strftime(cached_prefix, sizeof cached_prefix, "%Y-%m-%dT%H:%M:%S", &parts);
        cached_second = second;
    }
    memcpy(out, cached_prefix, 19);
    out[19] = '.';
    out[20] = (char)('0' + millisecond / 100);
    out[21] = (char)('0' + millisecond / 10 % 10);
    out[22] = (char)('0' + millisecond % 10);
    out[23] = 'Z';
}

/* ------------------------------------------------------------------------------------------------ */
/* Blocking-style writes that finish what they start                                                 */

static void write_all(int fd, const char *bytes, size_t count, const char *what)
{
    while (count > 0) {
        ssize_t written = write(fd, bytes, count);
        if (written < 0) {
            if (errno == EINTR) continue;
            fail_errno(what);
        }
        bytes += written;
        count -= (size_t)written;
    }
}

static void pwrite_all(int fd, const char *bytes, size_t count, uint64_t offset, const char *what)
{
    while (count > 0) {
        ssize_t written = pwrite(fd, bytes, count, (off_t)offset);
        if (written < 0) {
            if (errno == EINTR) continue;
            fail_errno(what);
        }
        bytes += written;
        count -= (size_t)written;
        offset += (uint64_t)written;
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* Frame bodies: reading fields back                                                                 */

struct reader {
    const char *at, *end;
    bool ok;
};

static bool reader_has(struct reader *reader, size_t count)
{
    if (!reader->ok || (size_t)(reader->end - reader->at) < count) reader->ok = false;
    return reader->ok;
}

static uint8_t read_u8(struct reader *reader)
{
    return reader_has(reader, 1) ? (uint8_t)*reader->at++ : 0;
}

static uint32_t read_u32(struct reader *reader)
{
    if (!reader_has(reader, 4)) return 0;
    uint32_t value = load_u32(reader->at);
    reader->at += 4;
    return value;
}

static uint64_t read_u64(struct reader *reader)
{
    uint64_t high = read_u32(reader);
    return high << 32 | read_u32(reader);
}

static const char *read_field(struct reader *reader, size_t *count)
{
    *count = read_u32(reader);
    if (!reader_has(reader, *count)) return NULL;
    const char *bytes = reader->at;
    reader->at += *count;
    return bytes;
}

/* Appends the 8-byte header with a placeholder length; returns its offset from the buffer's start. */
static size_t frame_begin(struct buffer *buffer, uint8_t kind)
{
    size_t header = buffer_length(buffer);
    char *at = buffer_reserve(buffer, FRAME_HEADER);
    at[0] = 'P';
    at[1] = 'F';
    at[2] = PROTOCOL_VERSION;
    at[3] = (char)kind;
    buffer->end += FRAME_HEADER;
    return header;
}

static void frame_end(struct buffer *buffer, size_t header)
{
    char *at = buffer->data + buffer->start + header;
    store_u32(at + 4, (uint32_t)(buffer_length(buffer) - header - FRAME_HEADER));
}

/* Whether `bytes` start with a whole frame; fails (returns -1) on a frame no peer of ours sends. */
static long complete_frame(const char *bytes, size_t count)
{
    if (count < FRAME_HEADER) return 0;
    if (bytes[0] != 'P' || bytes[1] != 'F' || bytes[2] != PROTOCOL_VERSION) return -1;
    uint32_t length = load_u32(bytes + 4);
    if (length > MAX_FRAME_BODY) return -1;
    return count >= FRAME_HEADER + (size_t)length ? (long)(FRAME_HEADER + length) : 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* The worker process: runs each job it is handed (zero work: payload "@ok") and answers.            */

#define WORKER_JOBS_FD 3
#define WORKER_RESULTS_FD 4

static void worker_send(struct buffer *out)
{
    write_all(WORKER_RESULTS_FD, out->data + out->start, buffer_length(out), "worker write");
    out->start = out->end = 0;
}

static void worker_run(struct buffer *out, const char *body, size_t length)
{
    struct reader reader = {body, body + length, true};
    size_t id_length, payload_length;
    const char *id = read_field(&reader, &id_length);
    uint32_t attempt = read_u32(&reader);
    (void)read_u64(&reader); /* the timeout: the supervisor enforces it */
    (void)read_field(&reader, &payload_length);
    if (!reader.ok || reader.at != reader.end) fail("worker: malformed run frame");

    uint64_t started = monotonic_microseconds();
    /* The handler of a zero-work "@ok" job: succeed with no output. */
    uint64_t duration = monotonic_microseconds() - started;

    size_t header = frame_begin(out, FRAME_RESULT);
    put_field(out, id, id_length);
    put_u32(out, attempt);
    put_u8(out, 1);
    put_u64(out, duration);
    put_field(out, "", 0);
    frame_end(out, header);
    worker_send(out);
}

static int worker_main(void)
{
    struct buffer in = {0}, out = {0};
    size_t header = frame_begin(&out, FRAME_READY);
    put_u32(&out, (uint32_t)getpid());
    put_u8(&out, PROTOCOL_VERSION);
    frame_end(&out, header);
    worker_send(&out);

    for (;;) {
        char *room = buffer_reserve(&in, 65536);
        ssize_t count = read(WORKER_JOBS_FD, room, in.capacity - in.end);
        if (count == 0) return 0; /* the supervisor is gone */
        if (count < 0) {
            if (errno == EINTR) continue;
            fail_errno("worker read");
        }
        in.end += (size_t)count;
        long frame;
        while ((frame = complete_frame(in.data + in.start, buffer_length(&in))) > 0) {
            const char *bytes = in.data + in.start;
            if (bytes[3] == FRAME_RUN) worker_run(&out, bytes + FRAME_HEADER, (size_t)frame - FRAME_HEADER);
            else if (bytes[3] == FRAME_STOP) return 0;
            buffer_consume(&in, (size_t)frame);
        }
        if (frame < 0) fail("worker: bad frame from the supervisor");
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* Server state                                                                                      */

struct job {
    uint64_t sequence;
    uint32_t attempts;
    uint32_t id_length, payload_length;
    char bytes[]; /* id, then payload */
};

struct worker {
    pid_t pid;
    int jobs_fd;    /* write end of the worker's fd 3 */
    int results_fd; /* read end of the worker's fd 4 */
    bool ready;
    struct job *job; /* the one job in flight, or NULL when idle */
    struct buffer in;
};

struct connection {
    int fd;
    uint32_t generation;
    uint32_t watched; /* epoll events currently registered */
    struct buffer in;  /* received, not yet parsed */
    struct buffer out; /* replies not yet sent, released or held */
    /* Byte counts since the connection opened: sent <= released <= appended. */
    uint64_t appended, released, sent;
    bool done_reading;      /* garbage, Connection: close or EOF: finish the replies, then close */
    bool flush_scheduled;
};

/* A reply that may go out once the journal is durable through `ticket`. */
struct held_reply {
    int fd;
    uint32_t generation;
    uint64_t end; /* the connection's `appended` after this reply */
    uint64_t ticket;
};

struct connection_ref {
    int fd;
    uint32_t generation;
};

/* The background fdatasync thread and what it shares with the loop (under `lock`). */
struct syncer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int file;
    int notify_fd; /* eventfd the thread bumps after each sync */
    uint64_t requested, durable, syncs;
    int error;
    bool stopping;
};

struct journal {
    int fd;
    enum fsync_mode mode;
    bool prealloc;
    struct buffer pending; /* records not written yet */
    uint64_t written;      /* bytes written to the file */
    uint64_t reply_ticket; /* end of the last record a reply depends on (accepted) */
    uint64_t durable;      /* the loop's view: durable (batch) or written (none) through here */
    uint64_t requested;    /* the syncer was last asked for this */
    uint64_t writes;
};

enum token_kind { TOKEN_LISTEN = 1, TOKEN_SIGNAL, TOKEN_SYNC, TOKEN_WORKER, TOKEN_CONNECTION };

static struct {
    int epoll_fd, listen_fd, signal_fd;
    bool stopping;
    struct journal journal;
    struct syncer syncer;
    struct worker workers[MAX_WORKERS];
    int worker_count;
    struct fifo queue; /* struct job *, oldest first */
    struct fifo held;  /* struct held_reply, in ticket order */
    struct connection **connections; /* by fd */
    size_t connection_slots;
    uint32_t next_generation;
    struct connection_ref *flush_list;
    size_t flush_count, flush_capacity;
    struct buffer scratch; /* frames to workers */
    uint64_t accepted, completed, failed, syncs, sequence;
} server;

static uint64_t make_token(enum token_kind kind, uint32_t generation, uint32_t index)
{
    return (uint64_t)kind << 56 | (uint64_t)(generation & 0xFFFFFF) << 32 | index;
}

static void epoll_add(int fd, uint32_t events, uint64_t token)
{
    struct epoll_event event = {.events = events, .data.u64 = token};
    if (epoll_ctl(server.epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) fail_errno("epoll_ctl add");
}

/* ------------------------------------------------------------------------------------------------ */
/* Group commit: fdatasync on a background thread, back to back while there is something to sync.   */

static void *syncer_main(void *argument)
{
    struct syncer *syncer = argument;
    pthread_mutex_lock(&syncer->lock);
    while (!syncer->stopping && syncer->error == 0) {
        if (syncer->requested <= syncer->durable) {
            pthread_cond_wait(&syncer->wake, &syncer->lock);
            continue;
        }
        /* Everything requested so far is in the file: one sync covers it all. */
        uint64_t target = syncer->requested;
        pthread_mutex_unlock(&syncer->lock);
        int error = fdatasync(syncer->file) == 0 ? 0 : errno;
        pthread_mutex_lock(&syncer->lock);
        if (error) syncer->error = error;
        else {
            syncer->durable = target;
            syncer->syncs++;
        }
        pthread_mutex_unlock(&syncer->lock);
        uint64_t one = 1;
        if (write(syncer->notify_fd, &one, sizeof one) < 0) {
            /* Cannot fail short of a counter overflow; the loop would read the progress anyway. */
        }
        pthread_mutex_lock(&syncer->lock);
    }
    pthread_mutex_unlock(&syncer->lock);
    return NULL;
}

static void syncer_start(struct syncer *syncer, int file)
{
    syncer->file = file;
    syncer->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (syncer->notify_fd < 0) fail_errno("eventfd");
    pthread_mutex_init(&syncer->lock, NULL);
    pthread_cond_init(&syncer->wake, NULL);
    int error = pthread_create(&syncer->thread, NULL, syncer_main, syncer);
    if (error) fail("pthread_create: %s", strerror(error));
}

static void syncer_request(struct syncer *syncer, uint64_t through)
{
    pthread_mutex_lock(&syncer->lock);
    if (through > syncer->requested) {
        syncer->requested = through;
        /* No waiter (a sync is running) makes this a no-op without a syscall. */
        pthread_cond_signal(&syncer->wake);
    }
    pthread_mutex_unlock(&syncer->lock);
}

static void syncer_stop(struct syncer *syncer)
{
    pthread_mutex_lock(&syncer->lock);
    syncer->stopping = true;
    pthread_cond_signal(&syncer->wake);
    pthread_mutex_unlock(&syncer->lock);
    pthread_join(syncer->thread, NULL);
    close(syncer->notify_fd);
}

/* ------------------------------------------------------------------------------------------------ */
/* Journal: [u32 body length][u32 CRC-32 of body][body], big-endian, body = kind byte + fields.     */

static void preallocate(int fd)
{
    static char zeros[1 << 20]; /* in .bss, not 1 MiB of the binary */
    for (unsigned written = 0; written < PREALLOC_BYTES; written += sizeof zeros)
        write_all(fd, zeros, sizeof zeros, "journal preallocation");
    /* Size and blocks are committed now, so later fdatasyncs have no metadata to write. */
    if (fsync(fd) < 0) fail_errno("fsync");
}

static void journal_open(const char *path, enum fsync_mode mode, bool prealloc)
{
    struct journal *journal = &server.journal;
    journal->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (journal->fd < 0) fail("open %s: %s", path, strerror(errno));
    journal->mode = mode;
    journal->prealloc = prealloc;
    if (prealloc) preallocate(journal->fd);
}

static size_t record_begin(struct buffer *buffer, uint8_t kind)
{
    size_t header = buffer_length(buffer);
    buffer_reserve(buffer, 8);
    buffer->end += 8;
    put_u8(buffer, kind);
    return header;
}

static void record_end(struct buffer *buffer, size_t header)
{
    char *at = buffer->data + buffer->start + header;
    size_t length = buffer_length(buffer) - header - 8;
    store_u32(at, (uint32_t)length);
    store_u32(at + 4, crc32_of((const unsigned char *)at + 8, length));
}

static void journal_append_accepted(const struct job *job, int64_t now)
{
    struct journal *journal = &server.journal;
    size_t header = record_begin(&journal->pending, RECORD_ACCEPTED);
    put_field(&journal->pending, job->bytes, job->id_length);
    put_field(&journal->pending, job->bytes + job->id_length, job->payload_length);
    put_u32(&journal->pending, 0); /* max_retries */
    put_u64(&journal->pending, job->sequence);
    put_u64(&journal->pending, (uint64_t)now);
    record_end(&journal->pending, header);
    /* The 202 for this job may only go out once the file holds this record durably. */
    journal->reply_ticket = journal->written + buffer_length(&journal->pending);
}

static void journal_append_started(const struct job *job, int64_t now)
{
    struct buffer *pending = &server.journal.pending;
    size_t header = record_begin(pending, RECORD_STARTED);
    put_field(pending, job->bytes, job->id_length);
    put_u32(pending, job->attempts);
    put_u64(pending, (uint64_t)now);
    record_end(pending, header);
}

static void journal_append_succeeded(const struct job *job, int64_t now)
{
    struct buffer *pending = &server.journal.pending;
    size_t header = record_begin(pending, RECORD_SUCCEEDED);
    put_field(pending, job->bytes, job->id_length);
    put_field(pending, "", 0); /* result */
    put_u64(pending, (uint64_t)now);
    record_end(pending, header);
}

static bool journal_replies_wait(void)
{
    return server.journal.reply_ticket > server.journal.durable;
}

/* Writes what is pending (one write) and, in batch mode, asks for a sync if a reply waits on it. */
static void journal_commit(void)
{
    struct journal *journal = &server.journal;
    size_t length = buffer_length(&journal->pending);
    if (length > 0) {
        const char *bytes = journal->pending.data + journal->pending.start;
        if (journal->prealloc) pwrite_all(journal->fd, bytes, length, journal->written, "journal pwrite");
        else write_all(journal->fd, bytes, length, "journal write");
        journal->written += length;
        journal->writes++;
        journal->pending.start = journal->pending.end = 0;
    }
    if (journal->mode == FSYNC_NONE) {
        journal->durable = journal->written;
    } else if (journal_replies_wait() && journal->requested < journal->written) {
        syncer_request(&server.syncer, journal->written);
        journal->requested = journal->written;
    }
}

/* The first reply after a quiet spell starts its sync at once rather than at the end of the iteration. */
static void journal_commit_if_sync_idle(void)
{
    struct journal *journal = &server.journal;
    if (journal->mode == FSYNC_BATCH && journal_replies_wait() && journal->durable >= journal->requested)
        journal_commit();
}

/* ------------------------------------------------------------------------------------------------ */
/* Connections and their output                                                                      */

static struct connection *connection_find(int fd, uint32_t generation)
{
    if (fd < 0 || (size_t)fd >= server.connection_slots) return NULL;
    struct connection *connection = server.connections[fd];
    return connection && connection->generation == generation ? connection : NULL;
}

static void connection_close(struct connection *connection)
{
    /* Closing drops the epoll registration; held replies and flush entries find no connection. */
    close(connection->fd);
    server.connections[connection->fd] = NULL;
    buffer_free(&connection->in);
    buffer_free(&connection->out);
    free(connection);
}

static void connection_watch(struct connection *connection)
{
    uint32_t events = (connection->done_reading ? 0 : EPOLLIN) |
                      (connection->released > connection->sent ? EPOLLOUT : 0);
    if (events == connection->watched) return;
    struct epoll_event event = {
        .events = events,
        .data.u64 = make_token(TOKEN_CONNECTION, connection->generation, (uint32_t)connection->fd)};
    if (epoll_ctl(server.epoll_fd, EPOLL_CTL_MOD, connection->fd, &event) < 0) fail_errno("epoll_ctl mod");
    connection->watched = events;
}

static void schedule_flush(struct connection *connection)
{
    if (connection->flush_scheduled) return;
    connection->flush_scheduled = true;
    if (server.flush_count == server.flush_capacity) {
        server.flush_capacity = server.flush_capacity ? server.flush_capacity * 2 : 64;
        server.flush_list = checked_realloc(server.flush_list, server.flush_capacity * sizeof *server.flush_list);
    }
    server.flush_list[server.flush_count++] = (struct connection_ref){connection->fd, connection->generation};
}

/* One send of everything released; what the socket does not take waits for EPOLLOUT. */
static void connection_send(struct connection *connection)
{
    size_t ready = (size_t)(connection->released - connection->sent);
    if (ready > 0) {
        ssize_t sent = send(connection->fd, connection->out.data + connection->out.start, ready, MSG_NOSIGNAL);
        if (sent < 0 && errno != EAGAIN && errno != EINTR) {
            connection_close(connection);
            return;
        }
        if (sent > 0) {
            buffer_consume(&connection->out, (size_t)sent);
            connection->sent += (uint64_t)sent;
        }
    }
    if (connection->done_reading && connection->sent == connection->appended) {
        connection_close(connection);
        return;
    }
    connection_watch(connection);
}

/* Every reply waits for the journal to be durable through the last record a reply depends on (as in
 * Prefork): that keeps replies on one connection in order and never shows a state the disk lacks. */
static void reply_finished(struct connection *connection, size_t length)
{
    bool nothing_held = connection->released == connection->appended;
    connection->appended += length;
    uint64_t ticket = server.journal.reply_ticket;
    if (nothing_held && ticket <= server.journal.durable) {
        connection->released = connection->appended;
        schedule_flush(connection);
        return;
    }
    struct held_reply held = {connection->fd, connection->generation, connection->appended, ticket};
    fifo_push(&server.held, &held);
}

static void release_durable_replies(void)
{
    struct held_reply *held;
    while ((held = fifo_front(&server.held)) != NULL && held->ticket <= server.journal.durable) {
        struct connection *connection = connection_find(held->fd, held->generation);
        if (connection) {
            connection->released = held->end;
            schedule_flush(connection);
        }
        fifo_pop(&server.held);
    }
}

static void flush_connections(void)
{
    for (size_t index = 0; index < server.flush_count; index++) {
        struct connection *connection =
            connection_find(server.flush_list[index].fd, server.flush_list[index].generation);
        if (!connection) continue;
        connection->flush_scheduled = false;
        connection_send(connection);
    }
    server.flush_count = 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Replies                                                                                           */

static void reply_json(struct connection *connection, const char *status, const char *body, size_t body_length,
                       bool close_after)
{
    struct buffer *out = &connection->out;
    size_t before = buffer_length(out);
    put_literal(out, "HTTP/1.1 ");
    put_bytes(out, status, strlen(status));
    put_literal(out, "\r\nContent-Type: application/json\r\nContent-Length: ");
    put_decimal(out, body_length);
    if (close_after) put_literal(out, "\r\nConnection: close");
    put_literal(out, "\r\n\r\n");
    put_bytes(out, body, body_length);
    if (close_after) connection->done_reading = true;
    reply_finished(connection, buffer_length(out) - before);
}

static void reply_error(struct connection *connection, const char *status, const char *message, bool close_after)
{
    char body[256];
    int length = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", message);
    reply_json(connection, status, body, (size_t)length, close_after);
}

static void reply_stats(struct connection *connection, bool close_after)
{
    char body[128];
    int length = snprintf(body, sizeof body, "{\"accepted\":%llu,\"completed\":%llu,\"syncs\":%llu}",
                          (unsigned long long)server.accepted, (unsigned long long)server.completed,
                          (unsigned long long)server.syncs);
    reply_json(connection, "200 OK", body, (size_t)length, close_after);
}

static bool is_unreserved(unsigned char byte)
{
    return (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') || (byte >= '0' && byte <= '9') ||
           byte == '-' || byte == '.' || byte == '_' || byte == '~';
}

/* Location: /jobs/{id} with the id percent-encoded as one path segment, as Prefork does. */
static void put_path_segment(struct buffer *out, const char *id, size_t length)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t index = 0; index < length; index++) {
        unsigned char byte = (unsigned char)id[index];
        if (is_unreserved(byte)) {
            put_u8(out, byte);
        } else {
            char escape[3] = {'%', hex[byte >> 4], hex[byte & 15]};
            put_bytes(out, escape, 3);
        }
    }
}

/* The job as Prefork's 202 shows it; the id needs no JSON escaping (enqueue refused '"', '\\', controls). */
static void reply_accepted(struct connection *connection, const char *id, size_t id_length, int64_t created,
                           bool close_after)
{
    static const char body_start[] = "{\"id\":\"";
    static const char body_middle[] = "\",\"state\":\"queued\",\"attempts\":0,\"max_retries\":0,"
                                      "\"last_error\":null,\"result\":null,\"created_at\":\"";
    static const char body_updated[] = "\",\"updated_at\":\"";
    static const char body_end[] = "\",\"next_attempt_at\":null}";
    char timestamp[TIMESTAMP_LENGTH];
    format_timestamp(created, timestamp);
    size_t body_length = sizeof body_start - 1 + id_length + sizeof body_middle - 1 + TIMESTAMP_LENGTH +
                         sizeof body_updated - 1 + TIMESTAMP_LENGTH + sizeof body_end - 1;

    struct buffer *out = &connection->out;
    size_t before = buffer_length(out);
    put_literal(out, "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: ");
    put_decimal(out, body_length);
    put_literal(out, "\r\nLocation: /jobs/");
    put_path_segment(out, id, id_length);
    if (close_after) put_literal(out, "\r\nConnection: close");
    put_literal(out, "\r\n\r\n");
    put_literal(out, body_start);
    put_bytes(out, id, id_length);
    put_literal(out, body_middle);
    put_bytes(out, timestamp, TIMESTAMP_LENGTH);
    put_literal(out, body_updated);
    put_bytes(out, timestamp, TIMESTAMP_LENGTH);
    put_literal(out, body_end);
    if (close_after) connection->done_reading = true;
    reply_finished(connection, buffer_length(out) - before);
}

/* ------------------------------------------------------------------------------------------------ */
/* Jobs and workers                                                                                  */

static struct worker *idle_worker(void)
{
    for (int index = 0; index < server.worker_count; index++) {
        struct worker *worker = &server.workers[index];
        if (worker->ready && worker->job == NULL) return worker;
    }
    return NULL;
}

static void start_job(struct worker *worker, struct job *job)
{
    job->attempts++;
    journal_append_started(job, wall_milliseconds());
    worker->job = job;

    struct buffer *frame = &server.scratch;
    size_t header = frame_begin(frame, FRAME_RUN);
    put_field(frame, job->bytes, job->id_length);
    put_u32(frame, job->attempts);
    put_u64(frame, JOB_TIMEOUT_MS);
    put_field(frame, job->bytes + job->id_length, job->payload_length);
    frame_end(frame, header);
    /* The pipe is empty (one job in flight) and frames are far below its 64 KiB, so this never blocks. */
    write_all(worker->jobs_fd, frame->data + frame->start, buffer_length(frame), "write to worker");
    frame->start = frame->end = 0;
}

/* Hands queued jobs, oldest first, to idle workers. */
static void dispatch(void)
{
    struct job **next;
    struct worker *worker;
    while ((next = fifo_front(&server.queue)) != NULL && (worker = idle_worker()) != NULL) {
        struct job *job = *next;
        fifo_pop(&server.queue);
        start_job(worker, job);
    }
}

static void finish_job(struct worker *worker, struct reader *reader)
{
    size_t id_length, output_length;
    const char *id = read_field(reader, &id_length);
    uint32_t attempt = read_u32(reader);
    uint8_t ok = read_u8(reader);
    (void)read_u64(reader); /* duration */
    (void)read_field(reader, &output_length);
    struct job *job = worker->job;
    if (!reader->ok || reader->at != reader->end || !job || attempt != job->attempts ||
        id_length != job->id_length || memcmp(id, job->bytes, id_length) != 0)
        fail("worker %d: result frame for a job it was not running", (int)worker->pid);

    if (ok) {
        journal_append_succeeded(job, wall_milliseconds());
        server.completed++;
    } else {
        server.failed++;
    }
    free(job);
    worker->job = NULL;
    dispatch();
}

static void handle_worker_frame(struct worker *worker, const char *frame, size_t length)
{
    struct reader reader = {frame + FRAME_HEADER, frame + length, true};
    switch (frame[3]) {
    case FRAME_READY:
        (void)read_u32(&reader);
        if (read_u8(&reader) != PROTOCOL_VERSION || !reader.ok) fail("worker %d: bad ready frame", (int)worker->pid);
        worker->ready = true;
        dispatch();
        break;
    case FRAME_RESULT:
        finish_job(worker, &reader);
        break;
    default:
        fail("worker %d: unexpected frame kind %d", (int)worker->pid, frame[3]);
    }
}

static void worker_readable(struct worker *worker)
{
    char *room = buffer_reserve(&worker->in, 4096);
    ssize_t count = read(worker->results_fd, room, worker->in.capacity - worker->in.end);
    if (count == 0) fail("worker %d exited", (int)worker->pid);
    if (count < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        fail_errno("read from worker");
    }
    worker->in.end += (size_t)count;
    long frame;
    while ((frame = complete_frame(worker->in.data + worker->in.start, buffer_length(&worker->in))) > 0) {
        handle_worker_frame(worker, worker->in.data + worker->in.start, (size_t)frame);
        buffer_consume(&worker->in, (size_t)frame);
    }
    if (frame < 0) fail("worker %d: bad frame header", (int)worker->pid);
}

/* Fds 3 and 4 are the worker's; the pipes must not be either, or one dup2 would clobber the other. */
static void make_pipe(int ends[2])
{
    if (pipe2(ends, O_CLOEXEC) < 0) fail_errno("pipe2");
    if (ends[0] <= WORKER_RESULTS_FD || ends[1] <= WORKER_RESULTS_FD) fail("pipe got fd 3 or 4 (fd 0-2 closed?)");
}

/* Our own executable, resolved once: valgrind answers this readlink with the client's path, where
 * spawning "/proc/self/exe" itself would start valgrind's tool binary. */
static const char *own_executable(void)
{
    static char path[4096];
    if (path[0] == 0) {
        ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
        if (length <= 0) fail_errno("readlink /proc/self/exe");
        path[length] = 0;
    }
    return path;
}

static void spawn_worker(int index, const char *program_name)
{
    struct worker *worker = &server.workers[index];
    int jobs[2], results[2];
    make_pipe(jobs);
    make_pipe(results);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, jobs[0], WORKER_JOBS_FD);
    posix_spawn_file_actions_adddup2(&actions, results[1], WORKER_RESULTS_FD);

    /* The loop blocks SIGTERM/SIGINT (signalfd) and ignores SIGPIPE: the worker gets neither. Its own
     * process group keeps a terminal's Ctrl-C for the server, which then stops the workers. */
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

    char *arguments[] = {(char *)program_name, "--worker", NULL};
    int error = posix_spawn(&worker->pid, own_executable(), &actions, &attributes, arguments, environ);
    if (error) fail("posix_spawn: %s", strerror(error));
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);

    close(jobs[0]);
    close(results[1]);
    worker->jobs_fd = jobs[1];
    worker->results_fd = results[0];
    if (fcntl(worker->jobs_fd, F_SETFL, O_NONBLOCK) < 0 || fcntl(worker->results_fd, F_SETFL, O_NONBLOCK) < 0)
        fail_errno("fcntl");
    epoll_add(worker->results_fd, EPOLLIN, make_token(TOKEN_WORKER, 0, (uint32_t)index));
}

static void stop_workers(void)
{
    for (int index = 0; index < server.worker_count; index++) {
        kill(server.workers[index].pid, SIGTERM);
        close(server.workers[index].jobs_fd);
    }
    for (int index = 0; index < server.worker_count; index++) {
        while (waitpid(server.workers[index].pid, NULL, 0) < 0 && errno == EINTR) {
        }
        close(server.workers[index].results_fd);
        buffer_free(&server.workers[index].in);
        free(server.workers[index].job);
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* HTTP/1.1 request parsing                                                                          */

struct request {
    const char *method, *target, *body;
    size_t method_length, target_length, body_length;
    bool close; /* Connection: close, or HTTP/1.0 without keep-alive */
};

enum parse_result { PARSE_INCOMPLETE, PARSE_OK, PARSE_GARBAGE };

static bool equals_ignoring_case(const char *bytes, size_t length, const char *text)
{
    return length == strlen(text) && strncasecmp(bytes, text, length) == 0;
}

static bool equals(const char *bytes, size_t length, const char *text)
{
    return length == strlen(text) && memcmp(bytes, text, length) == 0;
}

static const char *trim_spaces(const char *at, const char *end, const char **trimmed_end)
{
    while (at < end && (*at == ' ' || *at == '\t')) at++;
    while (end > at && (end[-1] == ' ' || end[-1] == '\t')) end--;
    *trimmed_end = end;
    return at;
}

/* "METHOD /target HTTP/1.x"; returns false on garbage. */
static bool parse_request_line(const char *line, const char *end, struct request *request, bool *http10)
{
    const char *at = line;
    while (at < end && *at >= 'A' && *at <= 'Z') at++;
    if (at == line || at == end || *at != ' ') return false;
    request->method = line;
    request->method_length = (size_t)(at - line);
    const char *target = ++at;
    while (at < end && *at > ' ' && *at != 0x7f) at++;
    if (at == target || *target != '/' || at == end || *at != ' ') return false;
    request->target = target;
    request->target_length = (size_t)(at - target);
    at++;
    if (end - at != 8 || memcmp(at, "HTTP/1.", 7) != 0 || (at[7] != '1' && at[7] != '0')) return false;
    *http10 = at[7] == '0';
    return true;
}

static bool parse_content_length(const char *value, const char *end, size_t *length)
{
    if (value == end) return false;
    size_t result = 0;
    for (; value < end; value++) {
        if (*value < '0' || *value > '9') return false;
        result = result * 10 + (size_t)(*value - '0');
        if (result > MAX_BODY_BYTES) return false;
    }
    *length = result;
    return true;
}

/* Parses one request at the start of `data`; on PARSE_OK, `consumed` is its size with the body. */
static enum parse_result parse_request(const char *data, size_t length, struct request *request, size_t *consumed)
{
    size_t search = length < MAX_HEADER_BYTES ? length : MAX_HEADER_BYTES;
    const char *head_end = memmem(data, search, "\r\n\r\n", 4);
    if (!head_end) return length >= MAX_HEADER_BYTES ? PARSE_GARBAGE : PARSE_INCOMPLETE;

    const char *line_end = memchr(data, '\n', (size_t)(head_end + 2 - data));
    bool http10 = false;
    if (!line_end || line_end == data || line_end[-1] != '\r' || !parse_request_line(data, line_end - 1, request, &http10))
        return PARSE_GARBAGE;

    bool have_length = false, keep_alive = false, close = false;
    size_t body_length = 0;
    for (const char *line = line_end + 1; line < head_end + 2; line = line_end + 1) {
        line_end = memchr(line, '\n', (size_t)(head_end + 2 - line));
        if (!line_end || line_end[-1] != '\r') return PARSE_GARBAGE;
        const char *colon = memchr(line, ':', (size_t)(line_end - line));
        if (!colon || colon == line) return PARSE_GARBAGE;
        const char *value_end, *value = trim_spaces(colon + 1, line_end - 1, &value_end);
        size_t name_length = (size_t)(colon - line), value_length = (size_t)(value_end - value);
        if (equals_ignoring_case(line, name_length, "content-length")) {
            if (have_length || !parse_content_length(value, value_end, &body_length)) return PARSE_GARBAGE;
            have_length = true;
        } else if (equals_ignoring_case(line, name_length, "transfer-encoding")) {
            return PARSE_GARBAGE; /* chunked bodies are not part of the benchmark */
        } else if (equals_ignoring_case(line, name_length, "connection")) {
            close = close || equals_ignoring_case(value, value_length, "close");
            keep_alive = keep_alive || equals_ignoring_case(value, value_length, "keep-alive");
        }
    }
    size_t head_length = (size_t)(head_end + 4 - data);
    if (length - head_length < body_length) return PARSE_INCOMPLETE;
    request->body = head_end + 4;
    request->body_length = body_length;
    request->close = close || (http10 && !keep_alive);
    *consumed = head_length + body_length;
    return PARSE_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* The enqueue body: a simple scan, not a JSON parser.                                               */

static const char *skip_space(const char *at, const char *end)
{
    while (at < end && (*at == ' ' || *at == '\t' || *at == '\r' || *at == '\n')) at++;
    return at;
}

/* Finds "key": "value" and returns the value; a value with escapes or control characters is refused. */
static bool json_string_field(const char *body, size_t length, const char *key, const char **value,
                              size_t *value_length)
{
    const char *end = body + length;
    size_t key_length = strlen(key);
    for (const char *at = body; at < end;) {
        const char *found = memmem(at, (size_t)(end - at), key, key_length);
        if (!found) return false;
        at = found + key_length;
        if (found == body || found[-1] != '"' || at >= end || *at != '"') continue;
        at = skip_space(at + 1, end);
        if (at >= end || *at != ':') continue;
        at = skip_space(at + 1, end);
        if (at >= end || *at != '"') return false;
        const char *start = ++at;
        while (at < end && *at != '"') {
            if (*at == '\\' || (unsigned char)*at < 0x20) return false;
            at++;
        }
        if (at >= end) return false;
        *value = start;
        *value_length = (size_t)(at - start);
        return true;
    }
    return false;
}

static bool looks_like_object(const char *body, size_t length)
{
    const char *end = body + length;
    const char *at = skip_space(body, end);
    while (end > at && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n')) end--;
    return end - at >= 2 && *at == '{' && end[-1] == '}';
}

/* ------------------------------------------------------------------------------------------------ */
/* Routes                                                                                            */

static void handle_enqueue(struct connection *connection, const struct request *request)
{
    const char *id, *payload;
    size_t id_length, payload_length;
    if (!looks_like_object(request->body, request->body_length) ||
        !json_string_field(request->body, request->body_length, "id", &id, &id_length) ||
        !json_string_field(request->body, request->body_length, "payload", &payload, &payload_length)) {
        reply_error(connection, "400 Bad Request", "body must be a JSON object with string fields id and payload",
                    request->close);
        return;
    }
    if (id_length == 0 || id_length > MAX_ID_BYTES || payload_length > MAX_PAYLOAD_BYTES) {
        reply_error(connection, "400 Bad Request", "id must be 1 to 128 bytes, payload at most 32768", request->close);
        return;
    }

    int64_t now = wall_milliseconds();
    struct job *job = checked_realloc(NULL, sizeof *job + id_length + payload_length);
    *job = (struct job){.sequence = ++server.sequence, .id_length = (uint32_t)id_length,
                        .payload_length = (uint32_t)payload_length};
    memcpy(job->bytes, id, id_length);
    memcpy(job->bytes + id_length, payload, payload_length);
    journal_append_accepted(job, now);
    server.accepted++;
    fifo_push(&server.queue, &job);
    dispatch();
    journal_commit_if_sync_idle();
    reply_accepted(connection, id, id_length, now, request->close);
}

static void handle_request(struct connection *connection, const struct request *request)
{
    const char *target = request->target, *method = request->method;
    size_t target_length = request->target_length, method_length = request->method_length;
    if (equals(target, target_length, "/enqueue")) {
        if (equals(method, method_length, "POST")) handle_enqueue(connection, request);
        else reply_error(connection, "405 Method Not Allowed", "use POST", request->close);
    } else if (equals(target, target_length, "/stats")) {
        if (equals(method, method_length, "GET")) reply_stats(connection, request->close);
        else reply_error(connection, "405 Method Not Allowed", "use GET", request->close);
    } else {
        reply_error(connection, "404 Not Found", "not found", request->close);
    }
}

/* Handles every complete request in the input, pipelined ones included. */
static void process_input(struct connection *connection)
{
    struct buffer *in = &connection->in;
    while (!connection->done_reading && buffer_length(in) > 0) {
        struct request request = {0};
        size_t consumed = 0;
        enum parse_result result = parse_request(in->data + in->start, buffer_length(in), &request, &consumed);
        if (result == PARSE_INCOMPLETE) break;
        if (result == PARSE_GARBAGE) {
            reply_error(connection, "400 Bad Request", "malformed request", true);
            break;
        }
        /* The request points into `in`, which nothing below appends to. */
        handle_request(connection, &request);
        buffer_consume(in, consumed);
    }
    if (connection->done_reading) in->start = in->end = 0;
}

static void connection_readable(struct connection *connection)
{
    struct buffer *in = &connection->in;
    buffer_reserve(in, READ_ROOM);
    ssize_t count = recv(connection->fd, in->data + in->end, in->capacity - in->end, 0);
    if (count < 0) {
        if (errno != EAGAIN && errno != EINTR) connection_close(connection);
        return;
    }
    if (count == 0) {
        /* The client sent all it will; answer what it asked, then close. */
        connection->done_reading = true;
    } else {
        in->end += (size_t)count;
        process_input(connection);
    }
    if (connection->appended - connection->sent > MAX_UNSENT_BYTES) {
        connection_close(connection);
    } else if (connection->done_reading) {
        /* Replies still to go out leave with the end-of-iteration flush, which then closes. */
        if (connection->sent == connection->appended) connection_close(connection);
        else connection_watch(connection);
    }
}

static void connection_event(uint32_t generation, int fd, uint32_t events)
{
    struct connection *connection = connection_find(fd, generation);
    if (!connection) return; /* closed earlier in this batch */
    if (events & (EPOLLERR | EPOLLHUP)) {
        /* Reset or fully closed: nothing we send can arrive. */
        connection_close(connection);
        return;
    }
    if (events & EPOLLOUT) schedule_flush(connection);
    if (events & EPOLLIN) connection_readable(connection);
}

static void connection_open(int fd)
{
    if ((size_t)fd >= server.connection_slots) {
        size_t slots = server.connection_slots ? server.connection_slots : 1024;
        while (slots <= (size_t)fd) slots *= 2;
        server.connections = checked_realloc(server.connections, slots * sizeof *server.connections);
        memset(server.connections + server.connection_slots, 0,
               (slots - server.connection_slots) * sizeof *server.connections);
        server.connection_slots = slots;
    }
    struct connection *connection = checked_realloc(NULL, sizeof *connection);
    server.next_generation = (server.next_generation + 1) & 0xFFFFFF;
    *connection = (struct connection){.fd = fd, .generation = server.next_generation, .watched = EPOLLIN};
    server.connections[fd] = connection;
    epoll_add(fd, EPOLLIN, make_token(TOKEN_CONNECTION, connection->generation, (uint32_t)fd));
}

static void accept_connections(void)
{
    for (;;) {
        int fd = accept4(server.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) perror("limit: accept4");
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        connection_open(fd);
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* The event loop                                                                                    */

/* A sync finished: take its progress, write what gathered meanwhile and start the next sync at once. */
static void sync_finished(void)
{
    uint64_t count;
    if (read(server.syncer.notify_fd, &count, sizeof count) < 0 && errno != EAGAIN) fail_errno("read eventfd");
    pthread_mutex_lock(&server.syncer.lock);
    uint64_t durable = server.syncer.durable;
    int error = server.syncer.error;
    server.syncs = server.syncer.syncs;
    pthread_mutex_unlock(&server.syncer.lock);
    if (error) fail("fdatasync: %s", strerror(error));
    if (durable > server.journal.durable) server.journal.durable = durable;
    journal_commit();
    release_durable_replies();
}

static void signal_received(void)
{
    struct signalfd_siginfo info;
    while (read(server.signal_fd, &info, sizeof info) == sizeof info) server.stopping = true;
}

static void handle_event(const struct epoll_event *event)
{
    uint64_t token = event->data.u64;
    uint32_t index = (uint32_t)token;
    switch ((enum token_kind)(token >> 56)) {
    case TOKEN_LISTEN: accept_connections(); break;
    case TOKEN_SIGNAL: signal_received(); break;
    case TOKEN_SYNC: sync_finished(); break;
    case TOKEN_WORKER: worker_readable(&server.workers[index]); break;
    case TOKEN_CONNECTION: connection_event((uint32_t)(token >> 32) & 0xFFFFFF, (int)index, event->events); break;
    }
}

static void run_loop(void)
{
    struct epoll_event events[EPOLL_BATCH];
    while (!server.stopping) {
        int count = epoll_wait(server.epoll_fd, events, EPOLL_BATCH, -1);
        if (count < 0) {
            if (errno == EINTR) continue;
            fail_errno("epoll_wait");
        }
        for (int index = 0; index < count; index++) handle_event(&events[index]);
        /* Once per iteration: one journal write, then the replies it made durable (none) or that a sync
         * released, one send per connection. */
        journal_commit();
        release_durable_replies();
        flush_connections();
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* Setup and shutdown                                                                                */

struct options {
    int port, workers;
    enum fsync_mode fsync;
    bool prealloc;
    const char *journal;
};

static void usage(void)
{
    fail("usage: limit --port N --workers N --fsync none|batch [--prealloc] --journal PATH");
}

static struct options parse_options(int argc, char **argv)
{
    struct options options = {.port = -1, .workers = 0, .fsync = FSYNC_NONE};
    bool have_fsync = false;
    for (int index = 1; index < argc; index++) {
        const char *name = argv[index], *value = index + 1 < argc ? argv[index + 1] : NULL;
        if (strcmp(name, "--prealloc") == 0) {
            options.prealloc = true;
            continue;
        }
        if (!value) usage();
        index++;
        if (strcmp(name, "--port") == 0) options.port = atoi(value);
        else if (strcmp(name, "--workers") == 0) options.workers = atoi(value);
        else if (strcmp(name, "--journal") == 0) options.journal = value;
        else if (strcmp(name, "--fsync") == 0) {
            have_fsync = true;
            if (strcmp(value, "none") == 0) options.fsync = FSYNC_NONE;
            else if (strcmp(value, "batch") == 0) options.fsync = FSYNC_BATCH;
            else usage();
        } else usage();
    }
    if (options.port < 0 || options.port > 65535 || options.workers < 1 || options.workers > MAX_WORKERS ||
        !options.journal || !have_fsync)
        usage();
    return options;
}

static int listen_on_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail_errno("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) fail_errno("bind");
    if (listen(fd, SOMAXCONN) < 0) fail_errno("listen");
    socklen_t length = sizeof address;
    if (getsockname(fd, (struct sockaddr *)&address, &length) < 0) fail_errno("getsockname");
    printf("port %d\n", ntohs(address.sin_port));
    fflush(stdout);
    return fd;
}

/* SIGTERM/SIGINT arrive on a signalfd; blocked before the sync thread starts so it never takes them. */
static int watch_signals(void)
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &signals, NULL) < 0) fail_errno("sigprocmask");
    signal(SIGPIPE, SIG_IGN); /* a dead worker's pipe fails the write instead */
    int fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) fail_errno("signalfd");
    return fd;
}

static void shut_down(void)
{
    /* As Prefork at exit: write what is pending and make it durable. */
    journal_commit();
    if (server.journal.mode == FSYNC_BATCH) {
        syncer_stop(&server.syncer);
        server.syncs = server.syncer.syncs;
        if (server.journal.written > server.syncer.durable && fdatasync(server.journal.fd) < 0)
            fail_errno("fdatasync");
    }
    stop_workers();
    printf("accepted %llu completed %llu syncs %llu\n", (unsigned long long)server.accepted,
           (unsigned long long)server.completed, (unsigned long long)server.syncs);
    fflush(stdout);
    fprintf(stderr, "limit: journal %llu bytes in %llu writes; %llu failed attempts\n",
            (unsigned long long)server.journal.written, (unsigned long long)server.journal.writes,
            (unsigned long long)server.failed);

    for (size_t fd = 0; fd < server.connection_slots; fd++)
        if (server.connections[fd]) connection_close(server.connections[fd]);
    struct job **job;
    while ((job = fifo_front(&server.queue)) != NULL) {
        free(*job);
        fifo_pop(&server.queue);
    }
    free(server.connections);
    free(server.flush_list);
    free(server.queue.items);
    free(server.held.items);
    buffer_free(&server.scratch);
    buffer_free(&server.journal.pending);
    close(server.journal.fd);
    close(server.listen_fd);
    close(server.signal_fd);
    close(server.epoll_fd);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--worker") == 0) return worker_main();
    struct options options = parse_options(argc, argv);
    crc32_init();
    server.queue.item_size = sizeof(struct job *);
    server.held.item_size = sizeof(struct held_reply);

    journal_open(options.journal, options.fsync, options.prealloc);
    server.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (server.epoll_fd < 0) fail_errno("epoll_create1");
    server.signal_fd = watch_signals();
    epoll_add(server.signal_fd, EPOLLIN, make_token(TOKEN_SIGNAL, 0, 0));
    if (options.fsync == FSYNC_BATCH) {
        syncer_start(&server.syncer, server.journal.fd);
        epoll_add(server.syncer.notify_fd, EPOLLIN, make_token(TOKEN_SYNC, 0, 0));
    }
    server.worker_count = options.workers;
    for (int index = 0; index < options.workers; index++) spawn_worker(index, argv[0]);
    server.listen_fd = listen_on_loopback(options.port);
    epoll_add(server.listen_fd, EPOLLIN, make_token(TOKEN_LISTEN, 0, 0));

    run_loop();
    shut_down();
    return 0;
}
