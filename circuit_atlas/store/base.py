"""The backend-independent store: one implementation of the contract over a thin backend adapter.

A backend adapter supplies four things (see embedded.py and neo4j.py):
    run(cypher, params, read=False)  -> list[dict]   library statements; read=True: a read-only one
                                                     (Neo4j runs it in a READ transaction)
    read(cypher, params, timeout_s, max_rows) -> list[dict]   read-only, enforced by the database
    write_graphs(graphs)             atomically store graphs known to be new
    close()
Everything else (idempotency, tags, reading a graph back) is written once, here.
"""
from __future__ import annotations

from typing import Protocol

from circuit_atlas.graph import Graph
from circuit_atlas.store import statements as st
from circuit_atlas.store.errors import GraphNotFoundError, ReadOnlyQueryError
from circuit_atlas.store.rows import GraphRows, graph_from_rows, tag_rows


class Backend(Protocol):
    name: str

    def run(self, cypher: str, params: dict | None = None, read: bool = False) -> list[dict]: ...
    def read(self, cypher: str, params: dict | None, timeout_s: float, max_rows: int) -> list[dict]: ...
    def write_graphs(self, graphs: list[Graph]) -> None: ...
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

    def execute(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run a library-internal statement that may write (supernodes, audits, jobs)."""
        self._require_writable("execute a write statement")
        return self._backend.run(cypher, params)

    # --- reads ----------------------------------------------------------------------------------

    def existing_graphs(self, ids: list[str]) -> set[str]:
        return {r["id"] for r in self._backend.run(st.EXISTING_GRAPHS, {"ids": list(ids)}, read=True)}

    def has_graph(self, graph_id: str) -> bool:
        return bool(self.existing_graphs([graph_id]))

    def get_graph(self, graph_id: str) -> Graph:
        """The stored graph, equal to the ingested one (same id, nodes, edges, tags, metadata)."""
        p = {"id": graph_id}
        info = self._backend.run(st.GET_GRAPH, p, read=True)
        if not info:
            raise GraphNotFoundError(f"no graph with id {graph_id!r} in {self.uri}; "
                                     "list ids with: MATCH (g:Graph) RETURN g.id, g.slug")
        read = lambda cypher: self._backend.run(cypher, p, read=True)  # noqa: E731
        return graph_from_rows(info[0], read(st.GET_NODES), read(st.GET_EDGES), read(st.GET_TAGS))

    def query(self, cypher: str, params: dict | None = None, *, timeout_s: float = 60.0,
              max_rows: int = 100_000) -> list[dict]:
        """Run user Cypher read-only: the database refuses writes (ReadOnlyQueryError); raises
        QueryTimeoutError after `timeout_s` and TooManyRowsError past `max_rows` rows."""
        return self._backend.read(cypher, params, timeout_s, max_rows)

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


def next_uid(run) -> int:
    """The first free Node.uid; `run(cypher)` runs a statement in the writer's transaction."""
    last = run(st.LAST_UID)
    return last[0]["uid"] + 1 if last else 0


def write_with_statements(run, rows: GraphRows, batch_size: int = 10_000) -> None:
    """The statement write path: UNWIND batches of rows, MERGE on indexed keys.

    Neo4j's bulk path, run inside one transaction per graph by its adapter. The embedded backend
    can run it too (tests do, so these statements are exercised without a Neo4j server).
    """
    def batches(table):
        for start in range(0, table.num_rows, batch_size):
            yield {"rows": table.slice(start, batch_size).to_pylist()}

    steps = [(st.INSERT_GRAPHS, rows.graphs), (st.MERGE_FEATURES, rows.features), (st.INSERT_NODES, rows.nodes),
             (st.LINK_FEATURES, rows.of_feature), (st.INSERT_EFFECTS, rows.effects)]
    for cypher, table in steps:
        for params in batches(table):
            run(cypher, params)
    write_tags(run, rows.tags)


def write_tags(run, rows: list[dict]) -> None:
    """Tag nodes first (one row per tag id), then the TAGGED links: see statements.LINK_TAGS."""
    if rows:
        run(st.MERGE_TAGS, {"rows": list({r["id"]: r for r in rows}.values())})
        run(st.LINK_TAGS, {"rows": rows})
