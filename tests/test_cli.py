"""The `aepipe` command behaves like Beam's: fast help and argument errors, unknown options
refused by name, Beam's warnings and the Dataflow job's id shown, progress while it runs."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import subprocess
import sys
import types

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_fn_api_pb2

from aepipe import __version__, logs
from aepipe.errors import InputError
from pipelines import cli, launcher
from pipelines.arguments import Parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODE = ["encode", "--input", "x.parquet", "--model-dir", "m", "--output", "o"]

# Each case runs in one fresh interpreter, in order; after each, whether TensorFlow or Beam
# has been imported so far.
_PROBE = """
import contextlib, io, json, sys
from pipelines.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    results.append({"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue(),
                    "tensorflow": "tensorflow" in sys.modules,
                    "apache_beam": "apache_beam" in sys.modules})
print(json.dumps(results))
"""


def probe(*cases: list[str]) -> list[dict]:
    result = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(cases)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_help_version_and_argument_errors_import_neither_tensorflow_nor_beam():
    cases = [["--help"], ["--version"], *([name, "--help"] for name in cli.JOBS),
             ["encode", "--input", "x.parquet"], ["train", "--input", "x.parquet"],
             ["sample", "--model-dir", "m"], ["evaluate"], ["infer-schema"], ["demo", "--x"],
             [*ENCODE, "--num_shards", "3"], [*ENCODE, "--runnr", "DirectRunner"],
             [*ENCODE, "--temp-location", "/tmp"], ["trian"]]
    results = probe(*cases)
    for result in results:
        assert not result["tensorflow"], result["argv"]
        assert not result["apache_beam"], result["argv"]
    codes = [r["code"] for r in results]
    assert codes == [0, 0, *[0] * len(cli.JOBS), *[2] * (len(cases) - 2 - len(cli.JOBS))]
    assert "the following arguments are required: --model-dir, --output" in results[
        2 + len(cli.JOBS)]["err"]


def test_help_lists_each_command_with_its_description_and_version_names_the_stack():
    top, version, train_help = probe(["--help"], ["--version"], ["train", "--help"])
    for name, module in cli.JOBS.items():
        first_line = importlib.import_module(module).__doc__.strip().splitlines()[0]
        assert f"  {name}" in top["out"] and first_line in top["out"].replace("\n", " ")
    assert version["out"].startswith(f"aepipe {__version__} (")
    assert "Apache Beam 2.77" in version["out"] and "TensorFlow 2.21" in version["out"]
    assert "--temp_location" in train_help["out"] and "refused" in train_help["out"]


@pytest.mark.parametrize("argv, message", [
    ([*ENCODE, "--num_shards", "3"], "unknown option --num_shards (did you mean --num-shards?)"),
    ([*ENCODE, "--num_shards=3"], "unknown option --num_shards (did you mean --num-shards?)"),
    ([*ENCODE, "--runnr", "DataflowRunner"], "unknown option --runnr (did you mean --runner?)"),
    ([*ENCODE, "--temp-location", "gs://b/t"],
     "unknown option --temp-location (did you mean --temp_location?)"),
    ([*ENCODE, "--num-shard", "3"], "unknown option --num-shard (did you mean --num-shards?)"),
    ([*ENCODE, "--runner", "DirectRunner", "stray"], "unexpected argument 'stray'"),
    ([*ENCODE, "--direct_num_workers", "two"], "--direct_num_workers: invalid int value"),
    (["evaluate", "--real", "r", "--synthetic", "s", "--output", "o", "--max_rows", "9"],
     "unknown option --max_rows (did you mean --max-rows?)"),
])
def test_an_unknown_option_is_refused_naming_the_closest_known_one(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_beam_options_in_either_form_reach_the_job_unchanged(monkeypatch):
    seen = {}
    monkeypatch.setattr(launcher, "_run", lambda job, args, beam_args: seen.update(
        args=args, beam_args=beam_args) or 0)
    beam_args = ["--runner=DirectRunner", "--save_main_session", "--direct_running_mode",
                 "multi_processing", "--direct_num_workers", "2", "--setup_file", "./setup.py",
                 "--temp_location", "/tmp/t", "--experiments=a", "--experiments", "b",
                 "--job-server-timeout", "30"]
    assert cli.main([*ENCODE, *beam_args, "--num-shards", "3"]) == 0
    assert seen["beam_args"] == beam_args
    assert seen["args"].num_shards == 3 and seen["args"].input == "x.parquet"


def _beam_options() -> set[str]:
    """Beam's options, by the names its parser gives them."""
    return set(PipelineOptions([]).get_all_options())


def test_no_aepipe_option_is_a_beam_option_spelled_with_dashes():
    """The quick refusal of `--num_shards` assumes no aepipe option is Beam's with dashes."""
    beam_options = _beam_options()
    for module in cli.JOBS.values():
        parser = Parser()
        importlib.import_module(module).add_arguments(parser)
        for option in parser.flags:
            assert option[2:].replace("-", "_") not in beam_options, option


def test_the_quick_scan_of_beams_source_finds_every_beam_option():
    parsers = []
    PipelineOptions([]).get_all_options(add_extra_args_fn=parsers.append)
    usage = parsers[0].format_usage()  # every option, as "[--flag VALUE]"
    flags = set(re.findall(r"\[(--[A-Za-z0-9][A-Za-z0-9_-]*)", usage)) - {"--help"}
    assert flags <= launcher.beam_flags_in_source()
    assert {"--runner", "--temp_location", "--setup_file", "--save_main_session"} <= flags


TRAIN = ["train", "--input", "x.parquet", "--schema", "s.yaml", "--model-dir", "m"]
SAMPLE = ["sample", "--model-dir", "m", "--output", "o", "--num-rows", "1", "--seed", "1"]


@pytest.mark.parametrize("job, old, new", [
    (TRAIN, "--top-k", "--vocabulary-size"), (TRAIN, "--item-top-k", "--item-vocabulary-size"),
    (SAMPLE, "--shards", "--num-shards"), (SAMPLE, "--reference", "--real")])
def test_a_renamed_option_is_refused_naming_its_new_name(job, old, new, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main([*job, old, "3"])
    assert stopped.value.code == 2
    assert f"unknown option {old} (renamed {new})" in capsys.readouterr().err


def test_beams_warnings_and_the_dataflow_job_id_show_tensorflows_noise_does_not(caplog):
    logs.quiet_startup()
    logging.getLogger("apache_beam.io.filebasedsink").warning("a Beam warning")
    logging.getLogger("apache_beam.runners.dataflow.internal.apiclient").info(
        "Created job with id: [2026-11-27_01]")
    logging.getLogger("apache_beam.runners.direct.direct_runner").info("Beam chatter")
    logging.getLogger("tensorflow").warning("TensorFlow noise")
    assert "a Beam warning" in caplog.text and "Created job with id" in caplog.text
    assert "Beam chatter" not in caplog.text and "TensorFlow noise" not in caplog.text


class _Fails(beam.DoFn):
    def __init__(self, error: Exception):
        self._error = error

    def process(self, element):
        raise self._error
        yield element


def _job_failing_with(error: Exception):
    def run(args, beam_args):
        with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
            p | beam.Create([1]) | beam.ParDo(_Fails(error))
    return types.SimpleNamespace(run=run)


def test_a_workers_aepipe_error_is_one_line_other_errors_keep_beams_traceback(caplog):
    logs.quiet_startup()
    assert launcher._run(_job_failing_with(InputError("column 'age' is missing")), None, []) == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "error: column 'age' is missing [while running 'ParDo(_Fails)']"]
    assert not any(r.exc_info for r in caplog.records)
    caplog.clear()
    with pytest.raises(ValueError):
        launcher._run(_job_failing_with(ValueError("a bug")), None, [])
    assert any(r.name.startswith("apache_beam") and r.exc_info for r in caplog.records)


def _relayed(severity: str, message: str, location: str, trace: str = "") -> logging.LogRecord:
    """A worker's log entry as Beam's local job service relays it (multi_processing mode)."""
    entry = beam_fn_api_pb2.LogEntry(
        severity=getattr(beam_fn_api_pb2.LogEntry.Severity.Enum, severity), message=message,
        log_location=location, trace=trace)
    level = {"INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}[severity]
    return logging.LogRecord(logs.WORKER_RELAY_LOGGER, level, __file__, 1, "Worker: %s",
                             (str(entry).replace("\n", " "),), None)


def test_a_worker_processs_log_shows_aepipe_lines_and_beam_warnings_not_start_up_noise():
    logs.quiet_startup()
    relay = logging.getLogger(logs.WORKER_RELAY_LOGGER)
    beam_code = "/venv/lib/python3.11/site-packages/apache_beam/runners/worker/x.py:1"
    shown = _relayed("INFO", 'encoded 8,192 rows so far "quoted" é', f"{ROOT}/aepipe/encode.py:9")
    assert relay.filter(shown)
    assert shown.getMessage() == 'worker: encoded 8,192 rows so far "quoted" é'
    assert relay.filter(_relayed("WARN", "a real Beam warning", beam_code))
    assert not relay.filter(_relayed("INFO", "Control channel established.", beam_code))
    assert not relay.filter(_relayed("WARN", "No semi_persistent_directory found: ...",
                                     beam_code))
    assert not relay.filter(_relayed(
        "WARN", "retracing", "/venv/lib/python3.11/site-packages/tensorflow/x.py:3"))
    assert not relay.filter(_relayed(
        "ERROR", "column 'age' is missing [while running 'Encode']", beam_code,
        trace="Traceback ...\naepipe.errors.InputError: column 'age' is missing\n"))
    assert relay.filter(_relayed("ERROR", "a bug", beam_code,
                                 trace="Traceback ...\nValueError: a bug\n"))


def test_encode_and_sample_log_progress(adult_files, trained_model_dir, tmp_path, monkeypatch,
                                        caplog):
    from aepipe import progress
    from aepipe.options import SampleOptions
    from pipelines.encode import encode
    from pipelines.sample import sample

    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)
    caplog.set_level(logging.INFO)
    encode(input_pattern=adult_files["holdout"], model_dir=trained_model_dir,
           output=str(tmp_path / "codes"))
    lines = [r.getMessage() for r in caplog.records if r.name == "aepipe.beam.encode"]
    assert lines and lines[-1] == "encoded 1,000 rows so far (this worker)"
    caplog.clear()
    sample(model_dir=trained_model_dir, options=SampleOptions(num_rows=100, seed=1),
           output=str(tmp_path / "synthetic"))
    lines = [r.getMessage() for r in caplog.records if r.name == "aepipe.beam.sample"]
    assert lines and lines[-1] == "sampled 100 rows so far (this worker)"
