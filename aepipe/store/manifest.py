"""The model directory's layout and its manifest: what a model is, as one typed record.

Layout::

    MODEL_DIR/
      manifest.json     what the model is: schema, options, statistics, losses, row counts,
                        and the SHA-256 of every other file
      saved_model/      the SavedModel (signatures: aepipe.table.signatures)
      transform_fn/     the tf.Transform output

Training builds the manifest, `aepipe.store.publish` writes it and `aepipe.store.reader` reads
it (JSON), and every other module reads its fields, never the JSON's keys: the layout of the
file is known here only.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Mapping

import pyarrow as pa

from aepipe import __version__
from aepipe.errors import ModelDirError
from aepipe.options import ModelOptions
from aepipe.table.schema import Schema, arrow_schema_from_json, arrow_schema_to_json

__all__ = ["FORMAT_VERSION", "MANIFEST", "SAVED_MODEL", "TRANSFORM_FN", "Manifest",
           "TrainingRun", "file_digests"]

FORMAT_VERSION = 3
MANIFEST = "manifest.json"
SAVED_MODEL = "saved_model"
TRANSFORM_FN = "transform_fn"


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """How the fit went: its step schedule, the losses at each validation and the best one."""

    batch_size: int
    steps_per_period: int  # steps between validations
    steps: int  # steps run
    best_step: int  # the step whose weights the model keeps
    history: dict[str, list[float]]  # "loss" (and "val_loss") per validation; for --model
    # ease, the L2 weights tried and their validation NDCG@100
    train_loss: float | None  # None for --model ease, which has no loss to report
    validation_loss: float | None
    fit_seconds: float


@dataclasses.dataclass(frozen=True)
class Manifest:
    """Everything needed to encode and sample later, beside the SavedModel and the transform."""

    schema: Schema
    input_arrow_schema: pa.Schema  # the training input's types, which synthetic rows keep
    options: ModelOptions
    rows: dict[str, int]  # "train" and "validation"
    training: TrainingRun
    statistics: dict[str, dict[str, Any]]  # per modelled column: the transform's statistics
    vocabularies: dict[str, list[str]]
    loss_scales: dict[str, float]  # per loss term (aepipe.model.marginal_scales)
    score_percentiles: dict[str, float]  # ae_score on held-out training rows, by percentile
    residual_std: dict[str, float]  # per value feature: the noise sampling adds
    column_errors: dict[str, float]  # per column: its mean part of ae_score on held-out rows
    reconstruction: dict[str, dict[str, float]]  # per column: R² of a number, accuracy of a
    # category or boolean, on held-out rows in the model's units: what the code keeps
    prior: dict[str, Any]  # the sampling prior's kind and parameters (Prior.to_dict)
    passthrough_ranges: dict[str, Any]  # timestamp and key ranges, for fresh synthetic values
    value_ranges: dict[str, Any]  # numbers' [min, max] as the input holds them: sampled
    # numbers stay within
    value_grains: dict[str, Any] = dataclasses.field(default_factory=dict)  # numbers' grains
    # (aepipe.table.grain.Grain.to_dict): the levels or decimals sampled numbers keep; absent
    # from models trained before grains were recorded
    files: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> SHA-256
    aepipe_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def code_size(self) -> int:
        return self.options.code_size

    def with_files(self, files: Mapping[str, str]) -> "Manifest":
        return dataclasses.replace(self, files=dict(files))

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, format version first."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"format_version": self.format_version, **fields,
                "schema": self.schema.to_dict(),
                "input_arrow_schema": arrow_schema_to_json(self.input_arrow_schema),
                "options": dataclasses.asdict(self.options),
                "training": dataclasses.asdict(self.training)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str) -> "Manifest":
        """The manifest in `data` (read from `source`), or a ModelDirError naming what is wrong."""
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelDirError(f"model directory {source} has format version {version}; this "
                                f"aepipe ({__version__}) reads version {FORMAT_VERSION}: "
                                "retrain it with this version")
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.name not in data and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ModelDirError(f"the manifest of {source} lacks {', '.join(missing)}")
        fields = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        hidden = data["options"].get("hidden")
        options = dict(data["options"], hidden=None if hidden is None else tuple(hidden))
        return cls(**{**fields,
                      "schema": Schema.from_dict(data["schema"], source=source),
                      "input_arrow_schema": arrow_schema_from_json(data["input_arrow_schema"]),
                      "options": ModelOptions(**options),
                      "training": TrainingRun(**data["training"])})


def file_digests(directory: str) -> dict[str, str]:
    """SHA-256 of every file under `directory` but the manifest, by relative path (any Beam
    file system)."""
    from apache_beam.io.filesystems import FileSystems

    root = directory.rstrip("/") + "/"
    digests = {}
    for metadata in FileSystems.match([root + "**"])[0].metadata_list:
        relative = metadata.path[len(root):]
        if relative == MANIFEST:
            continue
        digest = hashlib.sha256()
        with FileSystems.open(metadata.path) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        digests[relative] = digest.hexdigest()
    return dict(sorted(digests.items()))
