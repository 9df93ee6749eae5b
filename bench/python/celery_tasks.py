"""Celery side of bench/python_workers.py: a Celery 5 app on a Redis broker with one zero-work task.

Counting completions: each pool child keeps its count in an 8-byte file of its own
(BENCH_COUNT_DIR/<pid>), mapped with mmap and updated at the end of every task; the harness sums the files.
That costs the task about a microsecond and no round trip (an INCR in Redis would add one per task, and
a result backend or events would add more). Results are off (`task_ignore_result`), as Prefork's side has
no client waiting for results either.
"""
import mmap
import os
import struct

from celery import Celery

app = Celery("celery_tasks", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    result_backend=None,
    worker_send_task_events=False,
    task_send_sent_event=False,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
if os.environ.get("BENCH_CELERY_PREFETCH"):  # to try other prefetch multipliers (default 4)
    app.conf.worker_prefetch_multiplier = int(os.environ["BENCH_CELERY_PREFETCH"])

_COUNT_DIR = os.environ.get("BENCH_COUNT_DIR")
_counter = None  # (mmap, count) of this process, opened at its first task
_count = 0


def _done():
    global _counter, _count
    if _counter is None:
        fd = os.open(os.path.join(_COUNT_DIR, str(os.getpid())), os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, 8)
        _counter = mmap.mmap(fd, 8)
        os.close(fd)
    _count += 1
    struct.pack_into("<Q", _counter, 0, _count)


@app.task(name="noop")
def noop(payload):
    _done()
    return payload

