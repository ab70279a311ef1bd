"""The evaluate job: report.json and report.html with every plot they refer to, the schema's
sources, and one clear refusal for bad inputs and an existing report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aepipe.errors import InputError, OptionsError, OutputError
from aepipe.store.manifest import Manifest, TrainingRun
from aepipe.options import ModelOptions
from aepipe.table.schema import Column, Kind, Schema
from pipelines import cli
from tests.helpers import evaluate

ROWS = 200
MODELLED = ["age", "income", "city", "member", "label"]


def rows_table(seed: int, rows: int = ROWS, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    income = rng.normal(50 + shift + age / 2, 10, rows)
    return pa.table({
        "id": [f"row-{seed}-{i}" for i in range(rows)],          # a key: not evaluated
        "age": pa.array(age, pa.int64()),
        "income": pa.array(np.where(rng.random(rows) < 0.1, np.nan, income),
                           from_pandas=True),
        "city": rng.choice(["Oslo", "Lima", "Pune", None], rows),
        "member": rng.random(rows) < 0.4,
        "label": np.where(age > 45, "senior", "junior"),
    })


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    paths = {}
    for name, table in (("real", rows_table(1)), ("synthetic", rows_table(2, shift=3.0)),
                        ("holdout", rows_table(3, rows=80))):
        directory = tmp_path / name
        directory.mkdir()
        pq.write_table(table, directory / "part-0.parquet")
        paths[name] = str(directory)
    return paths


def referenced_plots(report_dir: Path) -> set[str]:
    text = (report_dir / "report.html").read_text()
    return set(re.findall(r'<img src="(plots/[^"]+\.png)"', text))


def test_report_has_every_figure_and_plot(files, tmp_path):
    output = tmp_path / "report"
    evaluate(real=files["real"], synthetic=files["synthetic"], holdout=files["holdout"],
             target="label", output=str(output), seed=5)
    report = json.loads((output / "report.json").read_text())
    on_disk = {f"plots/{p.name}" for p in (output / "plots").iterdir()}
    assert referenced_plots(output) == on_disk == {
        *report["plots"]["columns"].values(), report["plots"]["correlation"]}
    assert len(report["plots"]["columns"]) == len(MODELLED)
    assert all((output / path).read_bytes().startswith(b"\x89PNG") for path in on_disk)
    assert [c["name"] for c in report["schema"]["columns"]] == MODELLED
    assert report["schema"]["source"].startswith("inferred")
    quality = report["quality"]
    assert 0 < quality["score"] <= 1 and 0 < quality["column_shapes"]["score"] <= 1
    assert len(quality["column_pair_trends"]["pairs"]) == 10
    assert report["ml_efficacy"]["task"]["metric"] == "f1"
    assert report["ml_efficacy"]["rows"] == {"real": ROWS, "synthetic": ROWS, "holdout": 80}
    assert report["privacy"]["exact_copies"]["synthetic_share"] == 0.0
    assert report["inputs"]["files"]["holdout"]["rows"] == 80
    assert report["model"] is None


def test_without_holdout_the_real_rows_are_split(files, tmp_path):
    report = evaluate(real=files["real"], synthetic=files["synthetic"],
                      output=str(tmp_path / "report"), max_rows=150)
    inputs = report["inputs"]
    assert inputs["files"]["real"] == {"pattern": files["real"], "files": 1, "rows": ROWS,
                                       "rows_used": 150}
    assert (inputs["training_rows"], inputs["holdout_rows"]) == (120, 30)
    assert "split" in inputs["holdout_source"] and report["ml_efficacy"] is None
    again = evaluate(real=files["real"], synthetic=files["synthetic"],
                     output=str(tmp_path / "again"), max_rows=150)
    assert again["quality"] == report["quality"] and again["privacy"] == report["privacy"]


def test_schema_comes_from_the_model_directory(files, tmp_path):
    schema = Schema((Column("id", Kind.KEY), Column("age", Kind.INTEGER),
                     Column("city", Kind.CATEGORICAL), Column("label", Kind.IGNORE)))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    run = TrainingRun(batch_size=16, steps_per_period=10, steps=20, best_step=10,
                      history={"loss": [0.6, 0.7]}, train_loss=0.6, validation_loss=0.5,
                      fit_seconds=1.0)
    manifest = Manifest(schema=schema, input_arrow_schema=pa.schema([("age", pa.int64())]),
                        options=ModelOptions(code_size=4), rows={"train": 9, "validation": 1},
                        training=run, statistics={}, vocabularies={}, loss_scales={},
                        score_percentiles={}, residual_std={}, column_errors={},
                        reconstruction={}, prior={},
                        passthrough_ranges={}, value_ranges={}, aepipe_version="0.1.0")
    (model_dir / "manifest.json").write_text(json.dumps(manifest.to_dict()))
    report = evaluate(real=files["real"], synthetic=files["synthetic"],
                      model_dir=str(model_dir), output=str(tmp_path / "report"))
    assert [c["name"] for c in report["schema"]["columns"]] == ["age", "city"]
    assert report["schema"]["source"] == f"model directory {model_dir}"
    model = report["model"]
    assert (model["path"], model["aepipe_version"]) == (str(model_dir), "0.1.0")
    assert model["options"]["code_size"] == 4 and model["rows"] == {"train": 9, "validation": 1}
    assert model["training"]["validation_loss"] == 0.5 and "history" not in model["training"]


def test_a_schema_file_sets_the_kinds(files, tmp_path):
    schema_file = tmp_path / "schema.yaml"
    Schema((Column("age", Kind.CATEGORICAL), Column("member", Kind.BOOLEAN))).save(
        str(schema_file))
    report = evaluate(real=files["real"], synthetic=files["synthetic"],
                      schema=str(schema_file), output=str(tmp_path / "report"))
    shapes = report["quality"]["column_shapes"]["columns"]
    assert [(d["column"], d["metric"]) for d in shapes] == [("age", "TVComplement"),
                                                            ("member", "TVComplement")]
    assert report["schema"]["source"] == f"schema file {schema_file}"


def test_dictionary_columns_are_inferred_as_categories(tmp_path):
    table = rows_table(4)
    table = table.set_column(table.schema.get_field_index("city"), "city",
                             table.column("city").dictionary_encode())
    path = tmp_path / "dict.parquet"
    pq.write_table(table, path)
    report = evaluate(real=str(path), synthetic=str(path), output=str(tmp_path / "report"))
    kinds = {c["name"]: c["kind"] for c in report["schema"]["columns"]}
    assert kinds["city"] == "categorical" and report["quality"]["score"] == 1.0


def test_a_column_missing_from_the_synthetic_files_is_refused(files, tmp_path):
    path = Path(files["synthetic"]) / "part-0.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["city"]), path)
    with pytest.raises(InputError) as error:
        evaluate(real=files["real"], synthetic=files["synthetic"],
                 output=str(tmp_path / "report"))
    assert str(error.value) == f"{path}: column 'city' (categorical) is missing"
    assert not (tmp_path / "report").exists()


def test_a_column_of_the_wrong_type_is_refused(files, tmp_path):
    path = Path(files["synthetic"]) / "part-0.parquet"
    table = pq.read_table(path)
    pq.write_table(table.set_column(1, "age", table.column("age").cast(pa.string())), path)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: column 'age' has type "
                                         "string, which a integer column cannot take$"):
        evaluate(real=files["real"], synthetic=files["synthetic"],
                 output=str(tmp_path / "report"))


def test_missing_files_and_unknown_target_are_refused(files, tmp_path):
    with pytest.raises(InputError, match="no input files match"):
        evaluate(real=files["real"], synthetic=str(tmp_path / "nothing-*.parquet"),
                 output=str(tmp_path / "report"))
    with pytest.raises(OptionsError, match="--target 'id' is not an evaluated column"):
        evaluate(real=files["real"], synthetic=files["synthetic"], target="id",
                 output=str(tmp_path / "report"))


def test_an_existing_report_directory_needs_overwrite(files, tmp_path):
    output = tmp_path / "report"
    (output / "plots").mkdir(parents=True)
    (output / "plots" / "stale.png").write_bytes(b"old")
    with pytest.raises(OutputError, match="already holds 1 file"):
        evaluate(real=files["real"], synthetic=files["synthetic"], output=str(output))
    evaluate(real=files["real"], synthetic=files["synthetic"], output=str(output),
             overwrite=True)
    assert not (output / "plots" / "stale.png").exists()
    assert referenced_plots(output) == {f"plots/{p.name}" for p in (output / "plots").iterdir()}


def test_cli_writes_a_report_and_turns_bad_input_into_exit_2(files, tmp_path, caplog):
    output = tmp_path / "report"
    arguments = ["evaluate", "--real", files["real"], "--synthetic", files["synthetic"],
                 "--output", str(output), "--target", "income", "--seed", "3"]
    assert cli.main(arguments) == 0
    assert json.loads((output / "report.json").read_text())["ml_efficacy"]["task"] == {
        "kind": "regression", "metric": "r2"}
    assert "report.html" in caplog.text
    assert cli.main(arguments) == 2
    assert "already holds" in caplog.text
    with pytest.raises(SystemExit) as refused:
        cli.main([*arguments, "--overwrite", "--runner", "DirectRunner"])
    assert refused.value.code == 2
