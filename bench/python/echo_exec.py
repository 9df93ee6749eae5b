"""Benchmark command for `"handler": "exec"`: one Python process per attempt, payload on stdin, result on
stdout. The same work as echo_worker.py's handler."""
import sys


def handle(payload):
    return payload


sys.stdout.buffer.write(handle(sys.stdin.buffer.read()))
