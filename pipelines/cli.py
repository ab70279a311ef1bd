"""The `aepipe` command: one subcommand per job, each also runnable as `python -m pipelines.<job>`
(see `pipelines.launcher` for how a job's arguments are read)."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import platform
import sys
from typing import Sequence

from pipelines.launcher import run_job

__all__ = ["main", "JOBS"]

JOBS = {
    "infer-schema": "pipelines.infer_schema",
    "train": "pipelines.train",
    "encode": "pipelines.encode",
    "sample": "pipelines.sample",
    "recommend": "pipelines.recommend",
    "evaluate": "pipelines.evaluate",
    "demo": "pipelines.demo",
}


def _summary(module_name: str) -> str:
    """The first line of a job module's docstring, read from its source, not imported."""
    try:
        spec = importlib.util.find_spec(module_name)
        source = spec.loader.get_source(module_name) if spec and spec.loader else None
        doc = ast.get_docstring(ast.parse(source)) if source else None
    except (ImportError, SyntaxError, ValueError):
        doc = None
    return doc.strip().splitlines()[0] if doc else ""


def _usage() -> str:
    width = max(map(len, JOBS))
    lines = ["usage: aepipe COMMAND [options] [Beam pipeline options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {_summary(module)}" for name, module in JOBS.items()]
    lines += ["", "Run 'aepipe COMMAND --help' for a command's options; "
              "'aepipe --version' for the versions."]
    return "\n".join(lines)


def _version() -> str:
    """aepipe's version and those of the stack it runs on, read from the installed packages'
    metadata (nothing is imported)."""
    from importlib import metadata

    from aepipe import __version__

    stack = [f"Python {platform.python_version()}"]
    for distribution, label in (("apache-beam", "Apache Beam"), ("tensorflow", "TensorFlow"),
                                ("tensorflow-transform", "tf.Transform"), ("keras", "Keras")):
        try:
            stack.append(f"{label} {metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            stack.append(f"{label} not installed")
    return f"aepipe {__version__} ({', '.join(stack)})"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv and argv[0] in ("-V", "--version"):
        print(_version())
        return 0
    if not argv or argv[0] not in JOBS:
        print(_usage(), file=sys.stderr)
        if argv:
            close = difflib.get_close_matches(argv[0], list(JOBS), n=1)
            print(f"\naepipe: error: unknown command {argv[0]}"
                  + (f" (did you mean {close[0]}?)" if close else ""), file=sys.stderr)
        return 2
    return run_job(JOBS[argv[0]], argv[1:], prog=f"aepipe {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())
