"""The `aepipe` command: one subcommand per job, each also runnable as `python -m pipelines.<job>`.

A subcommand takes its own options and Beam's pipeline options (`--runner`, `--project`,
`--temp_location`, `--setup_file`, ...), which go to `PipelineOptions` unchanged; any other
argument is refused, naming the closest known option. `--help` and argument errors answer
before TensorFlow or Beam is imported: a job module's top level holds only its docstring and
`add_arguments`, and imports its heavy dependencies where it runs.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import importlib
import importlib.util
import logging
import os
import platform
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
# The jobs that build a Beam pipeline; the others refuse Beam's options when they run.
_BEAM_JOBS = {"pipelines.train", "pipelines.encode", "pipelines.sample", "pipelines.demo"}
_LOG = logging.getLogger("aepipe")

# Where Beam logs a worker's exception, with its traceback, before the runner re-raises it.
_BEAM_ERROR_LOGGERS = (
    "apache_beam.runners.common",  # DoFnRunner: the exception of a DoFn, in every runner
    "apache_beam.runners.worker.sdk_worker",  # 'Error processing instruction' (gRPC workers)
    "apache_beam.runners.direct.executor",  # the bundle-based DirectRunner: 'Exception at bundle'
    "apache_beam.runners.portability.local_job_service",  # 'Error running pipeline.'
    "apache_beam.runners.dataflow.dataflow_runner",  # a Dataflow job's error messages, relayed
)


class _AepipeErrorFilter(logging.Filter):
    """Drops Beam's ERROR records of a worker's exception when that exception is (or wraps, or
    names in its traceback) an AepipeError: the CLI reports it itself, as one line. Every other
    record, and every other worker exception, passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if record.exc_info and record.exc_info[1] is not None:
            return _aepipe_message(record.exc_info[1]) is None
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not format: let the handler say so
            return True
        return _qualified_aepipe_error(text) is None


_AEPIPE_ERROR_FILTER = _AepipeErrorFilter()

# Beam's local job service relays what a worker process logs (the DirectRunner's
# multi_processing mode, portable runners) as "Worker: <LogEntry as proto text>", each at its
# level, and its workers log start-up noise of their own at WARN.
_WORKER_RELAY_LOGGER = "apache_beam.runners.portability.local_job_service"
_WORKER_STARTUP_NOISE = ("No semi_persistent_directory found", "Discarding unparseable args")


class _WorkerRelayFilter(logging.Filter):
    """Shows a worker's log entries as "worker: MESSAGE", at the levels the main process shows:
    aepipe's (and the user's own code's) from INFO up, so progress lines show; Beam's from
    WARNING up, less its workers' start-up noise; other libraries' (TensorFlow, absl...) from
    ERROR up. The job service's own records pass from WARNING up, as Beam's others do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Worker: %s" or not record.args:
            return record.levelno >= logging.WARNING
        entry = str(record.args[0])
        message = _proto_string(entry, "message")
        location = (_proto_string(entry, "log_location") or "").replace(os.sep, "/")
        if message is None:
            return record.levelno >= logging.WARNING
        if "/apache_beam/" in location:
            if record.levelno < logging.WARNING or message.startswith(_WORKER_STARTUP_NOISE):
                return False
        elif ("/site-packages/" in location or "/dist-packages/" in location) and not (
                "/aepipe/" in location or "/pipelines/" in location):
            if record.levelno < logging.ERROR:
                return False
        trace = _proto_string(entry, "trace")
        record.msg, record.args = "worker: %s", (message + (f"\n{trace}" if trace else ""),)
        return True


_WORKER_RELAY_FILTER = _WorkerRelayFilter()


def _proto_string(text: str, field: str) -> str | None:
    """A string field of a message in protobuf's text format (C-style escapes undone)."""
    found = re.search(rf'\b{field}: "((?:[^"\\]|\\.)*)"', text)
    if found is None:
        return None
    try:
        return (found.group(1).encode("utf-8").decode("unicode_escape").encode("latin-1")
                .decode("utf-8", "replace"))
    except UnicodeError:
        return found.group(1)


def quiet_startup() -> None:
    """Keeps TensorFlow's start-up noise out of the user's face, shows Beam's warnings and the
    Dataflow runner's progress (job id, console URL), logs aepipe at INFO; then imports
    TensorFlow with its C++ start-up lines silenced.

    Environment variables that are already set win, so `TF_CPP_MIN_LOG_LEVEL=0` brings it back.
    """
    _configure_logging()
    with _stderr_silenced():
        import tensorflow  # noqa: F401  (its C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL)


def _configure_logging() -> None:
    """The cheap part of `quiet_startup`: environment, warnings and logging, no imports."""
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
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    logging.getLogger("apache_beam.runners.dataflow").setLevel(logging.INFO)
    # A filter on a logger sees only the records logged on that very logger, so it goes on
    # each logger that reports a worker's exception (which the CLI reports once, itself).
    for name in _BEAM_ERROR_LOGGERS:
        logging.getLogger(name).addFilter(_AEPIPE_ERROR_FILTER)
    relay = logging.getLogger(_WORKER_RELAY_LOGGER)
    relay.setLevel(logging.INFO)
    relay.addFilter(_WORKER_RELAY_FILTER)


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
    """Parses a job's arguments, runs it, and turns an AepipeError into one line and exit 2.

    `--help` and argument errors (a missing or unknown option) exit through argparse, with
    status 0 or 2, before TensorFlow is imported.
    """
    _configure_logging()
    job = importlib.import_module(module_name)
    takes_beam = module_name in _BEAM_JOBS
    epilog = ("Beam pipeline options (--runner, --project, --region, --temp_location, "
              "--setup_file, ...) are passed to Beam; any other option is refused."
              if takes_beam else None)
    parser = argparse.ArgumentParser(prog=prog or f"python -m {module_name}",
                                     description=job.__doc__.strip().splitlines()[0],
                                     epilog=epilog, allow_abbrev=False)
    job.add_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    beam_args = _beam_arguments(parser, rest)
    quiet_startup()
    return _run(job, args, beam_args)


def _beam_arguments(parser: argparse.ArgumentParser, rest: list[str]) -> list[str]:
    """The arguments the job's parser left, once each is known to be a Beam pipeline option;
    anything else ends the job through `parser.error` (exit 2), naming the closest match."""
    if not rest:
        return []
    own = [s for action in parser._actions for s in action.option_strings]
    # The usual slip, an aepipe option spelled Beam's way (--num_shards), needs no Beam import.
    for arg in rest:
        name = arg.split("=", 1)[0]
        if name.startswith("--") and "_" in name and name.replace("_", "-") in own:
            parser.error(f"unknown option {name} (did you mean {name.replace('_', '-')}?)")
    # Any other option Beam's source does not even mention: refused without importing Beam.
    mentioned = _beam_flags_in_source()
    if mentioned is not None:
        for arg in rest:
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if (arg.startswith("-") and not _NEGATIVE_NUMBER.fullmatch(arg)
                    and name not in own and name not in mentioned):
                _refuse(parser, name, own + sorted(mentioned))
    # Then Beam's own parser: the options' values, and what is neither an option nor a value.
    try:
        beam_options, unknown = _parse_beam_options(rest)
    except _BeamOptionError as e:
        parser.error(f"Beam pipeline option: {e}")
    for arg in unknown:
        if arg == "--":
            break
        if not arg.startswith("-"):
            parser.error(f"unexpected argument {arg!r}")
        _refuse(parser, arg.split("=", 1)[0], own + beam_options)
    return list(rest)


_NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d*)?([eE][-+]?\d+)?")


def _refuse(parser: argparse.ArgumentParser, name: str, known: Sequence[str]) -> None:
    close = difflib.get_close_matches(name, known, n=1)
    parser.error(f"unknown option {name}" + (f" (did you mean {close[0]}?)" if close else ""))


def _beam_flags_in_source() -> set[str] | None:
    """Every quoted '--flag' in Beam's pipeline_options.py, read without importing Beam (1-2 s):
    a superset of the options `_parse_beam_options` finds, so an option missing from it is
    refused at once. None if the source cannot be read."""
    try:
        spec = importlib.util.find_spec("apache_beam")  # finds the package, runs nothing
        path = os.path.join(spec.submodule_search_locations[0], "options",
                            "pipeline_options.py")
        with open(path, encoding="utf-8") as source:
            text = source.read()
    except (ImportError, AttributeError, IndexError, TypeError, OSError):
        return None
    return set(re.findall(r"""['"](--[A-Za-z0-9][A-Za-z0-9_-]*)['"]""", text)) or None


class _BeamOptionError(Exception):
    """A Beam pipeline option with a bad value (`--direct_num_workers two`)."""


def _parse_beam_options(args: list[str]) -> tuple[list[str], list[str]]:
    """Every option string Beam's `PipelineOptions` knows, and the arguments it does not.

    Beam's options are the `_add_argparse_args` of `PipelineOptions`' subclasses, which
    `PipelineOptions.get_all_options` adds to a `_BeamArgumentParser`; this does the same.
    """
    from apache_beam.options import pipeline_options

    class Parser(pipeline_options._BeamArgumentParser):
        def error(self, message):
            raise _BeamOptionError(message)

    parser = Parser(allow_abbrev=False, add_help=False, conflict_handler="resolve")
    classes = {}
    for cls in pipeline_options.PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)  # pylint: disable=protected-access
    known = [s for action in parser._actions for s in action.option_strings]
    _, unknown = parser.parse_known_args(args)
    return known, unknown


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


def _aepipe_errors() -> list[type]:
    from aepipe.errors import AepipeError

    found, todo = [AepipeError], [AepipeError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def _aepipe_message(error: BaseException) -> str | None:
    """The message of an AepipeError a runner re-raised inside its own exception, if any."""
    from aepipe.errors import AepipeError

    seen, visited = error, set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, AepipeError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    names = "|".join(c.__name__ for c in _aepipe_errors())
    found = re.search(rf"\b(?:{names}): (.+)", str(error))
    return found.group(1).strip() if found else None


def _qualified_aepipe_error(text: str) -> str | None:
    """The message of an AepipeError in a traceback's text (`aepipe.errors.InputError: ...`)."""
    names = "|".join(re.escape(f"{c.__module__}.{c.__qualname__}") for c in _aepipe_errors())
    found = re.search(rf"(?:{names}): (.+)", text)
    return found.group(1).strip() if found else None


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
    width = max(map(len, _JOBS))
    lines = ["usage: aepipe COMMAND [options] [Beam pipeline options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {_summary(module)}" for name, module in _JOBS.items()]
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
    if not argv or argv[0] not in _JOBS:
        print(_usage(), file=sys.stderr)
        if argv:
            close = difflib.get_close_matches(argv[0], list(_JOBS), n=1)
            print(f"\naepipe: error: unknown command {argv[0]}"
                  + (f" (did you mean {close[0]}?)" if close else ""), file=sys.stderr)
        return 2
    return run_job(_JOBS[argv[0]], argv[1:], prog=f"aepipe {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())
