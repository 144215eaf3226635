"""Neo4j backend over the official driver (Bolt). Same schema, same statements as embedded.

Writes: one write transaction per graph (atomic), rows sent in UNWIND batches that MATCH/MERGE on
constrained keys. Reads: READ access-mode transactions, so the server refuses writes; the transaction
timeout and a row cap bound user queries.
"""
from __future__ import annotations

import logging

from circuit_atlas.graph import Graph
from circuit_atlas.settings import Settings
from circuit_atlas.store import schema
from circuit_atlas.store.errors import (CypherError, QueryTimeoutError, ReadOnlyQueryError, StoreError,
                                        TooManyRowsError)
from circuit_atlas.store import statements as st
from circuit_atlas.store.rows import graph_rows

ATTEMPTS = 6                              # per graph, against writers racing for the same uids
logger = logging.getLogger(__name__)


def _plain(value):
    """Driver values -> JSON-friendly Python (nodes and relationships become property dicts)."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return {"_label": ":".join(sorted(value.labels)), **dict(value)}
    if isinstance(value, Relationship):
        return {"_label": value.type, **dict(value)}
    if isinstance(value, Path):
        return {"nodes": [_plain(n) for n in value.nodes], "rels": [_plain(r) for r in value.relationships]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _map_error(e: Exception, cypher: str) -> StoreError:
    code = getattr(e, "code", "") or ""
    msg = getattr(e, "message", None) or str(e)
    if "AccessMode" in code or "read access mode" in msg.lower():
        return ReadOnlyQueryError(f"refused by the database, queries are read-only: {msg}")
    if "TransactionTimedOut" in code or "Terminated" in code:
        return QueryTimeoutError(f"query timed out: {msg}; add LIMIT or a narrower MATCH, or raise the timeout")
    return CypherError(f"{msg}\nin query: {cypher.strip()[:300]}")


class Neo4jBackend:
    name = "neo4j"

    def __init__(self, uri: str, read_only: bool, settings: Settings | None = None):
        import neo4j

        s = settings or Settings.load(store=uri)
        self._neo4j = neo4j
        self._read_only = read_only
        self._database = s.neo4j_database
        try:
            self._driver = neo4j.GraphDatabase.driver(uri, auth=(s.neo4j_user, s.neo4j_password))
            self._driver.verify_connectivity()
        except Exception as e:
            raise StoreError(f"cannot connect to Neo4j at {uri}: {e}; check NEO4J_USER / NEO4J_PASSWORD "
                             "and that the server is running") from None
        if not read_only:
            for ddl in schema.neo4j_ddl():
                self.run(ddl)

    def _session(self, read: bool):
        mode = self._neo4j.READ_ACCESS if read else self._neo4j.WRITE_ACCESS
        return self._driver.session(database=self._database, default_access_mode=mode)

    def run(self, cypher: str, params: dict | None = None, read: bool = False) -> list[dict]:
        """A library statement: in a READ transaction when it only reads or the store is read-only."""
        work = lambda tx: [_plain(r.data()) for r in tx.run(cypher, params or {})]  # noqa: E731
        read = read or self._read_only
        try:
            with self._session(read=read) as session:
                return session.execute_read(work) if read else session.execute_write(work)
        except self._neo4j.exceptions.Neo4jError as e:
            raise _map_error(e, cypher) from None

    def read(self, cypher: str, params: dict | None, timeout_s: float, max_rows: int) -> list[dict]:
        def work(tx):
            rows = []
            for record in tx.run(cypher, params or {}):
                if len(rows) == max_rows:
                    raise TooManyRowsError(f"query returned more than {max_rows} rows; add LIMIT or raise "
                                           "the row cap (--max-rows)")
                rows.append(_plain(record.data()))
            return rows

        try:
            with self._session(read=True) as session:
                return session.execute_read(self._neo4j.unit_of_work(timeout=timeout_s)(work))
        except self._neo4j.exceptions.Neo4jError as e:
            raise _map_error(e, cypher) from None

    def write_graphs(self, graphs: list[Graph]) -> None:
        """One write transaction per graph, numbering its nodes after the highest uid it reads. A
        concurrent writer can take the same numbers, or MERGE the same new feature: the uniqueness
        constraint then fails one of them, which retries (the graph is found stored, or goes in)."""
        import random
        import time

        from circuit_atlas.store.base import next_uid, write_with_statements

        def write(tx, graph):
            rows = graph_rows([graph], next_uid(lambda c: [r.data() for r in tx.run(c)]))
            write_with_statements(lambda c, p: tx.run(c, p).consume(), rows)

        for graph in graphs:
            for attempt in range(ATTEMPTS):
                try:
                    with self._session(read=False) as session:
                        session.execute_write(write, graph)
                    break
                except self._neo4j.exceptions.ConstraintError as e:
                    if self.run(st.EXISTING_GRAPHS, {"ids": [graph.id]}, read=True):
                        break                 # stored meanwhile by another writer
                    if attempt == ATTEMPTS - 1:
                        raise _map_error(e, "UNWIND bulk insert") from None
                    logger.info("graph %s: another writer took the same keys (%s); retrying, attempt %d of %d",
                                graph.id, getattr(e, "code", type(e).__name__), attempt + 2, ATTEMPTS)
                    time.sleep(random.uniform(0, 0.1 * 2 ** attempt))
                except self._neo4j.exceptions.Neo4jError as e:
                    raise _map_error(e, "UNWIND bulk insert") from None

    def close(self) -> None:
        self._driver.close()
