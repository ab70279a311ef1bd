"""The transformed features a model sees, derived from the schema.

Each modelled column becomes one or two features after the TFT transform:

- numeric and integer: a normal score or a standardised value (see `aepipe.marginal`; nulls
  imputed with the median or the mean), plus a null flag if the column is nullable;
- boolean: a 0/1 value, plus a null flag if nullable;
- categorical: a vocabulary index, where index ``V`` is the out-of-vocabulary bucket and
  ``V + 1`` stands for null, so the two stay distinguishable;
- item set: the vocabulary indices of its items (items out of the vocabulary left out), plus
  its size, an integer column of its own (`aepipe.schema.set_size`).

The same description drives the preprocessing function, the model's inputs and output heads, the
transformed training files and the decoder, so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Mapping

import numpy as np
import pyarrow as pa

from aepipe.schema import NULL_SUFFIX, Column, Kind, Schema, set_size

__all__ = ["Role", "Feature", "Features", "embed", "bin_logits", "null_flag"]


class Role(str, enum.Enum):
    VALUE = "value"  # a standardised float, reconstructed with squared error
    FLAG = "flag"  # a 0/1 float, reconstructed with binary cross-entropy
    CATEGORY = "category"  # a class index, reconstructed with categorical cross-entropy
    ITEMS = "items"  # a set of class indices, reconstructed with a multinomial likelihood


@dataclasses.dataclass(frozen=True)
class Feature:
    name: str
    column: Column
    role: Role
    classes: int = 1  # the number of classes of a CATEGORY feature, or items of an ITEMS one
    bins: int = 0  # a VALUE's quantile bins, whose logits the decoder also emits

    @property
    def width(self) -> int:
        """How many model outputs (logits or values) this feature takes."""
        return self.classes if self.role in (Role.CATEGORY, Role.ITEMS) else 1 + self.bins

    @property
    def draws(self) -> int:
        """How many uniform draws sampling takes: bin, noise and position in the bin for a
        binned value, one otherwise (for an item set, the seed of its items' draws)."""
        return 3 if self.bins else 1


@dataclasses.dataclass(frozen=True)
class Features:
    """The ordered transformed features of a schema."""

    items: tuple[Feature, ...]

    @classmethod
    def of(cls, schema: Schema, vocabulary_sizes: Mapping[str, int] | None = None) -> "Features":
        """Features for a schema; vocabulary sizes are known only after TFT analysis."""
        sizes = vocabulary_sizes or {}
        items: list[Feature] = []
        for column in schema.modelled:
            if column.kind is Kind.CATEGORICAL:
                classes = sizes.get(column.name, 0) + 2  # + out-of-vocabulary + null
                items.append(Feature(column.name, column, Role.CATEGORY, classes))
                continue
            if column.kind is Kind.ITEMS:
                items += [Feature(column.name, column, Role.ITEMS, sizes.get(column.name, 0)),
                          Feature(set_size(column).name, set_size(column), Role.VALUE)]
                continue
            role = Role.FLAG if column.kind is Kind.BOOLEAN else Role.VALUE
            items.append(Feature(column.name, column, role))
            if column.nullable:
                items.append(Feature(null_flag(column.name), column, Role.FLAG))
        return cls(tuple(items))

    def with_bins(self, bins: int) -> "Features":
        """The same features, with the decoder predicting `bins` quantile bins per value."""
        return Features(tuple(dataclasses.replace(f, bins=bins) if f.role is Role.VALUE else f
                              for f in self.items))

    def __iter__(self):
        return iter(self.items)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.items)

    @property
    def output_width(self) -> int:
        return sum(f.width for f in self.items)

    def arrow_schema(self) -> pa.Schema:
        """The schema of the transformed training files."""
        types = {Role.CATEGORY: pa.int64(), Role.ITEMS: pa.list_(pa.int64())}
        return pa.schema([pa.field(f.name, types.get(f.role, pa.float32()), nullable=False)
                          for f in self.items])


def embed(features: Features, transformed: dict[str, np.ndarray]) -> np.ndarray:
    """Rows as the encoder sees them: values and flags as they are, categories one-hot, item
    sets 0/1 (as the `transform` signature gives them)."""
    columns = []
    for feature in features:
        x = transformed[feature.name]
        if feature.role is Role.CATEGORY:
            columns.append(np.eye(feature.classes, dtype=np.float32)[x])
        else:
            columns.append(x.reshape(len(x), -1).astype(np.float32))
    return np.concatenate(columns, axis=1)


def bin_logits(name: str) -> str:
    """The decoder output holding a value's quantile-bin logits."""
    return name + "__bins"


def null_flag(name: str) -> str:
    return name + NULL_SUFFIX
