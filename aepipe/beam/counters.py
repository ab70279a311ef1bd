"""The jobs' row counters: one Beam metrics namespace, and the names every job reports.

Rows read equal rows written plus rows rejected (plus, for sample with a minimum distance, none
read and the rows dropped as too close to a training row): the counters make that balance
visible in every job's log and in the runner's metrics.
"""

from __future__ import annotations

import logging

from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

__all__ = ["NAMESPACE", "READ", "REJECTED", "WRITTEN", "DROPPED", "UNSEEN_ITEMS", "counter",
           "read_counters"]

NAMESPACE = "aepipe"
READ, REJECTED, WRITTEN = "rows_read", "rows_rejected", "rows_written"
DROPPED = "rows_dropped_too_close"  # sample --min-distance
UNSEEN_ITEMS = "unseen_items"  # recommend: items left out of sets for being out of vocabulary

_LOG = logging.getLogger("aepipe")


def counter(name: str):
    """A Beam counter of aepipe's namespace."""
    return Metrics.counter(NAMESPACE, name)


def read_counters(result, *, reads_input: bool = True) -> dict[str, int]:
    """A finished pipeline's counters, each summed over the steps that count it (both
    validation and recommend reject rows), logged as one line."""
    counters = dict.fromkeys((READ, REJECTED) if reads_input else (), 0)
    for found in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        name = found.key.metric.name
        counters[name] = counters.get(name, 0) + found.committed
    _LOG.info("rows: %s", ", ".join(f"{name.removeprefix('rows_')} {value:,}"
                                    for name, value in counters.items()))
    return counters
