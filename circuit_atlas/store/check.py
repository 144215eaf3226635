"""`circuit-atlas check`: is every stored graph whole and unchanged?

A store can be damaged behind the engine's back (a byte flipped on disk, a bug in a writer, a copy
taken mid-write); the engine itself does not notice, and queries then answer from the damage (NaN
weights, edges across graphs). The check reads the store and reports, one line per problem:
  - per graph: its recorded n_nodes / n_edges against what it holds; its content hash recomputed from
    what it holds (`Graph.id` of `Store.get_graph`) against its id, which was that hash when stored;
  - across the store: nodes not held by exactly one graph, nodes whose gid is not their graph's,
    EFFECT edges joining two graphs, NaN / infinite weights and node values, feature occurrences not
    linked to their Feature.
It never writes. Both backends run the same statements (store/statements.py, "integrity check").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from circuit_atlas.store import statements as st

# whole-store statement -> what each of its rows (gid, n) means
_STORE_CHECKS = [
    (st.CHECK_DANGLING_NODES, "nodes held by no graph, or by several"),
    (st.CHECK_WRONG_GID, "nodes whose gid is not their graph's id"),
    (st.CHECK_CROSS_EDGES, "EFFECT edges to a node of another graph"),
    (st.CHECK_BAD_WEIGHTS, "EFFECT edges with a NaN, infinite or missing weight"),
    (st.CHECK_BAD_VALUES, "nodes with a NaN or infinite activation / influence, or a logit probability outside [0, 1]"),
    (st.CHECK_FEATURE_LINKS, "feature occurrences not linked to exactly one Feature of their key"),
]


@dataclass
class CheckReport:
    store: str
    graphs: int = 0
    nodes: int = 0
    edges: int = 0
    hashes_checked: int = 0
    problems: list[str] = field(default_factory=list)     # one line each, "graph <id>: ..." where one is named

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        what = (f"{self.store}: {self.graphs:,} graph{'s' * (self.graphs != 1)}, {self.nodes:,} nodes, "
                f"{self.edges:,} edges checked ({self.hashes_checked:,} content hash{'es' * (self.hashes_checked != 1)} recomputed)")
        if self.ok:
            return f"{what}: no problems."
        return f"{what}: {len(self.problems)} problem{'s' * (len(self.problems) != 1)}."


def check_store(store, hashes: bool = True, progress: Callable | None = None) -> CheckReport:
    """Check `store` (an open Store; read-only is enough). `hashes=False` skips recomputing content
    hashes (the slow part: every graph is read back whole). `progress(iterable, total)` wraps the
    per-graph loop, e.g. with tqdm."""
    report = CheckReport(store=store.uri)
    run = lambda cypher: store.query(cypher, timeout_s=24 * 3600, max_rows=10**12)  # noqa: E731  a whole-store scan
    counts = run(st.CHECK_NODE_COUNTS)
    edges = {r["gid"]: r["edges"] for r in run(st.CHECK_EDGE_COUNTS)}
    report.graphs = len(counts)
    for r in counts:
        gid, held_edges = r["gid"], edges.get(r["gid"], 0)
        report.nodes += r["nodes"]
        report.edges += held_edges
        if r["nodes"] != r["n_nodes"] or held_edges != r["n_edges"]:
            report.problems.append(f"graph {gid}: holds {r['nodes']:,} nodes and {held_edges:,} edges, "
                                   f"recorded {r['n_nodes']:,} and {r['n_edges']:,} when stored")
    for cypher, meaning in _STORE_CHECKS:
        for r in run(cypher):
            owner = f"graph {r['gid']}" if r["gid"] is not None else "nodes without a graph id"
            report.problems.append(f"{owner}: {r['n']:,} {meaning}")
    if hashes:
        gids = [r["gid"] for r in counts]
        for gid in (progress(gids, len(gids)) if progress else gids):
            report.problems += _hash_problem(store, gid)
            report.hashes_checked += 1
    return report


def _hash_problem(store, gid: str) -> list[str]:
    try:
        found = store.get_graph(gid).id
    except Exception as e:                # edges to unknown nodes, unreadable metadata ...: damage too
        return [f"graph {gid}: cannot be read back ({type(e).__name__}: {str(e).splitlines()[0][:200]})"]
    if found != gid:
        return [f"graph {gid}: its content hash is now {found}: its nodes or edges changed after it was stored"]
    return []
