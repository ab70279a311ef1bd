"""Running a job from its command line: its own options, Beam's, and one clear line for an
error.

A job takes its own options (`pipelines.arguments`) and Beam's pipeline options (`--runner`,
`--project`, `--temp_location`, `--setup_file`, ...), which go to `PipelineOptions` unchanged;
any other argument is refused, naming the closest known option, and an option a job renamed
is refused naming its new name. `--help` and argument errors answer before TensorFlow or Beam
is imported: a job module's top level holds only its docstring, its flags and `RENAMED`, and
imports its heavy dependencies where it runs.

A job module has `add_arguments(parser)`, `run(args, beam_args)`, `TAKES_BEAM_OPTIONS` and
`RENAMED` (old flag -> new flag).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
import os
import re
from typing import Sequence

from aepipe.logs import aepipe_message, configure_logging, quiet_startup
from pipelines.arguments import Parser

__all__ = ["run_job", "beam_flags_in_source"]

_LOG = logging.getLogger("aepipe")
_STRAY = "aepipe_stray_arguments"


def run_job(module_name: str, argv: Sequence[str] | None = None, *, prog: str | None = None
            ) -> int:
    """Parses a job's arguments, runs it, and turns an AepipeError into one line and exit 2.

    `--help` and argument errors (a missing or unknown option) exit through argparse, with
    status 0 or 2, before TensorFlow is imported.
    """
    configure_logging()
    job = importlib.import_module(module_name)
    epilog = ("Beam pipeline options (--runner, --project, --region, --temp_location, "
              "--setup_file, ...) are passed to Beam; any other option is refused."
              if job.TAKES_BEAM_OPTIONS else None)
    parser = Parser(prog=prog or f"python -m {module_name}",
                    description=job.__doc__.strip().splitlines()[0], epilog=epilog,
                    allow_abbrev=False)
    job.add_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    beam_args = _beam_arguments(parser, rest, job.RENAMED, takes_beam=job.TAKES_BEAM_OPTIONS)
    quiet_startup()
    return _run(job, args, beam_args)


def _beam_arguments(parser: Parser, rest: list[str], renamed: dict[str, str], *,
                    takes_beam: bool) -> list[str]:
    """The arguments the job's parser left, once each is known to be a Beam pipeline option;
    anything else ends the job through `parser.error` (exit 2), naming the closest match."""
    if not rest:
        return []
    names = [arg.split("=", 1)[0] for arg in _options(rest)]
    for name in names:
        if name in renamed:
            parser.error(f"unknown option {name} (renamed {renamed[name]})")
        # The usual slip, an aepipe option spelled Beam's way (--num_shards), needs no Beam.
        if "_" in name and name.replace("_", "-") in parser.flags:
            parser.error(f"unknown option {name} (did you mean {name.replace('_', '-')}?)")
    if not takes_beam:
        if names:
            _refuse(parser, names[0], parser.flags)
        parser.error(f"unexpected argument {rest[0]!r}")
    # Any other option Beam's source does not even mention: refused without importing Beam.
    mentioned = beam_flags_in_source()
    if mentioned is not None:
        for name in names:
            if name not in parser.flags and name not in mentioned:
                _refuse(parser, name, parser.flags + sorted(mentioned))
    _check_with_beam(parser, rest)
    return list(rest)


_NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d*)?([eE][-+]?\d+)?")


def _options(args: list[str]) -> list[str]:
    """The arguments that are options, up to a "--"."""
    found = []
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("-") and not _NEGATIVE_NUMBER.fullmatch(arg):
            found.append(arg)
    return found


def _refuse(parser: Parser, name: str, known: Sequence[str]) -> None:
    close = difflib.get_close_matches(name, known, n=1)
    parser.error(f"unknown option {name}" + (f" (did you mean {close[0]}?)" if close else ""))


def beam_flags_in_source() -> set[str] | None:
    """Every quoted '--flag' in Beam's pipeline_options.py, read without importing Beam (1-2 s):
    a superset of the options Beam's parser knows, so an option missing from it is refused at
    once. None if the source cannot be read."""
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


def _check_with_beam(parser: Parser, args: list[str]) -> None:
    """Beam's own parser, through `PipelineOptions.get_all_options`: an option's bad value,
    an option Beam does not know, or an argument that is neither an option nor a value ends the
    job through `parser.error`."""
    from apache_beam.options.pipeline_options import PipelineOptions

    def strict(beam_parser) -> None:
        def error(message: str):
            raise _BeamOptionError(message)

        beam_parser.error = error
        beam_parser.add_argument(_STRAY, nargs="*")

    try:
        parsed = PipelineOptions(list(args)).get_all_options(
            add_extra_args_fn=strict, retain_unknown_options=True)
    except _BeamOptionError as e:
        parser.error(f"Beam pipeline option: {e}")
    if parsed.get(_STRAY):
        parser.error(f"unexpected argument {parsed[_STRAY][0]!r}")
    known = PipelineOptions([]).get_all_options(add_extra_args_fn=strict)
    for unknown in sorted(set(parsed) - set(known)):
        _refuse(parser, "--" + unknown, parser.flags + ["--" + name for name in known])


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
