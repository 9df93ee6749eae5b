#!/usr/bin/env python3
"""Benchmarks of the PostgreSQL backend (queue.backend "postgres"), against the database's own ceiling measured in the same
run. Run through bench/run: `BENCH_ONLY=postgres bench/run` (about 3 minutes). See bench/README.md, section
"PostgreSQL backend".

Usage: postgres_backend.py BIN_DIR DURATION_SECONDS OUTPUT_MD

  G0  the ceiling: pgbench on bench/postgres/insert50.sql (50 inserts and a notify per transaction) and claim50.sql
      (claim 50 with SKIP LOCKED, then one fenced batched completion), -c 4 -j 2, rows/s counted in the table;
      measured before and after the Prefork runs (other work on the machine moves it), the ratios use the higher.
      Diagnostics: the node's own statement pattern on one connection (an enqueue segment of 1 row and of 32 rows,
      a claim of 4 and its completion)
  G1  one node, `queue.backend: "postgres"`, 4 workers, zero-work `@ok` jobs, wrk -t2 -c32 with enqueue.lua:
      accepted/s against the insert ceiling (target >= 50%), completed/s in the same window against the
      claim + complete ceiling (target >= 60%); then the backlog drains with no HTTP load (timed), and every
      job must end `done` exactly once
  G2  two nodes on this machine (node ids, data dirs and ports of their own, one database), two wrk -t1 -c16,
      one per node: completed/s against G1's (target: at least as many)
  G3  `POST /enqueue` latency p50/p99 (wrk --latency, -c32) with the journal (`journal.fsync: batch`) and with
      PostgreSQL (G1's run)
  G4  (diagnostic) G1 on a cluster with fsync off: what the commits' flushes cost
  G5  (diagnostic, BENCH_PG_FRESH=1) G1 on a fresh database: an empty table without statistics

For every window it also reports, per accepted job: the node's operations (pipeline segments), xact_commit, WAL
syncs and their mean time, each statement's calls and rows (pg_stat_statements), CPU of the supervisor, its
backend and the workers, the machine's idle share, and what the nodes' backends were doing (wait events sampled
every 50 ms).

Everything runs on one throwaway cluster started with `scripts/test-postgres start --durable` (PostgreSQL's
defaults: fsync and synchronous_commit on), restarted once with `pg_stat_statements` loaded (statements per job)
and `track_wal_io_timing` on (fdatasync time); it is stopped and removed at exit. Each Prefork run gets a
database of its own, migrated, seeded with SEED finished jobs and analyzed (a table in use). Reuses suite.py's
helpers; every process started here is killed at exit.

BENCH_PG_ONLY=g1,g3 runs a subset (the ceiling always runs). BENCH_PERF=1 also profiles a run of G1's load with
`perf record -g` on the supervisor and on its PostgreSQL backend, and adds the top symbols to the output.
"""
import atexit
import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time

import suite
from api_features import cpu_seconds, machine_idle, perf_summary
from suite import HERE, PROCS, Prefork, fmt, loadavg, log, row, until

DURATION = suite.DURATION
WORKERS = suite.DEFAULT_WORKERS  # 4, the shipped config's
SEED = int(os.environ.get("BENCH_PG_SEED", 100_000))
PREFILL = int(os.environ.get("BENCH_PG_PREFILL", 600_000))
PATTERN_SECONDS = 5
NOTES = []


def load_ceiling():
    """bench/postgres/ceiling as a module (it has no .py suffix): its statements, script writer and Cluster."""
    path = os.path.join(HERE, "postgres", "ceiling")
    loader = importlib.machinery.SourceFileLoader("pg_ceiling", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("pg_ceiling", loader))
    loader.exec_module(module)
    return module


ceiling = load_ceiling()
SQL = ceiling.statements()


# ---------------------------------------------------------------- the cluster

class Cluster:
    """A throwaway cluster (ceiling.Cluster: scripts/test-postgres start [--durable]), restarted with
    pg_stat_statements and track_wal_io_timing; databases by name; stopped at exit."""

    def __init__(self, fast=False):
        self.inner = ceiling.Cluster(fast)
        self.stopped = False
        atexit.register(self.stop)
        self.fast = fast
        self.dir = self.inner.directory
        bindir = self.inner.bindir
        if not os.path.exists(os.path.join(bindir, "pg_ctl")):
            versions = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: [int(x) for x in v.split(".")])
            bindir = f"/usr/lib/postgresql/{versions[-1]}/bin"
        self.bindir = bindir
        with open(os.path.join(self.dir, "data", "postgresql.conf"), "a") as f:
            f.write("shared_preload_libraries = 'pg_stat_statements'\ntrack_wal_io_timing = on\n")
        owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run(owner + [os.path.join(bindir, "pg_ctl"), "-D", os.path.join(self.dir, "data"), "-l",
                                os.path.join(self.dir, "server.log"), "-m", "fast", "-w", "restart"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sql("prefork_test", "CREATE EXTENSION pg_stat_statements")
        self.version = self.sql("prefork_test", "SHOW server_version")

    def url(self, db):
        return self.inner.url.replace("/prefork_test?", f"/{db}?")

    def sql(self, db, command):
        """Runs `command` (one statement, autocommit) in database `db`; returns psql's unaligned output."""
        result = subprocess.run(
            [os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.url(db), "-c",
             command], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}\n{command[:400]}")
        return result.stdout.strip()

    def database(self, db, seed=SEED):
        """A new database with the schema and `seed` finished jobs."""
        self.sql("prefork_test", f"CREATE DATABASE {db}")
        self.sql(db, SQL["migrate"])
        if seed:
            self.seed(db, seed)
        return db

    def seed(self, db, count=SEED):
        """`count` finished jobs (result and history like the backend's) in `db`'s job table, then VACUUM ANALYZE:
        a table in use, with statistics (a session's cached generic plans are made from them)."""
        t0 = time.perf_counter()
        self.sql(db, "INSERT INTO prefork_jobs (id, payload, state, attempts, run_at, created_at, updated_at, "
                     "result, history) SELECT 'seed-' || g, '\\x404f4b'::bytea, 'done', 1, 0, 0, 0, "
                     "'\\x6f6b'::bytea, '[{\"attempt\": 1, \"outcome\": \"ok\"}]' "
                     f"FROM generate_series(1, {count}) g")
        self.sql(db, "VACUUM ANALYZE prefork_jobs")
        log(f"  database {db}: {fmt(count)} finished jobs seeded and analyzed in {time.perf_counter() - t0:.1f} s")

    def postmaster(self):
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            return int(f.readline())

    def processes(self):
        """The postmaster and all its children."""
        pm = self.postmaster()
        kids = subprocess.run(["pgrep", "-P", str(pm)], capture_output=True, text=True).stdout.split()
        return [pm] + [int(k) for k in kids]

    def backends(self, db):
        """The client backends connected to `db` (the nodes' sessions), not this query's."""
        out = self.sql(db, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND backend_type = 'client backend' AND application_name <> 'psql'")
        return [int(x) for x in out.split()]

    def counters(self, db):
        """xact_commit of `db` and the cluster's WAL syncs and their time (ms). Both are flushed by the backends
        at most once a second: exact over a window of seconds to about that."""
        out = self.sql(db, "SELECT d.xact_commit, w.wal_sync, w.wal_sync_time FROM pg_stat_database d, pg_stat_wal w "
                           "WHERE d.datname = current_database()")
        commits, syncs, sync_ms = out.split("|")
        return {"commits": int(commits), "syncs": int(syncs), "sync_ms": float(sync_ms)}

    def reset_statements(self):
        self.sql("prefork_test", "SELECT pg_stat_statements_reset()")

    def statements(self, db):
        """{label: (calls, rows)} of the statements run in `db` since the last reset, by kind."""
        out = self.sql("prefork_test",
                       "SELECT calls, rows, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
                       f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{db}') "
                       "AND query NOT LIKE '%pg_stat_activity%'")  # the wait sampler's
        kinds = {}
        for line in out.splitlines():
            calls, rows, query = line.split("|", 2)
            if query.startswith("INSERT INTO prefork_jobs"):
                kind = "insert (insertJobs)"
            elif query.startswith("SELECT id, seq, payload") and "id = ANY" in query:
                kind = "select records (selectJobs)"
            elif query.startswith("WITH claimable"):
                kind = "claim (claimJobs)"
            elif query.startswith("UPDATE prefork_jobs j SET state = r.state"):
                kind = "complete (completeJobs)"
            elif "pg_notify" in query:
                kind = "notify"
            else:
                kind = "other (lease, rescue, count, settings)"
            c, r = kinds.get(kind, (0, 0))
            kinds[kind] = (c + int(calls), r + int(rows))
        return kinds

    def states(self, db):
        out = self.sql(db, "SELECT state, count(*) FROM prefork_jobs WHERE id NOT LIKE 'seed-%' GROUP BY state")
        return {s: int(n) for s, n in (line.split("|") for line in out.splitlines())}

    def stop(self):
        if not self.stopped:
            self.stopped = True
            self.inner.stop()


# ---------------------------------------------------------------- the ceiling

def pgbench(cluster, script, count_sql):
    before = int(cluster.sql("prefork_test", count_sql))
    c0 = cluster.counters("prefork_test")
    start = time.monotonic()
    tps, latency, failed = cluster.inner.pgbench(script, 4, 2, DURATION)
    elapsed = time.monotonic() - start
    time.sleep(1.1)  # the backends' statistics
    c1 = cluster.counters("prefork_test")
    rows = int(cluster.sql("prefork_test", count_sql)) - before
    return {"rps": rows / elapsed, "tps": tps, "latency": latency, "failed": failed, "rows": rows,
            "commits": c1["commits"] - c0["commits"], "syncs": c1["syncs"] - c0["syncs"],
            "sync_ms": (c1["sync_ms"] - c0["sync_ms"]) / max(1, c1["syncs"] - c0["syncs"])}


def write_pattern_scripts():
    """The node's own statement pattern, for pgbench on one connection (one node = one session): seg{n}.sql is an
    enqueue segment as the supervisor sends it (insertJobs of n rows, selectJobs of their records, one notify,
    pipelined under one sync); claim{n}.sql claims n and completes them (two transactions, as claim50.sql, plus
    the node's `prefork_finished` notify in the completion's). Written to the run's temporary directory."""
    paths = {}
    for n in (1, 32):
        ids = "ARRAY[" + ", ".join(f"'s' || :client_id::text || '-' || :r::text || '-{k}'" for k in range(n)) + "]"
        fill = lambda value: f"array_fill({value}, ARRAY[{n}])"
        insert = ceiling.bind(SQL["insertJobs"], [
            ids, fill(ceiling.PAYLOAD), fill("0::smallint"), fill("3"), fill("NULL::integer"), fill(":now::bigint"),
            fill("NULL::text"), ":now::bigint"])
        select = ceiling.bind(SQL["selectJobs"], [ids])
        notify = ceiling.bind(SQL["notify"], ["'prefork_queued'", "''"])
        path = os.path.join(suite.WORK, f"seg{n}.sql")
        with open(path, "w") as out:
            out.write(f"\\set now {ceiling.NOW}\n\\set r random(1, 1000000000000000)\n\\startpipeline\n")
            out.write("\n".join(ceiling.one_line(q) + ";" for q in (insert, select, notify)) + "\n\\endpipeline\n")
        paths[f"seg{n}"] = path
    node = "'bench-' || :client_id::text"
    n = WORKERS
    claim = ceiling.bind(SQL["claimJobs"], [":now::bigint", str(n), node, "1"])
    claim = (f"WITH claimed AS ({ceiling.one_line(claim)}) SELECT coalesce(array_agg(id), '{{}}') AS ids, "
             "coalesce(array_agg(attempts), '{}') AS attempts, count(*) AS claimed FROM claimed")
    fill = lambda value: f"array_fill({value}, ARRAY[:claimed::int])"
    complete = ceiling.bind(SQL["completeJobs"], [
        node, "1", ":now::bigint", ":ids", ":attempts", fill("'done'::text"), fill("NULL::bigint"),
        fill("NULL::text"), fill("'\\x6f6b'::bytea"), fill("false"), fill("'{\"outcome\": \"ok\"}'::jsonb")])
    finished = ceiling.bind(SQL["notify"], ["'prefork_finished'", "array_to_string(:ids::text[], E'\\n')"])
    path = os.path.join(suite.WORK, f"claim{n}.sql")
    with open(path, "w") as out:
        out.write(f"\\set now {ceiling.NOW}\n{claim} \\gset\n\\startpipeline\n")
        out.write(ceiling.one_line(complete) + ";\n" + ceiling.one_line(finished) + ";\n\\endpipeline\n")
    paths["claim"] = path
    return paths


def pgbench_pattern(cluster, script, count_sql, seconds=PATTERN_SECONDS):
    before = int(cluster.sql("prefork_test", count_sql))
    start = time.monotonic()
    result = subprocess.run(
        [os.path.join(cluster.bindir, "pgbench"), "-n", "-M", "prepared", "-c", "1", "-j", "1", "-T", str(seconds),
         "-f", script, cluster.url("prefork_test")], capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"pgbench {script} failed:\n{result.stdout}\n{result.stderr}")
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout).group(1))
    rows = int(cluster.sql("prefork_test", count_sql)) - before
    return {"rps": rows / elapsed, "tps": tps}


def ceiling_run(cluster, patterns=False):
    """insert50.sql and claim50.sql (pgbench -c 4 -j 2, DURATION each); with `patterns`, also the node's own
    statement pattern on one connection (PATTERN_SECONDS each)."""
    ceiling.write_scripts(SQL)  # regenerated from Schema.swift, as bench/postgres/ceiling does
    cluster.sql("prefork_test", "DROP TABLE IF EXISTS prefork_jobs, prefork_nodes, prefork_settings, prefork_schema")
    cluster.sql("prefork_test", SQL["migrate"])
    log(f"G0: ceiling, pgbench insert50.sql -c 4 -j 2 -T {DURATION}")
    result = {"insert": pgbench(cluster, "insert50.sql", "SELECT count(*) FROM prefork_jobs"), "load": loadavg()}
    cluster.sql("prefork_test", "TRUNCATE prefork_jobs")
    t0 = time.perf_counter()
    cluster.sql("prefork_test",
                "INSERT INTO prefork_jobs (id, payload, state, run_at, created_at, updated_at) "
                f"SELECT 'p-' || g, {ceiling.PAYLOAD}, 'queued', 0, 0, 0 FROM generate_series(1, {PREFILL}) g")
    cluster.sql("prefork_test",
                "INSERT INTO prefork_nodes (node_id, epoch, lease_until, started_at, host, pid, workers) "
                f"SELECT 'bench-' || c, 1, {ceiling.NOW * 10}, 0, 'bench', 0, 4 FROM generate_series(0, 3) c")
    cluster.sql("prefork_test", "VACUUM ANALYZE prefork_jobs")
    log(f"G0: prefilled {fmt(PREFILL)} queued jobs in {time.perf_counter() - t0:.1f} s; pgbench claim50.sql")
    result["claim"] = pgbench(cluster, "claim50.sql", "SELECT count(*) FROM prefork_jobs WHERE state = 'done'")
    result["dry"] = int(cluster.sql("prefork_test", "SELECT count(*) FROM prefork_jobs WHERE state = 'queued'")) == 0
    cluster.sql("prefork_test", "TRUNCATE prefork_jobs")
    if patterns:
        # The node's own pattern on one connection: what the database gives a single session doing what it does.
        log(f"G0: the node's statement pattern on one connection (pgbench -c 1, {PATTERN_SECONDS} s each)")
        paths = write_pattern_scripts()
        cluster.seed("prefork_test")
        for name in ("seg1", "seg32"):
            result[name] = pgbench_pattern(cluster, paths[name], "SELECT count(*) FROM prefork_jobs")
        cluster.sql("prefork_test", "TRUNCATE prefork_jobs")
        cluster.sql("prefork_test",
                    "INSERT INTO prefork_jobs (id, payload, state, run_at, created_at, updated_at) "
                    f"SELECT 'p-' || g, {ceiling.PAYLOAD}, 'queued', 0, 0, 0 FROM generate_series(1, 200000) g")
        cluster.seed("prefork_test")
        result["claim4"] = pgbench_pattern(cluster, paths["claim"],
                                           "SELECT count(*) FROM prefork_jobs WHERE state = 'done'")
        cluster.sql("prefork_test", "TRUNCATE prefork_jobs")
    return result


def report_ceiling(runs):
    """G0 rows for each ceiling run; returns the higher of each path's figures (the ratios' baseline)."""
    for when, c in runs:
        for name, r in (("`insert50.sql`: 50 `insertJob` + 1 notify per transaction (the enqueue path)", c["insert"]),
                        ("`claim50.sql`: claim 50 `SKIP LOCKED` + 1 fenced batched completion (the dispatch path)",
                         c["claim"])):
            row("G0", f"ceiling {when}: pgbench {name}, `-M prepared -c 4 -j 2 -T {DURATION}`",
                f"{fmt(r['rps'])} rows/s ({fmt(r['tps'])} tx/s, {r['latency']:.1f} ms per tx; "
                f"{r['syncs'] / max(1, r['rows']):.3f} WAL syncs per row, mean sync {r['sync_ms']:.2f} ms; "
                f"load {c['load'].split()[0]})"
                + (f", {r['failed']} failed tx" if r["failed"] else "")
                + ("; **the queue ran dry: a lower bound**" if r is c["claim"] and c["dry"] else ""),
                "baseline", r["failed"] == 0)
    best = {"insert": max(c["insert"]["rps"] for _, c in runs), "claim": max(c["claim"]["rps"] for _, c in runs)}
    first = runs[0][1]
    if "seg1" in first:
        row("G0", "… the node's enqueue segment on one connection: `insertJobs` of 1 row + `selectJobs` + notify "
            f"under one sync (about the size G1 sends; pgbench -c 1, {PATTERN_SECONDS} s; diagnostic)",
            f"{fmt(first['seg1']['rps'])} rows/s ({fmt(first['seg1']['tps'])} segments/s)", "(diagnostic)", True,
            f"{fmt(best['insert'])} rows/s", f"{first['seg1']['rps'] / best['insert']:.1%}")
        row("G0", "… the same segment with 32 rows (all of wrk's 32 connections in one segment; diagnostic)",
            f"{fmt(first['seg32']['rps'])} rows/s ({fmt(first['seg32']['tps'])} segments/s)", "(diagnostic)", True,
            f"{fmt(best['insert'])} rows/s", f"{first['seg32']['rps'] / best['insert']:.1%}")
        row("G0", f"… claim {WORKERS} + complete them (+ the `prefork_finished` notify) on one connection (a node with "
            f"{WORKERS} idle workers and nothing else on its session; diagnostic)",
            f"{fmt(first['claim4']['rps'])} rows/s ({fmt(first['claim4']['tps'])} claims/s)", "(diagnostic)", True,
            f"{fmt(best['claim'])} rows/s", f"{first['claim4']['rps'] / best['claim']:.1%}")
    return best


# ---------------------------------------------------------------- Prefork nodes

def node(cluster, db, node_id, prefetch=0):
    p = Prefork(workers=WORKERS, queue={"backend": "postgres"},
                postgres={"url": cluster.url(db), "node_id": node_id, "claim_batch": 50, "prefetch": prefetch})
    until(lambda: p.request("GET", "/readyz")[0] == 200, f"node {node_id} ready", timeout=30, sleep=0.01)
    p.wait_workers_idle(WORKERS)
    return p


def node_counts(nodes):
    done = accepted = ops = op_seconds = 0
    for p in nodes:
        m = p.metrics()
        done += int(m['prefork_jobs_total{state="done"}'])
        accepted += int(m["prefork_jobs_accepted_total"])
        ops += int(m.get("prefork_postgres_query_seconds_count", 0))
        op_seconds += m.get("prefork_postgres_query_seconds_sum", 0)
    return done, accepted, ops, op_seconds


def snapshot(cluster, db, nodes):
    done, accepted, ops, op_seconds = node_counts(nodes)
    workers = [w["pid"] for p in nodes for w in p.workers()]
    return {"t": time.perf_counter(), "done": done, "accepted": accepted, "ops": ops, "op_seconds": op_seconds,
            "sup": cpu_seconds([p.pid for p in nodes]), "workers": cpu_seconds(workers),
            "backends": cpu_seconds(cluster.backends(db)), "pg": cpu_seconds(cluster.processes()),
            "idle": machine_idle(), "pgc": cluster.counters(db)}


class WaitSampler:
    """What the nodes' backends of `db` are doing, sampled every 50 ms by one psql session (`\\watch`): wait event
    type and name, `CPU` when running, `Client:ClientRead` when idle waiting for the node."""

    def __init__(self, cluster, db):
        query = ("SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, 'running') "
                 "FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' "
                 "AND application_name <> 'psql'")
        self.proc = subprocess.Popen([os.path.join(cluster.bindir, "psql"), "-X", "-q", "-A", "-t", cluster.url(db)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        PROCS.append(self.proc)
        self.proc.stdin.write(query + "\n\\watch 0.05\n")
        self.proc.stdin.flush()

    def stop(self):
        """{event: share of the samples}."""
        self.proc.terminate()
        out = self.proc.communicate(timeout=10)[0]
        counts = {}
        for line in out.splitlines():
            if re.fullmatch(r"[A-Za-z]+:[A-Za-z0-9_]+", line.strip()):
                counts[line.strip()] = counts.get(line.strip(), 0) + 1
        total = sum(counts.values())
        return {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])} if total else {}


def parse_wrk(out):
    def latency(label):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50": latency("50%"), "p99": latency("99%"), "non2xx": int(non2xx.group(1)) if non2xx else 0}


def load(cluster, db, nodes, connections=32, perf=False):
    """wrk on every node at once (connections split between them, enqueue.lua, ids tagged per node), with the
    counters before and after. One node: the suite's `wrk -t2 -c32`; several: `wrk -t1 -c(32/n)` each."""
    per = connections // len(nodes)
    threads = 2 if len(nodes) == 1 else 1
    cluster.reset_statements()
    sampler = WaitSampler(cluster, db)
    before = snapshot(cluster, db, nodes)
    procs = []
    for i, p in enumerate(nodes):
        cmd = ["wrk", f"-t{threads}", f"-c{per}", f"-d{DURATION}s", "--latency", "-s",
               os.path.join(HERE, "enqueue.lua"), f"http://127.0.0.1:{p.port}/enqueue", "--", f"{db}-n{i}-"]
        w = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        PROCS.append(w)
        procs.append(w)
    profiles = []
    if perf:
        time.sleep(min(2, DURATION / 4))
        for name, pid in (("supervisor", nodes[0].pid), ("backend", cluster.backends(db)[0])):
            data = os.path.join(nodes[0].dir, f"perf-{name}.data")
            pr = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-o", data, "-p", str(pid), "--", "sleep", "3"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            PROCS.append(pr)
            profiles.append((name, pr, data))
    outs = [parse_wrk(w.communicate()[0]) for w in procs]
    after = snapshot(cluster, db, nodes)
    waits = sampler.stop()
    statements = cluster.statements(db)
    for _, pr, _ in profiles:
        pr.wait(timeout=60)
    # xact_commit and the WAL counters lag by up to a second (the backends flush them about once a second), at
    # both ends of the window alike.
    late = after["pgc"]
    seconds = after["t"] - before["t"]
    requests = sum(o["requests"] for o in outs)
    accepted = after["accepted"] - before["accepted"]
    # Every request a new job (the ids are unique across wrk threads and processes); requests in flight when wrk
    # stops are accepted and not counted by wrk.
    assert abs(accepted - requests) <= connections * 2, f"{accepted} jobs accepted for {requests} requests"
    r = {
        "wrk": outs, "seconds": seconds, "requests": requests, "accepted": accepted,
        "accepted_rps": sum(o["rps"] for o in outs), "non2xx": sum(o["non2xx"] for o in outs),
        "done": after["done"] - before["done"], "ops": after["ops"] - before["ops"],
        "op_ms": 1000 * (after["op_seconds"] - before["op_seconds"]) / max(1, after["ops"] - before["ops"]),
        "commits": late["commits"] - before["pgc"]["commits"], "syncs": late["syncs"] - before["pgc"]["syncs"],
        "sync_ms": (late["sync_ms"] - before["pgc"]["sync_ms"]) / max(1, late["syncs"] - before["pgc"]["syncs"]),
        "statements": statements, "waits": waits,
        "cpu": {k: sum(after[k]) - sum(before[k]) for k in ("sup", "workers", "backends", "pg")},
        "idle": (after["idle"][0] - before["idle"][0]) / max(1, after["idle"][1] - before["idle"][1]),
        "profiles": [(name, data) for name, _, data in profiles],
    }
    r["completed_rps"] = r["done"] / seconds
    r["p50"], r["p99"] = outs[0]["p50"], outs[0]["p99"]
    return r


def drain_rate(nodes, seconds):
    """Jobs done per second over `seconds` of draining (no HTTP load), without waiting for the end."""
    done0, t0 = node_counts(nodes)[0], time.perf_counter()
    time.sleep(seconds)
    return (node_counts(nodes)[0] - done0) / (time.perf_counter() - t0)


def drain(cluster, db, nodes, timeout=180):
    """Waits until no job of the run is queued or running; checks that every accepted job is done exactly once,
    in the nodes' counters and in the table; then the CPU the idle nodes and their backends use for 2 s."""
    t0 = time.perf_counter()
    done0 = node_counts(nodes)[0]
    try:
        until(lambda: not {"queued", "running"} & set(cluster.states(db)), "the backlog drained", timeout=timeout,
              sleep=0.05)
    except RuntimeError:
        log(f"  the backlog did not drain in {timeout} s: {cluster.states(db)}")
    seconds = time.perf_counter() - t0
    time.sleep(0.2)  # the last completions' answers
    done, accepted, _, _ = node_counts(nodes)
    states = cluster.states(db)
    ok = done == accepted and states.get("done", 0) == accepted and set(states) <= {"done"}
    idle0 = (cpu_seconds([p.pid for p in nodes]), cpu_seconds(cluster.backends(db)), time.perf_counter())
    time.sleep(2)
    idle1 = (cpu_seconds([p.pid for p in nodes]), cpu_seconds(cluster.backends(db)), time.perf_counter())
    idle_cpu = (sum(idle1[0]) - sum(idle0[0]) + sum(idle1[1]) - sum(idle0[1])) / (idle1[2] - idle0[2])
    return {"seconds": seconds, "rate": (done - done0) / seconds if seconds > 0 else 0, "jobs": done - done0,
            "done": done, "accepted": accepted, "states": states, "ok": ok, "idle_cpu": idle_cpu}


def per_job(r, label):
    """A note: where a run's statements, commits, syncs and CPU went, per accepted job."""
    n = max(1, r["accepted"])
    d = max(1, r["done"])
    s = r["statements"]
    lines = [f"{label}: {fmt(r['accepted'])} jobs accepted and {fmt(r['done'])} completed in {r['seconds']:.1f} s.",
             "",
             "| per accepted job | value |", "|---|---|",
             f"| operations (pipeline segments: one sync, one implicit transaction each; node's "
             f"`prefork_postgres_query_seconds_count`) | {r['ops'] / n:.2f} |",
             f"| mean round trip of an operation, sent to answered (node's `prefork_postgres_query_seconds`) | "
             f"{r['op_ms']:.2f} ms |",
             f"| `xact_commit` (segments + the transactions a listening backend runs to read notifications) | "
             f"{r['commits'] / n:.2f} |",
             f"| WAL syncs (`pg_stat_wal.wal_sync`), mean {r['sync_ms']:.3f} ms each | {r['syncs'] / n:.2f} |",
             f"| CPU: supervisor(s) | {1e6 * r['cpu']['sup'] / n:.0f} µs |",
             f"| CPU: PostgreSQL backend(s) of the nodes | {1e6 * r['cpu']['backends'] / n:.0f} µs |",
             f"| CPU: the other PostgreSQL processes (postmaster, WAL writer, checkpointer, the wait sampler) | "
             f"{1e6 * (r['cpu']['pg'] - r['cpu']['backends']) / n:.0f} µs |",
             f"| CPU: workers | {1e6 * r['cpu']['workers'] / n:.0f} µs |",
             f"| machine idle during the window | {r['idle']:.0%} |",
             "| the nodes' backends, sampled every 50 ms (`pg_stat_activity`: wait event, CPU = running, "
             "Client:ClientRead = idle, waiting for the node) | "
             + ", ".join(f"{k} {v:.0%}" for k, v in list(r["waits"].items())[:6]) + " |", "",
             "| statement (pg_stat_statements, this window) | calls | rows | rows per call | calls per accepted job |",
             "|---|---|---|---|---|"]
    for kind, (calls, rows) in sorted(s.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {kind} | {fmt(calls)} | {fmt(rows)} | {rows / max(1, calls):.2f} | {calls / n:.3f} |")
    lines.append(f"| (jobs completed in the window: {fmt(d)}) | | | | |")
    return lines + [""]


PREFETCH = 100


def run_g1(cluster, prefetch=0):
    name = "G1p" if prefetch else "G1"
    db = cluster.database("node1p" if prefetch else "node1")
    log(f"{name}: one node, {WORKERS} workers, prefetch {prefetch}, wrk -t2 -c32 enqueue.lua for {DURATION} s")
    p = node(cluster, db, "node-1", prefetch=prefetch)
    r = load(cluster, db, [p])
    log(f"{name}: draining the backlog")
    r["drain"] = drain(cluster, db, [p])
    r["prefetch"] = prefetch
    p.kill()
    return r


def report_g1(r, best):
    d = r["drain"]
    acc, comp = r["accepted_rps"] / best["insert"], r["completed_rps"] / best["claim"]
    g = "G1p" if r["prefetch"] else "G1"
    setting = f"`postgres.prefetch: {r['prefetch']}`" if r["prefetch"] else "no prefetch (the default)"
    row(g, f"one node, {WORKERS} workers, {setting}, `POST /enqueue` wrk -t2 -c32: accepted",
        f"{fmt(r['accepted_rps'])} accepted/s (p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms)"
        + (f" ({r['non2xx']} non-2xx)" if r["non2xx"] else ""),
        "≥ 50% of the insert ceiling", acc >= 0.5 and r["non2xx"] == 0, f"{fmt(best['insert'])} rows/s", f"{acc:.1%}")
    row(g, "… completed in the same window",
        f"{fmt(r['completed_rps'])} done/s = {r['done'] / max(1, r['accepted']):.0%} of accepted; queued + running at "
        f"the end {fmt(r['accepted'] - r['done'])}",
        "≥ 60% of the claim + complete ceiling", comp >= 0.6, f"{fmt(best['claim'])} rows/s", f"{comp:.1%}")
    drained = (f"{fmt(d['rate'])} done/s ({fmt(d['jobs'])} jobs in {d['seconds']:.1f} s)" if d["jobs"] > 0
               else "nothing was left to drain")
    row(g, "… the backlog drained afterwards, no HTTP load (diagnostic); every job done once",
        f"{drained}; done {fmt(d['done'])} of "
        f"{fmt(d['accepted'])} accepted, table {d['states']}; idle node + its backend afterwards "
        f"{100 * d['idle_cpu']:.1f}% of a CPU",
        "(diagnostic; every job done)", d["ok"], f"{fmt(best['claim'])} rows/s",
        f"{d['rate'] / best['claim']:.1%}" if d["jobs"] > 0 else "")
    NOTES.extend(per_job(r, f"{g}, one node, {setting}"))


def run_g2(cluster):
    db = cluster.database("node2")
    log(f"G2: two nodes, {WORKERS} workers each, one database, two wrk -t1 -c16 for {DURATION} s")
    nodes = [node(cluster, db, "node-a"), node(cluster, db, "node-b")]
    r = load(cluster, db, nodes)
    log("G2: draining the backlog")
    r["drain"] = drain(cluster, db, nodes)
    r["ran"] = [int(p.metrics()['prefork_jobs_total{state="done"}']) for p in nodes]
    for p in nodes:
        p.kill()
    return r


def report_g2(r, one):
    d, ran = r["drain"], r["ran"]
    row("G2", f"two nodes ({WORKERS} workers each, own node_id, data_dir and port; one database), "
        "wrk -t1 -c16 on each: completed",
        f"{fmt(r['completed_rps'])} done/s; {fmt(r['accepted_rps'])} accepted/s "
        f"({', '.join(fmt(w['rps']) for w in r['wrk'])}); p50 {r['p50']:.2f} / {r['wrk'][1]['p50']:.2f} ms",
        "≥ one node's completed/s", r["completed_rps"] >= (one["completed_rps"] if one else 0) and r["non2xx"] == 0,
        f"one node: {fmt(one['completed_rps'])} done/s, {fmt(one['accepted_rps'])} accepted/s" if one else "",
        f"{r['completed_rps'] / one['completed_rps']:.2f}× done, {r['accepted_rps'] / one['accepted_rps']:.2f}× "
        "accepted" if one else "")
    row("G2", "… the backlog drained afterwards by both (diagnostic); every job done once",
        f"{fmt(d['rate'])} done/s ({fmt(d['jobs'])} jobs in {d['seconds']:.1f} s); done {fmt(d['done'])} of "
        f"{fmt(d['accepted'])} accepted (node-a ran {fmt(ran[0])}, node-b {fmt(ran[1])}), table {d['states']}",
        "(diagnostic; every job done)", d["ok"], f"one node: {fmt(one['drain']['rate'])} done/s" if one else "",
        f"{d['rate'] / one['drain']['rate']:.2f}×" if one else "")
    NOTES.extend(per_job(r, "G2, two nodes (sums)"))


def run_g3():
    log(f"G3: journal, fsync batch, {WORKERS} workers, wrk -t2 -c32 for {DURATION} s")
    p = Prefork(workers=WORKERS, fsync="batch")
    r = suite.wrk(f"http://127.0.0.1:{p.port}/enqueue", "enqueue.lua")
    p.kill()
    return r


def report_g3(r, one):
    row("G3", "`POST /enqueue` latency, wrk -t2 -c32 --latency: journal (`journal.fsync: batch`)",
        f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms ({fmt(r['rps'])} accepted/s)", "(none set)", True)
    if one:
        row("G3", "… PostgreSQL backend (G1's run)",
            f"p50 {one['p50']:.2f} ms, p99 {one['p99']:.2f} ms ({fmt(one['accepted_rps'])} accepted/s)",
            "(none set)", True, f"journal: p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms",
            f"p50 {one['p50'] / r['p50']:.1f}×, p99 {one['p99'] / r['p99']:.1f}×")


def run_g4():
    log("G4: one node on a cluster with fsync off (diagnostic)")
    fast = Cluster(fast=True)
    try:
        db = fast.database("node1")
        p = node(fast, db, "node-fast")
        r = load(fast, db, [p])
        r["drain_rate"] = drain_rate([p], 5)
        p.kill()
    finally:
        fast.stop()
    return r


def report_g4(r, one):
    row("G4", "one node as G1 on a cluster with `fsync = off` (commits not flushed to disk; diagnostic)",
        f"{fmt(r['accepted_rps'])} accepted/s, {fmt(r['completed_rps'])} done/s (p50 {r['p50']:.2f} ms); "
        f"{r['ops'] / max(1, r['accepted']):.2f} operations per accepted job; then drained {fmt(r['drain_rate'])} "
        "done/s (5 s, no HTTP load)",
        "(diagnostic: what the flushes cost)", True,
        f"G1: {fmt(one['accepted_rps'])} accepted/s, {fmt(one['completed_rps'])} done/s, drained "
        f"{fmt(one['drain']['rate'])} done/s" if one else "",
        f"{r['accepted_rps'] / one['accepted_rps']:.1f}× / {r['completed_rps'] / max(1, one['completed_rps']):.1f}× / "
        f"{r['drain_rate'] / max(1, one['drain']['rate']):.1f}×" if one else "")
    NOTES.extend(per_job(r, "G4, one node, fsync off"))


def run_g5(cluster):
    """A fresh database: the node prepares its statements while the table is empty and never analyzed."""
    db = cluster.database("fresh", seed=0)
    log("G5: one node on a fresh, empty database (diagnostic)")
    p = node(cluster, db, "node-fresh")
    r = {"rates": [], "scans": []}
    for _ in range(2):
        s0 = int(cluster.sql(db, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'prefork_jobs'"))
        w = load(cluster, db, [p])
        s1 = int(cluster.sql(db, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'prefork_jobs'"))
        r["rates"].append(w["accepted_rps"])
        r["scans"].append((s1 - s0) / max(1, w["accepted"]))
    r["analyzed"] = cluster.sql(db, "SELECT coalesce(last_autoanalyze::text, 'never') FROM pg_stat_user_tables "
                                    "WHERE relname = 'prefork_jobs'")
    r["drain"] = drain(cluster, db, [p])
    p.kill()
    return r


def report_g5(r):
    row("G5", f"one node on a fresh database (empty table, no statistics yet), two {DURATION} s windows (diagnostic)",
        f"{' then '.join(fmt(x) for x in r['rates'])} accepted/s; sequential scans of prefork_jobs per accepted job "
        f"{' then '.join(f'{x:.2f}' for x in r['scans'])}; last autoanalyze: {r['analyzed']}",
        "(diagnostic)", r["drain"]["ok"])


def run_perf(cluster):
    log("G1 again under perf record -g (3 s of the supervisor and of its backend)")
    db = cluster.database("perf")
    p = node(cluster, db, "node-perf")
    r = load(cluster, db, [p], perf=True)
    drain(cluster, db, [p])
    p.kill()
    for name, data in r["profiles"]:
        NOTES.append(f"G1's load under `perf record -g -F 999 -p <{name}>` for 3 s (that run: "
                     f"{fmt(r['accepted_rps'])} accepted/s, {fmt(r['completed_rps'])} done/s), "
                     "`perf report --sort sym`:")
        NOTES.extend(["", "```"] + perf_summary(data) + ["```", ""])


# ---------------------------------------------------------------- main

def main():
    started = time.time()
    load_before = loadavg()
    only = os.environ.get("BENCH_PG_ONLY", "g1,g1p,g2,g3,g4").split(",")
    if os.environ.get("BENCH_PG_FRESH") == "1":
        only.append("g5")
    cluster = Cluster()
    log(f"PostgreSQL {cluster.version}, durable cluster in {cluster.dir} ({len(cluster.processes())} processes)")
    ceilings = [("before", ceiling_run(cluster, patterns=True))]
    one = run_g1(cluster) if "g1" in only else None
    ahead = run_g1(cluster, prefetch=PREFETCH) if "g1p" in only else None
    two = run_g2(cluster) if "g2" in only else None
    journal = run_g3() if "g3" in only else None
    fresh = run_g5(cluster) if "g5" in only else None
    if os.environ.get("BENCH_PERF") == "1" and shutil.which("perf"):
        run_perf(cluster)
    # The ceiling again: other work on the machine moves it (disk and CPU); the ratios use the higher figure.
    ceilings.append(("after", ceiling_run(cluster)))
    cluster.stop()
    fast = run_g4() if "g4" in only else None
    load_after = loadavg()

    best = report_ceiling(ceilings)
    if one:
        report_g1(one, best)
    if ahead:
        report_g1(ahead, best)
    if two:
        report_g2(two, one)
    if journal:
        report_g3(journal, one)
    if fast:
        report_g4(fast, one)
    if fresh:
        report_g5(fresh)
    header = [
        "# Prefork benchmark results: PostgreSQL backend", "",
        suite.conditions(
            f", PostgreSQL {cluster.version} on the same machine (`scripts/test-postgres start --durable`, Unix "
            f"socket); HTTP load `wrk -d{DURATION}s --latency` with enqueue.lua", load_before, load_after, started),
        "Ratios to the ceiling use the higher of its two measurements (before and after the Prefork runs).", "",
        "| # | benchmark | Prefork | baseline | Prefork / baseline | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    suite.write_results(header, NOTES)


if __name__ == "__main__":
    main()
