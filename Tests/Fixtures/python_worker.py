"""A Python SDK worker for the integration tests: the payload names what the handler does.

    count            -> "<pid> <n>": jobs this process has handled (state kept across jobs)
    echo <text>      -> <text>
    raise <message>  -> ValueError(<message>): the attempt fails
    segv             -> the process kills itself with SIGSEGV
    exit             -> os._exit(7) in the middle of a job
    sleep <seconds>  -> sleeps, then "slept"
    spawn <file>     -> starts `sleep 300`, writes its pid to <file>, then hangs
    garbage          -> writes bytes that are not a frame to the result pipe, then hangs
    alloc            -> allocates without bound
    progress <file>  -> reports 50% "half", waits for <file> to exist, then "finished"

FIXTURE_START=exit makes the process exit before it says ready; FIXTURE_START=hang makes it never say ready.
"""

import os
import signal
import subprocess
import sys
import time

import prefork_worker

START = os.environ.get("FIXTURE_START", "")
if START == "exit":
    sys.exit(3)
if START == "hang":
    time.sleep(3600)

HANDLED = 0


def handle(job):
    global HANDLED
    HANDLED += 1
    command, _, argument = job.payload.decode().partition(" ")
    if command == "count":
        return f"{os.getpid()} {HANDLED}"
    if command == "echo":
        return argument
    if command == "raise":
        raise ValueError(argument)
    if command == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if command == "exit":
        os._exit(7)
    if command == "sleep":
        time.sleep(float(argument))
        return "slept"
    if command == "spawn":
        child = subprocess.Popen(["sleep", "300"])
        with open(argument + ".tmp", "w") as f:
            f.write(str(child.pid))
        os.rename(argument + ".tmp", argument)
        time.sleep(300)
    if command == "garbage":
        os.write(4, b"this is not a frame\n" * 8)
        time.sleep(300)
    if command == "alloc":
        blocks = []
        while True:
            blocks.append(bytearray(16 << 20))
    if command == "progress":
        job.progress(50, "half")
        while not os.path.exists(argument):
            time.sleep(0.01)
        return "finished"
    raise ValueError(f"unknown command {command!r}")


prefork_worker.run(handle)
