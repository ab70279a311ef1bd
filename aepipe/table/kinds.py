"""What a column can be: its kind decides how it is transformed, modelled and decoded, and which
Arrow types can feed it."""

from __future__ import annotations

import enum

import pyarrow as pa

__all__ = ["Kind", "NUMBER_KINDS", "MODELLED_KINDS", "PASSTHROUGH_KINDS", "is_string_type",
           "is_item_set_type"]


class Kind(str, enum.Enum):
    NUMERIC = "numeric"
    INTEGER = "integer"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    KEY = "key"
    TIMESTAMP = "timestamp"
    IGNORE = "ignore"
    ITEMS = "items"  # a set of items (list<string> or list<int64>), as in recommendation

    def accepts(self, arrow_type: pa.DataType) -> bool:
        """Whether a Parquet column of `arrow_type` can feed a column of this kind."""
        t = pa.types
        if self is Kind.NUMERIC:
            return t.is_floating(arrow_type) or t.is_integer(arrow_type)
        if self is Kind.INTEGER:  # floats too: whole numbers with nulls are stored as floats
            return t.is_integer(arrow_type) or t.is_floating(arrow_type)
        if self is Kind.CATEGORICAL:
            return (is_string_type(arrow_type) or t.is_integer(arrow_type)
                    or t.is_boolean(arrow_type))
        if self is Kind.BOOLEAN:
            return t.is_boolean(arrow_type)
        if self is Kind.TIMESTAMP:
            return t.is_timestamp(arrow_type) or t.is_date(arrow_type)
        if self is Kind.ITEMS:
            return is_item_set_type(arrow_type)
        return True


NUMBER_KINDS = frozenset({Kind.NUMERIC, Kind.INTEGER})  # modelled as numbers
MODELLED_KINDS = NUMBER_KINDS | {Kind.CATEGORICAL, Kind.BOOLEAN, Kind.ITEMS}
PASSTHROUGH_KINDS = frozenset({Kind.KEY, Kind.TIMESTAMP})


def is_string_type(arrow_type: pa.DataType) -> bool:
    """Whether an Arrow type holds strings (string or large_string)."""
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def is_item_set_type(arrow_type: pa.DataType) -> bool:
    """Whether an Arrow type holds sets of items: a list of strings or of integers."""
    t = pa.types
    return ((t.is_list(arrow_type) or t.is_large_list(arrow_type))
            and (is_string_type(arrow_type.value_type) or t.is_integer(arrow_type.value_type)))
