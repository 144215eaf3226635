"""Embedded backend: a Kùzu-family database in one file (kuzu 0.11.3; plus .wal / .shadow beside it
while writing), no server. A path that is not a store (a directory, an empty or foreign file) is refused
untouched.

Engine: `kuzu` 0.11.3 by default, `real_ladybug` with CIRCUIT_ATLAS_EMBEDDED_ENGINE=real_ladybug
(same API; docs/store.md explains the choice: real_ladybug's COPY of FLOAT edge weights is ~20x slower).
The two cannot be imported into one process, and their files are not interchangeable.

Locking: a read-write open takes an exclusive lock on the file; while any process holds it no
other process can open it at all, and a read-only holder blocks writers. So opens retry with backoff
for `lock_timeout_s`, and callers keep opens short (ingest opens once per batch of graphs).
Within one process the Database object is shared per path (a second Database on the same path
would release the process's lock when closed: POSIX fcntl semantics).

User queries (`read`, after the statement guard in Store.query) run in `BEGIN TRANSACTION READ ONLY`
on a prepared statement (one statement only), so the database itself refuses writes. Where this
process holds the database read-only (a store opened read_only=True, as the CLI does), they run in a
child process (query_process.py) that opens it read-only too, with a memory limit and killed at the
deadline; where this process holds it read-write, a child cannot open it (the lock), so they run
in-process: the guard, the transaction, the row and byte caps and the engine's own timeout apply,
but a query the engine does not interrupt can run past its timeout and memory (docs/store.md).
"""
from __future__ import annotations

import ctypes
import importlib
import importlib.util  # noqa: F401  kuzu uses importlib.util in COPY FROM $param without importing it
import re
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from circuit_atlas.graph import Graph
from circuit_atlas.settings import DEFAULT_ENGINE, DEFAULT_LOCK_TIMEOUT_S
from circuit_atlas.store import schema
from circuit_atlas.store import statements as st
from circuit_atlas.store.aggregates import FEATURE_AGGREGATES
from circuit_atlas.store.errors import (CypherError, QueryMemoryError, QueryTimeoutError, ReadOnlyQueryError,
                                        StoreError, StoreIOError, StoreLockedError)
from circuit_atlas.store.limits import QueryLimits, RowCollector
from circuit_atlas.store.query_process import QueryRunner, embedded_target, engine_query_error
from circuit_atlas.store.rows import graph_rows, tag_tables

ENGINES = ("kuzu", "real_ladybug", "ladybug")


def space_needed(row_bytes: int) -> int:
    """Free disk space a write of `row_bytes` of Arrow rows needs, with margin: a store grows by about
    1.2x the rows and its commit needs ~1.4x transiently (shadow pages, log); a new store's tables take
    ~10 MiB. Measured on tmpfs with kuzu 0.11.3 (tests/test_ingest_faults.py::test_full_disk_...)."""
    return 2 * row_bytes + 16 * 1024**2


# Tags are global: a batch's rows include ones stored by earlier batches. ignore_errors makes the COPY
# skip exactly those rows (duplicate primary keys; the stored row is kept), which is cheaper than asking
# for the known keys first. Our Arrow rows are typed, so no other error can be skipped. Features are
# global too, but carry aggregates: the stored ones are asked for first, and get the batch's added.
COPY_OPTIONS = {"Tag": " (ignore_errors=true)"}
NO_AGGREGATES_COPY_OPTIONS = {"Feature": " (ignore_errors=true)"}


@dataclass
class EmbeddedOptions:
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S   # how long an open waits for another process to release
                                          # the database (store.connect passes Settings.lock_timeout_s)
    engine: str = DEFAULT_ENGINE      # kuzu | real_ladybug (store.connect passes Settings.embedded_engine)
    bulk: bool = True                 # COPY from Arrow; False = the UNWIND statement path (tests)
    aggregates: bool = True           # False: bench/ingest.py's "before" only; queries on such a store are wrong


def engine_module(name: str):
    if name not in ENGINES:
        raise StoreError(f"unknown embedded engine {name!r}; choose one of {', '.join(ENGINES)}")
    return importlib.import_module(name)


class _Shared:
    """One Database object per path in this process, reference counted."""
    lock = threading.Lock()
    open: dict[str, list] = {}        # path -> [database, read_only, refcount]


# The first bytes of a store file, per engine (None: not checked, the engine's own error decides).
FILE_MAGIC = {"kuzu": b"KUZU", "real_ladybug": None}


def refuse_what_is_not_a_store(path: Path, read_only: bool, engine: str) -> None:
    """A StoreError, before the engine touches anything, when `path` cannot be a store: the engine would
    refuse a directory in its own words, initialise an empty file as a new store (losing whatever the
    user meant by it), and create no parent folder."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a store: the embedded store is a single file (e.g. "
                         f"{path / 'atlas.db'}); nothing was changed")
    if not path.exists():
        if read_only:
            raise StoreError(f"no store at {path}; create it by ingesting graphs: circuit-atlas ingest FILES")
        if not path.parent.is_dir():
            raise StoreError(f"cannot create a store at {path}: the folder {path.parent} does not exist")
        return
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise StoreError(f"cannot open store {path}: {e.strerror or e}") from None
    if not head:
        raise StoreError(f"{path} is an empty file, not a store; nothing was changed. Remove it to create a "
                         "new store there, or give another path")
    magic = FILE_MAGIC.get(engine)
    if magic is not None and not head.startswith(magic):
        raise StoreError(f"{path} is not a store (not a {engine} database file: it starts with {head[:8]!r}); "
                         "nothing was changed. Give an existing store, or a path where no file exists yet")


def _open_database(path: Path, read_only: bool, opts: EmbeddedOptions):
    """The shared Database for `path`, opening it (with retry while another process holds the lock)."""
    db_mod = engine_module(opts.engine)
    key = str(path.resolve())
    if key not in _Shared.open:
        refuse_what_is_not_a_store(path, read_only, opts.engine)
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
            reason = _io_failure(RuntimeError(problem), path)
            if reason is not None:            # e.g. recovering the last write needs space it cannot get
                raise StoreIOError(f"cannot open store {path}: {reason}; fix the cause and run again")
            raise StoreError(f"cannot open store {path}: {problem}")
        if time.monotonic() >= deadline:
            if unreplayed:
                raise StoreError(f"{path} holds an unfinished write (a writer still closing, or one that crashed) "
                                 "that only a read-write open can recover: open it read-write once, e.g. "
                                 "circuit-atlas ingest, or open_store(path)")
            raise StoreLockedError(
                f"{path} is locked by another process (an ingest or worker writing, or a query reading) and "
                f"stayed locked for {opts.lock_timeout_s:g}s; retry when it finishes or raise the lock timeout "
                "(--lock-timeout SECONDS, or $CIRCUIT_ATLAS_LOCK_TIMEOUT)")
        time.sleep(delay)                     # outside the lock: other paths and threads carry on
        delay = min(delay * 2, 1.0)


def _release_database(key: str, db) -> None:
    with _Shared.lock:
        entry = _Shared.open.get(key)
        if entry is None or entry[0] is not db:   # abandoned after an I/O failure
            return
        entry[2] -= 1
        if entry[2] == 0:
            del _Shared.open[key]
            entry[0].close()


def _abandon_database(key: str, db, conn) -> None:
    """Stop using a Database whose write failed on I/O, and never close it.

    After a failed commit on a full disk the engine's in-memory state claims writes that never reached
    the disk (the batch reads back as stored), and may hold a transaction it can no longer roll back:
    closing the connection or the database then aborts the process (C++ terminate, rc 134) or spins.
    So the objects are leaked on purpose (an extra reference: their destructors never run); the
    operating system releases the file lock at exit, and the next open recovers from the log on disk.
    """
    with _Shared.lock:
        if key in _Shared.open and _Shared.open[key][0] is db:
            del _Shared.open[key]
    for obj in (conn, db):
        _leak(obj)


def _leak(obj) -> None:
    """Keep `obj` alive until the process ends, so that its destructor never runs (see above)."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


# The engine's own message when a commit failed on I/O and its rollback failed too (no "IO exception").
_LOST_TRANSACTION = "Invalid transaction type to rollback"


def _io_failure(e: Exception, path: Path) -> str | None:
    """The operating system's reason when the engine failed to read or write its files, else None.
    The engine says e.g. "IO exception: Cannot write to file. path: … Error: No space left on device";
    a short write on a full disk reports "Error: Success", and a failed rollback after it says
    nothing of I/O: the free space decides then."""
    msg = str(e)
    if "IO exception" not in msg and _LOST_TRANSACTION not in msg:
        return None
    m = re.search(r"Error: ([^\n]+?)\s*$", msg)
    reason = m.group(1) if m and m.group(1) != "Success" else ""
    if not reason:
        try:
            full = shutil.disk_usage(path.resolve().parent).free < 1024**2
        except OSError:
            full = False
        reason = "No space left on device" if full else msg.splitlines()[0][:200]
    return reason


def _used(cypher: str, params: dict | None) -> dict:
    """Only the parameters the query mentions: the engine rejects extra ones, Neo4j ignores them."""
    named = set(re.findall(r"\$(\w+)", cypher))
    return {k: v for k, v in (params or {}).items() if k in named}


def check_param_kinds(params: dict) -> None:
    """CypherError, naming the parameter, for a value the engine would bind wrongly or obscurely: it
    types each list by its items, so they must be of one kind (numbers, strings, booleans, lists or
    maps; nulls go anywhere), and maps in one list must have the same keys. Measured on kuzu 0.11.3:
    [{"a": 1}, {"b": 2}] came back as [{"b": 1}, {"b": 2}]; [1, "a"] failed in int(). Neo4j takes both."""
    for name, value in params.items():
        try:
            _kind(value)
        except _KindConflict as e:
            raise CypherError(f"parameter ${name}: {e}; the embedded store needs the items of a list to be of "
                              "one kind, and maps in a list to have the same keys") from None


class _KindConflict(Exception):
    pass


def _kind(value):
    """The engine's view of a value's type: None (unknown), "bool", "number", "string", ("list", item
    kind) or ("map", {key: kind}); _KindConflict where list items disagree."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        item = None
        for v in value:
            item = _unify(item, _kind(v))
        return ("list", item)
    if isinstance(value, dict):
        return ("map", {k: _kind(v) for k, v in value.items()})
    return type(value).__name__               # not a parameter value: the guard refuses it first


def _unify(a, b):
    if a is None or a == b:
        return b
    if b is None:
        return a
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "list":
        return ("list", _unify(a[1], b[1]))
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "map":
        if set(a[1]) != set(b[1]):
            raise _KindConflict(f"a list holds maps with different keys ({', '.join(sorted(a[1])) or 'none'} "
                                f"and {', '.join(sorted(b[1])) or 'none'})")
        return ("map", {k: _unify(a[1][k], b[1][k]) for k in a[1]})
    raise _KindConflict(f"a list holds {_name(a)} and {_name(b)}")


def _name(kind) -> str:
    return {"bool": "a boolean", "number": "a number", "string": "a string"}.get(kind) if isinstance(kind, str) \
        else f"a {kind[0]}"


def _rollback(conn) -> None:
    try:
        conn.execute("ROLLBACK")
    except RuntimeError:                      # no transaction left: it failed, or the query ended it
        pass


def _map_error(e: Exception, cypher: str) -> StoreError:
    msg = str(e)
    if "bad_alloc" in msg or "Unable to allocate memory" in msg:
        return QueryMemoryError(f"query ran out of memory ({msg}); add LIMIT or return less per row")
    if "read-only" in msg:
        return ReadOnlyQueryError(f"refused by the database, queries are read-only: {msg}")
    if msg.startswith("Interrupted"):
        return QueryTimeoutError("query timed out (interrupted by the database); add LIMIT or a narrower "
                                 "MATCH, or raise the timeout")
    return engine_query_error(msg, cypher)


# Tables of older layouts that a store of this version never has: their name -> what they were.
RETIRED_TABLES = {"HAS_NEIGHBOUR": "the older link of Neighbour rows of both directions (now HAS_UPSTREAM / HAS_DOWNSTREAM)"}


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, path: str | Path, read_only: bool, opts: EmbeddedOptions | None = None):
        self.opts = opts or EmbeddedOptions()
        self.path = Path(path)
        self._broken = ""                     # set by an I/O failure: the database was abandoned
        self._mod = engine_module(self.opts.engine)
        self._db, self._key = _open_database(self.path, read_only, self.opts)
        self._conn = self._mod.Connection(self._db)
        self._queries = QueryRunner(lambda max_memory: embedded_target(self.opts.engine, self.path, max_memory))
        if not read_only:
            try:
                self._check_schema()
                for ddl in schema.embedded_ddl():
                    self.run(ddl)
            except StoreError:
                self.close()
                raise

    def _check_schema(self) -> None:
        """Refuse, before writing anything, a store whose tables differ from schema.py (one made by
        another version, e.g. with the former string Node.uid): writes would fail later, obscurely."""
        declared = {x.name: x.properties for x in [*schema.LABELS.values(), *schema.RELS.values()]}
        tables = [row[1] for row in self._conn.execute("CALL show_tables() RETURN *").get_all()]
        wrong = []
        for table in (t for t in tables if t in declared):
            info = self._conn.execute(f"CALL table_info('{table}') RETURN *").get_all()
            found = {row[1]: row[2] for row in info}
            wrong += [f"{table}.{name} is {found.get(name, 'missing')}, expected {typ}"
                      for name, typ in declared[table].items() if found.get(name) != typ]
            key = [row[1] for row in info if table in schema.LABELS and row[4] is True]
            if key and key != [schema.LABELS[table].key]:
                wrong.append(f"{table} is keyed by {key[0]}, expected {schema.LABELS[table].key}")
        wrong += [f"{table} is {RETIRED_TABLES[table]}" for table in tables if table in RETIRED_TABLES]
        if wrong:
            raise StoreError(f"{self.path} was made with another schema ({'; '.join(wrong)}): it was "
                             "written by another version of circuit-atlas. Ingest into a new store "
                             "(--store NEW_PATH); this one is left as it is")
        if "Graph" in tables and schema.NEIGHBOUR.name not in tables and \
                self._conn.execute("MATCH (g:Graph) RETURN count(*)").get_next()[0]:
            raise StoreError(f"{self.path} was made before the {schema.NEIGHBOUR.name} aggregates existed (an older "
                             "circuit-atlas): feature-upstream / -downstream would miss its graphs. Ingest into a new "
                             "store (--store NEW_PATH); this one is left as it is")

    def _rows(self, result) -> list[dict]:
        names = result.get_column_names()
        return [dict(zip(names, row)) for row in result.get_all()]

    def _failed(self, e: RuntimeError, cypher: str) -> StoreError:
        """The StoreError for an engine error. An I/O failure (a full disk) closes the database for good:
        nothing more is read from or written through this process's copy of it."""
        reason = _io_failure(e, self.path)
        if reason is None:
            return _map_error(e, cypher)
        if "read from file" in str(e):
            self._broken = f"cannot read the store {self.path}: {reason}"
        else:
            self._broken = (f"cannot write the store {self.path}: {reason}. The batch being written is stored "
                            "whole or not at all (its commit could not finish); fix the cause and run again: "
                            "graphs stored already are skipped")
        if self._key is not None:
            _abandon_database(self._key, self._db, self._conn)
            self._key = None
        return StoreIOError(self._broken)

    def _usable(self) -> None:
        if self._broken:
            raise StoreIOError(self._broken)

    def run(self, cypher: str, params: dict | None = None, read: bool = False) -> list[dict]:
        # `read` (a library read) changes nothing here: one connection serves both; Neo4j honours it
        self._usable()
        try:
            return self._rows(self._conn.execute(cypher, _used(cypher, params)))
        except RuntimeError as e:
            raise self._failed(e, cypher) from None

    def read(self, cypher: str, params: dict, limits: QueryLimits) -> list[dict]:
        """One user query (checked by the guard already) with exactly the parameters it uses."""
        self._usable()
        check_param_kinds(params)
        with _Shared.lock:
            held_read_only = _Shared.open[self._key][1]
        if not held_read_only:
            return self._read_in_process(cypher, params, limits)
        return self._queries.run(cypher, params, limits)

    def _read_in_process(self, cypher: str, params: dict, limits: QueryLimits) -> list[dict]:
        deadline = time.monotonic() + limits.timeout_s
        conn = self._mod.Connection(self._db)
        conn.set_query_timeout(max(1, int(limits.timeout_s * 1000)))
        conn.execute("BEGIN TRANSACTION READ ONLY")
        try:
            with warnings.catch_warnings():   # prepare() is what refuses a second, smuggled statement
                warnings.simplefilter("ignore", DeprecationWarning)
                prepared = conn.prepare(cypher)
                result = conn.execute(prepared, params)
            names, rows, collector = result.get_column_names(), [], RowCollector(limits.max_rows, limits.max_bytes)
            while result.has_next():
                if time.monotonic() > deadline:
                    raise QueryTimeoutError(f"query timed out after {limits.timeout_s:g} s and was stopped")
                rows.append(dict(zip(names, result.get_next())))
                collector.add(rows[-1])
            collector.flush()
            return rows
        except RuntimeError as e:
            if _io_failure(e, self.path) is not None:
                _leak(conn)                   # closing it could abort the process, see _abandon_database
                conn = None
            raise self._failed(e, cypher) from None
        except (TypeError, ValueError, OverflowError) as e:   # a parameter value the engine cannot bind
            raise _map_error(e, cypher) from None
        finally:
            if conn is not None:
                _rollback(conn)               # nothing to undo: the transaction is read-only
                conn.close()

    def write_graphs(self, graphs: list[Graph]) -> None:
        """All `graphs` in one transaction: a crash or error leaves none of them."""
        from circuit_atlas.store.base import write_with_statements

        self._usable()
        conn = self._conn
        conn.execute("BEGIN TRANSACTION")
        try:
            rows = graph_rows(graphs, self._next_uid(), with_aggregates=self.opts.aggregates)   # one writer: no race
            self._check_free_space(rows, len(graphs))
            if self.opts.bulk:
                tags, tagged = tag_tables(rows.tags)
                if self.opts.aggregates:      # stored features get the batch's aggregates, the rest are COPYd
                    new_features = self._add_to_stored_features(rows.features)
                else:                         # the write path before aggregates: skip the stored keys
                    new_features = rows.features
                for table, data in [("Graph", rows.graphs), ("Node", rows.nodes), ("Feature", new_features),
                                    ("Tag", tags), ("HAS_NODE", rows.has_node), ("OF_FEATURE", rows.of_feature),
                                    ("TAGGED", tagged), ("EFFECT", rows.effects), ("Path", rows.paths)]:
                    if data.num_rows:
                        options = COPY_OPTIONS if self.opts.aggregates else COPY_OPTIONS | NO_AGGREGATES_COPY_OPTIONS
                        conn.execute(f"COPY {table} FROM $data{options.get(table, '')}", {"data": data})
                if rows.neighbours is not None:
                    self._copy_neighbours(rows)
            else:
                write_with_statements(lambda c, p: self._rows(conn.execute(c, p)), rows)
            conn.execute("COMMIT")
        except BaseException as e:
            _rollback(conn)                   # a failed COPY has rolled back the transaction itself
            # the engine's own errors are plain RuntimeErrors (not RecursionError & co from building rows)
            error = self._failed(e, "COPY / bulk insert") if type(e) is RuntimeError else e
            if self._key is not None:         # still open (not an I/O failure): the next write gets a
                conn.close()                  # fresh connection, nothing left of the failed one
                self._conn = self._mod.Connection(self._db)
            raise error from None

    def _check_free_space(self, rows, n_graphs: int) -> None:
        """Refuse a batch the disk cannot hold, before the engine writes anything: kuzu 0.11.3 can abort
        the process (C++ terminate) when its disk fills up during a COMMIT (docs/store.md)."""
        need = space_needed(sum(t.nbytes for t in (rows.graphs, rows.nodes, rows.features, rows.has_node,
                                                   rows.of_feature, rows.effects, rows.paths))
                           + (rows.neighbours.nbytes if rows.neighbours is not None else 0))
        free = shutil.disk_usage(self.path.resolve().parent).free
        if free < need:
            mib = 1024**2
            raise StoreIOError(f"cannot write the store {self.path}: not enough free space on its disk "
                               f"({free / mib:,.0f} MiB free; a batch of {n_graphs} graph{'s' * (n_graphs != 1)} "
                               f"needs about {need / mib:,.0f} MiB). Nothing was written; free space and run again")

    def write(self, work):
        """work(run) with every statement it runs in one transaction: all of it or nothing."""
        self._usable()
        conn = self._conn
        conn.execute("BEGIN TRANSACTION")
        try:
            result = work(lambda c, p=None: self._rows(conn.execute(c, _used(c, p))))
            conn.execute("COMMIT")
            return result
        except BaseException as e:
            _rollback(conn)
            error = self._failed(e, "write transaction") if type(e) is RuntimeError else e
            if self._key is not None:         # as in write_graphs: the next write gets a fresh connection
                conn.close()
                self._conn = self._mod.Connection(self._db)
            raise error from None

    def _next_uid(self) -> int:
        """The first free Node.uid, asked inside the write transaction (statements.MAX_UID)."""
        last = self._conn.execute(st.MAX_UID).get_next()[0]
        return 0 if last is None else last + 1

    def _add_to_stored_features(self, features):
        """Add the batch's aggregates to its features stored already (and label the unlabelled ones),
        inside the write transaction; returns the rows of the others, to COPY. One statement and one
        index lookup per feature; the stored keys come back as Arrow, not as Python objects."""
        import pyarrow.compute as pc

        if not features.num_rows:
            return features
        rows = features.select(["key", "label", *FEATURE_AGGREGATES])
        stored = self._conn.execute(st.ADD_FEATURE_AGGREGATES,
                                    {"rows": rows.rename_columns([f"r_{c}" for c in rows.column_names])}
                                    ).get_as_arrow()["key"]
        return features.filter(pc.invert(pc.is_in(features["key"], value_set=stored.combine_chunks())))

    def _copy_neighbours(self, rows) -> None:
        """The bulk path's Neighbour rows, inside the write transaction (their features stored already):
        new identities numbered after the last one (one writer) and COPYd, then the rows keyed by
        integers; the batch's sums added to stored rows, the other rows COPYd and linked."""
        import pyarrow.compute as pc
        from circuit_atlas.store.aggregates import NEIGHBOUR_AGGREGATES
        from circuit_atlas.store.base import keyed_neighbours, next_neighbour_end_id

        conn = self._conn
        run = lambda c, p=None: self._rows(conn.execute(c, p or {}))

        def store_ends(table):
            conn.execute(f"COPY {schema.NEIGHBOUR_END.name} FROM $data", {"data": table})
            return dict(zip(table["key"].to_pylist(), table["id"].to_pylist()))

        keyed = keyed_neighbours(run, rows, lambda n: next_neighbour_end_id(run), store_ends)
        if not keyed.num_rows:
            return
        sums = keyed.select(["id", *NEIGHBOUR_AGGREGATES])
        found = conn.execute(st.ADD_NEIGHBOUR_AGGREGATES,       # the stored rows, added to
                             {"rows": sums.rename_columns([f"r_{c}" for c in sums.column_names])}).get_as_arrow()["id"]
        new = keyed.filter(pc.invert(pc.is_in(keyed["id"], value_set=found.combine_chunks())))
        if new.num_rows:
            conn.execute("COPY Neighbour FROM $data", {"data": new.select(list(schema.NEIGHBOUR.properties))})
            links = new.select(["fkey", "id", "dir"])
            for direction, rel in enumerate(schema.NEIGHBOUR_LINKS):
                part = links.filter(pc.equal(links["dir"], direction))
                if part.num_rows:
                    conn.execute(f"COPY {rel.name} FROM $data",
                                 {"data": part.select(["fkey", "id"]).rename_columns(["src", "dst"])})

    def close(self) -> None:
        self._queries.close()
        if self._key is not None:
            self._conn.close()
            _release_database(self._key, self._db)
            self._key = None
