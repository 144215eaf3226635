"""User queries run in a child process, so that their limits hold on both backends.

Measured on kuzu 0.11.3: `UNWIND range(1, 20000000) AS x RETURN collect(x)` ignores the engine's query
timeout and `Connection.interrupt()` while it builds its one row (a 3M-element collect ran 5.9 s past
a 2 s interrupt), its buffer_pool_size does not bound that memory (killed at 4 GB with a 256 MiB pool),
and some table functions crash the process (`CALL read_csv_serial(...)`: a segfault). On Neo4j the
server computes the same row in 1 GiB of heap, and the driver then decodes all 20M values at once
in the client. A child process with a limited address space, killed at the deadline, bounds them:

    with QueryProcess(target, max_memory) as qp:        # target: embedded_target(...) or neo4j_target(...)
        rows = qp.run(cypher, params, limits)           # QueryTimeoutError, QueryMemoryError, ...

The child connects (embedded: opens the store read-only with a buffer pool of half of
max_memory, where the engine keeps its hash tables; Neo4j: a driver, READ transactions with the server-side timeout), then limits its address
space (RLIMIT_AS) to what it has mapped plus what is left of max_memory after what is resident and
the pool: an allocation past that fails (kuzu: std::bad_alloc; Python: MemoryError). It serves queries
one at a time over stdin/stdout (length-prefixed pickles; rows stream back in batches as they come,
counted and measured by RowCollector) until its stdin closes. The parent kills it (SIGKILL) at a
query's deadline or when it ran out of memory, and starts a new one for the next query (about 0.3 s).
The memory limit needs Linux (/proc, RLIMIT_AS); the deadline holds everywhere.

Several read-only processes may open one embedded store; a read-write open in the parent's own process
locks the child out, so EmbeddedBackend runs queries in-process there (docs/store.md says what holds).
"""
from __future__ import annotations

import os
import pickle
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from circuit_atlas.store import errors
from circuit_atlas.store.limits import RowCollector, format_size

_HEADER = struct.Struct(">Q")
MARGIN = 48 << 20                     # slack under max_memory for what the kernel counts beyond our maps
STARTUP_TIMEOUT_S = 120.0


def _send(stream, message) -> None:
    data = message if isinstance(message, bytes) else pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _status_kib(field: str) -> int:
    """A VmSize/VmRSS/VmHWM line of /proc/self/status, in KiB (0 where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def store_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def pool_sizes(path: Path, max_memory: int) -> tuple[int, int]:
    """(buffer_pool_size, max_db_size) for a read-only open: half of the memory for the pool (Kùzu's
    joins and aggregations work in it: hubs-by-graphs on 10M edges needs 256-384 MiB); the address
    range for the file a power of two above twice its size (reserved, not resident)."""
    max_db = 64 << 20
    while max_db < 2 * store_size(path):
        max_db *= 2
    return max(32 << 20, max_memory // 2), max_db


def embedded_target(engine: str, path: str | Path, max_memory: int) -> dict:
    bp, max_db = pool_sizes(Path(path), max_memory)
    return {"backend": "embedded", "engine": engine, "path": str(path), "buffer_pool_size": bp,
            "max_db_size": max_db}


def neo4j_target(uri: str, user: str, password: str, database: str | None) -> dict:
    return {"backend": "neo4j", "uri": uri, "user": user, "password": password, "database": database,
            "buffer_pool_size": 0}


class QueryProcess:
    """A child process that runs read-only queries on one store under hard limits."""

    def __init__(self, target: dict, max_memory: int):
        self.target, self.max_memory = target, max_memory
        self._stderr = tempfile.TemporaryFile()
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, MALLOC_ARENA_MAX="2",
                   PYTHONPATH=os.pathsep.join(p for p in [package_root, os.environ.get("PYTHONPATH", "")] if p))
        self._proc = subprocess.Popen([sys.executable, "-P", "-m", "circuit_atlas.store.query_process"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                      env=env, close_fds=True)
        _send(self._proc.stdin, {**target, "max_memory": max_memory})
        reply = self._receive(time.monotonic() + STARTUP_TIMEOUT_S, None)
        if reply[0] != "ready":
            self.close()
            raise _error(reply[1], reply[2], None)

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def run(self, cypher: str, params: dict, limits) -> list[dict]:
        """Rows of one read-only query; past a limit the process is killed (and this one unusable)."""
        deadline = time.monotonic() + limits.timeout_s
        try:
            _send(self._proc.stdin, ("query", cypher, params, limits.timeout_s, limits.max_rows, limits.max_bytes))
        except OSError:                   # BrokenPipeError: it died since the last query
            raise self._died(cypher, limits) from None
        rows: list[dict] = []
        while True:
            message = self._receive(deadline, cypher, limits)
            if isinstance(message, bytes):
                rows.extend(pickle.loads(message))
            elif message[0] == "done":
                return rows
            else:                         # ("error", kind, text)
                if message[1] in ("memory", "crash", "io"):
                    self.kill()
                raise _error(message[1], message[2], cypher, limits)

    def _receive(self, deadline: float, cypher: str | None, limits=None):
        header = self._read(_HEADER.size, deadline, cypher, limits)
        (size,) = _HEADER.unpack(header)
        data = self._read(size, deadline, cypher, limits)
        if data[:1] == b"R":              # a batch of rows, pickled by the child: kept as bytes until here
            return data[1:]
        return pickle.loads(data)

    def _read(self, n: int, deadline: float, cypher: str | None, limits) -> bytes:
        fd, chunks, left = self._proc.stdout.fileno(), [], n
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                self.kill()
                if limits is None:
                    raise errors.StoreError(f"the query process did not start within {STARTUP_TIMEOUT_S:g} s")
                raise _error("timeout", "", cypher, limits)
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise self._died(cypher, limits)
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _died(self, cypher: str | None, limits):
        """The error for a child that exited: out of memory, a crash of the engine, or no start at all."""
        code = self._proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace").strip().splitlines()
        last = tail[-1] if tail else ""
        ended = f"ended with {f'signal {-code}' if code < 0 else f'exit code {code}'}{': ' + last if last else ''}"
        if cypher is None:
            return errors.StoreError(f"the query process could not start: it {ended}")
        if "bad_alloc" in last or "MemoryError" in last or code == -signal.SIGKILL:
            return _error("memory", last, cypher, limits)
        return _error("crash", f"the database process {ended}", cypher, limits)

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()          # the child exits at the end of its input
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        for stream in (self._proc.stdin, self._proc.stdout, self._stderr):
            try:
                stream.close()
            except OSError:
                pass

    def __enter__(self) -> "QueryProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class QueryRunner:
    """The query process of one open store: started at its first query, again after a kill or for
    another memory cap; queries from several threads take turns."""

    def __init__(self, target: Callable[[int], dict]):
        self._target = target                 # max_memory -> the child's target (embedded_target, ...)
        self._process: QueryProcess | None = None
        self._lock = threading.Lock()

    def run(self, cypher: str, params: dict, limits) -> list[dict]:
        with self._lock:
            qp = self._process
            if qp is None or not qp.alive or qp.max_memory != limits.max_memory:
                if qp is not None:
                    qp.close()
                self._process = None
                self._process = QueryProcess(self._target(limits.max_memory), limits.max_memory)
            return self._process.run(cypher, params, limits)

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.close()
                self._process = None


def _error(kind: str, text: str, cypher: str | None, limits=None) -> errors.StoreError:
    if kind == "memory":
        cap = format_size(limits.max_memory) if limits else "its memory limit"
        return errors.QueryMemoryError(f"query needed more than {cap} of memory and was stopped; add LIMIT, "
                                       f"return less per row, or raise --max-memory ({text or 'out of memory'})")
    if kind == "timeout":
        return errors.QueryTimeoutError(f"query timed out after {limits.timeout_s:g} s and was stopped; add "
                                        "LIMIT or a narrower MATCH, or raise the timeout (--timeout)")
    if kind == "rows":
        return errors.TooManyRowsError(text)
    if kind == "bytes":
        return errors.ResultTooLargeError(text)
    if kind == "readonly":
        return errors.ReadOnlyQueryError(f"refused by the database, queries are read-only: {text}")
    if kind == "io":
        return errors.StoreIOError(f"the query could not read the store: {text.splitlines()[0][:300]}")
    if kind == "locked":
        return errors.StoreLockedError(text)
    if kind == "open":
        return errors.StoreError(text)
    if kind == "crash":
        return errors.CypherError(errors.refused_query(f"the database failed on this query ({text})", cypher))
    return engine_query_error(text, cypher)


def engine_query_error(text: str, cypher: str) -> errors.StoreError:
    """The embedded engine's message for a query it refused, with the query and, where the engine's words
    do not say what to change, a hint (in-process and query-process queries say the same)."""
    if re.match(r"Binder exception: Table \w+ does not exist", text):   # the embedded engine's missing label
        return errors.UnknownLabelError(errors.refused_query(text, cypher))
    hint = ""
    if "vector with ANY type" in text:   # an empty list parameter returned as is: the engine cannot type it
        hint = ("a parameter is an empty list ([]); the embedded engine cannot tell its element type "
                "where it is returned or stored, only where it is compared (x IN $list): give one element "
                "or leave it out")
    return errors.CypherError(errors.refused_query(text, cypher, hint))


# --- the child --------------------------------------------------------------------------------

def _child_read(stream, n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None


def _child_receive(stream):
    header = _child_read(stream, _HEADER.size)
    if header is None:
        return None
    data = _child_read(stream, _HEADER.unpack(header)[0])
    return None if data is None else pickle.loads(data)


def _kind(message: str, code: str = "") -> str:
    if "bad_alloc" in message or "Unable to allocate memory" in message or "buffer pool is full" in message.lower() \
            or "MemoryPoolOutOfMemory" in code or "OutOfMemory" in code:
        return "memory"
    if "IO exception" in message:
        return "io"
    if message.startswith("Interrupted") or "TransactionTimedOut" in code or "Terminated" in code:
        return "timeout"
    if "read-only" in message or "read only" in message.lower() or "AccessMode" in code:
        return "readonly"
    return "cypher"


def _open_embedded(config: dict):
    """A function running one query on the store, opened read-only, yielding rows as dicts."""
    engine = __import__(config["engine"])
    db = engine.Database(config["path"], read_only=True, buffer_pool_size=config["buffer_pool_size"],
                         max_db_size=config["max_db_size"])
    conn = engine.Connection(db)
    conn.execute("RETURN 1")                  # warm up what the first query would otherwise allocate

    def run(cypher: str, params: dict, timeout_s: float):
        conn.execute("BEGIN TRANSACTION READ ONLY")
        try:
            result = conn.execute(conn.prepare(cypher), params)   # prepare: one statement only
            names = result.get_column_names()
            while result.has_next():
                yield dict(zip(names, result.get_next()))
        finally:
            try:
                conn.execute("ROLLBACK")
            except RuntimeError:
                pass
    return run, (RuntimeError, TypeError, ValueError, OverflowError)


def _open_neo4j(config: dict):
    import neo4j

    from circuit_atlas.store.neo4j_values import plain as _plain

    driver = neo4j.GraphDatabase.driver(config["uri"], auth=(config["user"], config["password"]))
    driver.verify_connectivity()

    def run(cypher: str, params: dict, timeout_s: float):
        with driver.session(database=config["database"], default_access_mode=neo4j.READ_ACCESS) as session:
            with session.begin_transaction(timeout=timeout_s) as tx:     # READ: the server refuses writes
                for record in tx.run(cypher, params):
                    yield _plain(record.data())
    return run, (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, TypeError, ValueError, OverflowError)


def child_main() -> None:
    import resource
    import warnings

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr                   # nothing else may write into the message stream
    warnings.simplefilter("ignore", DeprecationWarning)   # kuzu's prepare() is deprecated (and what
    config = _child_receive(stdin)                        # refuses a second, smuggled statement)
    try:
        run, engine_errors = (_open_embedded if config["backend"] == "embedded" else _open_neo4j)(config)
    except Exception as e:                    # noqa: BLE001  the parent turns it into one line
        kind = "locked" if "lock" in str(e).lower() else "open"
        where = config.get("path") or config.get("uri")
        _send(stdout, ("error", kind, f"cannot open {where} read-only for queries: {e}"))
        return
    mapped, resident = _status_kib("VmSize") << 10, _status_kib("VmRSS") << 10
    if mapped:                                # resident now + pool + new maps stays under max_memory
        allowance = config["max_memory"] - resident - config["buffer_pool_size"] - MARGIN
        resource.setrlimit(resource.RLIMIT_AS, (mapped + max(allowance, 16 << 20), resource.RLIM_INFINITY))
    _send(stdout, ("ready",))
    while True:
        request = _child_receive(stdin)
        if request is None:
            return
        _, cypher, params, timeout_s, max_rows, max_bytes = request
        rows = RowCollector(max_rows, max_bytes)
        try:
            for row in run(cypher, params, timeout_s):
                batch = rows.add(row)
                if batch is not None:
                    _send(stdout, b"R" + batch)
            batch = rows.flush()
            if batch is not None:
                _send(stdout, b"R" + batch)
            _send(stdout, ("done",))
        except (errors.TooManyRowsError, errors.ResultTooLargeError) as e:
            _send(stdout, ("error", "rows" if isinstance(e, errors.TooManyRowsError) else "bytes", str(e)))
        except MemoryError:
            _send(stdout, ("error", "memory", "MemoryError"))
            return
        except engine_errors as e:
            message = getattr(e, "message", None) or str(e)
            kind = _kind(message, getattr(e, "code", "") or "")
            _send(stdout, ("error", kind, message))
            if kind in ("memory", "io"):
                return                        # a fresh process for the next query


if __name__ == "__main__":
    child_main()
