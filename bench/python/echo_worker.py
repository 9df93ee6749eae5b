"""Benchmark worker for `"handler": "program"`: the Python SDK (sdk/python on PYTHONPATH) with a zero-work
handler. The same work as echo_exec.py (exec handler) and celery_tasks.noop (Celery)."""
import prefork_worker


def handle(job):
    return job.payload


prefork_worker.run(handle)
