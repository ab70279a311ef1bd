"""Datasets shipped inside the package, so the demo and the tests need no network."""

from __future__ import annotations

from pathlib import Path

__all__ = ["adult_parquet", "adult_schema"]

_DATA = Path(__file__).parent / "data"


def adult_parquet() -> str:
    """The UCI Adult census data (48,842 rows; CC BY 4.0, see data/README.md)."""
    return str(_DATA / "adult.parquet")


def adult_schema() -> str:
    """The schema file for `adult_parquet` (also schemas/adult.yaml in the repository)."""
    return str(_DATA / "adult.yaml")
