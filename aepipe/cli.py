"""The `aepipe` command: one subcommand per job, each also runnable as `python -m pipelines.<job>`.

Arguments a subcommand does not know are Beam pipeline options (`--runner`, `--project`,
`--temp_location`, `--setup_file`, ...) and go to `PipelineOptions` unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import sys
import warnings
from typing import Sequence

__all__ = ["main", "run_job", "quiet_startup"]

_JOBS = {
    "infer-schema": "pipelines.infer_schema",
    "train": "pipelines.train",
    "encode": "pipelines.encode",
    "sample": "pipelines.sample",
    "evaluate": "pipelines.evaluate",
    "demo": "pipelines.demo",
}
_LOG = logging.getLogger("aepipe")


def quiet_startup() -> None:
    """Keeps TensorFlow's and Beam's start-up noise out of the user's face; aepipe logs INFO.

    Environment variables that are already set win, so `TF_CPP_MIN_LOG_LEVEL=0` brings it back.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow_transform")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("tensorflow", "absl", "tfx_bsl", "tensorflow_transform", "h5py", "google"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # Beam logs a worker's exception with its traceback before re-raising it; the CLI reports
    # the re-raised exception itself, once.
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    with _stderr_silenced():
        import tensorflow  # noqa: F401  (its C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL)


@contextlib.contextmanager
def _stderr_silenced():
    """Points file descriptor 2 at /dev/null, for C++ libraries that log while they load."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def run_job(module_name: str, argv: Sequence[str] | None = None, *, prog: str | None = None
            ) -> int:
    """Parses a job's arguments, runs it, and turns an AepipeError into one line and exit 2."""
    quiet_startup()
    job = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=prog or f"python -m {module_name}",
                                     description=job.__doc__.strip().splitlines()[0])
    job.add_arguments(parser)
    args, beam_args = parser.parse_known_args(argv)
    return _run(job, args, beam_args)


def _run(job, args, beam_args) -> int:
    from aepipe.errors import AepipeError

    try:
        job.run(args, beam_args)
    except AepipeError as e:
        _LOG.error("error: %s", e)
        return 2
    except Exception as e:  # a worker's AepipeError reaches here wrapped by the runner
        message = _aepipe_message(e)
        if message is None:
            raise
        _LOG.error("error: %s", message)
        return 2
    return 0


def _aepipe_message(error: BaseException) -> str | None:
    """The message of an AepipeError a runner re-raised inside its own exception, if any."""
    from aepipe.errors import AepipeError

    seen = error
    while seen is not None:
        if isinstance(seen, AepipeError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    names = "|".join(c.__name__ for c in (AepipeError, *AepipeError.__subclasses__()))
    found = re.search(rf"\b(?:{names}): (.+)", str(error))
    return found.group(1).strip() if found else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in _JOBS:
        print("usage: aepipe {%s} [options] [Beam pipeline options]" % ",".join(_JOBS))
        print("\nRun 'aepipe COMMAND --help' for a command's options.")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return run_job(_JOBS[argv[0]], argv[1:], prog=f"aepipe {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())
