"""Feast definitions for the encoded output, built from the model directory's manifest.

`feature_view(model_dir, "out/codes/", name="customer_codes")` returns the Entity, the
FileSource and the FeatureView for the Parquet shards that `aepipe encode` wrote: join keys from
the schema's key columns, the event timestamp from its timestamp column, and one typed Field per
output column (``ae_0`` … ``ae_{k-1}`` or ``ae_code``, ``ae_score``, ``ae_anomaly``, passthrough
columns), named and typed exactly as `aepipe.beam.encode.encoded_schema` writes them.

Feast is an optional dependency (``pip install aepipe[feast]``); it is imported only when
`feature_view` is called. (This module is not named ``feast`` so that it never shadows the
package.)
"""

from __future__ import annotations

import datetime
from typing import Any, NamedTuple, Sequence

import pyarrow as pa

from aepipe.errors import AepipeError, SchemaError
from aepipe.table.schema import Kind

__all__ = ["FeastDefinitions", "FeastNotInstalled", "feature_view"]


class FeastNotInstalled(AepipeError, ImportError):
    """`feature_view` was called where the `feast` package is not installed."""


class FeastDefinitions(NamedTuple):
    """What `feature_view` returns; `store.apply(definitions.objects())` registers it all."""

    entities: tuple[Any, ...]  # one feast.Entity per key column of the schema, in its order
    source: Any  # feast.FileSource on the directory of the encoded shards
    view: Any  # feast.FeatureView over `source`

    def objects(self) -> list[Any]:
        return [*self.entities, self.source, self.view]


def feature_view(model_dir: str, source_path: str, *, name: str,
                 entity_name: str | None = None, timestamp_field: str | None = None,
                 ttl: datetime.timedelta | None = None, code_as_list: bool = False,
                 flag_above: float | bool | None = None, passthrough: Sequence[str] = (),
                 **view_options: Any) -> FeastDefinitions:
    """The Feast Entity, FileSource and FeatureView of `encode`'s output for `model_dir`.

    `source_path` is the directory that holds the encoded shards, and only them (`encode
    --output out/codes/part` writes `out/codes/part-*.parquet`: pass `out/codes/`).
    `code_as_list`, `flag_above` (the percentile given to `--flag-above`, or True) and
    `passthrough` must say what the encode job was told, so that the fields match its columns.

    The join key of each entity is a key column of the model's schema; the entity is named
    after the column, or `entity_name` when the schema has exactly one key. The event timestamp
    is the schema's timestamp column (`timestamp_field` picks one when it has several). A schema
    with no key or no timestamp column is refused (SchemaError): Feast needs both. `ttl` (no
    limit when None) and `view_options` (`online`, `description`, `tags`, `owner`, ...) go to
    `feast.FeatureView`; the view's tags also record the model directory and code size.
    """
    from aepipe.beam.encode import encoded_schema
    from aepipe.options import EncodeOptions
    from aepipe.store.reader import read_manifest

    feast = _import_feast()
    model = read_manifest(model_dir)  # the manifest alone: no SavedModel, no TensorFlow
    keys = [c.name for c in model.schema.columns if c.kind is Kind.KEY]
    times = [c.name for c in model.schema.columns if c.kind is Kind.TIMESTAMP]
    if not keys:
        raise SchemaError(f"the schema of {model_dir} has no key column: a Feast entity needs "
                          "one (mark the row identifier `kind: key` and retrain)")
    if not times:
        raise SchemaError(f"the schema of {model_dir} has no timestamp column: a Feast source "
                          "needs an event timestamp (add one with `kind: timestamp` and retrain)")
    if timestamp_field is None:
        if len(times) > 1:
            raise SchemaError(f"the schema of {model_dir} has several timestamp columns "
                              f"({', '.join(times)}); pass timestamp_field= to choose one")
        timestamp_field = times[0]
    elif timestamp_field not in times:
        raise SchemaError(f"timestamp_field {timestamp_field!r} is not a timestamp column of "
                          f"the schema of {model_dir} ({', '.join(times)})")
    if entity_name is not None and len(keys) > 1:
        raise SchemaError(f"the schema of {model_dir} has several key columns "
                          f"({', '.join(keys)}): each becomes an entity named after it, so "
                          "entity_name cannot be used")

    flagged = flag_above is not None and flag_above is not False
    options = EncodeOptions(passthrough=tuple(passthrough), code_as_list=code_as_list,
                            flag_above=100.0 if flagged else None)  # only its presence counts
    output = encoded_schema(model, model.input_arrow_schema, options)

    entities = tuple(
        feast.Entity(name=entity_name or key, join_keys=[key],
                     value_type=_feast_value_type(output.field(key)),
                     description=f"key column {key!r} of the aepipe model {model_dir}")
        for key in keys)
    source = feast.FileSource(name=f"{name}_source", path=source_path,
                              timestamp_field=timestamp_field,
                              file_format=_parquet_format(),
                              description=f"aepipe encode output of {model_dir}")
    fields = [feast.Field(name=f.name, dtype=_feast_type(f), description=_describe(f.name),
                          **({"vector_length": model.code_size}
                             if pa.types.is_fixed_size_list(f.type) else {}))
              for f in output if f.name != timestamp_field]
    tags = {"aepipe_model_dir": str(model_dir), "aepipe_code_size": str(model.code_size),
            "aepipe_version": model.aepipe_version,
            **view_options.pop("tags", {})}
    view = feast.FeatureView(name=name, entities=list(entities), source=source, schema=fields,
                             ttl=ttl if ttl is not None else datetime.timedelta(0), tags=tags,
                             **view_options)
    return FeastDefinitions(entities, source, view)


def _import_feast():
    try:
        import feast
    except ImportError as e:
        raise FeastNotInstalled(
            f"aepipe.integrations.feast needs Feast, which is not installed ({e}); install it "
            "with `pip install 'aepipe[feast]'` (Feast 0.67 needs pandas < 3)") from None
    return feast


def _parquet_format():
    from feast.data_format import ParquetFormat

    return ParquetFormat()


def _feast_type(arrow_field: pa.Field):
    from feast import types

    t = arrow_field.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return types.Array(_feast_type(pa.field(arrow_field.name, t.value_type)))
    for test, feast_type in ((pa.types.is_boolean, types.Bool),
                             (pa.types.is_float32, types.Float32),
                             (pa.types.is_float16, types.Float32),
                             (pa.types.is_float64, types.Float64),
                             (_is_int32, types.Int32),
                             (pa.types.is_integer, types.Int64),
                             (_is_string, types.String),
                             (_is_binary, types.Bytes),
                             (pa.types.is_timestamp, types.UnixTimestamp),
                             (pa.types.is_date, types.UnixTimestamp)):
        if test(t):
            return feast_type
    raise SchemaError(f"column {arrow_field.name!r} has Arrow type {arrow_field.type}, which "
                      "has no Feast type; leave it out of --passthrough")


def _feast_value_type(arrow_field: pa.Field):
    from feast.types import from_feast_type

    return from_feast_type(_feast_type(arrow_field))


def _is_int32(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) and t.bit_width <= 32 and not (
        pa.types.is_unsigned_integer(t) and t.bit_width == 32)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t)


def _describe(column: str) -> str:
    from aepipe.beam.encode import ANOMALY, CODE_LIST, CODE_PREFIX, SCORE

    if column == SCORE:
        return "reconstruction error (mean over the row's features of the training loss)"
    if column == ANOMALY:
        return "ae_score above the training percentile given to --flag-above"
    if column == CODE_LIST:
        return "the autoencoder code"
    if column.startswith(CODE_PREFIX) and column[len(CODE_PREFIX):].isdigit():
        return f"autoencoder code dimension {column[len(CODE_PREFIX):]}"
    return "input column passed through"
