"""The backend-independent store: one implementation of the contract over a thin backend adapter.

A backend adapter supplies five things (see embedded.py and neo4j.py):
    run(cypher, params, read=False)  -> list[dict]   library statements; read=True: a read-only one
                                                     (Neo4j runs it in a READ transaction)
    read(cypher, params, limits)     -> list[dict]   user queries, after the guard: read-only, limits
    write_graphs(graphs)             atomically store graphs known to be new
    write(work)                      -> work(run)'s result, all of work's statements in one transaction
    close()
and may offer
    leiden(src, dst, weight, resolution, seed) -> communities   community detection in the database
                                                     (Neo4j with Graph Data Science)
Everything else (idempotency, tags, deleting, reading a graph back) is written once, here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from circuit_atlas.graph import Graph
from circuit_atlas.settings import DEFAULT_MAX_MEMORY, DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S
from circuit_atlas.store import guard, statements as st
from circuit_atlas.store.aggregates import FEATURE_AGGREGATES, NEIGHBOUR_AGGREGATES
from circuit_atlas.store.errors import GraphNotFoundError, ReadOnlyQueryError
from circuit_atlas.store.limits import QueryLimits, parse_size
from circuit_atlas.store.rows import GraphRows, graph_from_rows, graph_rows, tag_rows


class Backend(Protocol):
    name: str

    def run(self, cypher: str, params: dict | None = None, read: bool = False) -> list[dict]: ...
    def read(self, cypher: str, params: dict, limits: QueryLimits) -> list[dict]: ...
    def write_graphs(self, graphs: list[Graph]) -> None: ...
    def write(self, work: Callable) -> object: ...
    def close(self) -> None: ...


class Store:
    """An open graph store. Get one from `open_store`; see circuit_atlas.store for the contract."""

    def __init__(self, backend: Backend, uri: str, read_only: bool):
        self._backend = backend
        self.uri = uri
        self.read_only = read_only

    @property
    def backend(self) -> str:
        return self._backend.name

    def __repr__(self) -> str:
        return f"<Store {self.backend} {self.uri}{' read-only' if self.read_only else ''}>"

    # --- writes ---------------------------------------------------------------------------------

    def add_graph(self, graph: Graph) -> bool:
        """Store `graph` atomically; False if it was stored already (its tags are still added)."""
        return self.add_graphs([graph])[0]

    def add_graphs(self, graphs: list[Graph]) -> list[bool]:
        """Store a batch in one transaction (on the embedded backend): all of its new graphs or none.

        Returns, per graph, whether it was stored now. A graph stored already (or twice in the batch)
        gets False; its tags are merged in, since tags only accumulate.
        """
        self._require_writable("add graphs")
        present = self.existing_graphs([g.id for g in graphs])
        new: dict[str, Graph] = {}
        for g in graphs:
            if g.id not in present:
                new.setdefault(g.id, g)
        if new:
            self._backend.write_graphs(list(new.values()))
        # tags of graphs stored before, or repeated in this batch, are merged into the stored graph
        write_tags(self._backend.run, [row for g in graphs if new.get(g.id) is not g for row in tag_rows(g)])
        stored_now = set(new)
        result = []
        for g in graphs:
            result.append(g.id in stored_now)
            stored_now.discard(g.id)          # a duplicate later in the batch was not stored "now"
        return result

    def delete_graphs(self, ids: list[str]) -> DeleteReport:
        """Delete the stored graphs among `ids` and everything only they hold: their nodes, edges, strong
        paths and manual supernodes, the tags and features no other graph has (features a supernode or
        an audit names are kept, with zero aggregates); their contributions leave the Feature aggregates.

        Atomic: on the embedded store one transaction for all of them; on Neo4j one per graph (like
        ingest). Ids not stored are ignored (counted in the report).
        """
        self._require_writable("delete graphs")
        present = sorted(self.existing_graphs(list(ids)))
        report = DeleteReport(missing=len(set(ids)) - len(present))
        chunks = [present] if self._backend.name == "embedded" else [[gid] for gid in present]
        for chunk in (c for c in chunks if c):
            def work(run, chunk=chunk):
                graphs = [read_graph(run, gid) for gid in chunk]
                delete_with_statements(run, chunk, graph_rows(graphs, 0))
                return graphs
            for g in self._backend.write(work):
                report.graphs += 1
                report.nodes += len(g.nodes)
                report.edges += g.n_edges
        return report

    def tag_graphs(self, ids: list[str], tags: dict[str, str]) -> int:
        """Add tags to the stored graphs among `ids` (one transaction); returns how many graphs."""
        self._require_writable("tag graphs")
        present = sorted(self.existing_graphs(list(ids)))
        rows = [{"gid": gid, "id": f"{k}={v}", "key": k, "value": str(v)} for gid in present for k, v in sorted(tags.items())]
        if rows:
            self._backend.write(lambda run: write_tags(run, rows))
        return len(present)

    def untag_graphs(self, ids: list[str], tags: list[str]) -> int:
        """Remove tags from the graphs `ids`: "key=value" removes that tag, "key" every value of key. Tags
        no graph carries any more are deleted (one transaction). Returns how many links were removed."""
        self._require_writable("untag graphs")
        rows = [{"gid": gid, "id": t if "=" in t else None, "key": t.split("=", 1)[0]} for gid in ids for t in tags]
        if not rows:
            return 0

        def work(run):
            removed = run(st.UNTAG, {"rows": rows})
            if removed:
                run(st.DELETE_UNUSED_TAGS, {"ids": sorted({r["id"] for r in removed})})
            return removed
        return len(self._backend.write(work))

    def execute(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run a library-internal statement that may write (supernodes, audits, jobs)."""
        self._require_writable("execute a write statement")
        return self._backend.run(cypher, params)

    def execute_all(self, steps: list[tuple[str, dict]]) -> None:
        """Run library-internal write statements in one transaction: all of them take effect or none."""
        self._require_writable("execute write statements")
        if steps:
            self._backend.write(lambda run: [run(cypher, params) for cypher, params in steps])

    # --- reads ----------------------------------------------------------------------------------

    def existing_graphs(self, ids: list[str]) -> set[str]:
        return {r["id"] for r in self._backend.run(st.EXISTING_GRAPHS, {"ids": list(ids)}, read=True)}

    def has_graph(self, graph_id: str) -> bool:
        return bool(self.existing_graphs([graph_id]))

    def get_graph(self, graph_id: str) -> Graph:
        """The stored graph, equal to the ingested one (same id, nodes, edges, tags, metadata)."""
        graph = read_graph(lambda cypher, params: self._backend.run(cypher, params, read=True), graph_id)
        if graph is None:
            raise GraphNotFoundError(f"no graph with id {graph_id!r} in {self.uri}; "
                                     "list ids with: MATCH (g:Graph) RETURN g.id, g.slug")
        return graph

    def query(self, cypher: str, params: dict | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
              max_rows: int = DEFAULT_MAX_ROWS, max_memory: int | str = DEFAULT_MAX_MEMORY,
              max_bytes: int | None = None) -> list[dict]:
        """Run user Cypher, read-only in fact: the statement guard admits only reading clauses and
        read-only procedures (ForbiddenQueryError, before the database sees it), and the database runs
        it read-only too. `params` must be exactly the parameters the query uses (CypherError names a
        missing or unused one). Limits (store/limits.py): QueryTimeoutError after `timeout_s` (> 0),
        TooManyRowsError past `max_rows`, ResultTooLargeError past `max_bytes` of rows (default a
        quarter of max_memory), QueryMemoryError past `max_memory` ("1G", "512M" or bytes) in the query
        process (Neo4j's server bounds its own). docs/store.md: the threat model, what holds where."""
        limits = QueryLimits(timeout_s, max_rows, parse_size(max_memory), max_bytes)
        used = guard.check_read_query(cypher, self.backend)
        return self._backend.read(cypher, guard.check_params(used, params), limits)

    def leiden(self, src: list[int], dst: list[int], weight: list[float], resolution: float = 1.0,
               seed: int = 0) -> list[list[int]] | None:
        """Leiden communities of an undirected weighted graph held by the caller (nodes 0..n-1, edges
        src[i] -- dst[i] with weight[i]), computed in the database where it can (Neo4j with Graph Data
        Science: a projection streamed and dropped, nothing written); None where it cannot, so the
        caller uses its own algorithm. Each community is a sorted list of node numbers; nodes without
        an edge are in none. Deterministic for a given seed."""
        leiden = getattr(self._backend, "leiden", None)
        return None if leiden is None else leiden(list(src), list(dst), list(weight), resolution, seed)

    # --- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _require_writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyQueryError(f"cannot {what}: {self.uri} was opened read-only; "
                                     "open it with open_store(uri, read_only=False)")


@dataclass
class DeleteReport:
    graphs: int = 0          # graphs deleted
    nodes: int = 0           # ... with this many nodes and edges
    edges: int = 0
    missing: int = 0         # ids asked for that were not stored


def read_graph(run, graph_id: str) -> Graph | None:
    """A stored graph through `run(cypher, params)` (a plain read, or inside a write transaction)."""
    p = {"id": graph_id}
    info = run(st.GET_GRAPH, p)
    if not info:
        return None
    return graph_from_rows(info[0], run(st.GET_NODES, p), run(st.GET_EDGES, p), run(st.GET_TAGS, p))


def delete_with_statements(run, ids: list[str], rows: GraphRows, batch_size: int = 10_000) -> None:
    """Delete the graphs `ids`, whose rows (as graph_rows made them when they were written) are `rows`,
    inside the caller's transaction; see Store.delete_graphs."""
    deltas = rows.features.select(["key", *FEATURE_AGGREGATES]).to_pylist()
    keys = [r["key"] for r in deltas]
    chunks = lambda items: (items[i:i + batch_size] for i in range(0, len(items), batch_size))
    tag_ids = [r["id"] for r in run(st.GRAPH_TAG_IDS, {"ids": ids})]
    # best_influence is a minimum: where a deleted graph held it, it is recomputed from what remains
    held = [r["key"] for part in chunks([d for d in deltas if d["best_influence"] is not None])
            for r in run(st.BEST_INFLUENCE_FROM, {"rows": part})]
    for part in chunks(deltas):
        run(st.SUBTRACT_FEATURE_AGGREGATES, {"rows": part})
    if rows.neighbours is not None:           # their edges leave the Neighbour sums; emptied rows go
        links = keyed_neighbours(run, rows, allocate=None).select(["id", *NEIGHBOUR_AGGREGATES]).to_pylist()
        for part in chunks(links):
            run(st.SUBTRACT_NEIGHBOURS, {"rows": part})
            run(st.DELETE_EMPTY_NEIGHBOURS, {"ids": [r["id"] for r in part]})
    for cypher in (st.DELETE_PATHS, st.DELETE_NODES, st.DELETE_GRAPH_SUPERNODES, st.DELETE_GRAPHS):
        run(cypher, {"ids": ids})
    if tag_ids:
        run(st.DELETE_UNUSED_TAGS, {"ids": tag_ids})
    for part in chunks(held):
        run(st.RECOMPUTE_BEST_INFLUENCE, {"keys": part})
    for part in chunks(keys):
        run(st.ZERO_UNUSED_FEATURES, {"keys": part})
        run(st.DELETE_UNUSED_FEATURES, {"keys": part})


def next_uid(run) -> int:
    """The first free Node.uid; `run(cypher)` runs a statement in the writer's transaction."""
    last = run(st.LAST_UID)
    return last[0]["uid"] + 1 if last else 0


def write_with_statements(run, rows: GraphRows, batch_size: int = 10_000) -> None:
    """The portable statement write path: UNWIND batches of rows, MATCH/MERGE on indexed keys.

    The embedded backend runs it when asked (tests do); Neo4j writes through its faster column path
    (neo4j.send_graph), and bench/ingest.py measures this one against it on the same server.
    """
    def batches(table):
        for start in range(0, table.num_rows, batch_size):
            yield {"rows": table.slice(start, batch_size).to_pylist()}

    steps = [(st.INSERT_GRAPHS, rows.graphs), (st.MERGE_FEATURES, rows.features), (st.INSERT_NODES, rows.nodes),
             (st.LINK_FEATURES, rows.of_feature), (st.INSERT_EFFECTS, rows.effects), (st.INSERT_PATHS, rows.paths)]
    for cypher, table in steps:
        for params in batches(table):
            run(cypher, params)
    if rows.neighbours is not None:           # one writer (the embedded store): numbered after the last
        write_neighbours(run, rows, lambda n: next_neighbour_end_id(lambda c: run(c, {})), batch_size,
                         store_ends=ends_stored_by(run, st.CREATE_NEIGHBOUR_ENDS, batch_size))
    write_tags(run, rows.tags)


def keyed_neighbours(run, rows: GraphRows, allocate, store_ends=None):
    """The batch's Neighbour rows keyed by integers (aggregates.keyed_neighbours), inside the writer's
    transaction: identities stored already keep their numbers; new ones get `allocate(n)`,
    `allocate(n) + 1`, ... and are stored by `store_ends(table)` (default: statements.MERGE_NEIGHBOUR_ENDS),
    which returns {key: number} as stored: a concurrent writer that stored an identity first keeps its
    number. `allocate` None: every identity must be stored already (a deletion)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from circuit_atlas.store import aggregates

    ends = rows.neighbour_ends
    keys = ends["key"].to_pylist()
    number = {r["key"]: r["id"] for part in range(0, len(keys), 10_000)
              for r in run(st.NEIGHBOUR_END_IDS, {"keys": keys[part:part + 10_000]})}
    new = ends.filter(pc.invert(pc.is_in(ends["key"], value_set=pa.array(list(number), pa.string())))).sort_by("key")
    if new.num_rows:                          # sorted: concurrent writers lock identities in one order
        if allocate is None:
            raise RuntimeError(f"{new.num_rows} neighbour identities of stored graphs are not stored")
        first = allocate(new.num_rows)
        new = new.add_column(1, "id", pa.array(range(first, first + new.num_rows), pa.int64()))
        number |= (store_ends or ends_stored_by(run, st.MERGE_NEIGHBOUR_ENDS))(new)
    return aggregates.keyed_neighbours(rows.neighbours, [number[k] for k in keys])


def ends_stored_by(run, statement: str, batch_size: int = 10_000):
    """A `store_ends` for keyed_neighbours: new identities stored by `statement` (UNWIND $rows, RETURN
    key, id) in batches; returns {key: number} as stored."""
    return lambda table: {r["key"]: r["id"] for part in range(0, table.num_rows, batch_size)
                          for r in run(statement, {"rows": table.slice(part, batch_size).to_pylist()})}


def next_neighbour_end_id(run) -> int:
    """The first free NeighbourEnd.id; `run(cypher)` runs a statement in the writer's transaction."""
    last = run(st.LAST_NEIGHBOUR_END_ID)
    return last[0]["id"] + 1 if last else 0


def write_neighbours(run, rows: GraphRows, allocate, batch_size: int = 10_000, store_ends=None) -> None:
    """Add a batch's Neighbour rows (aggregates.neighbour_contributions; their features MERGEd already)
    through the statement paths: their identities numbered (keyed_neighbours, new ones stored by
    `store_ends`), then MERGE adds to stored rows and creates the others, which are then linked by
    the link type of their direction. `run` returns the rows of a statement."""
    keyed = keyed_neighbours(run, rows, allocate, store_ends).sort_by("id")   # sorted: writers lock rows alike
    for start in range(0, keyed.num_rows, batch_size):
        part = keyed.slice(start, batch_size).to_pylist()
        run(st.MERGE_NEIGHBOURS, {"rows": part})
        for direction, link in enumerate(st.LINK_NEW_NEIGHBOURS):
            new = [{"id": r["id"], "fkey": r["fkey"], "n_edges": r["n_edges"]} for r in part if r["dir"] == direction]
            if new:
                run(link, {"rows": new})


def write_tags(run, rows: list[dict]) -> None:
    """Tag nodes first (one row per tag id), then the TAGGED links: see statements.LINK_TAGS."""
    if rows:
        run(st.MERGE_TAGS, {"rows": list({r["id"]: r for r in rows}.values())})
        run(st.LINK_TAGS, {"rows": rows})
