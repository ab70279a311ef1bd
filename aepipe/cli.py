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
import difflib
import importlib
import importlib.util
import logging
import os
import platform
import re
import sys
from typing import Sequence

from aepipe.logs import aepipe_message, configure_logging, quiet_startup

__all__ = ["main", "run_job"]

_JOBS = {
    "infer-schema": "pipelines.infer_schema",
    "train": "pipelines.train",
    "encode": "pipelines.encode",
    "sample": "pipelines.sample",
    "recommend": "pipelines.recommend",
    "evaluate": "pipelines.evaluate",
    "demo": "pipelines.demo",
}
# The jobs that build a Beam pipeline; the others refuse Beam's options when they run.
_BEAM_JOBS = {"pipelines.train", "pipelines.encode", "pipelines.sample", "pipelines.recommend",
              "pipelines.demo"}
_LOG = logging.getLogger("aepipe")

def run_job(module_name: str, argv: Sequence[str] | None = None, *, prog: str | None = None
            ) -> int:
    """Parses a job's arguments, runs it, and turns an AepipeError into one line and exit 2.

    `--help` and argument errors (a missing or unknown option) exit through argparse, with
    status 0 or 2, before TensorFlow is imported.
    """
    configure_logging()
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
        message = aepipe_message(e)
        if message is None:
            raise
        _LOG.error("error: %s", message)
        return 2
    return 0


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
