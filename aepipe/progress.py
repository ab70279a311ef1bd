"""Progress lines from inside a DoFn: rows done so far by this worker, logged at INFO on the
first batch and then at most every PROGRESS_SECONDS, so a long encode or sample shows it is
moving (on the DirectRunner, in the console; on Dataflow, in the workers' logs).

The cost per batch is one addition and one clock read.
"""

from __future__ import annotations

import logging
import time

__all__ = ["PROGRESS_SECONDS", "Progress"]

PROGRESS_SECONDS = 10.0  # read on every batch, so a test (or a user) can change it


class Progress:
    """Counts rows and logs "<verb> N rows so far (this worker)" to `logger_name`."""

    def __init__(self, logger_name: str, verb: str):
        self._log = logging.getLogger(logger_name)
        self._verb = verb
        self._rows = 0
        self._next = 0.0  # the first batch logs

    def add(self, rows: int) -> None:
        self._rows += rows
        now = time.monotonic()
        if now >= self._next:
            self._next = now + PROGRESS_SECONDS
            self._log.info("%s %s rows so far (this worker)", self._verb, f"{self._rows:,}")
