"""Neo4j backend over the official driver (Bolt). Same schema, same statements as embedded.

Writes: one write transaction per graph (atomic): its columns sent as list parameters, edges in
batches naming their endpoints by position (`send_graph`, statements CREATE_GRAPH_NODES and
CREATE_EFFECTS); node uids reserved from a counter node, so concurrent writers never collide on them.
A first load into an empty database can skip Bolt: neo4j_import.py. User queries (after the guard):
READ access-mode transactions, so the server refuses writes, run in a query process (query_process.py)
with the server-side timeout, killed at the deadline, and their rows and client memory capped.
"""
from __future__ import annotations

import logging

from circuit_atlas.graph import Graph
from circuit_atlas.settings import Settings
from circuit_atlas.store import schema
from circuit_atlas.store.errors import CypherError, QueryTimeoutError, ReadOnlyQueryError, StoreError, refused_query
from circuit_atlas.store.limits import QueryLimits
from circuit_atlas.store.neo4j_values import plain as _plain
from circuit_atlas.store.query_process import QueryRunner, neo4j_target
from circuit_atlas.store import statements as st
from circuit_atlas.store.rows import graph_rows

ATTEMPTS = 6                              # per graph, against writers racing for the same keys
EFFECT_BATCH = 10_000                     # edges per statement (larger batches measured no faster: bench/ingest.py)
logger = logging.getLogger(__name__)


def _map_error(e: Exception, cypher: str) -> StoreError:
    code = getattr(e, "code", "") or ""
    msg = getattr(e, "message", None) or str(e)
    if "AccessMode" in code or "read access mode" in msg.lower():
        return ReadOnlyQueryError(f"refused by the database, queries are read-only: {msg}")
    if "TransactionTimedOut" in code or "Terminated" in code:
        return QueryTimeoutError(f"query timed out: {msg}; add LIMIT or a narrower MATCH, or raise the timeout")
    return CypherError(refused_query(msg, cypher))


def _connect_error(e: Exception, uri: str, s: Settings) -> str:
    """One line on why the server at `uri` cannot be used: the login, or nothing answering there."""
    from neo4j.exceptions import AuthError

    if isinstance(e, AuthError):
        fix = ("no password is set: set NEO4J_PASSWORD" if not s.neo4j_password else
               "check NEO4J_USER / NEO4J_PASSWORD")
        return f"Neo4j at {uri} refused the login of user {s.neo4j_user!r} ({getattr(e, 'message', None) or e}); {fix}"
    reason = " ".join(str(e).split())
    return (f"cannot connect to Neo4j at {uri}: {reason}; is the server running? "
            "(scripts/neo4j.sh status --dir DIR says)")


class Neo4jBackend:
    name = "neo4j"

    def __init__(self, uri: str, read_only: bool, settings: Settings):
        """`settings`: the process's (store.connect passes them): the Neo4j user, password and database."""
        import neo4j

        s = settings
        self._neo4j = neo4j
        self._read_only = read_only
        self._database = s.neo4j_database
        self._has_gds: bool | None = None     # whether the server has GDS (asked once, by leiden)
        try:
            # Notifications are about our own statements (e.g. "property key does not exist" on a new
            # database); the driver would log each one to the user as a warning.
            self._driver = neo4j.GraphDatabase.driver(uri, auth=(s.neo4j_user, s.neo4j_password),
                                                      notifications_min_severity="OFF")
            self._driver.verify_connectivity()
        except Exception as e:
            raise StoreError(_connect_error(e, uri, s)) from None
        self._queries = QueryRunner(lambda _: neo4j_target(uri, s.neo4j_user, s.neo4j_password, self._database))
        if not read_only:
            self._check_layout(uri)
            for ddl in [*schema.neo4j_ddl(), st.UID_COUNTER, st.NEIGHBOUR_END_KEY_UNIQUE]:
                self.run(ddl)

    def _check_layout(self, uri: str) -> None:
        """Refuse, before writing, a database whose graphs have no integer-keyed Neighbour rows linked by
        direction (written by an older circuit-atlas: string-keyed rows, rows linked by the one HAS_NEIGHBOUR
        type, or none though features have edges): writes would
        add to rows they cannot find and the neighbour queries would miss its graphs. Counts from the
        count store and one row: cheap at any size."""
        found = self.run(st.NEIGHBOUR_LAYOUT, read=True)[0]
        if found["one_link_type"]:
            self.close()
            raise StoreError(f"the Neo4j database at {uri} links its Neighbour rows by the older HAS_NEIGHBOUR (an "
                             "older circuit-atlas, before HAS_UPSTREAM / HAS_DOWNSTREAM): feature-upstream / "
                             "-downstream would miss its graphs. Ingest into an empty database; this one is left as it is")
        if found["graphs"] and not (found["ends"] and isinstance(found["neighbour_id"], (int, type(None)))):
            self.close()
            raise StoreError(f"the Neo4j database at {uri} was made before the integer-keyed Neighbour aggregates "
                             "(an older circuit-atlas): feature-upstream / -downstream would miss its graphs. Ingest "
                             "into an empty database; this one is left as it is")

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

    def read(self, cypher: str, params: dict, limits: QueryLimits) -> list[dict]:
        """One user query (checked by the guard already), in the query process (query_process.py): a
        READ transaction with the server-side timeout, killed at the deadline, rows capped as they
        stream, and the client's memory bounded (the driver decodes a whole record at once)."""
        return self._queries.run(cypher, params, limits)

    def write_graphs(self, graphs: list[Graph]) -> None:
        """One write transaction per graph. Node uids come from a counter (allocate_uids): writers
        never number nodes alike (nor neighbour identities: allocate_neighbour_end_ids). A constraint can
        still fail a graph (a feature or tag MERGEd at once by another writer, or a node or identity
        numbered without the counter): it is retried with fresh numbers,
        and a graph found stored meanwhile is done."""
        import random
        import time

        first = self.allocate_uids(sum(len(g.nodes) for g in graphs))
        for i, graph in enumerate(graphs):
            for attempt in range(ATTEMPTS):
                try:
                    with self._session(read=False) as session:
                        session.execute_write(lambda tx: send_graph(_runner(tx), graph, first,
                                                                    allocate=self.allocate_neighbour_end_ids))
                    break
                except self._neo4j.exceptions.ConstraintError as e:
                    if self.run(st.EXISTING_GRAPHS, {"ids": [graph.id]}, read=True):
                        break                 # stored meanwhile by another writer
                    if attempt == ATTEMPTS - 1:
                        raise _map_error(e, "graph write") from None
                    logger.info("graph %s: another writer took the same keys (%s); retrying, attempt %d of %d",
                                graph.id, getattr(e, "code", type(e).__name__), attempt + 2, ATTEMPTS)
                    time.sleep(random.uniform(0, 0.1 * 2 ** attempt))
                    first = self.allocate_uids(sum(len(g.nodes) for g in graphs[i:]))   # this graph and the rest
                    continue
                except self._neo4j.exceptions.Neo4jError as e:
                    raise _map_error(e, "graph write") from None
            first += len(graph.nodes)

    def allocate_uids(self, n: int) -> int:
        """The first of `n` consecutive Node.uid values reserved for this writer (committed at once,
        so other writers wait only for this short transaction, not for a graph)."""
        return self._reserve(st.LAST_UID, "uid", st.ALLOCATE_UIDS, n)

    def allocate_neighbour_end_ids(self, n: int) -> int:
        """The first of `n` consecutive NeighbourEnd.id values reserved for this writer, as allocate_uids
        (its own short transaction: a graph's transaction never holds the counter)."""
        return self._reserve(st.LAST_NEIGHBOUR_END_ID, "id", st.ALLOCATE_NEIGHBOUR_END_IDS, n)

    def _reserve(self, last_statement: str, column: str, allocate_statement: str, n: int) -> int:
        """`n` numbers from a counter node, above the highest one stored (`last_statement`'s `column`)."""
        def work(tx):
            last = tx.run(last_statement).single()
            floor = last[column] + 1 if last else 0
            return tx.run(allocate_statement, n=n, floor=floor).single()["first"]

        with self._session(read=False) as session:
            return session.execute_write(work)

    def write(self, work):
        """work(run) with every statement it runs in one write transaction."""
        def unit(tx):
            return work(lambda c, p=None: [_plain(r.data()) for r in tx.run(c, p or {})])
        try:
            with self._session(read=False) as session:
                return session.execute_write(unit)
        except self._neo4j.exceptions.Neo4jError as e:
            raise _map_error(e, "write transaction") from None

    def leiden(self, src: list[int], dst: list[int], weight: list[float], resolution: float,
               seed: int) -> list[list[int]] | None:
        """Leiden communities (GDS) of the undirected graph with edges src[i] -- dst[i] of weight[i]
        (nodes numbered 0..n-1), each a sorted list of node numbers; None when the server has no GDS.
        Projected into GDS's catalog under a name of its own (concurrent callers do not meet), streamed
        and dropped, all in READ transactions: nothing is written to the database."""
        import uuid

        if self._has_gds is None:
            self._has_gds = bool(self.run(st.GDS_PRESENT, read=True)[0]["n"])
        if not self._has_gds:
            return None
        if not src:
            return []
        name = f"circuit-atlas-leiden-{uuid.uuid4().hex}"
        try:
            self.run(st.GDS_PROJECT_EDGES, {"name": name, "src": src, "dst": dst, "weight": weight}, read=True)
            rows = self.run(st.GDS_LEIDEN, {"name": name, "gamma": float(resolution), "seed": int(seed)}, read=True)
        finally:
            self.run(st.GDS_DROP, {"name": name}, read=True)
        groups: dict[int, list[int]] = {}
        for r in rows:
            groups.setdefault(r["community"], []).append(r["node"])
        return [sorted(g) for g in groups.values()]

    def close(self) -> None:
        self._queries.close()
        self._driver.close()


def _runner(tx):
    return lambda cypher, params: [r.data() for r in tx.run(cypher, params)]


def send_graph(run, graph: Graph, first_uid: int, edge_batch: int = EFFECT_BATCH, allocate=None) -> None:
    """Every statement that stores `graph` (nodes numbered from `first_uid`), through `run(cypher,
    params)` inside one transaction: its features (sorted, so that concurrent writers lock them in
    the same order and do not deadlock) with the graph's addition to their aggregates, the graph with
    its nodes (and its Graph.features / n_paths), its edges in batches, its strong paths, its
    Neighbour rows (new identities numbered from `allocate(n)`: Neo4jBackend.allocate_neighbour_end_ids),
    its tags. `run` returns a statement's rows."""
    from circuit_atlas.store.base import write_neighbours, write_tags

    rows = graph_rows([graph], first_uid)
    features = rows.features.sort_by("key").to_pylist()
    if features:
        run(st.MERGE_FEATURES, {"rows": features})
    nodes = {name: rows.nodes.column(name).to_pylist() for name in rows.nodes.column_names}
    run(st.CREATE_GRAPH_NODES, {"g": rows.graphs.to_pylist()[0], "n": nodes})
    src, dst, weight = graph.edge_source.tolist(), graph.edge_target.tolist(), graph.edge_weight.tolist()
    for start in range(0, len(src), edge_batch):
        end = start + edge_batch
        run(st.CREATE_EFFECTS, {"gid": graph.id, "src": src[start:end], "dst": dst[start:end],
                                "weight": weight[start:end]})
    if rows.paths.num_rows:
        run(st.INSERT_PATHS, {"rows": rows.paths.to_pylist()})
    write_neighbours(run, rows, allocate)
    write_tags(run, sorted(rows.tags, key=lambda r: r["id"]))
