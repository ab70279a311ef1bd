"""Builds the separate venv that runs benchmarks/peers.py (SDV's synthesizers) and runs it.

Called from aepipe's own venv; plain stdlib. SDV's torch and pandas pins clash with ours, so the
peers live in their own venv (default bench-output/peers-venv, git-ignored), built from
benchmarks/peers-requirements.txt and reused while its stamp matches that file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REQUIREMENTS = HERE / "peers-requirements.txt"
PEERS_SCRIPT = HERE / "peers.py"
DEFAULT_PATH = ROOT / "bench-output" / "peers-venv"
# Installed first and held by a constraint: this machine has a local CPU wheel of exactly this
# torch; anything else makes pip download the multi-GB CUDA build.
TORCH = "torch==2.13.0"
STAMP = "aepipe-peers.stamp"

LOG = logging.getLogger(__name__)


def _fingerprint() -> str:
    """What the stamp records: a venv built from other pins or another Python is rebuilt."""
    return json.dumps({
        "python": list(sys.version_info[:2]),
        "torch": TORCH,
        "requirements_sha256": hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest(),
    })


def _pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "install", "--quiet", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")


def ensure_peer_env(path: Path = DEFAULT_PATH) -> Path:
    """Creates the peer venv at `path` unless a complete one is there; returns its python."""
    path = Path(path).absolute()
    python = path / "bin" / "python"
    stamp = path / STAMP
    wanted = _fingerprint()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    LOG.info("building the peer venv at %s (about a minute)", path)
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    _pip(python, TORCH)
    constraint = path / "torch-constraint.txt"
    constraint.write_text(TORCH + "\n")
    _pip(python, "-r", str(REQUIREMENTS), "-c", str(constraint))
    stamp.write_text(wanted)  # last: an install that failed half-way is rebuilt next time
    return python


def run_peer(
    python: Path,
    *,
    model: str,
    train: Path,
    num_rows: int,
    seed: int,
    output: Path,
    timings: Path,
    epochs: int | None = None,
) -> dict:
    """Runs peers.py with the peer venv's `python`; returns the timings it wrote.

    Its log goes straight to this process's stderr.
    """
    command = [
        str(python), str(PEERS_SCRIPT), "--model", model, "--train", str(train),
        "--num-rows", str(num_rows), "--seed", str(seed),
        "--output", str(output), "--timings", str(timings),
    ]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    _run(python, command)
    return json.loads(Path(timings).read_text())


def _run(python: Path, command: list[str]) -> None:
    """Runs a command of the peer venv, its output passing through."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # SDV appends a usage log to platformdirs' user data dir: keep it inside the venv.
    env["XDG_DATA_HOME"] = str(Path(python).absolute().parent.parent / "share")
    result = subprocess.run(command, env=env, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[1]).name} failed with exit code {result.returncode}")
