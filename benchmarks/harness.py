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


# Throughput: a job against its plain loop, and the loop against the bare signature call.
KINDS = ("bare", "plain", "beam")


def three_ways(script: str, size: int, *args: str) -> dict[str, dict]:
    """The bare signature call, the plain loop and the Beam job, each in a fresh process."""
    return {kind: measure(script, kind, str(size), *args) for kind in KINDS}


def throughput_table(rows: list[tuple[int, dict[str, dict]]], unit: str = "rows") -> str:
    """A markdown table of `three_ways` reports by size: rates, the two ratios, memory."""
    lines = [f"| {unit} | bare {unit}/s | plain {unit}/s | beam {unit}/s | plain/bare | "
             "beam/plain | plain MB | beam MB | beam s |", "|" + "---:|" * 9]
    for size, runs in rows:
        bare, plain, beam = (runs[kind] for kind in KINDS)
        lines.append(f"| {size:,} | {rate(bare):,.0f} | {rate(plain):,.0f} | {rate(beam):,.0f} | "
                     f"{rate(plain) / rate(bare):.2f} | {rate(beam) / rate(plain):.2f} | "
                     f"{plain['peak_rss_mb']:.0f} | {beam['peak_rss_mb']:.0f} | "
                     f"{beam['seconds']:.1f} |")
    return "\n".join(lines)
