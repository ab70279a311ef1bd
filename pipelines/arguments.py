"""The command line's flags, each declared once: a job's options come from its record in
`aepipe.options` (a field ``vocabulary_size`` is ``--vocabulary-size``), its inputs and outputs
from the flags below.

Imports nothing heavy: a job module's top level must load without TensorFlow or Apache Beam, so
that `--help` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Callable

__all__ = ["Parser", "Flag", "INPUT", "MODEL_DIR", "OUTPUT", "NUM_SHARDS", "REJECTED",
           "OVERWRITE", "NO_VERIFY", "TRUST_MODEL", "add_flags", "add_options", "options_from",
           "model_run_flags", "model_run_arguments"]


class Parser(argparse.ArgumentParser):
    """An argument parser that remembers every flag added to it or to its groups (`flags`),
    so that an unknown one can be refused naming the closest."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.flags: list[str] = []  # before argparse adds --help
        super().__init__(*args, **kwargs)

    def add_argument(self, *names: str, **settings: Any) -> argparse.Action:
        action = super().add_argument(*names, **settings)
        self.flags.extend(action.option_strings)
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def recorded(*names: str, **settings: Any) -> argparse.Action:
            action = add(*names, **settings)
            self.flags.extend(action.option_strings)
            return action

        group.add_argument = recorded
        return group


@dataclasses.dataclass(frozen=True)
class Flag:
    """A flag of a job's inputs and outputs, as `argparse.ArgumentParser.add_argument` takes
    it."""

    name: str
    help: str
    settings: tuple[tuple[str, Any], ...] = ()

    def add(self, parser: argparse.ArgumentParser | Any, **overrides: Any) -> None:
        parser.add_argument(self.name, help=overrides.pop("help", self.help),
                            **{**dict(self.settings), **overrides})


def _flag(name: str, help: str, **settings: Any) -> Flag:
    return Flag(name, help, tuple(settings.items()))


INPUT = _flag("--input", "Parquet files: a glob or a directory", required=True)
MODEL_DIR = _flag("--model-dir", "a model directory from aepipe train", required=True)
OUTPUT = _flag("--output", "prefix of the output Parquet shards", required=True)
NUM_SHARDS = _flag("--num-shards", "output shards (0: let the runner decide)", type=int,
                   default=0)
REJECTED = _flag("--rejected", "prefix of the dead-letter Parquet output, written only when a "
                 "row is rejected", default=None, metavar="PREFIX")
OVERWRITE = _flag("--overwrite", "replace an existing output instead of refusing",
                  action="store_true")
NO_VERIFY = _flag("--no-verify", "load the model even if its files differ from the "
                  "manifest's SHA-256 digests", action="store_true")
TRUST_MODEL = _flag("--trust-model", "load the model even if its SavedModel holds ops aepipe's "
                    "export never produces (ops that may read or write files or run code); "
                    "only for a model whose source you trust", action="store_true")


def add_flags(parser: argparse.ArgumentParser, *flags: Flag) -> None:
    for flag in flags:
        flag.add(parser)


def model_run_flags(parser: argparse.ArgumentParser, *, rejected_example: str) -> None:
    """The flags of a job that runs a model over input rows (encode, recommend): input,
    model, output, shards, dead letters, overwriting and the model checks."""
    add_flags(parser, INPUT, MODEL_DIR, OUTPUT, NUM_SHARDS)
    REJECTED.add(parser, help=f"{REJECTED.help} (default: beside the output's directory: "
                              f"{rejected_example})")
    add_flags(parser, OVERWRITE, NO_VERIFY, TRUST_MODEL)


def model_run_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of a job that runs a model over input rows, from the flags
    `model_run_flags` added."""
    return {"input_pattern": args.input, "model_dir": args.model_dir, "output": args.output,
            "num_shards": args.num_shards, "rejected": args.rejected,
            "overwrite": args.overwrite, "verify": not args.no_verify,
            "trust_model": args.trust_model}


def add_options(parser: argparse.ArgumentParser | Any, record: type) -> None:
    """A flag per field of an options record of `aepipe.options`."""
    hints = typing.get_type_hints(record)
    for field in dataclasses.fields(record):
        settings = dict(field.metadata)
        help_text = settings.pop("help")
        if field.default is dataclasses.MISSING:
            settings["required"] = True
        else:
            settings["default"] = field.default
        parser.add_argument(_name(field.name), help=help_text,
                            **_reading(hints[field.name]), **settings)


def options_from(args: argparse.Namespace, record: type) -> Any:
    """The options record of parsed arguments (it checks its own ranges)."""
    return record(**{f.name: getattr(args, f.name) for f in dataclasses.fields(record)})


def _name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _reading(hint: Any) -> dict[str, Any]:
    """How argparse reads a field of this type: a flag for a bool, comma-separated values for
    a tuple, the type itself otherwise (None allowed by the default)."""
    if hint is bool:
        return {"action": "store_true"}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return {"type": _comma_separated(typing.get_args(hint)[0])}
    return {"type": hint}


def _comma_separated(item: Callable[[str], Any]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        return tuple(item(part.strip()) for part in text.split(",") if part.strip())

    parse.__name__ = f"comma-separated {item.__name__}"
    return parse
