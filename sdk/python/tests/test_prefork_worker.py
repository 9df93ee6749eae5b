"""Tests of prefork_worker against a fake supervisor.

Run from the repository root:  python3 -m unittest discover -s sdk/python/tests -v

Each test starts a real worker process with the job pipe on fd 3 and the result pipe on fd 4, as the
supervisor does, and speaks protocol version 3 to it with an encoder and decoder written here from the
protocol description (docs/worker-protocol.md), independently of the SDK's own. Every read and every wait
has a timeout, so a broken SDK fails a test instead of hanging the run.
"""

import json
import os
import platform
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(SDK_DIR))
EXAMPLE_WORKER = os.path.join(REPO_ROOT, "examples", "python", "worker.py")
PROTOCOL_DOC = os.path.join(REPO_ROOT, "docs", "worker-protocol.md")

sys.dont_write_bytecode = True  # keep the SDK directory free of __pycache__
sys.path.insert(0, SDK_DIR)
import prefork_worker  # noqa: E402  (only for its version and the cross-checks of its encoder)

TIMEOUT = 30.0  # generous: only a broken SDK waits this long, and a loaded machine must not fail a test
MAX_BODY = 8 * 1024 * 1024
READY, RUN, RESULT, STOP, PROGRESS = 1, 2, 3, 4, 5

# -- an encoder and decoder of protocol version 3, written from the protocol description ---------------


def frame(kind, body, version=3, magic=b"PF"):
    return magic + bytes([version, kind]) + struct.pack(">I", len(body)) + body


def field(data):
    return struct.pack(">I", len(data)) + data


def run_body(job_id, payload, attempt=1, timeout_ms=0, jobs_waiting=0, max_output_bytes=0):
    return (
        field(job_id.encode("utf-8"))
        + struct.pack(">IQ", attempt, timeout_ms)
        + field(payload)
        + struct.pack(">BI", jobs_waiting, max_output_bytes)
    )


class Body(object):
    def __init__(self, data):
        self.data = data
        self.at = 0

    def take(self, n):
        assert self.at + n <= len(self.data), "body truncated"
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def int(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def bytes(self):
        return self.take(self.int(">I"))

    def str(self):
        return self.bytes().decode("utf-8")

    def end(self):
        assert self.at == len(self.data), "%d trailing bytes" % (len(self.data) - self.at)


def decode_ready(body):
    b = Body(body)
    out = {"pid": b.int(">i"), "protocol": b.int(">B"), "version": b.str()}
    b.end()
    return out


def decode_run(body):
    b = Body(body)
    out = {
        "job_id": b.str(),
        "attempt": b.int(">I"),
        "timeout_ms": b.int(">Q"),
        "payload": b.bytes(),
        "jobs_waiting": b.int(">B"),
        "max_output_bytes": b.int(">I"),
    }
    b.end()
    return out


def decode_result(body):
    b = Body(body)
    out = {
        "job_id": b.str(),
        "attempt": b.int(">I"),
        "ok": b.int(">B"),
        "duration_us": b.int(">Q"),
        "output": b.bytes(),
        "flags": b.int(">B"),
        "detail": b.bytes(),
    }
    b.end()
    return out


def decode_progress(body):
    b = Body(body)
    out = {"job_id": b.str(), "attempt": b.int(">I"), "percent": b.int(">B"), "note": b.str()}
    b.end()
    return out


# -- the worker under test ------------------------------------------------------------------------------

WORKER_SCRIPT = textwrap.dedent(
    r'''
    import json, os, sys, time
    import prefork_worker

    COUNT = 0          # module-level state: must survive from job to job
    SAVED = []
    print("warming up")  # stdout during warm-up: goes to the log, never to fd 4

    class Custom(Exception):
        pass

    def handle(job):
        global COUNT
        COUNT += 1
        cmd, _, arg = job.payload.partition(b" ")
        if cmd == b"bytes":
            return b"\x00\xffraw"
        if cmd == b"str":
            return "h\u00e9llo"
        if cmd == b"none":
            return None
        if cmd == b"bytearray":
            return bytearray(b"ba")
        if cmd == b"raise":
            raise ValueError("boom")
        if cmd == b"raise-empty":
            raise RuntimeError()
        if cmd == b"raise-json":
            json.loads("{")
        if cmd == b"raise-custom":
            raise Custom("mine")
        if cmd == b"raise-long":
            raise ValueError("x" * 10000)
        if cmd == b"int":
            return 42
        if cmd == b"progress":
            job.progress(0)
            job.progress(50, "half")
            job.progress(100, "\u00e9" * 150)
            return "done"
        if cmd == b"progress101":
            job.progress(101)
        if cmd == b"save":
            SAVED.append(job)
            return ""
        if cmd == b"late-progress":
            SAVED[0].progress(10)
        if cmd == b"big":
            return b"x" * int(arg)
        if cmd == b"bigtext":
            return "\u00e9" * int(arg)
        if cmd == b"exit":
            raise SystemExit(7)
        if cmd == b"count":
            return str(COUNT)
        if cmd == b"sleep":
            time.sleep(int(arg) / 1000.0)
            return ""
        if cmd == b"print":
            print("hello from the handler")
            print("on stderr", file=sys.stderr)
            return "printed"
        if cmd == b"job":
            return json.dumps({
                "id": job.id, "attempt": job.attempt, "timeout_ms": job.timeout_ms,
                "deadline_in": None if job.deadline is None else job.deadline - time.monotonic(),
                "inheritable": [os.get_inheritable(3), os.get_inheritable(4)],
                "slot": os.environ.get("PREFORK_SLOT"), "pid": os.getpid(),
            })
        return b"echo:" + job.payload

    prefork_worker.run(handle)
    '''
)

# Puts the pipe ends given as arguments on fds 3 and 4 (by way of fds >= 10, so that neither can
# overwrite the other), then execs the rest of argv with the same interpreter: the pid stays the same.
WRAPPER = textwrap.dedent(
    """
    import fcntl, os, sys
    job, res = int(sys.argv[1]), int(sys.argv[2])
    job_hi = fcntl.fcntl(job, fcntl.F_DUPFD, 10)
    res_hi = fcntl.fcntl(res, fcntl.F_DUPFD, 10)
    os.close(job)
    os.close(res)
    os.dup2(job_hi, 3)
    os.dup2(res_hi, 4)
    os.close(job_hi)
    os.close(res_hi)
    os.execv(sys.executable, [sys.executable] + sys.argv[3:])
    """
)


def worker_env(extra=None, pythonpath=True):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = SDK_DIR
    env.update({"PREFORK_SLOT": "2", "PREFORK_PROTOCOL": "3", "PREFORK_VERSION": "0.9.0"})
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


class FakeSupervisor(object):
    """Starts one worker the way the supervisor does and speaks frames to it."""

    def __init__(self, test, script, env=None):
        job_r, self.job_w = os.pipe()
        self.res_r, res_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRAPPER, str(job_r), str(res_w), script],
            pass_fds=(job_r, res_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env if env is not None else worker_env(),
        )
        os.close(job_r)
        os.close(res_w)
        self.out = None
        test.addCleanup(self.cleanup)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.communicate(timeout=TIMEOUT)
        except (ValueError, subprocess.TimeoutExpired):
            pass
        for fd in (self.job_w, self.res_r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    # writing

    def send_raw(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.job_w, view) :]

    def send(self, kind, body=b"", **header):
        self.send_raw(frame(kind, body, **header))

    def close_jobs(self):
        os.close(self.job_w)
        self.job_w = None

    # reading

    def read_exact(self, n, deadline):
        data = b""
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.res_r], [], [], left)[0]:
                raise AssertionError("no frame from the worker within %.0f s" % TIMEOUT)
            chunk = os.read(self.res_r, n - len(data))
            if not chunk:
                if not data:
                    return None
                raise AssertionError("end of file inside a frame after %d bytes" % len(data))
            data += chunk
        return data

    def read_frame(self):
        """The next (kind, body) from fd 4, or None at end of file."""
        deadline = time.monotonic() + TIMEOUT
        header = self.read_exact(8, deadline)
        if header is None:
            return None
        assert header[:2] == b"PF", header
        assert header[2] == 3, "version byte %d" % header[2]
        (length,) = struct.unpack(">I", header[4:])
        assert length <= MAX_BODY, length
        body = self.read_exact(length, deadline) if length else b""
        assert body is not None, "end of file before the body"
        return header[3], body

    def expect_ready(self):
        got = self.read_frame()
        assert got is not None, "the worker closed fd 4 before ready: %r" % (self.finish(),)
        kind, body = got
        assert kind == READY, kind
        return decode_ready(body)

    def run(self, payload, job_id="j1", **fields):
        """Sends a run; returns (progress frames, result) for it."""
        self.send(RUN, run_body(job_id, payload, **fields))
        progress = []
        while True:
            got = self.read_frame()
            assert got is not None, "the worker closed fd 4 instead of answering: %r" % (self.finish(),)
            kind, body = got
            if kind == PROGRESS:
                progress.append(decode_progress(body))
            elif kind == RESULT:
                result = decode_result(body)
                assert result["job_id"] == job_id and result["attempt"] == fields.get("attempt", 1), result
                return progress, result
            else:
                raise AssertionError("unexpected frame kind %d" % kind)

    def finish(self):
        """Waits for the worker to exit: (status, stdout, stderr) as text."""
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("the worker did not exit within %.0f s; stderr: %r" % (TIMEOUT, err))
        return self.proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


class WorkerTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="prefork-sdk-test-")
        cls.script = os.path.join(cls.tmp, "worker.py")
        with open(cls.script, "w") as f:
            f.write(WORKER_SCRIPT)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, env=None, ready=True):
        sup = FakeSupervisor(self, self.script, env)
        if ready:
            sup.ready = sup.expect_ready()
        return sup

    def assert_ok(self, result, output):
        self.assertEqual((result["ok"], result["output"], result["flags"]), (1, output, 0), result)


class ReadyAndResults(WorkerTestCase):
    def test_ready_frame(self):
        sup = self.start()
        self.assertEqual(sup.ready["pid"], sup.proc.pid)
        self.assertEqual(sup.ready["protocol"], 3)
        expected = "prefork-python %s (%s %s)" % (
            prefork_worker.__version__,
            platform.python_implementation(),
            platform.python_version(),
        )
        self.assertEqual(sup.ready["version"], expected)
        self.assertEqual(prefork_worker.__version__, "0.9.0")

    def test_bytes_str_none_results(self):
        sup = self.start()
        self.assert_ok(sup.run(b"bytes")[1], b"\x00\xffraw")
        self.assert_ok(sup.run(b"str", job_id="j\u00e9")[1], "h\u00e9llo".encode("utf-8"))
        self.assert_ok(sup.run(b"none", attempt=3)[1], b"")
        self.assert_ok(sup.run(b"bytearray")[1], b"ba")
        self.assert_ok(sup.run(b"", job_id="empty")[1], b"echo:")
        _, result = sup.run(b"bytes")
        self.assertEqual(result["detail"], b"")

    def test_duration_and_jobs_waiting(self):
        sup = self.start()
        _, result = sup.run(b"sleep 50", jobs_waiting=1)
        self.assertEqual(result["ok"], 1)
        self.assertGreaterEqual(result["duration_us"], 50000)
        self.assertLess(result["duration_us"], 30000000)

    def test_job_fields_and_close_on_exec(self):
        sup = self.start()
        _, result = sup.run(b"job", job_id="abc", attempt=2, timeout_ms=5000)
        info = json.loads(result["output"].decode("utf-8"))
        self.assertEqual((info["id"], info["attempt"], info["timeout_ms"]), ("abc", 2, 5000))
        self.assertTrue(0 < info["deadline_in"] <= 5.0, info)
        self.assertEqual(info["inheritable"], [False, False])
        self.assertEqual(info["slot"], "2")
        _, result = sup.run(b"job", job_id="abc", timeout_ms=0)
        self.assertIsNone(json.loads(result["output"].decode("utf-8"))["deadline_in"])

    def test_state_survives_across_jobs(self):
        sup = self.start()
        counts = [sup.run(b"count", job_id="c%d" % i)[1]["output"] for i in range(5)]
        self.assertEqual(counts, [b"1", b"2", b"3", b"4", b"5"])

    def test_print_never_reaches_the_result_pipe(self):
        sup = self.start()
        self.assert_ok(sup.run(b"print")[1], b"printed")
        self.assert_ok(sup.run(b"str")[1], "h\u00e9llo".encode("utf-8"))
        sup.send(STOP)
        self.assertIsNone(sup.read_frame(), "nothing but frames on fd 4")
        status, out, err = sup.finish()
        self.assertEqual(status, 0)
        self.assertEqual(out, "warming up\nhello from the handler\n")
        self.assertEqual(err, "on stderr\n")


class Failures(WorkerTestCase):
    def test_exception_fails_the_attempt_with_traceback(self):
        sup = self.start()
        _, result = sup.run(b"raise")
        self.assertEqual((result["ok"], result["output"], result["flags"]), (0, b"ValueError: boom", 0))
        detail = result["detail"].decode("utf-8")
        self.assertTrue(detail.startswith("Traceback (most recent call last):"), detail)
        self.assertIn('raise ValueError("boom")', detail)
        self.assertTrue(detail.rstrip().endswith("ValueError: boom"), detail)
        self.assertNotIn("prefork_worker.py", detail)
        self.assert_ok(sup.run(b"str")[1], "h\u00e9llo".encode("utf-8"))  # still serving

    def test_exception_names(self):
        sup = self.start()
        self.assertEqual(sup.run(b"raise-empty")[1]["output"], b"RuntimeError")
        self.assertEqual(sup.run(b"raise-custom")[1]["output"], b"__main__.Custom: mine")
        output = sup.run(b"raise-json")[1]["output"].decode("utf-8")
        self.assertTrue(output.startswith("json.decoder.JSONDecodeError: Expecting property name"), output)

    def test_detail_is_cut_to_4096_bytes(self):
        sup = self.start()
        _, result = sup.run(b"raise-long")
        self.assertEqual(result["ok"], 0)
        self.assertLessEqual(len(result["detail"]), 4096)
        self.assertTrue(result["detail"].startswith(b"...\n"), result["detail"][:20])
        self.assertTrue(result["detail"].endswith(b"x" * 100 + b"\n"))

    def test_wrong_return_type(self):
        sup = self.start()
        _, result = sup.run(b"int")
        self.assertEqual(result["ok"], 0)
        self.assertEqual(result["output"], b"TypeError: handle() must return bytes, str or None, got int")

    def test_system_exit_is_a_crash(self):
        sup = self.start()
        sup.send(RUN, run_body("j1", b"exit"))
        self.assertIsNone(sup.read_frame(), "no result after SystemExit")
        status, _, _ = sup.finish()
        self.assertEqual(status, 7)


class Progress(WorkerTestCase):
    def test_progress_frames(self):
        sup = self.start()
        progress, result = sup.run(b"progress", job_id="p", attempt=4)
        self.assert_ok(result, b"done")
        self.assertEqual(
            [(p["job_id"], p["attempt"], p["percent"], p["note"]) for p in progress],
            [("p", 4, 0, ""), ("p", 4, 50, "half"), ("p", 4, 100, "\u00e9" * 100)],
        )

    def test_percent_over_100(self):
        sup = self.start()
        progress, result = sup.run(b"progress101")
        self.assertEqual(progress, [])
        self.assertEqual(result["ok"], 0)
        self.assertEqual(result["output"], b"ValueError: progress percent must be between 0 and 100, got 101")

    def test_progress_after_the_result_is_refused(self):
        sup = self.start()
        self.assert_ok(sup.run(b"save", job_id="old")[1], b"")
        progress, result = sup.run(b"late-progress", job_id="new")
        self.assertEqual(progress, [])
        self.assertEqual(result["output"], b"RuntimeError: job 'old' attempt 1 is no longer running")


class Truncation(WorkerTestCase):
    def test_output_cut_at_max_output_bytes(self):
        sup = self.start()
        _, result = sup.run(b"big 100", max_output_bytes=10)
        self.assertEqual((result["ok"], result["output"], result["flags"]), (1, b"x" * 10, 1))
        _, result = sup.run(b"big 10", max_output_bytes=10)
        self.assertEqual((result["output"], result["flags"]), (b"x" * 10, 0))
        _, result = sup.run(b"bigtext 10", max_output_bytes=5)  # 2-byte characters: cut at a boundary
        self.assertEqual((result["output"], result["flags"]), ("\u00e9\u00e9".encode("utf-8"), 1))
        _, result = sup.run(b"raise", max_output_bytes=5)  # error messages too
        self.assertEqual((result["ok"], result["output"], result["flags"]), (0, b"Value", 1))

    def test_zero_means_only_the_frame_limit(self):
        sup = self.start()
        _, result = sup.run(b"big 100000", max_output_bytes=0)
        self.assertEqual((len(result["output"]), result["flags"]), (100000, 0))
        _, result = sup.run(b"big %d" % (9 * 1024 * 1024), job_id="huge", max_output_bytes=0)
        self.assertEqual(result["flags"], 1)
        self.assertEqual(len(result["output"]), MAX_BODY - (4 + 4 + 4 + 1 + 8 + 4 + 1 + 4))


class Lifecycle(WorkerTestCase):
    def test_stop_exits_0(self):
        sup = self.start()
        sup.run(b"str")
        sup.send(STOP)
        self.assertIsNone(sup.read_frame())
        self.assertEqual(sup.finish()[0], 0)

    def test_eof_exits_0(self):
        sup = self.start()
        sup.close_jobs()
        self.assertIsNone(sup.read_frame())
        status, _, err = sup.finish()
        self.assertEqual((status, err), (0, ""))

    def test_supervisor_gone_exits_0_quietly(self):
        sup = self.start()
        os.close(sup.res_r)
        sup.res_r = None
        sup.send(RUN, run_body("j1", b"str"))
        status, _, err = sup.finish()
        self.assertEqual((status, err), (0, ""))

    def test_not_started_by_prefork(self):
        proc = subprocess.run(
            [sys.executable, self.script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(),
            timeout=TIMEOUT,
        )
        self.assertEqual(proc.returncode, 2)
        err = proc.stderr.decode("utf-8")
        self.assertIn("must be started by prefork", err)
        self.assertIn('"handler": "program"', err)

    def test_regular_files_on_3_and_4_are_refused(self):
        path = os.path.join(self.tmp, "not-a-pipe")
        with open(path, "wb"):
            pass
        fd_in = os.open(path, os.O_RDONLY)
        fd_out = os.open(path, os.O_WRONLY)
        try:
            proc = subprocess.run(
                [sys.executable, "-c", WRAPPER, str(fd_in), str(fd_out), self.script],
                pass_fds=(fd_in, fd_out),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=worker_env(),
                timeout=TIMEOUT,
            )
        finally:
            os.close(fd_in)
            os.close(fd_out)
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"must be started by prefork", proc.stderr)
        self.assertEqual(os.path.getsize(path), 0)


class ProtocolErrors(WorkerTestCase):
    def expect_exit_3(self, data, message, close=True, env=None):
        sup = self.start(env=env, ready=env is None)
        if data:
            sup.send_raw(data)
        if close:
            sup.close_jobs()
        self.assertIsNone(sup.read_frame(), "no frame after a protocol error")
        status, _, err = sup.finish()
        self.assertEqual(status, 3, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("prefork_worker: "), err)
        self.assertIn(message, lines[0])

    def test_garbage(self):
        self.expect_exit_3(b"hello, world", "bad frame magic 0x6865")

    def test_other_version(self):
        self.expect_exit_3(
            frame(STOP, b"", version=2),
            "the supervisor speaks worker protocol version 2, this worker (prefork-python 0.9.0) speaks version 3",
        )

    def test_environment_announces_other_version(self):
        self.expect_exit_3(b"", "protocol version 4", env=worker_env({"PREFORK_PROTOCOL": "4"}))

    def test_unknown_and_unexpected_kinds(self):
        self.expect_exit_3(frame(9, b""), "unknown frame kind 9")
        self.expect_exit_3(frame(RESULT, b""), "unexpected result frame")

    def test_truncated_header_and_body(self):
        self.expect_exit_3(b"PF\x03", "end of file in the middle of a frame header")
        self.expect_exit_3(frame(RUN, run_body("j", b"abc"))[:-3], "end of file in the middle of a run frame body")
        self.expect_exit_3(frame(RUN, b""), "run frame truncated in field job_id length")

    def test_oversized_frame(self):
        self.expect_exit_3(b"PF\x03\x02" + struct.pack(">I", MAX_BODY + 1), "exceeds the limit of 8388608")

    def test_malformed_run_bodies(self):
        self.expect_exit_3(frame(RUN, run_body("j", b"x") + b"!"), "1 trailing bytes")
        self.expect_exit_3(frame(RUN, run_body("j", b"x")[:-2]), "truncated in field max_output_bytes")
        self.expect_exit_3(frame(RUN, run_body("j", b"x", jobs_waiting=2)), "jobs_waiting")
        self.expect_exit_3(frame(RUN, field(b"\xff") + run_body("j", b"x")[5:]), "not valid UTF-8")
        self.expect_exit_3(frame(STOP, b"x"), "stop frame with a 1-byte body")


class Encoding(unittest.TestCase):
    """The SDK's encoder against the decoder above, and the other way round."""

    def test_sdk_frames_decode(self):
        ready = prefork_worker._frame(prefork_worker._READY, prefork_worker._ready_body(1234, "v"))
        self.assertEqual(ready[:4], b"PF\x03\x01")
        self.assertEqual(decode_ready(ready[8:]), {"pid": 1234, "protocol": 3, "version": "v"})
        body = prefork_worker._result_body("j", 7, True, 99, b"out", 1, b"tb")
        self.assertEqual(
            decode_result(body),
            {"job_id": "j", "attempt": 7, "ok": 1, "duration_us": 99, "output": b"out", "flags": 1, "detail": b"tb"},
        )
        body = prefork_worker._progress_body("j", 2, 30, "n")
        self.assertEqual(decode_progress(body), {"job_id": "j", "attempt": 2, "percent": 30, "note": "n"})

    def test_run_decodes_in_sdk(self):
        body = run_body("id", b"\x00p", attempt=2, timeout_ms=30000, jobs_waiting=1, max_output_bytes=77)
        self.assertEqual(prefork_worker._decode_run(body), ("id", 2, 30000, b"\x00p", True, 77))
        self.assertEqual(decode_run(body)["payload"], b"\x00p")

    def test_utf8_cuts(self):
        text = "a\u00e9\u20ac\U0001f600".encode("utf-8")  # 1, 2, 3 and 4 bytes
        self.assertEqual([prefork_worker._cut_head(text, n, True) for n in (1, 2, 3, 5, 6)],
                         [b"a", b"a", text[:3], text[:3], text[:6]])
        self.assertEqual(prefork_worker._cut_head(b"\xff\x80\x80", 2, False), b"\xff\x80")
        self.assertEqual(prefork_worker._cut_tail(text, 5), text[-4:])


@unittest.skipUnless(os.path.exists(EXAMPLE_WORKER), "examples/python/worker.py not present")
class Example(WorkerTestCase):
    def test_example_worker(self):
        # Started without PYTHONPATH: the example finds the SDK through its relative path.
        sup = FakeSupervisor(self, EXAMPLE_WORKER, worker_env(pythonpath=False))
        sup.expect_ready()
        first = json.loads(sup.run(b"1000", job_id="e1")[1]["output"].decode("utf-8"))
        second = json.loads(sup.run(b"7919", job_id="e2")[1]["output"].decode("utf-8"))
        self.assertEqual(first["nth_prime"], 7919)
        self.assertEqual(first["pid"], sup.proc.pid)
        self.assertEqual((first["jobs_in_this_process"], second["jobs_in_this_process"]), (1, 2))
        self.assertTrue(second["is_prime"])
        _, result = sup.run(b"abc", job_id="e3")
        self.assertEqual(result["ok"], 0)
        sup.send(STOP)
        self.assertEqual(sup.finish()[0], 0)


@unittest.skipUnless(os.path.exists(PROTOCOL_DOC), "docs/worker-protocol.md not present")
class ProtocolDocument(WorkerTestCase):
    """The examples in docs/worker-protocol.md are true."""

    @classmethod
    def setUpClass(cls):
        super(ProtocolDocument, cls).setUpClass()
        with open(PROTOCOL_DOC, encoding="utf-8") as f:
            cls.doc = f.read()

    def test_hex_dumps(self):
        dumps = []
        for block in re.findall(r"```text\n(.*?)```", self.doc, re.S):
            lines = re.findall(r"^[0-9a-f]{4}  ((?:[0-9a-f]{2} ?)+)", block, re.M)
            if lines:
                dumps.append(bytes.fromhex(" ".join(lines)))
        ready = prefork_worker._frame(1, prefork_worker._ready_body(4242, "prefork-python 0.9.0 (CPython 3.11.7)"))
        run = frame(RUN, run_body("job-1", b"1000", timeout_ms=30000, max_output_bytes=1 << 20))
        progress = prefork_worker._frame(5, prefork_worker._progress_body("job-1", 1, 50, "half"))
        result = prefork_worker._frame(3, prefork_worker._result_body("job-1", 1, True, 1234, b"7919", 0, b""))
        self.assertEqual(dumps, [ready, run, progress, result, frame(STOP, b"")])
        self.assertEqual(decode_run(dumps[1][8:])["timeout_ms"], 30000)
        self.assertEqual(decode_result(dumps[3][8:])["output"], b"7919")

    def test_minimal_worker(self):
        code = re.search(r"```python\n(# minimal_worker\.py.*?)```", self.doc, re.S).group(1)
        script = os.path.join(self.tmp, "minimal_worker.py")
        with open(script, "w") as f:
            f.write(code)
        sup = FakeSupervisor(self, script, worker_env(pythonpath=False))
        self.assertEqual(sup.expect_ready()["pid"], sup.proc.pid)
        self.assertEqual(sup.run(b"abc")[1]["output"], b"ABC")
        _, result = sup.run(b"abcdef", job_id="j2", attempt=2, max_output_bytes=4)
        self.assertEqual((result["ok"], result["output"], result["flags"]), (1, b"ABCD", 1))
        sup.send(STOP)
        self.assertEqual(sup.finish()[0], 0)


if __name__ == "__main__":
    unittest.main()
