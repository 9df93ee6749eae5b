"""Write Prefork workers in Python: the worker side of the Prefork worker protocol, version 3.

A Prefork supervisor configured with ``"handler": "program"`` keeps N copies of your program running
and hands each one job at a time. Expensive set-up (imports, models, tables) runs once per process, at
module level, before :func:`run` is called; every job after that is served warm::

    import prefork_worker

    MODEL = load_model()              # once per worker process, before it says ready

    def handle(job):                  # job.id: str, job.payload: bytes, job.attempt: int (from 1)
        job.progress(50, "half way")  # optional
        return b"..."                 # bytes or str: the job's result; None: an empty result

    prefork_worker.run(handle)        # says ready, serves jobs, never returns

Public API (nothing else in this module is public):

``run(handle)``
    Sends ``ready``, then for every ``run`` frame calls ``handle(job)`` and answers with one ``result``
    frame. It never returns: after a ``stop`` frame or end of file on the job pipe it ends the process
    with ``sys.exit(0)`` (``finally`` blocks and ``atexit`` handlers run). If the supervisor sends
    anything it cannot understand it writes one line to stderr and exits with status 3. If the
    supervisor is gone (EPIPE on the result pipe) it exits 0 at once and quietly. Started without the
    supervisor's pipes on file descriptors 3 and 4 (by hand, say) it exits with status 2 and a message.

``Job``
    What ``handle`` receives: ``id`` (str), ``payload`` (bytes), ``attempt`` (int, from 1),
    ``timeout_ms`` (int, 0 = no timeout), ``deadline`` (a ``time.monotonic()`` value past which the
    supervisor kills the worker, or None) and ``progress(percent, note="")``, which reports 0-100
    percent (ValueError otherwise) with a note cut to 200 UTF-8 bytes, sent at once. ``progress`` may
    be called from any thread, but only while ``handle`` runs (RuntimeError afterwards).

What ``handle`` does decides the attempt:

* returns bytes (or bytearray / memoryview) or str (sent as UTF-8): success with that result;
  None: success with an empty result;
* returns anything else: the attempt fails with
  ``TypeError: handle() must return bytes, str or None, got <type>``;
* raises an ``Exception``: the attempt fails with ``"<Type>: <message>"`` (``ValueError: boom``,
  ``json.decoder.JSONDecodeError: ...``; just ``<Type>`` when the message is empty) and the last
  4096 bytes of the traceback go to the result's ``detail``; the worker stays up;
* raises a ``BaseException`` that is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``...):
  not caught; the interpreter ends and the supervisor counts a crash and replaces the worker.

A result (or error message) longer than the run's ``max_output_bytes`` is cut to that many bytes (at
a character boundary when it is UTF-8 text) and flagged as truncated. ``print()`` output goes to the
supervisor's log (one ``worker_output`` line per line, tagged with the running job), never into a
result; the SDK flushes stdout and stderr before each result so that lines are tagged with their job.
File descriptors 3 and 4 are made close-on-exec, so commands the handler starts do not inherit them.

The protocol itself is described in docs/worker-protocol.md of the Prefork repository.
"""

import errno
import fcntl
import os
import platform
import stat
import struct
import sys
import threading
import time
import traceback

__version__ = "0.9.0"
__all__ = ["run", "Job", "PROTOCOL_VERSION"]

#: The worker protocol version this module speaks (the third byte of every frame header).
PROTOCOL_VERSION = 3

_JOB_FD = 3  # frames from the supervisor
_RESULT_FD = 4  # frames to the supervisor

_MAGIC = b"PF"
_HEADER = struct.Struct(">2sBBI")  # magic, version, kind, body length
_MAX_BODY = 8 * 1024 * 1024
_MAX_NOTE = 200
_MAX_DETAIL = 4096

_READY, _RUN, _RESULT, _STOP, _PROGRESS = 1, 2, 3, 4, 5
_KIND_NAMES = {_READY: "ready", _RUN: "run", _RESULT: "result", _STOP: "stop", _PROGRESS: "progress"}

_FLAG_TRUNCATED = 0x01

_write_lock = threading.Lock()


class _ProtocolError(Exception):
    """The supervisor sent something this worker cannot understand."""


# -- encoding --------------------------------------------------------------------------------------


def _frame(kind, body):
    if len(body) > _MAX_BODY:
        raise ValueError("frame body of %d bytes exceeds the limit of %d" % (len(body), _MAX_BODY))
    return _HEADER.pack(_MAGIC, PROTOCOL_VERSION, kind, len(body)) + body


def _field(data):
    return struct.pack(">I", len(data)) + data


def _ready_body(pid, version):
    return struct.pack(">iB", pid, PROTOCOL_VERSION) + _field(version.encode("utf-8"))


def _result_body(job_id, attempt, ok, duration_us, output, flags, detail):
    return b"".join(
        (
            _field(job_id.encode("utf-8")),
            struct.pack(">IBQ", attempt, 1 if ok else 0, duration_us),
            _field(output),
            struct.pack(">B", flags),
            _field(detail),
        )
    )


def _progress_body(job_id, attempt, percent, note):
    return b"".join(
        (_field(job_id.encode("utf-8")), struct.pack(">IB", attempt, percent), _field(note.encode("utf-8")))
    )


def _cut_head(data, limit, text):
    """The first ``limit`` bytes of ``data``; when ``text``, backed off to a UTF-8 character boundary."""
    if len(data) <= limit:
        return data
    end = limit
    if text:
        while end > 0 and (data[end] & 0xC0) == 0x80:
            end -= 1
    return data[:end]


def _cut_tail(data, limit):
    """The last ``limit`` bytes of UTF-8 ``data``, starting at a character boundary."""
    if len(data) <= limit:
        return data
    start = len(data) - limit
    while start < len(data) and (data[start] & 0xC0) == 0x80:
        start += 1
    return data[start:]


def _is_utf8(data):
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- decoding --------------------------------------------------------------------------------------


class _Reader(object):
    def __init__(self, body, kind):
        self.body = body
        self.offset = 0
        self.kind = kind

    def take(self, count, field):
        end = self.offset + count
        if end > len(self.body):
            raise _ProtocolError("%s frame truncated in field %s" % (self.kind, field))
        chunk = self.body[self.offset : end]
        self.offset = end
        return chunk

    def integer(self, fmt, field):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, field))[0]

    def data(self, field):
        return bytes(self.take(self.integer(">I", field + " length"), field))

    def text(self, field):
        raw = self.data(field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _ProtocolError("%s frame field %s is not valid UTF-8" % (self.kind, field))

    def finish(self):
        if self.offset != len(self.body):
            raise _ProtocolError(
                "%s frame has %d trailing bytes" % (self.kind, len(self.body) - self.offset)
            )


def _decode_run(body):
    """A ``run`` body as (job_id, attempt, timeout_ms, payload, jobs_waiting, max_output_bytes)."""
    reader = _Reader(body, "run")
    job_id = reader.text("job_id")
    attempt = reader.integer(">I", "attempt")
    timeout_ms = reader.integer(">Q", "timeout_ms")
    payload = reader.data("payload")
    jobs_waiting = reader.integer(">B", "jobs_waiting")
    if jobs_waiting > 1:
        raise _ProtocolError("run frame field jobs_waiting is %d (must be 0 or 1)" % jobs_waiting)
    max_output = reader.integer(">I", "max_output_bytes")
    reader.finish()
    return job_id, attempt, timeout_ms, payload, jobs_waiting == 1, max_output


# -- pipe I/O ---------------------------------------------------------------------------------------


def _read_exact(count, what):
    """Exactly ``count`` bytes from the job pipe; None on end of file before the first byte."""
    buffer = bytearray()
    while len(buffer) < count:
        try:
            chunk = os.read(_JOB_FD, min(count - len(buffer), 1 << 20))
        except InterruptedError:
            continue
        if not chunk:
            if not buffer:
                return None
            raise _ProtocolError(
                "end of file in the middle of a %s (%d of %d bytes)" % (what, len(buffer), count)
            )
        buffer += chunk
    return bytes(buffer)


def _read_frame():
    """The next (kind, body) from the supervisor, or None on a clean end of file."""
    header = _read_exact(_HEADER.size, "frame header")
    if header is None:
        return None
    magic, version, kind, length = _HEADER.unpack(header)
    if magic != _MAGIC:
        raise _ProtocolError("bad frame magic 0x%s (expected 0x5046 'PF')" % magic.hex())
    if version != PROTOCOL_VERSION:
        raise _ProtocolError(
            "the supervisor speaks worker protocol version %d, this worker (prefork-python %s) speaks "
            "version %d" % (version, __version__, PROTOCOL_VERSION)
        )
    if kind not in (_RUN, _STOP):
        name = _KIND_NAMES.get(kind)
        if name is None:
            raise _ProtocolError("unknown frame kind %d" % kind)
        raise _ProtocolError("unexpected %s frame (kind %d) from the supervisor" % (name, kind))
    if length > _MAX_BODY:
        raise _ProtocolError("frame body of %d bytes exceeds the limit of %d" % (length, _MAX_BODY))
    body = _read_exact(length, "%s frame body" % _KIND_NAMES[kind]) if length else b""
    if body is None:
        raise _ProtocolError(
            "end of file in the middle of a %s frame body (0 of %d bytes)" % (_KIND_NAMES[kind], length)
        )
    return kind, body


def _supervisor_gone():
    """EPIPE on the result pipe: nobody will read what we write. Exit 0 without a word."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    except OSError:
        pass
    os._exit(0)


def _write_frame(kind, body):
    with _write_lock:
        _write_frame_locked(kind, body)


def _write_frame_locked(kind, body):
    """Writes one whole frame to the result pipe; the caller holds ``_write_lock``."""
    data = memoryview(_frame(kind, body))
    while data:
        try:
            written = os.write(_RESULT_FD, data)
        except InterruptedError:
            continue
        except BrokenPipeError:
            _supervisor_gone()
        data = data[written:]


def _flush_std_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


# -- jobs -------------------------------------------------------------------------------------------


class Job(object):
    """One attempt of a job, as passed to ``handle``."""

    __slots__ = ("id", "payload", "attempt", "timeout_ms", "deadline", "_active")

    def __init__(self, job_id, payload, attempt, timeout_ms, deadline):
        #: The job's id (str).
        self.id = job_id
        #: The job's payload (bytes).
        self.payload = payload
        #: Which attempt this is, from 1.
        self.attempt = attempt
        #: How long the attempt may run in milliseconds; 0 means no timeout.
        self.timeout_ms = timeout_ms
        #: ``time.monotonic()`` value at which the supervisor kills the worker, or None.
        self.deadline = deadline
        self._active = True

    def progress(self, percent, note=""):
        """Report ``percent`` (0-100) done and an optional ``note`` (cut to 200 UTF-8 bytes), at once."""
        if isinstance(percent, bool) or not isinstance(percent, (int, float)):
            raise TypeError("progress percent must be a number, got %s" % _type_name(type(percent)))
        if not 0 <= percent <= 100:
            raise ValueError("progress percent must be between 0 and 100, got %r" % (percent,))
        if not isinstance(note, str):
            raise TypeError("progress note must be a str, got %s" % _type_name(type(note)))
        raw = _cut_head(note.encode("utf-8", "replace"), _MAX_NOTE, True)
        body = _progress_body(self.id, self.attempt, int(percent), raw.decode("utf-8"))
        with _write_lock:
            # Checked under the lock: a progress frame never follows the job's result.
            if not self._active:
                raise RuntimeError("job %r attempt %d is no longer running" % (self.id, self.attempt))
            _write_frame_locked(_PROGRESS, body)

    def __repr__(self):
        return "Job(id=%r, attempt=%d, payload=<%d bytes>, timeout_ms=%d)" % (
            self.id,
            self.attempt,
            len(self.payload),
            self.timeout_ms,
        )


def _type_name(cls):
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None) or cls.__name__
    if not module or module == "builtins":
        return name
    return "%s.%s" % (module, name)


def _failure_message(exc):
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable %s>" % type(exc).__name__
    name = _type_name(type(exc))
    return "%s: %s" % (name, message) if message else name


def _traceback_text(exc):
    tb = exc.__traceback__
    # Leave out the SDK's own frame (the call to handle).
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__ and tb.tb_next is not None:
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:
        text = "(traceback unavailable)\n"
    raw = text.encode("utf-8", "replace")
    if len(raw) > _MAX_DETAIL:
        marker = b"...\n"
        raw = marker + _cut_tail(raw, _MAX_DETAIL - len(marker))
    return raw


def _serve_one(handle, body):
    job_id, attempt, timeout_ms, payload, _jobs_waiting, max_output = _decode_run(body)
    started = time.monotonic()
    job = Job(job_id, payload, attempt, timeout_ms, started + timeout_ms / 1000.0 if timeout_ms else None)
    detail = b""
    started_ns = time.monotonic_ns()
    try:
        try:
            value = handle(job)
        except Exception as exc:
            ok, output, text = False, _failure_message(exc).encode("utf-8", "replace"), True
            detail = _traceback_text(exc)
        else:
            if value is None:
                ok, output, text = True, b"", True
            elif isinstance(value, str):
                ok, output, text = True, value.encode("utf-8", "replace"), True
            elif isinstance(value, (bytes, bytearray, memoryview)):
                ok, output, text = True, bytes(value), None
            else:
                message = "TypeError: handle() must return bytes, str or None, got %s" % _type_name(type(value))
                ok, output, text = False, message.encode("utf-8"), True
            value = None
    finally:
        with _write_lock:
            job._active = False
    duration_us = (time.monotonic_ns() - started_ns) // 1000

    # Cut the output to max_output_bytes (0: no limit of its own) and so that the frame fits 8 MiB.
    fixed = 4 + len(job_id.encode("utf-8")) + 4 + 1 + 8 + 4 + 1 + 4 + len(detail)
    limit = max(0, _MAX_BODY - fixed)
    if max_output:
        limit = min(limit, max_output)
    flags = 0
    if len(output) > limit:
        if text is None:
            text = _is_utf8(output)
        output = _cut_head(output, limit, text)
        flags |= _FLAG_TRUNCATED

    _flush_std_streams()
    _write_frame(_RESULT, _result_body(job_id, attempt, ok, duration_us, output, flags, detail))


# -- the loop ---------------------------------------------------------------------------------------


def _fail(status, message):
    _flush_std_streams()
    try:
        sys.stderr.write("prefork_worker: %s\n" % message)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    sys.exit(status)


def _pipe_fd_ok(fd, want_write):
    try:
        mode = os.fstat(fd).st_mode
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError:
        return False
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return False
    access = flags & os.O_ACCMODE
    if want_write:
        return access in (os.O_WRONLY, os.O_RDWR)
    return access in (os.O_RDONLY, os.O_RDWR)


def _protect_fds():
    for fd in (_JOB_FD, _RESULT_FD):
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass


def _version_string():
    return "prefork-python %s (%s %s)" % (
        __version__,
        platform.python_implementation(),
        platform.python_version(),
    )


def run(handle):
    """Say ``ready`` and serve jobs with ``handle(job)`` until the supervisor says stop; never returns."""
    if not callable(handle):
        raise TypeError("run() needs a callable handle(job), got %s" % _type_name(type(handle)))
    if not (_pipe_fd_ok(_JOB_FD, False) and _pipe_fd_ok(_RESULT_FD, True)):
        _fail(
            2,
            "file descriptors 3 (jobs) and 4 (results) are not the supervisor's pipes: this program "
            'must be started by prefork with "handler": "program" (see docs/worker-protocol.md)',
        )
    _protect_fds()
    announced = os.environ.get("PREFORK_PROTOCOL")
    if announced is not None and announced.strip() != str(PROTOCOL_VERSION):
        _fail(
            3,
            "the supervisor speaks worker protocol version %s, this worker (prefork-python %s) speaks "
            "version %d: install a matching prefork_worker" % (announced, __version__, PROTOCOL_VERSION),
        )
    try:
        # One write per line, so print() output reaches the log tagged with the job that printed it.
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError, OSError):
        pass

    _write_frame(_READY, _ready_body(os.getpid(), _version_string()))
    while True:
        try:
            frame = _read_frame()
            if frame is None:
                break
            kind, body = frame
            if kind == _STOP:
                if body:
                    raise _ProtocolError("stop frame with a %d-byte body (must be empty)" % len(body))
                break
            _serve_one(handle, body)
        except _ProtocolError as error:
            _fail(3, "protocol error: %s" % error)
    _flush_std_streams()
    sys.exit(0)


# Keep the pipes out of anything started during warm-up, too, when running under the supervisor.
if "PREFORK_PROTOCOL" in os.environ:
    _protect_fds()
