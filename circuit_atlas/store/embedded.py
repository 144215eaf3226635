"""Embedded backend: a Kùzu-family database in a directory, no server.

Engine: `kuzu` 0.11.3 by default, `real_ladybug` with CIRCUIT_ATLAS_EMBEDDED_ENGINE=real_ladybug
(same API; docs/store.md explains the choice: real_ladybug's COPY of FLOAT edge weights is ~20x slower).
The two cannot be imported into one process, and their files are not interchangeable.

Locking: a read-write open takes an exclusive lock on the directory; while any process holds it no
other process can open it at all, and a read-only holder blocks writers. So opens retry with backoff
for `lock_timeout_s`, and callers keep opens short (ingest opens once per batch of graphs).
Within one process the Database object is shared per path (a second Database on the same path
would release the process's lock when closed: POSIX fcntl semantics).

Read-only queries run in `BEGIN TRANSACTION READ ONLY` on a prepared statement (one statement
only), so the database itself refuses writes; a store opened read_only=True also opens the
database read-only.
"""
from __future__ import annotations

import importlib
import importlib.util  # noqa: F401  kuzu uses importlib.util in COPY FROM $param without importing it
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from circuit_atlas.graph import Graph
from circuit_atlas.store import schema
from circuit_atlas.store import statements as st
from circuit_atlas.store.aggregates import FEATURE_AGGREGATES
from circuit_atlas.store.errors import (CypherError, QueryTimeoutError, ReadOnlyQueryError, StoreError,
                                        StoreLockedError, TooManyRowsError)
from circuit_atlas.store.rows import graph_rows, tag_tables

ENGINES = ("kuzu", "real_ladybug", "ladybug")

# Tags are global: a batch's rows include ones stored by earlier batches. ignore_errors makes the COPY
# skip exactly those rows (duplicate primary keys; the stored row is kept), which is cheaper than asking
# for the known keys first. Our Arrow rows are typed, so no other error can be skipped. Features are
# global too, but carry aggregates: the stored ones are asked for first, and get the batch's added.
COPY_OPTIONS = {"Tag": " (ignore_errors=true)"}
NO_AGGREGATES_COPY_OPTIONS = {"Feature": " (ignore_errors=true)"}


@dataclass
class EmbeddedOptions:
    lock_timeout_s: float = 30.0      # how long an open waits for another process to release the database
    engine: str | None = None         # kuzu | real_ladybug; None: Settings.embedded_engine (default kuzu)
    bulk: bool = True                 # COPY from Arrow; False = the UNWIND statement path (tests)
    aggregates: bool = True           # False: bench/ingest.py's "before" only; queries on such a store are wrong

    def __post_init__(self) -> None:
        if self.engine is None:
            from circuit_atlas.settings import Settings
            self.engine = Settings.load().embedded_engine


def engine_module(name: str):
    if name not in ENGINES:
        raise StoreError(f"unknown embedded engine {name!r}; choose one of {', '.join(ENGINES)}")
    return importlib.import_module(name)


class _Shared:
    """One Database object per path in this process, reference counted."""
    lock = threading.Lock()
    open: dict[str, list] = {}        # path -> [database, read_only, refcount]


def _open_database(path: Path, read_only: bool, opts: EmbeddedOptions):
    """The shared Database for `path`, opening it (with retry while another process holds the lock)."""
    db_mod = engine_module(opts.engine)
    key = str(path.resolve())
    if read_only and not path.exists():
        raise StoreError(f"no store at {path}; create it by ingesting graphs: circuit-atlas ingest FILES")
    deadline, delay = time.monotonic() + opts.lock_timeout_s, 0.05
    while True:
        with _Shared.lock:
            if key in _Shared.open:
                entry = _Shared.open[key]
                if entry[1] and not read_only:
                    raise StoreLockedError(f"{path} is open read-only in this process; close that store "
                                           "before opening it read-write")
                entry[2] += 1
                return entry[0], key
            try:
                db = db_mod.Database(str(path), read_only=read_only)
                _Shared.open[key] = [db, read_only, 1]
                return db, key
            except RuntimeError as e:
                problem = str(e)
        # Transient while another process holds the lock, or has just written and not yet checkpointed
        # (a read-only open cannot replay its log): wait. Anything else is a real error.
        unreplayed = "replay" in problem and "read-only" in problem
        if "lock" not in problem.lower() and not unreplayed:
            raise StoreError(f"cannot open store {path}: {problem}")
        if time.monotonic() >= deadline:
            if unreplayed:
                raise StoreError(f"{path} holds an unfinished write (a writer still closing, or one that crashed) "
                                 "that only a read-write open can recover: open it read-write once, e.g. "
                                 "circuit-atlas ingest, or open_store(path)")
            raise StoreLockedError(
                f"{path} is locked by another process (an ingest or worker writing, or a query reading) and "
                f"stayed locked for {opts.lock_timeout_s:g}s; retry when it finishes or raise the lock timeout")
        time.sleep(delay)                     # outside the lock: other paths and threads carry on
        delay = min(delay * 2, 1.0)


def _release_database(key: str) -> None:
    with _Shared.lock:
        entry = _Shared.open[key]
        entry[2] -= 1
        if entry[2] == 0:
            del _Shared.open[key]
            entry[0].close()


def _used(cypher: str, params: dict | None) -> dict:
    """Only the parameters the query mentions: the engine rejects extra ones, Neo4j ignores them."""
    named = set(re.findall(r"\$(\w+)", cypher))
    return {k: v for k, v in (params or {}).items() if k in named}


def _rollback(conn) -> None:
    try:
        conn.execute("ROLLBACK")
    except RuntimeError:                      # no transaction left: it failed, or the query ended it
        pass


def _map_error(e: Exception, cypher: str) -> StoreError:
    msg = str(e)
    if "read-only" in msg:
        return ReadOnlyQueryError(f"refused by the database, queries are read-only: {msg}")
    if msg.startswith("Interrupted"):
        return QueryTimeoutError("query timed out (interrupted by the database); add LIMIT or a narrower "
                                 "MATCH, or raise the timeout")
    return CypherError(f"{msg}\nin query: {cypher.strip()[:300]}")


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, path: str | Path, read_only: bool, opts: EmbeddedOptions | None = None):
        self.opts = opts or EmbeddedOptions()
        self.path = Path(path)
        self._mod = engine_module(self.opts.engine)
        self._db, self._key = _open_database(self.path, read_only, self.opts)
        self._conn = self._mod.Connection(self._db)
        if not read_only:
            try:
                self._check_schema()
            except StoreError:
                self.close()
                raise
            for ddl in schema.embedded_ddl():
                self._conn.execute(ddl)

    def _check_schema(self) -> None:
        """Refuse, before writing anything, a store whose tables differ from schema.py (one made by
        another version, e.g. with the former string Node.uid): writes would fail later, obscurely."""
        declared = {x.name: x.properties for x in [*schema.LABELS.values(), *schema.RELS.values()]}
        tables = [row[1] for row in self._conn.execute("CALL show_tables() RETURN *").get_all()]
        for table in (t for t in tables if t in declared):
            found = {row[1]: row[2] for row in self._conn.execute(f"CALL table_info('{table}') RETURN *").get_all()}
            wrong = [f"{table}.{name} is {found.get(name, 'missing')}, expected {typ}"
                     for name, typ in declared[table].items() if found.get(name) != typ]
            if wrong:
                raise StoreError(f"{self.path} was made with another schema ({'; '.join(wrong)}): it was "
                                 "written by another version of circuit-atlas. Ingest into a new store "
                                 "(--store NEW_PATH); this one is left as it is")

    def _rows(self, result) -> list[dict]:
        names = result.get_column_names()
        return [dict(zip(names, row)) for row in result.get_all()]

    def run(self, cypher: str, params: dict | None = None) -> list[dict]:
        try:
            return self._rows(self._conn.execute(cypher, _used(cypher, params)))
        except RuntimeError as e:
            raise _map_error(e, cypher) from None

    def read(self, cypher: str, params: dict | None, timeout_s: float, max_rows: int) -> list[dict]:
        conn = self._mod.Connection(self._db)
        conn.set_query_timeout(int(timeout_s * 1000))
        conn.execute("BEGIN TRANSACTION READ ONLY")
        try:
            with warnings.catch_warnings():   # prepare() is what refuses a second, smuggled statement
                warnings.simplefilter("ignore", DeprecationWarning)
                prepared = conn.prepare(cypher)
                result = conn.execute(prepared, _used(cypher, params))
            names, rows = result.get_column_names(), []
            while result.has_next():
                if len(rows) == max_rows:
                    raise TooManyRowsError(f"query returned more than {max_rows} rows; add LIMIT or raise "
                                           "the row cap (--max-rows)")
                rows.append(dict(zip(names, result.get_next())))
            return rows
        except RuntimeError as e:
            raise _map_error(e, cypher) from None
        finally:
            _rollback(conn)                   # nothing to undo: the transaction is read-only
            conn.close()

    def write_graphs(self, graphs: list[Graph]) -> None:
        """All `graphs` in one transaction: a crash or error leaves none of them."""
        from circuit_atlas.store.base import next_uid, write_with_statements

        conn = self._conn
        conn.execute("BEGIN TRANSACTION")
        try:
            rows = graph_rows(graphs, next_uid(lambda c: self._rows(conn.execute(c))),  # one writer: no race
                              with_aggregates=self.opts.aggregates)
            if self.opts.bulk:
                tags, tagged = tag_tables(rows.tags)
                if self.opts.aggregates:
                    new_features, stored_features = self._split_features(rows.features)
                else:                         # the write path before aggregates: skip the stored keys
                    new_features, stored_features = rows.features, rows.features.slice(0, 0)
                for table, data in [("Graph", rows.graphs), ("Node", rows.nodes), ("Feature", new_features),
                                    ("Tag", tags), ("HAS_NODE", rows.has_node), ("OF_FEATURE", rows.of_feature),
                                    ("TAGGED", tagged), ("EFFECT", rows.effects), ("Path", rows.paths)]:
                    if data.num_rows:
                        options = COPY_OPTIONS if self.opts.aggregates else COPY_OPTIONS | NO_AGGREGATES_COPY_OPTIONS
                        conn.execute(f"COPY {table} FROM $data{options.get(table, '')}", {"data": data})
                if stored_features.num_rows:          # features stored before: add this batch to their aggregates
                    conn.execute(st.ADD_FEATURE_AGGREGATES, {"rows": stored_features})
            else:
                write_with_statements(lambda c, p: conn.execute(c, p), rows)
            conn.execute("COMMIT")
        except BaseException as e:
            _rollback(conn)                   # a failed COPY has rolled back the transaction itself
            if isinstance(e, RuntimeError):
                raise _map_error(e, "COPY / bulk insert") from None
            raise

    def write(self, work):
        """work(run) with every statement it runs in one transaction: all of it or nothing."""
        conn = self._conn
        conn.execute("BEGIN TRANSACTION")
        try:
            result = work(lambda c, p=None: self._rows(conn.execute(c, _used(c, p))))
            conn.execute("COMMIT")
            return result
        except BaseException as e:
            _rollback(conn)
            if isinstance(e, RuntimeError):
                raise _map_error(e, "write transaction") from None
            raise

    def _split_features(self, features):
        """(rows of features not stored yet, to COPY; aggregate rows of stored ones, r_-prefixed for
        statements.ADD_FEATURE_AGGREGATES), asked inside the write transaction."""
        import pyarrow as pa
        import pyarrow.compute as pc

        keys = pa.table({"k": features["key"]})
        stored = pa.array([r[0] for r in self._conn.execute(st.EXISTING_FEATURES, {"keys": keys}).get_all()],
                          pa.string()) if features.num_rows else pa.array([], pa.string())
        known = pc.is_in(features["key"], value_set=stored)
        old = features.filter(known).select(["key", *FEATURE_AGGREGATES])
        return features.filter(pc.invert(known)), old.rename_columns([f"r_{c}" for c in old.column_names])

    def close(self) -> None:
        if self._key is not None:
            self._conn.close()
            _release_database(self._key)
            self._key = None
