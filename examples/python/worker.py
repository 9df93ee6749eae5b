"""A Prefork worker in Python that keeps an expensive table warm.

At start-up (once per worker process) it sieves the first 3,000,000 primes, which takes about a second;
every job after that is a lookup in the table. The payload is a number n; the result is a small JSON text:

    {"n": 1000, "nth_prime": 7919, "is_prime": false, "primes_up_to_n": 168,
     "pid": 4242, "jobs_in_this_process": 3, "warmup_s": 0.84}

"pid" stays the same and "jobs_in_this_process" keeps rising from job to job: the worker stays warm.
The payload "crash" makes the worker kill itself with SIGSEGV, to watch the supervisor replace it.
Any other non-number fails the attempt with the ValueError from int().

Run from the repository root:  swift run -c release prefork --config examples/python/prefork.json
"""

import bisect
import json
import os
import signal
import sys
import time
from array import array
from itertools import compress
from math import log

try:
    import prefork_worker
except ImportError:  # not pip-installed: use the SDK from this repository
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
    import prefork_worker

COUNT = 3000000


def first_primes(count):
    """The first ``count`` primes, by a sieve of Eratosthenes, as a compact array."""
    limit = int(count * (log(count) + log(log(count)))) + 10  # above the count-th prime for count >= 6
    sieve = bytearray([1]) * limit
    sieve[0] = sieve[1] = 0
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes((limit - 1 - i * i) // i + 1)
    return array("I", compress(range(limit), sieve))[:count]


# The expensive part: runs once when the worker starts, before it tells the supervisor it is ready.
_started = time.monotonic()
PRIMES = first_primes(COUNT)
WARMUP_S = round(time.monotonic() - _started, 2)
JOBS = 0  # jobs this process has run


def handle(job):
    global JOBS
    JOBS += 1
    text = job.payload.decode("utf-8").strip()
    if text == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)  # the supervisor sees the worker die of signal 11
    n = int(text)
    if not 1 <= n <= COUNT:
        raise ValueError("n must be between 1 and %d, got %d" % (COUNT, n))
    return json.dumps(
        {
            "n": n,
            "nth_prime": PRIMES[n - 1],
            "is_prime": PRIMES[bisect.bisect_left(PRIMES, n)] == n,  # n <= COUNT < PRIMES[-1]
            "primes_up_to_n": bisect.bisect_right(PRIMES, n),
            "pid": os.getpid(),
            "jobs_in_this_process": JOBS,
            "warmup_s": WARMUP_S,
        }
    )


if __name__ == "__main__":
    prefork_worker.run(handle)
