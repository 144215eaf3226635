"""Supernode proposal on both backends: Louvain (networkx) on the embedded store, Leiden inside Neo4j
(Graph Data Science) by default; the same rows either way, and both find planted groups.

Truth is planted: features of one role read the same prompt token and drive the same logit, with
weaker links to other roles' logits as noise, so role similarity is high within a role and low
(but not zero) across roles; the community step must find the roles, not merely split components.
"""
from __future__ import annotations

import numpy as np
import pytest

from circuit_atlas import queries
from circuit_atlas.graph import Graph, Node
from circuit_atlas.queries import QueryError
from circuit_atlas.queries import supernodes as sn
from tests.backends import BACKENDS, empty_store

TSET = "planted/clt"
ROLES = 4                    # planted groups
PER_ROLE = 5                 # features per group, over layers 0..4
N_GRAPHS = 8
RESULT_COLUMNS = {"id", "name", "source", "gid", "coherence", "n_graphs", "influence", "n_members", "members"}


def role_key(role: int, i: int) -> str:
    return f"{TSET}/{i}/{100 * role + i}"


PLANTED = sorted(sorted(role_key(r, i) for i in range(PER_ROLE)) for r in range(ROLES))


def planted_graph(seed: int) -> Graph:
    """All roles in one prompt: embedding `tok<r>` -> features of role r -> logit `out<r>`, plus noise
    edges from features to one other role's logit (strong enough to enter the profiles)."""
    rng = np.random.default_rng(seed)
    nodes = [Node(f"E_{r}_{r}", "embedding", -1, r, token_id=r, token=f"tok{r}") for r in range(ROLES)]
    nodes += [Node(f"9_{r}_{ROLES - 1}", "logit", 9, ROLES - 1, token_id=100 + r, token=f"out{r}", logit_prob=0.2)
              for r in range(ROLES)]
    src, dst, weight = [], [], []
    for r in range(ROLES):
        for i in range(PER_ROLE):
            if seed % PER_ROLE == i and r % 2:       # some features miss some graphs (graph sets differ)
                continue
            nodes.append(Node(f"{i}_{100 * r + i}_{r}", "feature", i, r, feature=100 * r + i,
                              activation=1.0, influence=float(rng.uniform(0.1, 0.9))))
            f = len(nodes) - 1
            src += [r, f]
            dst += [f, ROLES + r]
            weight += [float(rng.uniform(1.0, 2.0)), float(rng.uniform(1.0, 2.0))]
            other = int(rng.integers(ROLES - 1))
            src.append(f)
            dst.append(ROLES + (r + 1 + other) % ROLES)
            weight.append(float(rng.uniform(0.5, 0.8)))
    return Graph(prompt=f"planted {seed}", prompt_tokens=[f"tok{r}" for r in range(ROLES)], model="planted",
                 transcoder_set=TSET, n_layers=9, nodes=nodes, edge_source=np.array(src),
                 edge_target=np.array(dst), edge_weight=np.array(weight, dtype=np.float32), slug=f"planted-{seed}")


@pytest.fixture(scope="module", params=BACKENDS)
def planted(request, tmp_path_factory):
    from circuit_atlas.store import open_store

    uri = empty_store(request, request.param, tmp_path_factory.mktemp("planted"))
    with open_store(uri) as store:
        store.add_graphs([planted_graph(s) for s in range(N_GRAPHS)])
        yield request.param, store


PARAMS = {"min_graphs": 3, "min_similarity": 0.05, "dry_run": True}


def test_the_planted_corpus_needs_community_detection(planted):
    """Cross-role pairs are similar enough to be linked: one connected similarity graph, not the
    roles as separate components (otherwise any clustering would find them)."""
    _, store = planted
    options = sn.SupernodeOptions(min_graphs=3, min_similarity=PARAMS["min_similarity"])
    corpus = sn.load_corpus(store, options)
    assert sorted(corpus.keys) == sorted(k for group in PLANTED for k in group)
    sim = sn.similarity(corpus, options)
    role = {k: r for r, group in enumerate(PLANTED) for k in group}
    across = [sim[a, b] for a, ka in enumerate(corpus.keys) for b, kb in enumerate(corpus.keys) if role[ka] != role[kb]]
    assert max(across) >= options.min_similarity
    import networkx as nx
    linked = nx.Graph(list(zip(*np.nonzero(np.triu(sim >= options.min_similarity, k=1)))))
    assert nx.is_connected(linked)


def test_default_proposal_finds_the_planted_roles(planted, monkeypatch):
    """method "auto": on Neo4j GDS's Leiden runs in the database (networkx is made to fail here, so a
    silent fall back to Louvain would show), on the embedded store networkx's Louvain."""
    backend, store = planted
    if backend == "neo4j":
        import networkx as nx

        def no_louvain(*a, **k):
            raise AssertionError("Louvain ran on Neo4j, where GDS Leiden should")
        monkeypatch.setattr(nx.community, "louvain_communities", no_louvain)
    rows = queries.run(store, "propose-supernodes", **PARAMS)
    assert sorted(r["members"] for r in rows) == PLANTED
    assert all(set(r) == RESULT_COLUMNS and r["source"] == "proposed" and r["n_members"] == PER_ROLE for r in rows)


def test_leiden_and_louvain_give_the_same_rows(planted):
    """Same result contract: where both run (Neo4j), the two algorithms' rows are equal on planted
    roles (ids, names, scores); the embedded store has no Leiden and says so."""
    backend, store = planted
    louvain = queries.run(store, "propose-supernodes", method="louvain", **PARAMS)
    assert sorted(r["members"] for r in louvain) == PLANTED
    if backend == "embedded":
        with pytest.raises(QueryError, match="needs a store that runs it"):
            queries.run(store, "propose-supernodes", method="leiden", **PARAMS)
        return
    leiden = queries.run(store, "propose-supernodes", method="leiden", **PARAMS)
    assert leiden == louvain
    assert queries.run(store, "propose-supernodes", method="leiden", **PARAMS) == leiden     # reproducible
    with pytest.raises(QueryError, match="choose one of"):
        queries.run(store, "propose-supernodes", method="spectral", **PARAMS)


def planted_partition(groups: int, size: int, seed: int):
    """A planted-partition graph: dense heavy edges inside groups, sparse light ones across."""
    rng = np.random.default_rng(seed)
    src, dst, weight = [], [], []
    n = groups * size
    for a in range(n):
        for b in range(a + 1, n):
            same = a // size == b // size
            if rng.random() < (0.7 if same else 0.08):
                src.append(a)
                dst.append(b)
                weight.append(float(rng.uniform(0.6, 1.0) if same else rng.uniform(0.05, 0.4)))
    return src, dst, weight, [list(range(g * size, (g + 1) * size)) for g in range(groups)]


def test_store_leiden_finds_a_planted_partition_and_leaves_nothing(planted):
    """Store.leiden on Neo4j: the planted groups, as networkx's Louvain finds them too (an independent
    algorithm), deterministic for a seed, in READ transactions; the projection is dropped and the
    database is as it was. The embedded store has none (None: callers use their own algorithm)."""
    import networkx as nx

    from circuit_atlas.store import open_store

    backend, writable = planted
    src, dst, weight, groups = planted_partition(5, 12, seed=3)
    g = nx.Graph()
    g.add_weighted_edges_from(zip(src, dst, weight))
    assert sorted(sorted(c) for c in nx.community.louvain_communities(g, weight="weight", seed=0)) == groups
    with open_store(writable.uri, read_only=True) as store:
        if backend == "embedded":
            assert store.leiden(src, dst, weight) is None
            return
        count = "MATCH (n) OPTIONAL MATCH (n)-[e]->() RETURN count(DISTINCT n) AS nodes, count(e) AS edges"
        before = store.query(count)
        found = store.leiden(src, dst, weight, resolution=1.0, seed=7)
        assert sorted(found) == groups
        assert store.leiden(src, dst, weight, resolution=1.0, seed=7) == found
        assert store.leiden([], [], []) == []
        assert store._backend.run("CALL gds.graph.list() YIELD graphName RETURN graphName", read=True) == []
        assert store.query(count) == before
