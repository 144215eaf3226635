"""The limits a user query runs under, checked once here for both backends.

    QueryLimits(timeout_s=2, max_rows=1)               # max_memory 1 GiB, max_bytes a quarter of it
    parse_size("512M") -> 536870912

- timeout_s: seconds from sending the query to its last row (> 0, finite). The embedded store runs user
  queries in a separate process and kills it at the deadline; Neo4j's server ends the transaction.
- max_rows, max_bytes: rows are counted, and their size measured (pickled, the form in which they leave
  the query process), as they stream in; the query stops at the first row past either cap.
- max_memory: the most memory the embedded query process may use (its address space is limited to its
  size after opening the database plus this, less the buffer pool; peak RSS stays below it). On Neo4j the
  server's own transaction memory limit applies (docs/store.md).
"""
from __future__ import annotations

import math
import pickle
import re
from dataclasses import dataclass

from circuit_atlas.settings import DEFAULT_MAX_MEMORY, DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S
from circuit_atlas.store.errors import ResultTooLargeError, StoreError, TooManyRowsError

MIN_MEMORY = 256 << 20
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20,
          "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}


def parse_size(text: str | int) -> int:
    """'1G', '512M', '300MB', '1.5GiB' or a number of bytes -> bytes (binary units: 1K = 1024)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).upper() not in _UNITS:
        raise StoreError(f"{text!r} is not a size; write e.g. 512M, 1G or a number of bytes")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class QueryLimits:
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_rows: int = DEFAULT_MAX_ROWS
    max_memory: int = parse_size(DEFAULT_MAX_MEMORY)
    max_bytes: int | None = None          # None: max_memory // 4

    def __post_init__(self) -> None:
        t = self.timeout_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise StoreError(f"the timeout must be a number of seconds greater than 0, not {t!r} "
                             "(a query cannot run without a time limit)")
        for name in ("max_rows", "max_memory", "max_bytes"):
            value = getattr(self, name)
            if value is None and name == "max_bytes":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise StoreError(f"{name} must be a whole number of at least 1, not {value!r}")
        if self.max_memory < MIN_MEMORY:
            raise StoreError(f"max_memory must be at least {format_size(MIN_MEMORY)} (the query process and "
                             f"its database need that much), not {format_size(self.max_memory)}")
        if self.max_bytes is None:
            object.__setattr__(self, "max_bytes", self.max_memory // 4)


class RowCollector:
    """Rows as they stream from a database, stopped at the first row past a cap:

        rows = RowCollector(limits.max_rows, limits.max_bytes)
        for row in result:
            batch = rows.add(row)            # TooManyRowsError past max_rows
            ...                              # batch: the pickled rows of a full batch, else None
        last = rows.flush()                  # ResultTooLargeError once the pickled rows pass max_bytes

    Batches grow while small and shrink when large, so one huge row is measured on its own and the
    measure costs about one pickle of the result."""

    def __init__(self, max_rows: int, max_bytes: int):
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.n_rows = self.n_bytes = 0
        self._pending: list = []
        self._batch_rows = 1

    def add(self, row) -> bytes | None:
        if self.n_rows == self.max_rows:
            raise TooManyRowsError(f"query returned more than {self.max_rows} rows; add LIMIT or raise "
                                   "the row cap (--max-rows)")
        self.n_rows += 1
        self._pending.append(row)
        return self.flush() if len(self._pending) >= self._batch_rows else None

    def flush(self) -> bytes | None:
        if not self._pending:
            return None
        data = pickle.dumps(self._pending, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending = []
        self.n_bytes += len(data)
        if self.n_bytes > self.max_bytes:
            raise ResultTooLargeError(f"query result came to more than {format_size(self.max_bytes)}; return "
                                      "fewer or smaller values (LIMIT, fewer columns), or raise --max-memory "
                                      "(rows may take a quarter of it)")
        if len(data) < 1 << 20:
            self._batch_rows = min(self._batch_rows * 2, 1024)
        elif len(data) > 4 << 20:
            self._batch_rows = max(1, self._batch_rows // 4)
        return data
