"""Builds the separate venvs that run the peer synthesizers, and runs them.

Called from aepipe's own venv; plain stdlib. The peers' torch, pandas and transformers pins clash
with ours and with each other, so each family lives in its own venv (git-ignored), built from
its requirements file and reused while its stamp matches that file:

- SDV's TVAE and GaussianCopula: benchmarks/peers.py in bench-output/peers-venv, from
  benchmarks/peers-requirements.txt;
- MOSTLY AI's TabularARGN: benchmarks/argn_peer.py in bench-output/argn-venv, from
  benchmarks/argn-requirements.txt (torchvision and torchaudio uninstalled after the install).
"""

from __future__ import annotations

import dataclasses
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
# Installed first and held by a constraint: this machine has a local CPU wheel of exactly this
# torch; anything else makes pip download the multi-GB CUDA build.
TORCH = "torch==2.13.0"

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PeerEnv:
    """One peer venv: what it is built from and the script it runs."""

    name: str
    requirements: Path
    script: Path  # run with the venv's python by run_peer
    path: Path  # where the venv is built by default
    package: str  # the distribution whose version the peer reports
    stamp: str  # the stamp file's name inside the venv
    # Uninstalled after the requirements: packages a requirement drags in that break the venv.
    remove: tuple[str, ...] = ()
    # Run with the venv's python before the stamp is written: a venv that fails it is not kept.
    check: str | None = None

    def fingerprint(self) -> str:
        """What the stamp records: a venv built from other pins or another Python is rebuilt."""
        facts = {
            "python": list(sys.version_info[:2]),
            "torch": TORCH,
            "requirements_sha256": hashlib.sha256(self.requirements.read_bytes()).hexdigest(),
        }
        if self.remove:  # only when set, so that the SDV venv's older stamp stays valid
            facts["removed"] = list(self.remove)
        return json.dumps(facts)


SDV = PeerEnv(
    name="sdv",
    requirements=HERE / "peers-requirements.txt",
    script=HERE / "peers.py",
    path=ROOT / "bench-output" / "peers-venv",
    package="sdv",
    stamp="aepipe-peers.stamp",
)
ARGN = PeerEnv(
    name="argn",
    requirements=HERE / "argn-requirements.txt",
    script=HERE / "argn_peer.py",
    path=ROOT / "bench-output" / "argn-venv",
    package="mostlyai-engine",
    stamp="aepipe-argn.stamp",
    remove=("torchvision", "torchaudio"),
    check="import mostlyai.engine",
)
# model -> the venv that runs it
MODELS = {"tvae": SDV, "gaussian_copula": SDV, "tabular_argn": ARGN}

# Kept for callers of the single-venv version.
REQUIREMENTS = SDV.requirements
PEERS_SCRIPT = SDV.script
DEFAULT_PATH = SDV.path
STAMP = SDV.stamp


def env_for(model: str) -> PeerEnv:
    try:
        return MODELS[model]
    except KeyError:
        raise ValueError(f"unknown peer model {model!r} (one of: {', '.join(MODELS)})") from None


def _pip(python: Path, *args: str, action: str = "install") -> None:
    command = [str(python), "-m", "pip", action, "--quiet", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")


def ensure_peer_env(path: Path | None = None, env: PeerEnv = SDV) -> Path:
    """Creates `env`'s venv at `path` (default env.path) unless a complete one is there;
    returns its python."""
    path = Path(path or env.path).absolute()
    python = path / "bin" / "python"
    stamp = path / env.stamp
    wanted = env.fingerprint()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    LOG.info("building the %s peer venv at %s (a minute or more)", env.name, path)
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    _pip(python, TORCH)
    constraint = path / "torch-constraint.txt"
    constraint.write_text(TORCH + "\n")
    _pip(python, "-r", str(env.requirements), "-c", str(constraint))
    if env.remove:
        _pip(python, "-y", *env.remove, action="uninstall")
    if env.check:
        result = subprocess.run([str(python), "-c", env.check], capture_output=True, text=True,
                                env=_environment(python))
        if result.returncode != 0:
            raise RuntimeError(f"the {env.name} peer venv fails {env.check!r}:\n"
                               f"{result.stderr[-4000:]}")
    stamp.write_text(wanted)  # last: an install that failed half-way is rebuilt next time
    return python


def package_version(python: Path, env: PeerEnv) -> str:
    """The installed version of env.package in the venv of `python`."""
    return subprocess.run(
        [str(python), "-c",
         f"import importlib.metadata as m; print(m.version({env.package!r}))"],
        check=True, capture_output=True, text=True).stdout.strip()


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
    condition_column: str | None = None,
) -> dict:
    """Runs the script of `model`'s venv (peers.py or argn_peer.py) with that venv's `python`;
    returns the timings it wrote.

    epochs and condition_column are peers.py's (SDV) only. Its log goes straight to this
    process's stderr.
    """
    env = env_for(model)
    if env is not SDV and (epochs is not None or condition_column is not None):
        raise ValueError(f"{model}: epochs and condition_column are for SDV's peers only")
    command = [
        str(python), str(env.script), "--model", model, "--train", str(train),
        "--num-rows", str(num_rows), "--seed", str(seed),
        "--output", str(output), "--timings", str(timings),
    ]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    if condition_column is not None:
        command += ["--condition-column", condition_column]
    _run(python, command)
    return json.loads(Path(timings).read_text())


def _environment(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # SDV appends a usage log to platformdirs' user data dir, and Hugging Face's libraries (which
    # mostlyai-engine imports) keep a cache under the user's home: both stay inside the venv.
    root = Path(python).absolute().parent.parent
    env["XDG_DATA_HOME"] = str(root / "share")
    env.setdefault("HF_HOME", str(root / "share" / "huggingface"))
    return env


def _run(python: Path, command: list[str]) -> None:
    """Runs a command of a peer venv, its output passing through."""
    result = subprocess.run(command, env=_environment(python), cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[1]).name} failed with exit code {result.returncode}")
