"""Shared by the benchmarks: each measurement runs in a fresh process and reports JSON.

A child process times its work from its start (model load included; interpreter start-up and
imports excluded) to its last file closed, and reports its peak resident memory, so one run's
memory never leaks into the next one's figure.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(script: str, kind: str, *args: str) -> dict:
    """Runs `script --child kind args...` in a fresh process and returns its report."""
    command = [sys.executable, script, "--child", kind, *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(run: Callable[[], dict]) -> None:
    """In a child: runs one measurement quietly and prints its report as one JSON line."""
    from aepipe.logs import quiet_startup

    quiet_startup()
    result = run()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def rate(result: dict | None) -> float:
    return result["rows"] / result["seconds"] if result else float("nan")
