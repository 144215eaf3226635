"""search-features counts graphs, not labelled positions (issue 14), on each store backend.

Its own module: it needs a function-scoped store, and test_queries.py holds the Neo4j database for its
module-scoped corpus."""
from __future__ import annotations

from circuit_atlas import queries
from tests import queries_reference as ref
from tests.test_queries import ALL, FIXTURES, load_graphs


def test_search_features_counts_graphs_not_positions(store_uri):
    """Labels on every occurrence of features that sit at several positions of one graph: n_graphs counts
    graphs, in both halves of search-features (graph files' labels and stored labels)."""
    from circuit_atlas.queries import labels
    from circuit_atlas.store import open_store

    graphs = load_graphs(sorted(FIXTURES.glob("*.json.gz"))[:4])
    positions = {}
    for g in graphs:
        for n, k in ref.features(g):
            positions.setdefault((g.id, k), set()).add(n.pos)
    multi = sorted({k for (_, k), ps in positions.items() if len(ps) >= 2})[:6]
    assert len(multi) >= 3
    for g in graphs:
        for n, k in ref.features(g):
            if k in multi[:3]:
                n.label = "zebra crossing"
    with open_store(store_uri) as store:
        store.add_graphs(graphs)
        labels.store_labels(store, {k: {"text": "okapi"} for k in multi[3:]}, "user:test")
        labels.apply_labels(store)
        clerps = queries.run(store, "search-features", text="zebra", limit=ALL)
        stored = queries.run(store, "search-features", text="okapi", limit=ALL)
    assert {r["fkey"]: r["n_graphs"] for r in clerps} == ref.search_features(graphs, "zebra")
    occurs_in = {k: len({gid for gid, kk in positions if kk == k}) for k in multi[3:]}
    assert {r["fkey"]: r["n_graphs"] for r in stored} == occurs_in
