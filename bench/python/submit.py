"""Closed-loop submitter of bench/python_workers.py: THREADS Python threads submit zero-work jobs for
SECONDS seconds, each as fast as the previous one is accepted, and the totals are printed as JSON.

    submit.py celery THREADS SECONDS           noop.delay("@ok") (celery_tasks.py; BENCH_REDIS_URL)
    submit.py http   THREADS SECONDS PORT      POST /enqueue with http.client, one keep-alive connection
                                               per thread, unique ids, payload "@ok"; counts the 202s

Protocol with the harness: after imports and one warm-up submission per thread it prints "ready" and
waits for a line on stdin; then it runs the window and prints {"submitted", "errors", "seconds"}.
"""
import http.client
import json
import sys
import threading
import time

mode, threads, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
counts = [0] * threads
errors = [0] * threads
go = threading.Event()
stop_at = [0.0]
ready = threading.Barrier(threads + 1)

if mode == "celery":
    from celery_tasks import noop

    def worker(t):
        noop.delay("@ok")  # warm-up: opens this thread's producer connection
        ready.wait()
        go.wait()
        n, end = 0, stop_at[0]
        while time.perf_counter() < end:
            noop.delay("@ok")
            n += 1
        counts[t] = n

elif mode == "http":
    port = int(sys.argv[4])
    prefix = "s%d" % int(time.time() * 1000)

    def worker(t):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Content-Type": "application/json"}

        def post(job_id):
            conn.request("POST", "/enqueue", '{"id":"%s","payload":"@ok"}' % job_id, headers)
            r = conn.getresponse()
            r.read()
            return r.status

        post("%s-warm-%d" % (prefix, t))
        ready.wait()
        go.wait()
        n, bad, end = 0, 0, stop_at[0]
        while time.perf_counter() < end:
            if post("%s-%d-%d" % (prefix, t, n + bad)) == 202:
                n += 1
            else:
                bad += 1
        counts[t], errors[t] = n, bad

else:
    sys.exit("mode must be celery or http")

workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for w in workers:
    w.start()
ready.wait()
print("ready", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
stop_at[0] = t0 + seconds
go.set()
for w in workers:
    w.join()
elapsed = time.perf_counter() - t0
print(json.dumps({"submitted": sum(counts), "errors": sum(errors), "seconds": elapsed}), flush=True)
