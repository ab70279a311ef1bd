"""Where every modelled column sits, from the transform's outputs to the decoder's: the one
owner of the column layout.

A schema's modelled columns are grouped by kind, so that nothing downstream grows with the
number of columns:

- `scalars`: the numeric, integer and boolean columns in schema order, then each item set's
  size (a derived integer column, `set_size`);
- `categoricals`: the categorical columns;
- `item_sets`: the item set columns.

The tf.Transform feed (`aepipe.transform.feed`) holds one matrix per group, and so does the
transform's output, which the training files store and the model takes as it is (`matrix_schema`):
SCALARS [rows, scalars] (a number's normal score or standardised value, a boolean's 0/1, 0 where
null), NULLS [rows, scalars] (1 where null), CATEGORIES [rows, categoricals] (vocabulary indices: V
is out of the vocabulary, V + 1 null), and per item set column its items' vocabulary indices
(`items_of`).

The decoder emits one matrix whose columns are, in order (`Slices`): one output per scalar (a
value, or a boolean's logit), `bins` quantile-bin logits per value scalar and, with bins, one
standardised value in original units per value scalar (its `means`), one logit per nullable
scalar's null flag, each categorical's logits, each item set's logits. Its loss terms
follow the same order (`term_names`, `term_columns`), and `generate`'s uniform draws (`draws`)
are DRAWS_PER_SCALAR per scalar (bin, noise, position in the bin), then one per null flag, per
categorical and per item set. A row's error is a mean over `columns`: every modelled column,
and each item set's size.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping

import numpy as np
import pyarrow as pa

from aepipe.table import signatures
from aepipe.table.schema import Column, Kind, Schema

__all__ = ["Layout", "Slices", "SCALARS", "NULLS", "CATEGORIES", "items_of", "set_size",
           "bin_name", "mean_name", "DRAWS_PER_SCALAR"]

SCALARS, NULLS, CATEGORIES = "__scalars__", "__nulls__", "__categories__"
DRAWS_PER_SCALAR = 3


def items_of(column: str) -> str:
    """The matrix (feed column, transform output, training file column) of an item set."""
    return f"__items__{column}"


def set_size(column: Column) -> Column:
    """The integer column an item set column derives: how many items each set holds, modelled
    like any integer column so that sampling draws how many items to draw."""
    return Column(signatures.size_name(column.name), Kind.INTEGER, nullable=False)


@dataclasses.dataclass(frozen=True)
class Slices:
    """[start, end) of each part of a row of decoder outputs (or of uniform draws)."""

    scalars: slice
    bins: slice
    means: slice
    nulls: slice
    categories: slice
    items: slice
    width: int


@dataclasses.dataclass(frozen=True)
class Layout:
    """The modelled columns by group, with the sizes the analysis found."""

    modelled: tuple[Column, ...]  # in schema order: the signatures' raw columns
    scalars: tuple[Column, ...]
    categoricals: tuple[Column, ...]
    item_sets: tuple[Column, ...]
    classes: tuple[int, ...]  # per categorical: its vocabulary, out-of-vocabulary and null
    items: tuple[int, ...]  # per item set: its vocabulary
    bins: int = 0  # quantile bins per value scalar whose logits the decoder emits

    @classmethod
    def of(cls, schema: Schema, vocabulary_sizes: Mapping[str, int] | None = None, *,
           bins: int = 0) -> "Layout":
        """A schema's layout; vocabulary sizes are known only after the analysis."""
        sizes = vocabulary_sizes or {}
        modelled = schema.modelled
        item_sets = tuple(c for c in modelled if c.kind is Kind.ITEMS)
        categoricals = tuple(c for c in modelled if c.kind is Kind.CATEGORICAL)
        scalars = tuple(c for c in modelled if c.is_number or c.kind is Kind.BOOLEAN)
        return cls(modelled, scalars + tuple(set_size(c) for c in item_sets), categoricals,
                   item_sets, tuple(sizes.get(c.name, 0) + 2 for c in categoricals),
                   tuple(sizes.get(c.name, 0) for c in item_sets), bins)

    def matrix_schema(self) -> pa.Schema:
        """The Arrow schema of transformed rows (the training files): a list column per
        matrix."""
        fields = []
        if self.scalars:
            fields += [pa.field(SCALARS, pa.list_(pa.float32())),
                       pa.field(NULLS, pa.list_(pa.float32()))]
        if self.categoricals:
            fields.append(pa.field(CATEGORIES, pa.list_(pa.int64())))
        return pa.schema(fields + [pa.field(items_of(c.name), pa.list_(pa.int64()))
                                   for c in self.item_sets])

    # The scalars -----------------------------------------------------------------------------

    @functools.cached_property
    def is_value(self) -> np.ndarray:
        """Per scalar, whether it is a value (numeric, integer) rather than a boolean."""
        return np.array([c.kind is not Kind.BOOLEAN for c in self.scalars], bool)

    @functools.cached_property
    def values(self) -> np.ndarray:
        """The indices of the value scalars among the scalars."""
        return np.flatnonzero(self.is_value).astype(np.int32)

    @functools.cached_property
    def nullable(self) -> np.ndarray:
        """The indices of the nullable scalars (whose null flags the model sees)."""
        return np.array([i for i, c in enumerate(self.scalars) if c.nullable], np.int32)

    @functools.cached_property
    def counted_sets(self) -> dict[str, str]:
        """The scalars that count an item set's items: size column -> item set column."""
        return {set_size(c).name: c.name for c in self.item_sets}

    # Categories and items --------------------------------------------------------------------

    @functools.cached_property
    def category_offsets(self) -> np.ndarray:
        return _offsets(self.classes)

    @functools.cached_property
    def category_segments(self) -> np.ndarray:
        """Per category logit, the index of its categorical."""
        return _segments(self.classes)

    @functools.cached_property
    def item_offsets(self) -> np.ndarray:
        return _offsets(self.items)

    @functools.cached_property
    def item_segments(self) -> np.ndarray:
        return _segments(self.items)

    # The decoder's outputs, the loss terms and the draws ---------------------------------------

    @functools.cached_property
    def outputs(self) -> Slices:
        return _slices(len(self.scalars), len(self.values) * self.bins, len(self.means),
                       len(self.nullable), sum(self.classes), sum(self.items))

    @functools.cached_property
    def means(self) -> np.ndarray:
        """The value scalars with a mean output (all of them where there are bins): the
        indices, among the scalars, of the values decoded in original units as well."""
        return self.values if self.bins else np.zeros(0, np.int32)

    @functools.cached_property
    def draws(self) -> Slices:
        """Where each part's uniform draws lie in `generate`'s `uniform` input (no bins part:
        a scalar's draws include its bin's)."""
        return _slices(DRAWS_PER_SCALAR * len(self.scalars), 0, 0, len(self.nullable),
                       len(self.categoricals), len(self.item_sets))

    @functools.cached_property
    def term_names(self) -> tuple[str, ...]:
        """Each loss term's name, in the order of the terms: a scalar's (its column's name),
        a value's bin (``c__bins``) and mean (``c__mean``), a null flag (``c__null``), a
        categorical, an item set."""
        values = [self.scalars[i].name for i in self.values]
        return tuple([c.name for c in self.scalars]
                     + ([bin_name(name) for name in values] if self.bins else [])
                     + [mean_name(self.scalars[i].name) for i in self.means]
                     + [signatures.null_name(self.scalars[i].name) for i in self.nullable]
                     + [c.name for c in self.categoricals + self.item_sets])

    @functools.cached_property
    def term_columns(self) -> np.ndarray:
        """Each loss term's column, as an index into `columns`."""
        values = [self.scalars[i].name for i in self.values]
        owners = ([c.name for c in self.scalars] + (values if self.bins else [])
                  + [self.scalars[i].name for i in self.means]
                  + [self.scalars[i].name for i in self.nullable]
                  + [c.name for c in self.categoricals + self.item_sets])
        index = {name: i for i, name in enumerate(self.columns)}
        return np.array([index[name] for name in owners], np.int32)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns a row's error is a mean over: every modelled column, and each item
        set's size."""
        return tuple(c.name for c in self.scalars + self.categoricals + self.item_sets)

    def term_weights(self, scales: Mapping[str, float]) -> np.ndarray:
        """Each term's weight: over its scale (its value for a model that knows only the
        column's marginal), its column's number of terms and the number of columns, so that
        the weighted sum of a row's terms is the mean over columns of each column's mean
        scaled term."""
        per_column = np.bincount(self.term_columns, minlength=len(self.columns))
        scale = np.array([scales.get(name, 1.0) for name in self.term_names])
        return (1.0 / (scale * per_column[self.term_columns] * len(self.columns))).astype(
            np.float32)


def bin_name(column: str) -> str:
    """The loss term (and scale) of a value's quantile bin."""
    return column + "__bins"


def mean_name(column: str) -> str:
    """The loss term of a value's mean: its standardised value in original units."""
    return column + "__mean"


def _offsets(sizes: tuple[int, ...]) -> np.ndarray:
    return np.cumsum([0, *sizes[:-1]]).astype(np.int32) if sizes else np.zeros(0, np.int32)


def _segments(sizes: tuple[int, ...]) -> np.ndarray:
    return np.repeat(np.arange(len(sizes)), sizes).astype(np.int32)


def _slices(*widths: int) -> Slices:
    ends = np.cumsum(widths).tolist()
    starts = [0] + ends[:-1]
    return Slices(*(slice(s, e) for s, e in zip(starts, ends)), width=ends[-1])
