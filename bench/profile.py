#!/usr/bin/env python3
"""Where load 3's time goes (bench/README.md, section 3). Needs a release build (`swift build -c release`).

    python3 bench/profile.py cpu [none|batch] [seconds]
        CPU per accepted job of each party during load 3 (the default config's workers): the supervisor's loop thread (user and
        kernel), its other threads (the journal syncer), the workers, everything on the machine; plus the
        machine's idle share and the loop's involuntary context switches. From /proc, so run it on a quiet
        machine and repeat: the figures move with the neighbours.

    python3 bench/profile.py instructions [none|batch] [seconds]
        The supervisor under valgrind's callgrind during the same load: instructions per accepted job,
        deterministic enough to compare two builds (a few tenths of a percent between runs, where wall-clock
        rates on this machine move by 10%). Writes bench/callgrind.out.* for `callgrind_annotate`.
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True,
                     text=True, check=True).stdout.strip()
sys.argv, argv = ["suite.py", BIN, sys.argv[3] if len(sys.argv) > 3 else "6", "/dev/null"], sys.argv
sys.path.insert(0, HERE)
import suite  # noqa: E402  (reads its arguments from sys.argv)

HZ = os.sysconf("SC_CLK_TCK")
WORKERS = suite.DEFAULT_WORKERS  # load 3 runs the default config's worker count


def cpu_seconds(path):
    """utime and stime of /proc/<path>/stat, in seconds."""
    fields = open(f"/proc/{path}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) / HZ, int(fields[12]) / HZ


def involuntary_switches(path):
    for line in open(f"/proc/{path}/status"):
        if line.startswith("nonvoluntary_ctxt_switches"):
            return int(line.split()[1])


def machine():
    """user+nice+system+irq+softirq and idle+iowait jiffies from /proc/stat."""
    values = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    return busy, values[3] + values[4]


def cpu(fsync):
    p = suite.Prefork(workers=WORKERS, fsync=fsync)
    workers = [w["pid"] for w in p.wait_workers_idle(WORKERS)]
    loop = f"{p.pid}/task/{p.pid}"
    accepted = p.metrics()["prefork_jobs_accepted_total"]
    before = (cpu_seconds(loop), cpu_seconds(p.pid), [cpu_seconds(w) for w in workers], machine(),
              involuntary_switches(loop))
    result = suite.wrk(f"http://127.0.0.1:{p.port}/enqueue", "enqueue.lua")
    after = (cpu_seconds(loop), cpu_seconds(p.pid), [cpu_seconds(w) for w in workers], machine(),
             involuntary_switches(loop))
    jobs = p.metrics()["prefork_jobs_accepted_total"] - accepted
    p.kill()
    us = 1e6 / jobs
    loop_user, loop_kernel = (after[0][i] - before[0][i] for i in range(2))
    process = sum(after[1]) - sum(before[1])
    workers_cpu = sum(sum(b) - sum(a) for a, b in zip(before[2], after[2]))
    busy, idle = (after[3][i] - before[3][i] for i in range(2))
    print(f"load 3, fsync {fsync}, {WORKERS} workers: {result['rps']:,.0f} accepted/s ({jobs:,.0f} jobs)")
    print(f"  loop thread      user {loop_user * us:5.1f} µs/job, kernel {loop_kernel * us:5.1f} µs/job, "
          f"{(after[4] - before[4]) / jobs:.2f} involuntary switches/job")
    print(f"  other threads    {(process - loop_user - loop_kernel) * us:5.1f} µs/job (journal syncer)")
    print(f"  workers          {workers_cpu * us:5.1f} µs/job")
    print(f"  whole machine    {busy / HZ * us:5.1f} µs/job busy (wrk and the rest included); "
          f"idle {100 * idle / (busy + idle):.0f}% of both CPUs")


def instructions(fsync):
    out = os.path.join(HERE, "callgrind.out")
    for name in os.listdir(HERE):
        if name.startswith("callgrind.out"):
            os.remove(os.path.join(HERE, name))
    wrapped = tempfile.mkdtemp(prefix="prefork-callgrind-")
    with open(os.path.join(wrapped, "prefork"), "w") as script:
        script.write(f"#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --log-file={wrapped}/valgrind.log"
                     f" --callgrind-out-file={out} {BIN}/prefork \"$@\"\n")
    os.chmod(os.path.join(wrapped, "prefork"), 0o755)
    suite.BIN = wrapped
    p = suite.Prefork(workers=WORKERS, fsync=fsync, worker_path=os.path.join(BIN, "prefork-worker"))
    p.wait_workers_idle(WORKERS, timeout=60)
    accepted = p.metrics()["prefork_jobs_accepted_total"]
    subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    result = suite.wrk(f"http://127.0.0.1:{p.port}/enqueue", "enqueue.lua")
    subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    jobs = p.metrics()["prefork_jobs_accepted_total"] - accepted
    subprocess.run(["callgrind_control", "-d", str(p.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    time.sleep(0.5)
    p.kill()
    total = 0
    for name in os.listdir(HERE):
        if name.startswith("callgrind.out"):
            for line in open(os.path.join(HERE, name)):
                if line.startswith(("summary:", "totals:")):
                    total = max(total, int(line.split()[1]))
    print(f"load 3 under callgrind, fsync {fsync}: {jobs:,.0f} jobs ({result['rps']:,.0f}/s under valgrind), "
          f"{total / jobs:,.0f} supervisor instructions per job; profile in {out}.*")


if __name__ == "__main__":
    mode = argv[1] if len(argv) > 1 else "cpu"
    fsync = argv[2] if len(argv) > 2 else "none"
    if mode not in ("cpu", "instructions") or fsync not in ("none", "batch"):
        sys.exit(__doc__)
    (cpu if mode == "cpu" else instructions)(fsync)
