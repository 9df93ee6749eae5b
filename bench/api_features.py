#!/usr/bin/env python3
"""Benchmarks of the API's features: long-polls, callbacks, batch enqueue, priorities and scheduled jobs.
Run through bench/run: `BENCH_ONLY=api bench/run` (about 2 minutes). See bench/README.md, section "API features".

Usage: api_features.py BIN_DIR DURATION_SECONDS OUTPUT_MD

  A1  long-poll round trip: `POST /enqueue?wait_ms=5000` of a zero-work job (wrk -c32), against plain
      `POST /enqueue` (202) and nginx POST in the same run
  A2  callback deliveries per second to a local receiver (nginx `return 204`), without and with
      `callbacks.secret`, against wrk posting the same request with a new connection each time
  A3  bulk enqueue: 1,000,000 zero-work jobs, 100 per request, `journal.fsync: batch`, 32 connections;
      accepted/s, then drained by 4 workers until every one is done
  A4  dispatch of 200,000 queued jobs spread over priorities 0-9 with 100,000 jobs scheduled a day ahead in
      the timer heap, against the same drain of 200,000 plain jobs (suite.py's 4a)

Every job is `@ok` with `simulate.directives` (the handler returns at once: no sleep, no random number; with
`min_ms = max_ms = 0` and no directive the worker would still call nanosleep(0)). Reuses suite.py's helpers
(Prefork instances on port 0 in a temp dir, wrk, nginx, the row format); every process started here is
killed at exit.

BENCH_API_ONLY=a1,a3 runs a subset (while developing). BENCH_PERF=1 also profiles A3's load with
`perf record -g` on the supervisor and adds the top symbols to the output.
"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
import urllib.parse

import suite
from suite import HERE, PROCS, WORK, Prefork, fmt, loadavg, log, row, until, wrk

DURATION = suite.DURATION
WORKERS = suite.DEFAULT_WORKERS  # 4, the shipped config's
HTTP = {"max_body_bytes": 1_048_576}  # suite.Prefork's default (4096) is too small for a batch of 100
BULK_JOBS = int(os.environ.get("BENCH_BULK_JOBS", 1_000_000))
BULK_PER_REQUEST = 100
BULK_TARGET = 250_000
DISPATCH_JOBS = 200_000
SCHEDULED_JOBS = 100_000
DAY_MS = 86_400_000
CALLBACK_RUNS = 2
SECRET = "bench-secret-0123456789abcdef"
DRAIN_RUNS = int(os.environ.get("BENCH_DRAIN_RUNS", 3))
CALLBACK_JOBS = int(os.environ.get("BENCH_CALLBACK_JOBS", 3_000 * DURATION))
NOTES = []


def metric(p, key, default=0.0):
    return p.metrics().get(key, default)


def accepted(p):
    return int(metric(p, "prefork_jobs_accepted_total"))


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """(user, kernel) CPU seconds of processes (all their threads), from /proc/PID/stat."""
    user = kernel = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / TICK
        kernel += int(fields[12]) / TICK
    return user, kernel


def machine_idle():
    """(idle, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return values[3] + values[4], sum(values)


def stop(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def batches(p, total, mode="plain", arg="", prefix="b", per=BULK_PER_REQUEST, counter=None, timeout=300):
    """Posts `total` jobs to instance p in batches of `per` with bench/enqueue_batch.lua (wrk -t2 -c32). wrk only
    stops at the end of its -d, so the clock stops when `counter` (jobs accepted, from /metrics, polled every
    10 ms) has grown by `total`; then wrk gets SIGINT. Returns (seconds from wrk's start, posted, answered 200,
    answered other) and checks that every batch was answered 200."""
    counter = counter or (lambda: accepted(p))
    base = counter()
    cmd = ["wrk", "-t2", "-c32", f"-d{timeout}s", "-s", os.path.join(HERE, "enqueue_batch.lua"),
           f"http://127.0.0.1:{p.port}/enqueue", "--", str(per), str(total), "2", mode, str(arg), prefix]
    t0 = time.perf_counter()
    w = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    PROCS.append(w)
    while counter() - base < total:
        if w.poll() is not None:
            raise RuntimeError(f"wrk ended before {total} jobs were accepted ({counter() - base}): {w.stdout.read()}")
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    w.send_signal(signal.SIGINT)
    out, err = w.communicate(timeout=30)
    m = re.search(r"batches: posted=(\d+) answered_200=(\d+) other=(\d+)", out)
    if not m:
        raise RuntimeError(f"no summary from enqueue_batch.lua: {out} {err}")
    posted, ok, other = (int(x) for x in m.groups())
    if ok != total // per or other:
        raise RuntimeError(f"{total // per} batches expected: {posted} posted, {ok} answered 200, {other} other")
    return seconds


# ---------------------------------------------------------------- A1: long-poll round trip

def bench_a1():
    log("A1: nginx POST baseline")
    ng, ng_port = suite.start_nginx("nginx.conf")
    ng_post = wrk(f"http://127.0.0.1:{ng_port}/enqueue", "enqueue.lua")
    stop(ng)
    row("A1", "nginx, 1 worker, `return 202`: POST (baseline, wrk -t2 -c32)",
        f"{fmt(ng_post['rps'])} req/s (p50 {ng_post['p50']:.2f} ms, p99 {ng_post['p99']:.2f} ms)", "baseline", True)

    figures = {}
    for name, path, fsync in (("plain", "/enqueue", "batch"), ("wait", "/enqueue?wait_ms=5000", "batch"),
                              ("wait", "/enqueue?wait_ms=5000", "none")):
        log(f"A1: POST {path}, fsync {fsync}, {WORKERS} workers")
        p = Prefork(workers=WORKERS, fsync=fsync)
        script = "enqueue.lua" if name == "plain" else "enqueue_wait.lua"
        r = wrk(f"http://127.0.0.1:{p.port}{path}", script)
        time.sleep(0.2)  # the answers to the requests in flight when wrk stopped
        m = p.metrics()
        r["200"] = int(m.get('prefork_http_requests_total{route="/enqueue",status="200"}', 0))
        r["202"] = int(m.get('prefork_http_requests_total{route="/enqueue",status="202"}', 0))
        r["done"] = int(m['prefork_jobs_total{state="done"}'])
        r["accepted"] = int(m["prefork_jobs_accepted_total"])
        p.kill()
        figures[(name, fsync)] = r
        # Every request a new job, and (long-poll) every answer a finished one: 200, none timed out as 202.
        assert abs(r["accepted"] - r["requests"]) <= 64, f"{r['accepted']} jobs accepted for {r['requests']} requests"
        if name == "wait":
            assert r["202"] == 0 and abs(r["200"] - r["requests"]) <= 64, (r["200"], r["202"], r["requests"])

    plain = figures[("plain", "batch")]
    row("A1", f"`POST /enqueue` → 202 (plain), `journal.fsync: batch`, {WORKERS} workers",
        f"{fmt(plain['rps'])} jobs/s (p50 {plain['p50']:.2f} ms, p99 {plain['p99']:.2f} ms)", "(baseline for A1)", True,
        fmt(ng_post["rps"]), f"{plain['rps'] / ng_post['rps']:.0%} of nginx")
    for fsync in ("batch", "none"):
        r = figures[("wait", fsync)]
        row("A1", f"`POST /enqueue?wait_ms=5000` → 200 with the finished job, `journal.fsync: {fsync}`, {WORKERS} workers"
            + ("" if fsync == "batch" else " (diagnostic)"),
            f"{fmt(r['rps'])} jobs/s (p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms); {fmt(r['200'])} answered 200 "
            f"(done), {r['202']} timed out",
            "(none set)", True, f"plain 202: {fmt(plain['rps'])}; nginx: {fmt(ng_post['rps'])}",
            f"{r['rps'] / plain['rps']:.0%} of plain, {r['rps'] / ng_post['rps']:.0%} of nginx; "
            f"p50 {r['p50'] / plain['p50']:.1f}× plain's")
    return plain


# ---------------------------------------------------------------- A2: callback deliveries

def callback_run(receiver_port, secret):
    """Prefork with callbacks to the receiver: CALLBACK_JOBS jobs enqueued in batches while dispatch is paused,
    then resumed; the clock runs from the resume to the last delivery."""
    callbacks = {"allowed_hosts": ["127.0.0.1"]}
    if secret:
        callbacks["secret"] = secret
    p = Prefork(workers=WORKERS, fsync="batch", http=HTTP, callbacks=callbacks)
    p.wait_workers_idle(WORKERS)
    assert p.request("POST", "/pause")[0] == 200
    batches(p, CALLBACK_JOBS, "callback", f"http://127.0.0.1:{receiver_port}/cb", prefix="c")
    key = 'prefork_callbacks_total{outcome="delivered"}'
    assert metric(p, key) == 0
    cpu0 = cpu_seconds([p.pid])
    t0 = time.perf_counter()
    assert p.request("POST", "/resume")[0] == 200
    until(lambda: metric(p, key) >= CALLBACK_JOBS, "callback deliveries", timeout=300, sleep=0.01)
    seconds = time.perf_counter() - t0
    cpu1 = cpu_seconds([p.pid])
    cpu = tuple(1e6 * (b - a) / CALLBACK_JOBS for a, b in zip(cpu0, cpu1))
    m = p.metrics()
    bad = {o: int(m[f'prefork_callbacks_total{{outcome="{o}"}}'])
           for o in ("rejected", "timeout", "unreachable", "gave_up")}
    latency = m.get("prefork_callback_seconds_sum", 0) / max(1, m.get("prefork_callback_seconds_count", 1))
    done = int(m['prefork_jobs_total{state="done"}'])
    delivered = int(m[key])
    p.kill()
    assert done == CALLBACK_JOBS and delivered == CALLBACK_JOBS, (done, delivered)  # none lost, none twice
    return CALLBACK_JOBS / seconds, bad, latency, cpu


def bench_a2():
    ng, port = suite.start_nginx("nginx-204.conf")
    log("A2: baseline, wrk POST with Connection: close to nginx 204")
    base = wrk_close(port)
    runs = {None: [], SECRET: []}
    for i in range(CALLBACK_RUNS):  # alternating, to spread the machine's drift over both
        for secret in runs:
            log(f"A2: {CALLBACK_JOBS} callbacks, {'with' if secret else 'without'} callbacks.secret ({i + 1} of "
                f"{CALLBACK_RUNS})")
            runs[secret].append(callback_run(port, secret))
    stop(ng)
    row("A2", "wrk -t1 -c64 POST of a job record, `Connection: close` (a connection per request), to nginx "
        "`return 204` (baseline)",
        f"{fmt(base['rps'])} req/s (p50 {base['p50']:.2f} ms)" + (f"; errors {base['errors']}" if base["errors"] else ""),
        "baseline", True)
    unsigned = statistics.median(r[0] for r in runs[None])
    for secret, results in runs.items():
        rate = statistics.median(r[0] for r in results)
        problems = {}
        for r in results:
            for k, v in r[1].items():
                if v:
                    problems[k] = problems.get(k, 0) + v
        latency = statistics.median(r[2] for r in results)
        user = statistics.median(r[3][0] for r in results)
        kernel = statistics.median(r[3][1] for r in results)
        row("A2", f"callback deliveries to nginx `return 204`, {fmt(CALLBACK_JOBS)} jobs in batches of 100 "
            "(enqueued paused, then `POST /resume`), "
            + ("`callbacks.secret` set (HMAC-SHA256 signature)" if secret else "no secret")
            + f", `callbacks.max_concurrent` 64, {WORKERS} workers; median of {len(results)} runs",
            f"{fmt(rate)} deliveries/s (runs: {', '.join(fmt(r[0]) for r in results)}; mean attempt "
            f"{latency * 1000:.2f} ms; supervisor CPU per job and its delivery {user:.1f} µs user + "
            f"{kernel:.1f} µs kernel)"
            + (f"; other outcomes {problems}" if problems else "; every one delivered at the first attempt")
            + ("" if not secret else f"; {rate / unsigned:.0%} of the unsigned rate"),
            "(none set)", not problems, fmt(base["rps"]), f"{rate / base['rps']:.0%}")


def wrk_close(port):
    """wrk -t1 -c64 with post_close.lua: one request per connection, as many in flight as max_concurrent."""
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{DURATION}s", "--latency", "-s",
                          os.path.join(HERE, "post_close.lua"), f"http://127.0.0.1:{port}/cb"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan"),
            "errors": errors.group(1) if errors else ""}


# ---------------------------------------------------------------- A3: bulk enqueue

def bulk_run(perf=False):
    p = Prefork(workers=WORKERS, fsync="batch", http=HTTP)
    p.wait_workers_idle(WORKERS)
    profile = None
    if perf:
        # Profiles a few seconds of the load, started once it runs.
        data = os.path.join(p.dir, "perf.data")
        profile = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-o", data, "-p", str(p.pid), "--",
                                    "sleep", "3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        PROCS.append(profile)
    workers = [w["pid"] for w in p.workers()]
    sup0, work0, idle0 = cpu_seconds([p.pid]), cpu_seconds(workers), machine_idle()
    t0 = time.perf_counter()
    seconds = batches(p, BULK_JOBS, prefix="a")
    sup1, work1, idle1 = cpu_seconds([p.pid]), cpu_seconds(workers), machine_idle()
    m = p.metrics()
    done_then = int(m['prefork_jobs_total{state="done"}'])
    until(lambda: p.done() >= BULK_JOBS, "bulk drain", timeout=300, sleep=0.01)
    drained = time.perf_counter() - t0
    m = p.metrics()
    result = {
        "accept_s": seconds, "drain_s": drained, "done_then": done_then, "done": int(m['prefork_jobs_total{state="done"}']),
        "failed": int(m['prefork_jobs_total{state="failed"}']), "accepted": int(m["prefork_jobs_accepted_total"]),
        "fsyncs": int(m.get("prefork_journal_fsync_seconds_count", 0)),
        "fsync_ms": 1000 * m.get("prefork_journal_fsync_seconds_sum", 0) / max(1, m.get("prefork_journal_fsync_seconds_count", 1)),
        "rss_mb": suite.rss_kb(p.pid) / 1024,
        # CPU per accepted job while accepting (µs): supervisor user and kernel, the workers; machine idle share.
        "sup_user": 1e6 * (sup1[0] - sup0[0]) / BULK_JOBS, "sup_kernel": 1e6 * (sup1[1] - sup0[1]) / BULK_JOBS,
        "workers_cpu": 1e6 * (sum(work1) - sum(work0)) / BULK_JOBS,
        "idle": (idle1[0] - idle0[0]) / max(1, idle1[1] - idle0[1]),
    }
    if profile:
        profile.wait(timeout=60)
        result["perf"] = perf_summary(os.path.join(p.dir, "perf.data"))
    p.kill()
    return result


def perf_summary(data, top=25):
    """The top symbols of a perf.data by self time, then by inclusive time (children), as text lines; Swift
    names demangled when `swift demangle` is there."""
    lines = []
    for title, flag in (("self", "--no-children"), ("inclusive", "--children")):
        out = subprocess.run(["perf", "report", "-i", data, "--stdio", flag, "--sort", "sym", "-g", "none"],
                             capture_output=True, text=True).stdout
        if shutil.which("swift"):
            out = subprocess.run(["swift", "demangle", "--simplified"], input=out, capture_output=True,
                                 text=True).stdout or out
        rows = [l.rstrip()[:160] for l in out.splitlines() if l.strip() and not l.startswith("#")]
        lines += [f"-- {title} time, top {top}"] + rows[:top]
    return lines


def bench_a3(plain=None):
    log(f"A3: bulk enqueue of {fmt(BULK_JOBS)} jobs, {BULK_PER_REQUEST} per request, fsync batch, {WORKERS} workers")
    r = bulk_run()
    rate = BULK_JOBS / r["accept_s"]
    ok = r["accepted"] == BULK_JOBS and r["done"] == BULK_JOBS and r["failed"] == 0
    row("A3", f"bulk enqueue: {fmt(BULK_JOBS)} `@ok` jobs, {BULK_PER_REQUEST} per `POST /enqueue`, wrk -t2 -c32 "
        f"(enqueue_batch.lua), `journal.fsync: batch`, {WORKERS} workers",
        f"{fmt(rate)} accepted jobs/s = {1e6 / rate:.2f} µs/job ({r['accept_s']:.2f} s; "
        f"{fmt(rate / BULK_PER_REQUEST)} requests/s; {fmt(r['fsyncs'])} fdatasyncs, mean {r['fsync_ms']:.2f} ms)",
        f"≥ {fmt(BULK_TARGET)} accepted/s", rate >= BULK_TARGET and ok,
        f"single-job POST (A1 plain): {fmt(plain['rps'])}" if plain else "",
        f"{rate / plain['rps']:.1f}×" if plain else "")
    row("A3", f"… completed: from the first request until all {fmt(BULK_JOBS)} done (the workers run during the load)",
        f"{fmt(BULK_JOBS / r['drain_s'])} completed jobs/s ({r['drain_s']:.2f} s); done {fmt(r['done'])} of "
        f"{fmt(r['accepted'])} accepted, {r['failed']} failed; {fmt(r['done_then'])} done when the last was accepted; "
        f"supervisor RSS at the end {r['rss_mb']:.0f} MiB",
        "every job completed", ok)
    row("A3", "… CPU per accepted job while accepting (from /proc: supervisor, all its threads; the 4 workers), "
        "and the machine's idle share",
        f"supervisor {r['sup_user']:.2f} µs user + {r['sup_kernel']:.2f} µs kernel; workers {r['workers_cpu']:.2f} µs; "
        f"machine idle {r['idle']:.0%}", "(diagnostic)", True)
    if os.environ.get("BENCH_PERF") == "1" and shutil.which("perf"):
        log("A3: the same load under perf record -g (3 s of the supervisor)")
        pr = bulk_run(perf=True)
        NOTES.append(f"A3 under `perf record -g -F 999 -p <supervisor>` for 3 s (that run: "
                     f"{fmt(BULK_JOBS / pr['accept_s'])} accepted/s), `perf report --sort sym`:")
        NOTES.append("")
        NOTES.append("```")
        NOTES.extend(pr["perf"])
        NOTES.append("```")


# ---------------------------------------------------------------- A4: priorities and scheduled jobs

def prefill(name, priority_spread, scheduled):
    """A data directory holding DISPATCH_JOBS queued `@ok` jobs (and `scheduled` more a day ahead), filled while
    the only worker is SIGSTOPped, as suite.bench_dispatch does."""
    p = Prefork(workers=1, fsync="none", job_timeout_ms=3_600_000, http=HTTP)
    w = p.wait_workers_idle(1)[0]
    os.kill(w["pid"], signal.SIGSTOP)
    batches(p, DISPATCH_JOBS, "priority" if priority_spread else "plain", prefix="q")
    if scheduled:
        batches(p, scheduled, "delayed", DAY_MS, prefix="s")
    m = p.metrics()
    assert int(m["prefork_jobs_accepted_total"]) == DISPATCH_JOBS + scheduled
    assert int(m['prefork_jobs_total{state="done"}']) == 0
    p.kill()
    try:
        os.kill(w["pid"], signal.SIGCONT)
    except OSError:
        pass
    return p.data_dir


def done_count(q, priority, limit=1):
    """Finished jobs of `priority` retained, counted up to `limit` (GET /jobs scans 100,000 entries per page:
    follow the cursor)."""
    path = f"/jobs?state=done&priority={priority}&limit={min(limit, 10_000)}"
    page, count = q.json(path), 0
    while True:
        count += len(page["jobs"])
        if count >= limit or not page["next_cursor"]:
            return count
        page = q.json(path + "&cursor=" + urllib.parse.quote(page["next_cursor"], safe=""))


def drain(source, label, workers=2):
    data = os.path.join(WORK, f"drain-{label}-{time.monotonic_ns()}")
    shutil.copytree(source, data)
    if os.path.exists(os.path.join(data, "lock")):
        os.remove(os.path.join(data, "lock"))
    started = time.perf_counter()
    q = Prefork(workers=workers, fsync="none", data_dir=data)
    first = q.done()
    t0 = time.perf_counter()
    until(lambda: q.done() >= DISPATCH_JOBS, "drain", timeout=120, sleep=0.01)
    t1 = time.perf_counter()
    m = q.metrics()
    left = int(m["prefork_queue_depth"])
    # Retention keeps the last 100,000 finished: in priority order those are priorities 0-4 (20,000 each).
    retained = [prio for prio in range(10) if done_count(q, prio)]
    fives = done_count(q, 5, limit=100) if 5 in retained else 0
    q.kill()
    shutil.rmtree(data, ignore_errors=True)
    return {"rate": (DISPATCH_JOBS - first) / (t1 - t0), "start": t0 - started, "left": left, "retained": retained,
            "fives": fives}


def bench_a4():
    log(f"A4: pre-filling {fmt(DISPATCH_JOBS)} plain jobs")
    plain_dir = prefill("plain", False, 0)
    log(f"A4: pre-filling {fmt(DISPATCH_JOBS)} jobs over priorities 0-9 and {fmt(SCHEDULED_JOBS)} scheduled a day ahead")
    mixed_dir = prefill("mixed", True, SCHEDULED_JOBS)
    plain, mixed = [], []
    for i in range(DRAIN_RUNS):  # alternating, to spread the machine's drift over both
        log(f"A4: drain {i + 1} of {DRAIN_RUNS}, plain then priorities + scheduled")
        plain.append(drain(plain_dir, "plain"))
        mixed.append(drain(mixed_dir, "mixed"))
    pr = statistics.median(r["rate"] for r in plain)
    mr = statistics.median(r["rate"] for r in mixed)
    ratio = mr / pr
    # With 2 workers a priority-5 job started just before the priority-4 ones may finish among them.
    order_ok = all(r["retained"][:5] == [0, 1, 2, 3, 4] and r["retained"][-1] <= 5 and r["fives"] <= 2 for r in mixed)
    left_ok = all(r["left"] == SCHEDULED_JOBS for r in mixed) and all(r["left"] == 0 for r in plain)
    row("A4", f"dispatch: drain {fmt(DISPATCH_JOBS)} queued `@ok` jobs, 2 workers (suite.py's 4a; median of {DRAIN_RUNS} runs)",
        f"{fmt(pr)} jobs/s = {1e6 / pr:.1f} µs/job (runs: {', '.join(fmt(r['rate']) for r in plain)}; replay + start "
        f"{statistics.mean(r['start'] for r in plain):.2f} s before)", "baseline", True)
    row("A4", f"… the same {fmt(DISPATCH_JOBS)} over priorities 0-9 (job n has priority n mod 10), with "
        f"{fmt(SCHEDULED_JOBS)} more scheduled a day ahead (`delay_ms`) in the heap (median of {DRAIN_RUNS} runs)",
        f"{fmt(mr)} jobs/s = {1e6 / mr:.1f} µs/job (runs: {', '.join(fmt(r['rate']) for r in mixed)}; replay + start "
        f"{statistics.mean(r['start'] for r in mixed):.2f} s before); "
        + ("scheduled jobs still waiting after the drain: " + ", ".join(fmt(r["left"]) for r in mixed))
        + "; the last 100,000 finished (retention) are of priorities "
        + "; ".join(",".join(map(str, r["retained"])) + (f" ({r['fives']} of priority 5)" if r["fives"] else "")
                    for r in mixed),
        "within 10% of plain (≥ 90%)", ratio >= 0.9 and order_ok and left_ok, fmt(pr), f"{ratio:.0%}")


# ---------------------------------------------------------------- main

def main():
    started = time.time()
    load_before = loadavg()
    only = os.environ.get("BENCH_API_ONLY", "a1,a2,a3,a4").split(",")
    plain = bench_a1() if "a1" in only else None
    if "a2" in only:
        bench_a2()
    if "a3" in only:
        bench_a3(plain)
    if "a4" in only:
        bench_a4()
    load_after = loadavg()
    header = [
        "# Prefork benchmark results: API features", "",
        suite.conditions(f"; HTTP load `wrk -t2 -c32 -d{DURATION}s --latency` unless a row says otherwise",
                         load_before, load_after, started), "",
        "| # | benchmark | Prefork | baseline | Prefork / baseline | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    suite.write_results(header, NOTES)


if __name__ == "__main__":
    main()
