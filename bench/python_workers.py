#!/usr/bin/env python3
"""Benchmarks of users' own code, warm, in the prefork workers (`"handler": "program"` with the Python SDK).
Run through bench/run: `BENCH_ONLY=python bench/run` (installs python3-celery, python3-redis and
redis-server from Debian if missing). See bench/README.md, section "Python workers".

Usage: python_workers.py BIN_DIR DURATION_SECONDS OUTPUT_MD

  P1  warm Python (program handler, SDK) vs the exec handler running the same Python per attempt
  P2  Prefork (program handler, SDK) vs Celery 5 (prefork pool, Redis broker); idle memory of both
  P3  start to ready of a Python SDK worker, over 100 restarts

Every job is zero-work (`return payload`), 4 workers, `journal.fsync: batch`. Reuses suite.py's helpers
(Prefork instances on port 0 in a temp dir, wrk, the row format); every process started here is killed at
exit, the private redis-server included.
"""
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import suite
from suite import HERE, PROCS, WORK, Prefork, fmt, free_port, load3, loadavg, log, pct, row, until

# Python's defaults for every process started here (supervisor, workers, Celery, submitters): a shell that sets
# PYTHONDONTWRITEBYTECODE makes every worker compile the SDK from source at start (~7 ms more to ready).
for _var in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
    os.environ.pop(_var, None)
PY = os.environ.get("BENCH_PYTHON", "/usr/bin/python3")  # Debian's: the one python3-celery is installed for
PYDIR = os.path.join(HERE, "python")
SDK = os.path.abspath(os.path.join(HERE, "..", "sdk", "python"))
WORKERS = 4
THREADS = 4
DURATION = suite.DURATION
DRAIN_JOBS = 50_000
DRAIN_TIMEOUT = 90  # seconds Celery gets to finish its backlog


def program_config():
    return {"handler": "program",
            "program": {"command": [PY, os.path.join(PYDIR, "echo_worker.py")], "env": {"PYTHONPATH": SDK}}}


def exec_config():
    return {"handler": "exec", "exec": {"command": [PY, os.path.join(PYDIR, "echo_exec.py")]}}


# ---------------------------------------------------------------- processes and memory

def descendants(root):
    """root and every process below it (from /proc/*/stat)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def memory_kb(pids):
    """(PSS sum, RSS sum) in KiB. PSS splits shared pages between the processes that map them, so its sum
    is what the group costs the machine; the RSS sum counts shared pages (libpython, libc) once per process."""
    pss = rss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
            rss += suite.rss_kb(pid)
        except OSError:
            pass
    return pss, rss


def mib(kb):
    return f"{kb / 1024:.1f} MiB"


def warm_up(p, count=WORKERS):
    """Runs a few jobs and waits until they are done and the workers idle again."""
    before = p.done()
    for i in range(count):
        assert p.enqueue(f"warm-{i}", "@ok")[0] == 202
    p.wait_done(before + count, timeout=30)
    p.wait_workers_idle(WORKERS, timeout=30)


class Submitter:
    """bench/python/submit.py in Debian's python3: THREADS closed-loop threads (Celery's delay() or
    http.client POSTs). start() returns once its warm-up is done; window() runs the timed part."""

    def __init__(self, mode, *args, env=None):
        self.proc = subprocess.Popen([PY, os.path.join(PYDIR, "submit.py"), mode, str(THREADS), str(DURATION)]
                                     + [str(a) for a in args], cwd=PYDIR, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        PROCS.append(self.proc)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"submitter did not start: {line!r}")

    def window(self, completed):
        """Runs the window; returns (submitted, errors, seconds, completed during it, its seconds)."""
        c0, t0 = completed(), time.perf_counter()
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        result = json.loads(self.proc.stdout.readline())
        c1, t1 = completed(), time.perf_counter()
        self.proc.wait(timeout=10)
        return result, c1 - c0, t1 - t0


# ---------------------------------------------------------------- P1: warm Python vs exec

def program_wrk():
    """wrk with enqueue.lua against the program handler (Python SDK): load3's figures, and jobs failed."""
    log(f"P1: program handler (Python SDK), {WORKERS} workers, fsync batch, wrk enqueue.lua")
    p = Prefork(workers=WORKERS, fsync="batch", **program_config())
    p.wait_workers_idle(WORKERS, timeout=30)
    warm_up(p)
    prog = load3(f"http://127.0.0.1:{p.port}/enqueue", p.done)
    m = p.metrics()
    prog["failed"] = int(m.get('prefork_jobs_total{state="failed"}', 0))
    prog["fsync_ms"] = fsync_mean_ms(m)
    prog["restarts"] = restarts_total(m)
    p.kill()
    return prog


def bench_p1():
    prog = program_wrk()
    failed = prog["failed"]

    log(f"P1: exec handler (python3 per attempt), {WORKERS} workers, fsync batch, wrk enqueue.lua")
    p = Prefork(workers=WORKERS, fsync="batch", **exec_config())
    p.wait_workers_idle(WORKERS, timeout=30)
    warm_up(p)
    ex = load3(f"http://127.0.0.1:{p.port}/enqueue", p.done)
    m = p.metrics()
    failed_exec = int(m.get('prefork_jobs_total{state="failed"}', 0))
    p.kill()

    ratio = prog["completed_rps"] / ex["completed_rps"] if ex["completed_rps"] else float("inf")
    row("P1", f"exec handler: `{os.path.basename(PY)} echo_exec.py` per attempt, {WORKERS} workers, fsync batch "
        "(baseline)",
        f"{fmt(ex['completed_rps'])} done/s; {fmt(ex['rps'])} accepted/s" + (f"; {failed_exec} failed" if failed_exec else ""),
        "baseline", failed_exec == 0)
    row("P1", f"program handler: Python SDK `return job.payload`, {WORKERS} warm workers, fsync batch",
        f"{fmt(prog['completed_rps'])} done/s ({prog['keep_up']:.0%} of accepted); {fmt(prog['rps'])} accepted/s; "
        f"mean fdatasync {prog['fsync_ms']:.2f} ms"
        + (f"; {failed} failed" if failed else "") + (f"; {prog['restarts']} worker restarts!" if prog["restarts"] else ""),
        "done/s ≥ 50× exec's", ratio >= 50 and failed == 0 and prog["restarts"] == 0, fmt(ex["completed_rps"]), f"{ratio:,.0f}×")
    return prog


# ---------------------------------------------------------------- P2: against Celery

def start_redis():
    d = tempfile.mkdtemp(dir=WORK, prefix="redis-")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", d, "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning"],
        stdout=open(os.path.join(d, "redis.log"), "wb"), stderr=subprocess.STDOUT)
    PROCS.append(proc)

    def pong():
        try:
            s = suite.socket.create_connection(("127.0.0.1", port), timeout=1)
            s.sendall(b"PING\r\n")
            ok = s.recv(64).startswith(b"+PONG")
            s.close()
            return ok
        except OSError:
            return False

    until(pong, "redis-server", timeout=10, sleep=0.01)
    return proc, port


def celery_completed(count_dir):
    total = 0
    for name in os.listdir(count_dir):
        with open(os.path.join(count_dir, name), "rb") as f:
            data = f.read(8)
        if len(data) == 8:
            total += int.from_bytes(data, "little")
    return total


def bench_p2(prog_wrk):
    log("P2: Celery, prefork pool, 4 processes, Redis broker")
    redis, redis_port = start_redis()
    count_dir = tempfile.mkdtemp(dir=WORK, prefix="celery-counts-")
    env = dict(os.environ, BENCH_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", BENCH_COUNT_DIR=count_dir,
               PYTHONPATH=PYDIR, C_FORCE_ROOT="1")
    celery_log = os.path.join(count_dir, "..", "celery.log")
    cel = subprocess.Popen(
        [PY, "-m", "celery", "-A", "celery_tasks", "worker", "--pool", "prefork", "--concurrency", str(WORKERS),
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=PYDIR, env=env, stdout=open(celery_log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    cel.own_group = True
    PROCS.append(cel)
    until(lambda: len(descendants(cel.pid)) >= 1 + WORKERS or cel.poll() is not None, "celery pool", timeout=30,
          sleep=0.05)
    sub = Submitter("celery", env=env)  # its warm-up: one delay() per thread
    until(lambda: celery_completed(count_dir) >= THREADS or cel.poll() is not None, "celery warm-up tasks",
          timeout=30, sleep=0.01)
    if cel.poll() is not None:
        raise RuntimeError("celery worker exited: " + open(celery_log).read())
    time.sleep(0.5)
    celery_pids = descendants(cel.pid)
    cel_pss, cel_rss = memory_kb(celery_pids + [redis.pid])
    master_pss, _ = memory_kb([cel.pid])
    redis_pss, _ = memory_kb([redis.pid])
    res, done, secs = sub.window(lambda: celery_completed(count_dir))
    c_rps, c_sub = done / secs, res["submitted"] / res["seconds"]
    # Then Celery drains its backlog with nothing else running: its best case, timed until every task
    # submitted has been counted (which also checks the counter: none is lost or counted twice).
    total = THREADS + res["submitted"]
    c1, t1 = celery_completed(count_dir), time.perf_counter()
    backlog = total - c1
    try:
        until(lambda: celery_completed(count_dir) >= total, "celery drain", timeout=DRAIN_TIMEOUT, sleep=0.02)
        drained = "all completed afterwards"
    except RuntimeError:
        drained = f"only {fmt(celery_completed(count_dir))} of {fmt(total)} completed {DRAIN_TIMEOUT} s later"
    c2, t2 = celery_completed(count_dir), time.perf_counter()
    c_drain = (c2 - c1) / (t2 - t1) if backlog >= 500 else None
    if c2 > total:
        drained += f"; {c2 - total} more than submitted!"
    os.killpg(cel.pid, signal.SIGTERM)  # warm shutdown; SIGKILL at exit if it hangs
    try:
        cel.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(cel.pid, signal.SIGKILL)
    redis.kill()
    redis.wait()
    row("P2", f"Celery {celery_version()}: prefork pool, {WORKERS} processes, Redis broker; `noop.delay()` from "
        f"{THREADS} threads (baseline)",
        f"{fmt(c_rps)} done/s; {fmt(c_sub)} submitted/s; backlog at end {fmt(backlog)}, {drained}",
        "baseline", c2 == total)
    if c_drain:
        row("P2", "… Celery draining that backlog afterwards, no submitter running (its best case, diagnostic)",
            f"{fmt(c_drain)} done/s", "(diagnostic)", True)

    log(f"P2: Prefork, Python SDK, {WORKERS} workers, fsync batch, {THREADS} http.client threads")
    p = Prefork(workers=WORKERS, fsync="batch", **program_config())
    p.wait_workers_idle(WORKERS, timeout=30)
    warm_up(p)
    sub = Submitter("http", p.port)  # started before the memory is read, as Celery's is
    time.sleep(0.5)
    pre_pids = descendants(p.pid)
    pre_pss, pre_rss = memory_kb(pre_pids)
    sup_pss, _ = memory_kb([p.pid])
    res, done, secs = sub.window(p.done)
    p_rps, p_sub = done / secs, res["submitted"] / res["seconds"]
    m = p.metrics()
    backlog = int(m["prefork_queue_depth"] + m["prefork_jobs_running"])
    fsync_ms = fsync_mean_ms(m)
    p_drain = drain(p, DRAIN_JOBS)
    p_restarts = restarts_total(p.metrics())
    p.kill()

    # The same with `journal.fsync: none`: with 4 requests in flight each 202 waits for an fdatasync (group
    # commit has at most 4 to share one), so the batch figure above is mostly the disk's sync latency. Redis
    # here keeps nothing on disk (as asked: no persistence), so `none` is the like-for-like durability.
    log(f"P2: Prefork, the same with fsync none, {THREADS} http.client threads")
    p = Prefork(workers=WORKERS, fsync="none", **program_config())
    p.wait_workers_idle(WORKERS, timeout=30)
    warm_up(p)
    sub = Submitter("http", p.port)
    res_none, done_none, secs_none = sub.window(p.done)
    n_rps, n_sub = done_none / secs_none, res_none["submitted"] / res_none["seconds"]
    p.kill()

    log(f"P2: the {THREADS}-thread http.client submitter against nginx (its own ceiling)")
    ng, ng_port = suite.start_nginx()
    sub = Submitter("http", ng_port)
    ng_res, _, _ = sub.window(lambda: 0)
    os.killpg(ng.pid, signal.SIGKILL)
    ng.wait()
    ng_sub = ng_res["submitted"] / ng_res["seconds"]

    ratio = prog_wrk["completed_rps"] / c_rps
    row("P2", f"Prefork, Python SDK, {WORKERS} workers, fsync batch; `wrk -t2 -c32` enqueue.lua (the run of P1)",
        f"{fmt(prog_wrk['completed_rps'])} done/s; {fmt(prog_wrk['rps'])} accepted/s",
        "done/s ≥ 10× Celery's", ratio >= 10, fmt(c_rps), f"{ratio:.1f}×")
    ratio = p_rps / c_rps
    row("P2", f"Prefork, the same; {THREADS} Python threads posting with http.client keep-alive (submitter like "
        "Celery's)",
        f"{fmt(p_rps)} done/s; {fmt(p_sub)} accepted/s; backlog at end {fmt(backlog)}; mean fdatasync "
        f"{fsync_ms:.2f} ms"
        + (f"; {res['errors']} non-202" if res["errors"] else "")
        + (f"; {p_restarts} worker restarts (this run and the drain)!" if p_restarts else ""),
        "done/s ≥ 10× Celery's", ratio >= 10 and p_restarts == 0, fmt(c_rps), f"{ratio:.1f}×")
    row("P2", f"… the same {THREADS} threads, `journal.fsync: none` (no durability wait, like the Redis here; "
        "diagnostic)",
        f"{fmt(n_rps)} done/s; {fmt(n_sub)} accepted/s", "(diagnostic)", True, fmt(c_rps), f"{n_rps / c_rps:.1f}×")
    row("P2", f"… the same {THREADS}-thread http.client submitter against nginx `return 202` (the submitter's own "
        "ceiling, diagnostic)",
        f"{fmt(ng_sub)} req/s; Prefork accepted {p_sub / ng_sub:.0%} of it", "(diagnostic)", True)
    row("P2", f"… Prefork draining {fmt(DRAIN_JOBS)} queued jobs, no submitter running (its best case, diagnostic)",
        f"{fmt(p_drain)} done/s", "(diagnostic)", True, fmt(c_drain) if c_drain else "",
        f"{p_drain / c_drain:.1f}×" if c_drain else "")
    row("P2", f"idle memory, PSS sum (RSS sum): Prefork supervisor + {len(pre_pids) - 1} workers vs Celery master + "
        f"{len(celery_pids) - 1} children + redis-server",
        f"{mib(pre_pss)} ({mib(pre_rss)}); supervisor {mib(sup_pss)}", "(none set)", True,
        f"{mib(cel_pss)} ({mib(cel_rss)}); master {mib(master_pss)}, redis {mib(redis_pss)}", f"{pre_pss / cel_pss:.0%}")


def restarts_total(m):
    """Workers replaced so far, whatever the cause (a warm worker should never be)."""
    return int(sum(v for k, v in m.items() if k.startswith("prefork_worker_restarts_total")))


def fsync_mean_ms(m):
    count = m.get("prefork_journal_fsync_seconds_count", 0)
    return 1000 * m.get("prefork_journal_fsync_seconds_sum", 0) / count if count else 0.0


def drain(p, jobs):
    """Jobs/s of p's workers draining `jobs` queued jobs: the workers are SIGSTOPped while the jobs are enqueued
    (pipelined over 8 connections), then continued; the clock runs from SIGCONT to the last one done."""
    pids = [w["pid"] for w in p.wait_workers_idle(WORKERS, timeout=30)]
    before = p.done()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        counts = suite.bulk_enqueue(p.port, suite.job_bodies("drain-", jobs))
        assert counts.get(202) == jobs, counts
    finally:
        t0 = time.perf_counter()
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    until(lambda: p.done() >= before + jobs, "prefork drain", timeout=120, sleep=0.01)
    return jobs / (time.perf_counter() - t0)


def celery_version():
    try:
        out = subprocess.run([PY, "-c", "import celery; print(celery.__version__)"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
        return out or "?"
    except Exception:
        return "?"


# ---------------------------------------------------------------- P3: start to ready

TS = re.compile(r'"ts":"([^"]+)"')


def parse_ts(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def spawn_to_ready_ms(log_path):
    """{pid: ms} from the supervisor's worker_spawned and worker_ready lines (millisecond timestamps)."""
    spawned, ready = {}, {}
    with open(log_path) as f:
        for line in f:
            if '"worker_spawned"' in line or '"worker_ready"' in line:
                e = json.loads(line)
                (spawned if e["event"] == "worker_spawned" else ready)[e["pid"]] = parse_ts(e["ts"])
    return {pid: (ready[pid] - spawned[pid]) * 1000 for pid in ready if pid in spawned}


def restarts(p, kills, what, between=None):
    """bench_restart's loop: one job, SIGKILL the idle worker, wait for the replacement. Returns (kill → the
    replacement's `worker_ready` line in the log, ms; spawn → ready from the log's timestamps, ms).

    While the replacement starts this script only watches the end of the log file (a read every 0.5 ms) and
    sends no request: polling `/workers` without pause, as bench_restart does, keeps this script and the
    supervisor (which logs every request at `info`) busy on both cores and slowed a starting Python worker 2-4
    times in trials; the Swift worker starts too fast to notice. `/workers` is checked once it is ready."""
    times, pids = [], []
    log_file = open(p.log_path)
    log_file.seek(0, os.SEEK_END)
    for i in range(kills):
        p.enqueue(f"warm-{what}-{i}", "@ok")
        until(lambda: p.json(f"/jobs/warm-{what}-{i}")["state"] == "done", f"warm-up job {i}", timeout=30)
        old = p.wait_workers_idle(1, timeout=30)[0]["pid"]
        log_file.read()  # skip what is logged so far
        text = ""
        t0 = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        deadline = t0 + 30
        while True:
            text += log_file.read()
            m = re.search(r'"event":"worker_ready","slot":0,"pid":(\d+)', text)
            if m:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError("no worker_ready after the kill")
            time.sleep(0.0005)
        times.append((time.perf_counter() - t0) * 1000)
        new_pid = int(m.group(1))
        w = p.wait_workers_idle(1, timeout=30)[0]
        assert w["pid"] == new_pid, (w, new_pid)
        pids.append(new_pid)
        if between:
            between()
    log_file.close()
    time.sleep(0.05)
    logged = spawn_to_ready_ms(p.log_path)
    return times, [logged[pid] for pid in pids if pid in logged]


def interpreter_start_ms(args, runs):
    times = []
    env = dict(os.environ, PYTHONPATH=SDK)
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([PY] + args, env=env, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def direct_start_ms(runs=1):
    """The same worker program started straight from this script, with a job pipe on fd 3 and a result pipe on
    fd 4 and the supervisor's environment variables, until its `ready` frame arrives: what starting it costs
    without the supervisor (no launcher, no cgroup, no event loop). It then gets end of file and exits."""
    argv = [PY, os.path.join(PYDIR, "echo_worker.py")]
    env = dict(os.environ, PYTHONPATH=SDK, PREFORK_PROTOCOL="3", PREFORK_SLOT="0")
    times = []
    for _ in range(runs):
        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, job_r, 3),
                                                              (os.POSIX_SPAWN_DUP2, res_w, 4)])
        os.close(job_r)
        os.close(res_w)
        frame = os.read(res_r, 8)
        times.append((time.perf_counter() - t0) * 1000)
        os.close(job_w)
        os.waitpid(pid, 0)
        os.close(res_r)
        assert frame[:2] == b"PF" and frame[3] == 1, frame
    return times


def bench_p3(kills=100):
    log(f"P3: start to ready, Python SDK worker, {kills} restarts")
    p = Prefork(workers=1, fsync="batch", log_level="info", **program_config())
    p.wait_workers_idle(1, timeout=30)
    # Each restart is followed by one direct start of the same program, so both see the same machine.
    direct = []
    kill_idle, spawn_ready = restarts(p, kills, "py", between=lambda: direct.extend(direct_start_ms()))
    p.kill()
    log(f"P3: the same with the built-in Swift worker (simulate handler), {kills} restarts")
    p = Prefork(workers=1, fsync="batch", log_level="info")
    p.wait_workers_idle(1, timeout=30)
    sw_kill_idle, sw_spawn_ready = restarts(p, kills, "swift")
    # The same restarts 100 ms apart: the Python restarts above are 40-100 ms apart, and a worker's first step,
    # joining its cgroup (a write to cgroup.procs), waits for an RCU grace period unless another cgroup
    # migration happened just before (then it takes microseconds). Back-to-back restarts hide that wait.
    log(f"P3: the Swift worker again, {kills // 2} restarts 100 ms apart")
    sw_kill_paused, sw_spawn_paused = restarts(p, kills // 2, "swift-paused", between=lambda: time.sleep(0.1))
    p.kill()
    log("P3: the bare interpreter, for scale")
    bare = interpreter_start_ms(["-c", "pass"], 50)
    sdk_import = interpreter_start_ms(["-c", "import prefork_worker"], 50)

    def q(v):
        return f"p50 {statistics.median(v):.1f} ms, p99 {pct(v, 99):.1f} ms"

    med = statistics.median
    row("P3", f"start to ready, Python SDK worker under the supervisor: `worker_spawned` → `worker_ready` in "
        f"its log (ms timestamps), {len(spawn_ready)} restarts",
        q(spawn_ready), "(none set)", True, f"the same program started directly (between the restarts): {q(direct)}",
        f"p50 {med(spawn_ready) / med(direct):.2f}× ({med(spawn_ready) - med(direct):+.1f} ms)")
    row("P3", f"… SIGKILL of the idle worker → the replacement's `worker_ready` line seen in the log (client side, "
        f"{kills} kills)",
        q(kill_idle), "(none set)", True)
    row("P3", f"… the built-in Swift worker (simulate handler), the same {kills} restarts (diagnostic)",
        f"spawn → ready {q(sw_spawn_ready)}; kill → ready line {q(sw_kill_idle)}", "(diagnostic)", True)
    row("P3", f"… the Swift worker, {kills // 2} restarts 100 ms apart (diagnostic: the cgroup join's wait, hidden when "
        "restarts follow each other)",
        f"spawn → ready {q(sw_spawn_paused)}; kill → ready line {q(sw_kill_paused)}", "(diagnostic)", True)
    row("P3", f"… for scale: `{os.path.basename(PY)} -c pass` / `-c 'import prefork_worker'`, spawn to exit "
        "(50 runs each, diagnostic)",
        f"{q(bare)} / {q(sdk_import)}", "(diagnostic)", True)


# ---------------------------------------------------------------- main

def main():
    started = time.time()
    load_before = loadavg()
    only = os.environ.get("BENCH_PYTHON_ONLY", "p1,p2,p3").split(",")  # a subset, while developing
    prog = bench_p1() if "p1" in only else None
    if "p2" in only:
        bench_p2(prog or program_wrk())
    if "p3" in only:
        bench_p3()
    load_after = loadavg()
    header = [
        "# Prefork benchmark results: Python workers", "",
        suite.conditions(
            f", `{PY}` {sys.version.split()[0] if PY == sys.executable else subprocess.run([PY, '-V'], capture_output=True, text=True).stdout.split()[-1]}; "
            f"HTTP load `wrk -t2 -c32 -d{DURATION}s` with enqueue.lua, {THREADS}-thread submitters for {DURATION} s",
            load_before, load_after, started), "",
        "| # | benchmark | Prefork | baseline | Prefork / baseline | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    suite.write_results(header, [])


if __name__ == "__main__":
    main()
