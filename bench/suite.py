#!/usr/bin/env python3
"""Prefork benchmark suite. Run through bench/run, which installs wrk and nginx and builds release.

Usage: suite.py BIN_DIR DURATION_SECONDS OUTPUT_MD
Every Prefork instance gets a fresh temp data dir and port 0; every process started here is killed at exit.
Python standard library only.
"""
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN, DURATION, OUT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp(prefix="prefork-bench-")
PROCS = []  # every Popen started here
WRK = ["wrk", "-t2", "-c32", f"-d{DURATION}s", "--latency"]
# Load 3 runs the worker count of the shipped default config (config/prefork.json).
with open(os.path.join(HERE, "..", "config", "prefork.json")) as _f:
    DEFAULT_WORKERS = json.load(_f)["workers"]


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL) if getattr(p, "own_group", False) else p.kill()
            except OSError:
                pass
            try:
                p.wait(timeout=5)
            except Exception:
                pass
    shutil.rmtree(WORK, ignore_errors=True)


atexit.register(cleanup)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, lambda *_: sys.exit(130))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def until(check, what, timeout=20, sleep=0.001):
    """Polls check() until it returns something truthy (returned); fails after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        if sleep:
            time.sleep(sleep)
    raise RuntimeError(f"timed out waiting for {what}")


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


# ---------------------------------------------------------------- Prefork instances

class Prefork:
    counter = 0

    def __init__(self, workers=2, queue_size=10_000_000, fsync="none", log_level="warn", data_dir=None, **extra):
        Prefork.counter += 1
        self.name = f"p{Prefork.counter}"
        self.dir = os.path.join(WORK, self.name)
        os.makedirs(self.dir)
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        config = {
            "workers": workers, "queue_size": queue_size, "data_dir": self.data_dir, "log_level": log_level,
            "journal": {"fsync": fsync, "compact_bytes": 268435456},
            "simulate": {"min_ms": 0, "max_ms": 0, "fail_rate": 0, "directives": True},
            "http": {"max_body_bytes": 4096},
        }
        config.update(extra)
        self.config_path = os.path.join(self.dir, "config.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f)
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "prefork"), "--config", self.config_path, "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "wb"))
        PROCS.append(self.proc)
        self.pid = self.proc.pid
        self.port = None
        deadline = time.time() + 20
        while time.time() < deadline and self.port is None:
            with open(self.log_path) as f:
                m = re.search(r'"event":"listening","addr":"127\.0\.0\.1:(\d+)"', f.readline())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.002)
        if self.port is None:
            raise RuntimeError(f"prefork did not start: {open(self.log_path).read()}")
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request(method, path, body=body)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.01)

    def json(self, path):
        return json.loads(self.request("GET", path)[1])

    def metrics(self):
        text = self.request("GET", "/metrics")[1].decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                values[key] = float(value)
        return values

    def done(self):
        return int(self.metrics()['prefork_jobs_total{state="done"}'])

    def enqueue(self, job_id, payload, max_retries=0):
        return self.request("POST", "/enqueue",
                            json.dumps({"id": job_id, "payload": payload, "max_retries": max_retries}))

    def workers(self):
        return self.json("/workers")["workers"]

    def wait_workers_idle(self, count, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            ws = self.workers()
            if len([w for w in ws if w["state"] == "idle" and w["pid"]]) >= count:
                return ws
            time.sleep(0.002)
        raise RuntimeError(f"workers not idle: {ws}")

    def wait_done(self, count, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.done() >= count:
                return
            time.sleep(0.02)
        raise RuntimeError(f"only {self.done()} of {count} jobs done")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Limit:
    """bench/limit/limit: the least work load 3 needs, in C, with the syscalls Prefork makes (the ceiling)."""

    def __init__(self, workers, fsync):
        self.dir = tempfile.mkdtemp(dir=WORK)
        self.proc = subprocess.Popen(
            [os.path.join(HERE, "limit", "limit"), "--port", "0", "--workers", str(workers), "--fsync", fsync,
             "--journal", os.path.join(self.dir, "journal")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        PROCS.append(self.proc)
        line = self.proc.stdout.readline()
        m = re.match(r"port (\d+)", line)
        if not m:
            raise RuntimeError(f"limit did not start: {line!r}")
        self.port = int(m.group(1))

    def stats(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        return json.loads(data.split(b"\r\n\r\n", 1)[1])

    def kill(self):
        self.proc.terminate()
        self.proc.wait()


def load3(url, done):
    """wrk with enqueue.lua against url; also the jobs done (done() before and after) per second."""
    before = done()
    t0 = time.perf_counter()
    r = wrk(url, "enqueue.lua")
    t1 = time.perf_counter()
    r["completed_rps"] = (done() - before) / (t1 - t0)
    r["keep_up"] = r["completed_rps"] / r["rps"] if r["rps"] else 0
    return r


def bulk_enqueue(port, bodies, connections=8, window=256):
    """POSTs /enqueue bodies over a few keep-alive connections, pipelining `window` requests at a time
    (bounded: Prefork's cost per response grows with a connection's unsent output, see README); returns
    {status: count}."""
    counts = {}
    lock = threading.Lock()
    status_re = re.compile(rb"HTTP/1\.1 (\d{3}) ")

    def one(chunk):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        local = {}
        for i in range(0, len(chunk), window):
            batch = chunk[i:i + window]
            s.sendall(b"".join(b"POST /enqueue HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b)
                               for b in batch))
            seen, tail = 0, b""
            while seen < len(batch):
                buf = s.recv(1 << 20)
                if not buf:
                    raise RuntimeError("connection closed during bulk enqueue")
                text = tail + buf
                last = 0
                for m in status_re.finditer(text):
                    local[m.group(1)] = local.get(m.group(1), 0) + 1
                    seen += 1
                    last = m.end()
                tail = text[max(last, len(text) - 15):]  # a status line split across reads is seen once
        s.close()
        with lock:
            for k, v in local.items():
                counts[int(k)] = counts.get(int(k), 0) + v

    per = (len(bodies) + connections - 1) // connections
    threads = [threading.Thread(target=one, args=(bodies[i * per:(i + 1) * per],)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def job_bodies(prefix, count, payload="@ok"):
    return [json.dumps({"id": f"{prefix}{i}", "payload": payload}).encode() for i in range(count)]


# ---------------------------------------------------------------- wrk and nginx

def wrk(url, script=None):
    cmd = WRK + (["-s", os.path.join(HERE, script)] if script else []) + [url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def latency(label):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": latency("50%"), "p99": latency("99%"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1) if errors else "",
        "raw": out,
    }


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_nginx(template="nginx.conf"):
    """nginx from bench/<template> on a free port, in a directory of its own; returns (process, port)."""
    d = os.path.join(WORK, "nginx" if template == "nginx.conf" else "nginx-" + template.replace(".", "-"))
    os.makedirs(d)
    port = free_port()
    conf = open(os.path.join(HERE, template)).read().replace("@PORT@", str(port)).replace("@DIR@", d)
    path = os.path.join(d, "nginx.conf")
    open(path, "w").write(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    p = subprocess.Popen([nginx, "-c", path, "-p", d, "-e", os.path.join(d, "error.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    p.own_group = True
    PROCS.append(p)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("nginx did not start: " + open(os.path.join(d, "error.log")).read())


# ---------------------------------------------------------------- the benchmarks

ROWS = []  # (number, benchmark, figure, nginx, ratio, target, met)
NOTES = []


def row(n, name, figure, target, met, nginx="", ratio=""):
    ROWS.append((n, name, figure, nginx, ratio, target, "yes" if met else "**no**"))
    log(f"  {n} {name}: {figure} {nginx} {ratio} target {target} met={met}")


def fmt(x):
    return f"{x:,.0f}"


def bench_http():
    log("HTTP: nginx baseline")
    ng, ng_port = start_nginx()
    ng_get = wrk(f"http://127.0.0.1:{ng_port}/healthz")
    ng_post = wrk(f"http://127.0.0.1:{ng_port}/enqueue", "enqueue.lua")
    os.killpg(ng.pid, signal.SIGKILL)
    ng.wait()
    row("0", "nginx, 1 worker, `return 202`: GET / POST", f"{fmt(ng_get['rps'])} / {fmt(ng_post['rps'])} req/s",
        "baseline", True)

    log("1: GET /healthz")
    p = Prefork(workers=2)
    r = wrk(f"http://127.0.0.1:{p.port}/healthz")
    ratio = r["rps"] / ng_get["rps"]
    row("1", "`GET /healthz`", f"{fmt(r['rps'])} req/s (p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms)",
        "≥ 90% of nginx GET", ratio >= 0.9, fmt(ng_get["rps"]), f"{ratio:.0%}")
    p.kill()

    log("2: POST /enqueue rejected with 503")
    p = Prefork(workers=2, queue_size=4, shutdown_timeout_ms=100)
    for i in range(6):
        p.enqueue(f"sleeper-{i}", "@sleep 60000")
    status, _ = p.enqueue("probe", "@ok")
    assert status == 503, status
    r = wrk(f"http://127.0.0.1:{p.port}/enqueue", "enqueue.lua")
    ratio = r["rps"] / ng_post["rps"]
    all503 = int(p.metrics()["prefork_jobs_accepted_total"]) == 6  # only the sleepers were accepted
    row("2", "`POST /enqueue` → 503 (queue full)",
        f"{fmt(r['rps'])} req/s (p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms)"
        + ("" if all503 else "; some were accepted!"),
        "≥ 80% of nginx POST", ratio >= 0.8 and all503, fmt(ng_post["rps"]), f"{ratio:.0%}")
    p.kill()

    for fsync in ("batch", "none"):
        letter = "a" if fsync == "batch" else "b"
        log(f"3/8: POST /enqueue accepted, fsync {fsync}, {DEFAULT_WORKERS} workers")
        p = Prefork(workers=DEFAULT_WORKERS, fsync=fsync)
        r = load3(f"http://127.0.0.1:{p.port}/enqueue", p.done)
        m = p.metrics()
        accepted = int(m["prefork_jobs_accepted_total"])
        backlog = int(m["prefork_queue_depth"] + m["prefork_jobs_running"])
        completed_rps, keep_up = r["completed_rps"], r["keep_up"]
        ratio = r["rps"] / ng_post["rps"]
        # Every request must be a new job: a repeated id is answered from the store and would inflate the rate
        # (the wrk script once posted every id twice). Requests in flight when wrk stops are accepted, not counted.
        assert abs(accepted - r["requests"]) <= 64, f"{accepted} jobs accepted for {r['requests']} requests"
        row(f"3{letter}", f"`POST /enqueue` accepted, `journal.fsync: {fsync}`, {DEFAULT_WORKERS} workers",
            f"{fmt(r['rps'])} accepted/s" + (f" ({r['non2xx']} non-202)" if r["non2xx"] else ""),
            "≥ 50% of nginx POST", ratio >= 0.5 and r["non2xx"] == 0, fmt(ng_post["rps"]), f"{ratio:.0%}")
        row(f"3{letter}", f"… jobs completed in the same window, fsync {fsync}",
            f"{fmt(completed_rps)} done/s = {keep_up:.0%} of accepted; backlog at end {fmt(backlog)} "
            f"of {fmt(accepted)} accepted",
            "completed ≈ accepted (within 5%)", keep_up >= 0.95)
        row(f"8{letter}", f"`POST /enqueue` latency under load 3, fsync {fsync}",
            f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms", "(none set)", True,
            f"p50 {ng_post['p50']:.2f} ms, p99 {ng_post['p99']:.2f} ms",
            f"p50 {r['p50'] / ng_post['p50']:.1f}×, p99 {r['p99'] / ng_post['p99']:.1f}× (latency)")
        p.kill()

        # The ceiling: the same work in C (bench/limit), same workers, same fsync, same wrk command.
        log(f"3{letter}: the ceiling, bench/limit, fsync {fsync}, {DEFAULT_WORKERS} workers")
        c = Limit(DEFAULT_WORKERS, fsync)
        lr = load3(f"http://127.0.0.1:{c.port}/enqueue", lambda: c.stats()["completed"])
        c.kill()
        row(f"3{letter}", f"… ceiling: `bench/limit` (the same work in C), fsync {fsync}, {DEFAULT_WORKERS} workers "
            "(diagnostic)",
            f"{fmt(lr['rps'])} accepted/s, {fmt(lr['completed_rps'])} done/s = {lr['keep_up']:.0%}; "
            f"Prefork accepted {r['rps'] / lr['rps']:.0%} and completed {completed_rps / lr['completed_rps']:.0%} "
            "of the ceiling's",
            "(the machine's limit for this work)", True, fmt(ng_post["rps"]), f"{lr['rps'] / ng_post['rps']:.0%}")

    # Two workers: fewer jobs in flight; each worker's round trip waits for the busy supervisor and for a CPU.
    log("3c: POST /enqueue accepted, fsync none, 2 workers")
    p = Prefork(workers=2, fsync="none")
    r = load3(f"http://127.0.0.1:{p.port}/enqueue", p.done)
    p.kill()
    row("3c", "`POST /enqueue`, `journal.fsync: none`, 2 workers (diagnostic)",
        f"{fmt(r['rps'])} accepted/s, {fmt(r['completed_rps'])} done/s = {r['keep_up']:.0%} of accepted",
        "(shows the worker count's effect)", True, fmt(ng_post["rps"]), f"{r['rps'] / ng_post['rps']:.0%}")


def bench_dispatch(total=200_000):
    log(f"4: dispatch, pre-filling {total} jobs")
    p = Prefork(workers=1, fsync="none", job_timeout_ms=3_600_000)
    w = p.wait_workers_idle(1)[0]
    os.kill(w["pid"], signal.SIGSTOP)  # the first job sits in the stopped worker's pipe; the rest stay queued
    counts = bulk_enqueue(p.port, job_bodies("d", total))
    assert counts.get(202) == total, counts
    m = p.metrics()
    assert int(m['prefork_jobs_total{state="done"}']) == 0
    p.kill()  # SIGKILL; PDEATHSIG kills the stopped worker
    try:
        os.kill(w["pid"], signal.SIGCONT)
    except OSError:
        pass
    # The last run pins the supervisor and its 2 workers to one CPU (taskset): the same work without a
    # cross-CPU wake-up per job hand-off, which is what this virtual machine makes expensive.
    for workers, pinned in ((2, False), (4, False), (2, True)):
        data = os.path.join(WORK, f"drain-{workers}{'-pinned' if pinned else ''}")
        shutil.copytree(p.data_dir, data)
        os.remove(os.path.join(data, "lock")) if os.path.exists(os.path.join(data, "lock")) else None
        started = time.perf_counter()
        q = Prefork(workers=workers, fsync="none", data_dir=data)
        if pinned:
            for pid in [q.pid] + [w["pid"] for w in q.workers()]:  # spawned before the first answer
                subprocess.run(["taskset", "-a", "-p", "-c", "0", str(pid)], check=True, capture_output=True)
        first = q.done()  # answered once the journal is replayed and the loop runs
        t0 = time.perf_counter()
        until(lambda: q.done() >= total, "drain", timeout=120, sleep=0.01)
        t1 = time.perf_counter()
        rate = (total - first) / (t1 - t0)
        if pinned:
            row("4c", f"dispatch, {workers} workers, supervisor and workers pinned to one CPU (diagnostic)",
                f"{fmt(rate)} jobs/s = {1e6 / rate:.1f} µs/job", "(shows the cost of cross-CPU wake-ups)", True)
        else:
            row(f"4{'a' if workers == 2 else 'b'}", f"dispatch: drain {fmt(total)} queued `@ok` jobs, {workers} workers",
                f"{fmt(rate)} jobs/s = {1e6 / rate:.1f} µs/job (replay + start {t0 - started:.2f} s before)",
                "≥ 50,000 jobs/s", rate >= 50_000)
        q.kill()


def bench_restart(kills=200):
    log(f"5: worker restart x{kills}")
    p = Prefork(workers=1)
    times = []
    for i in range(kills):
        # A worker killed before it ran a job counts as a quick death (its respawn is delayed), so every
        # worker runs one @ok job before it is killed, as a worker in service would have.
        p.enqueue(f"warm-{i}", "@ok")
        until(lambda: p.json(f"/jobs/warm-{i}")["state"] == "done", f"warm-up job {i}")
        w = p.wait_workers_idle(1)[0]
        old = w["pid"]
        t0 = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        until(lambda: (lambda ws: ws[0]["pid"] and ws[0]["pid"] != old and ws[0]["state"] == "idle")(p.workers()),
              "replacement worker", sleep=0)
        times.append((time.perf_counter() - t0) * 1000)
    p50, p99 = statistics.median(times), pct(times, 99)
    row("5", f"worker restart: SIGKILL idle worker → replacement idle in `/workers` ({kills} kills)",
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (max {max(times):.2f})", "p50 ≤ 10 ms, p99 ≤ 30 ms",
        p50 <= 10 and p99 <= 30)
    p.kill()


def bench_memory(jobs=100_000):
    log(f"6: memory with {jobs} finished jobs")
    p = Prefork(workers=2)
    ws = p.wait_workers_idle(2)
    time.sleep(0.2)
    worker_fresh = max(rss_kb(w["pid"]) for w in ws)
    sup_start = rss_kb(p.pid)
    counts = bulk_enqueue(p.port, job_bodies("m", jobs, "@ok" + " " * 97))
    assert counts.get(202) == jobs, counts
    p.wait_done(jobs)
    ws = p.wait_workers_idle(2)
    worker_used = max(rss_kb(w["pid"]) for w in ws)
    sup = rss_kb(p.pid)
    retained = int(p.metrics()["prefork_jobs_retained"])
    row("6a", "idle worker RSS (fresh / after ~50k jobs each)",
        f"{worker_fresh / 1024:.1f} / {worker_used / 1024:.1f} MiB", "≤ 10 MiB", max(worker_fresh, worker_used) <= 10 * 1024)
    row("6b", f"supervisor RSS holding {fmt(retained)} finished jobs, 100-byte payloads",
        f"{sup / 1024:.1f} MiB (at start {sup_start / 1024:.1f} MiB)", "≤ 64 MiB", sup <= 64 * 1024)
    p.kill()


def bench_shutdown(runs=20):
    log(f"6/7: shutdown x{runs}")
    times, leftovers = [], 0
    for _ in range(runs):
        p = Prefork(workers=2)
        ws = p.wait_workers_idle(2)
        p.conn.close()
        t0 = time.perf_counter()
        p.proc.send_signal(signal.SIGTERM)
        code = p.proc.wait()
        times.append((time.perf_counter() - t0) * 1000)
        assert code == 0, code
        for w in ws:
            if os.path.exists(f"/proc/{w['pid']}"):
                leftovers += 1
    med = statistics.median(times)
    row("7", f"shutdown: SIGTERM, 2 idle workers → supervisor exited, children reaped (median of {runs})",
        f"{med:.1f} ms (min {min(times):.1f}, max {max(times):.1f})"
        + (f"; {leftovers} worker processes left behind" if leftovers else ""),
        "≤ 100 ms", med <= 100 and leftovers == 0)


def bench_crash(kills=100):
    log(f"9: crash detection x{kills}")
    p = Prefork(workers=1)
    times = []
    for i in range(kills):
        job = f"long-{i}"
        p.wait_workers_idle(1)
        status, _ = p.enqueue(job, "@sleep 60000")
        assert status == 202, status
        w = until(lambda: (lambda w: w if w["job"] == job and w["state"] == "busy" else None)(p.workers()[0]),
                  f"{job} running", sleep=0)
        t0 = time.perf_counter()
        os.kill(w["pid"], signal.SIGKILL)
        until(lambda: "SIGKILL" in (p.json(f"/jobs/{job}").get("last_error") or ""), f"{job} failed", sleep=0)
        times.append((time.perf_counter() - t0) * 1000)
    row("9", f"crash detection: SIGKILL a worker mid-job → `GET /jobs/{{id}}` shows SIGKILL ({kills} kills)",
        f"p50 {statistics.median(times):.2f} ms, p99 {pct(times, 99):.2f} ms", "p50 ≤ 5 ms",
        statistics.median(times) <= 5)
    p.kill()


def main():
    started = time.time()
    only = os.environ.get("BENCH_ONLY", "http,dispatch,restart,memory,shutdown,crash").split(",")
    for name in only:
        globals()["bench_" + name]()
    header = [
        "# Prefork benchmark results", "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc {os.cpu_count()} "
        f"(`nproc`: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}), "
        f"kernel {os.uname().release}, HTTP load `wrk -t2 -c32 -d{DURATION}s --latency` on the same machine; "
        f"suite took {time.time() - started:.0f} s.", "",
        "| # | benchmark | Prefork | nginx | Prefork / nginx | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    write_results(header, NOTES)


def loadavg():
    """The 1, 5 and 15-minute load averages, as /proc/loadavg gives them."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def conditions(setup, load_before, load_after, started):
    """A results page's line on how it was taken: the date, CPUs and kernel, then `setup` (what ran, with its
    leading separator), the load average before and after, how long it took, and a warning when the machine
    was busy with other work (a 1-minute load average above 1)."""
    busy = max(float(load_before.split()[0]), float(load_after.split()[0])) > 1
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc {os.cpu_count()}, kernel {os.uname().release}"
            f"{setup}; load average before / after: {load_before} / {load_after}; took {time.time() - started:.0f} s."
            + (" **Taken while other work ran on the machine** (1-minute load average above 1)." if busy else ""))


def write_results(header, notes):
    """Prints the results page (header lines, the table rows, notes) and writes it to OUT."""
    lines = header + ["| " + " | ".join(r) + " |" for r in ROWS] + [""] + notes
    text = "\n".join(lines) + "\n"
    print(text)
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
