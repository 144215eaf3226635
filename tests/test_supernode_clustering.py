"""Supernode similarity and clustering against a hand-computed answer on a small corpus (issue 14).

Two roles with opposite signs: three features share a signed profile, three others the exact
negation of it. A sign-aware similarity keeps the roles apart (cosine -1 -> 0); a sign-blind one
(|cos|) would see one role of six. The similarity matrix is recomputed here in plain Python from
the definition in queries/supernodes.py (max(cos, 0) * jaccard(graph sets) ** cooccurrence), and
the communities are worked out by hand from the modularity (see test_the_clustering_is_the_hand_computed_one).
"""
from __future__ import annotations

import math

import pytest

from circuit_atlas.queries import supernodes as sn

T = "tset"
A = [f"{T}/0/1", f"{T}/0/2", f"{T}/1/3"]          # role A: read "the", drive "X", suppress "Y"
B = [f"{T}/0/4", f"{T}/1/5", f"{T}/1/6"]          # role B: the negation of role A

PROFILES = {
    A[0]: {"in:embedding:the": 1.0, "out:logit:X": 2.0, "out:logit:Y": -1.0},
    A[1]: {"in:embedding:the": 2.0, "out:logit:X": 4.0, "out:logit:Y": -2.5},
    A[2]: {"in:embedding:the": 1.5, "out:logit:X": 2.5, "out:logit:Y": -1.0, "out:error@1": 0.3},
    B[0]: {"in:embedding:the": -1.0, "out:logit:X": -2.0, "out:logit:Y": 1.0},
    B[1]: {"in:embedding:the": -2.0, "out:logit:X": -4.0, "out:logit:Y": 2.0},
    B[2]: {"in:embedding:the": -1.0, "out:logit:X": -2.0, "out:logit:Y": 1.2},
}
GRAPHS = {k: {g: 0.5 for g in ("g1", "g2", "g3", "g4")} for k in A + B}
GRAPHS[A[2]] = {g: 0.5 for g in ("g1", "g2", "g3")}          # one graph fewer: jaccard 3/4 with its role
GRAPHS[B[2]] = {g: 0.25 for g in ("g2", "g3", "g4", "g5")}   # one graph other: jaccard 3/5


def corpus() -> sn.Corpus:
    keys = sorted(PROFILES)
    return sn.Corpus(keys=keys, layers={k: int(k.split("/")[1]) for k in keys}, graphs=GRAPHS, profiles=PROFILES)


def similarity_by_hand(a: str, b: str, cooccurrence: float) -> float:
    pa, pb = PROFILES[a], PROFILES[b]
    dot = sum(w * pb.get(p, 0.0) for p, w in pa.items())
    cos = dot / (math.sqrt(sum(w * w for w in pa.values())) * math.sqrt(sum(w * w for w in pb.values())))
    ga, gb = set(GRAPHS[a]), set(GRAPHS[b])
    return max(cos, 0.0) * (len(ga & gb) / len(ga | gb)) ** cooccurrence


def test_similarity_is_signed_cosine_damped_by_cooccurrence():
    c, options = corpus(), sn.SupernodeOptions()
    sim = sn.similarity(c, options)
    for i, a in enumerate(c.keys):
        for j, b in enumerate(c.keys):
            want = 0.0 if a == b else similarity_by_hand(a, b, options.cooccurrence)
            assert sim[i, j] == pytest.approx(want, abs=1e-12), (a, b)
    # the opposite roles are not similar at all; a role's members are
    assert all(sim[c.keys.index(a), c.keys.index(b)] == 0.0 for a in A for b in B)
    assert all(sim[c.keys.index(a), c.keys.index(b)] > 0.6 for role in (A, B) for a in role for b in role if a != b)


def test_the_clustering_is_the_hand_computed_one():
    """Thresholded at 0.6, the similarity graph is two disjoint triangles (role A, role B). With
    Louvain's resolution 2, a triangle of total weight w in a graph of total weight m has modularity
    w/m - 2 (w/m)^2 = 0.5 - 0.5 = 0 when the two triangles weigh the same, and splitting it only
    lowers that; so the groups are the two roles. (Sign-blind, all 15 pairs link and no group forms.)"""
    c, options = corpus(), sn.SupernodeOptions(min_graphs=1)
    rows = sn.propose(c, options)
    assert sorted(r["members"] for r in rows) == sorted([sorted(A), sorted(B)])
    for r in rows:
        pairs = [(a, b) for n, a in enumerate(r["members"]) for b in r["members"][n + 1:]]
        assert r["coherence"] == pytest.approx(sum(similarity_by_hand(a, b, options.cooccurrence)
                                                   for a, b in pairs) / len(pairs))
        assert r["n_graphs"] == len(set().union(*(GRAPHS[m] for m in r["members"])))
        assert r["influence"] == pytest.approx(sum(sum(GRAPHS[m].values()) for m in r["members"]))
        assert r["n_members"] == 3 and r["name"].startswith("layers 0-1 · ")


def test_opposite_roles_never_group_even_at_a_low_threshold():
    """With every positive pair linked (min_similarity 0.01) the roles still stay apart: the link
    between them is missing, not merely weak."""
    c, options = corpus(), sn.SupernodeOptions(min_graphs=1, min_similarity=0.01, resolution=1.0)
    groups = sn.communities(c, sn.similarity(c, options), options)
    assert all(set(g) <= set(A) or set(g) <= set(B) for g in groups)


def test_two_candidates_of_one_role_make_a_group():
    """The smallest proposal: two features (mutation survivor: `len(keys) < 2` -> `< 3`)."""
    keys = A[:2]
    c = sn.Corpus(keys=keys, layers={k: int(k.split("/")[1]) for k in keys}, graphs={k: GRAPHS[k] for k in keys},
                  profiles={k: PROFILES[k] for k in keys})
    rows = sn.propose(c, sn.SupernodeOptions(min_graphs=1, resolution=1.0))   # (at 2.0, a pair ties apart)
    assert [r["members"] for r in rows] == [sorted(keys)]
    assert rows[0]["coherence"] == pytest.approx(similarity_by_hand(*keys, sn.SupernodeOptions().cooccurrence))



def test_import_manual_scores_neuronpedia_supernodes_like_the_definition(tmp_path):
    """Manual supernodes (a file's qParams.supernodes) stored with their members, the nodes they name
    (ids as the file wrote them, circuit-tracer's legacy error ids too), the summed importance of those
    nodes, and a coherence recomputed here in plain Python from the stored graphs' edges: the mean
    similarity of the members that are proposal candidates (in >= min_graphs graphs), None with
    fewer than two such members."""
    from circuit_atlas.ingest.formats import LEGACY_ERROR_IDS
    from circuit_atlas.store import open_store
    from circuit_atlas.synthetic import synthetic_graph

    options = sn.SupernodeOptions()
    graphs = [synthetic_graph(70 + i, n_nodes=90, n_edges=900, n_layers=2, n_feature_ids=12) for i in range(4)]
    # plain Python: candidates, their signed profiles and graph sets, straight from the edges
    found = {}
    for g in graphs:
        for n in g.nodes:
            if g.feature_key(n):
                found.setdefault(g.feature_key(n), set()).add(g.id)
    cand = {k: gs for k, gs in found.items() if len(gs) >= options.min_graphs}
    profiles = {k: {} for k in cand}

    def end(g, n):
        return g.feature_key(n) or (f"{n.kind}:{n.token}" if n.kind in ("embedding", "logit") else f"{n.kind}@{n.layer}")

    edges = {}             # (candidate, "in:"/"out:" + partner) -> weights of its edges over all graphs
    for g in graphs:
        for s, t, w in zip(g.edge_source.tolist(), g.edge_target.tolist(), g.edge_weight.tolist()):
            a, b = end(g, g.nodes[s]), end(g, g.nodes[t])
            if a in cand:
                edges.setdefault((a, "out:" + b), []).append(w)
            if b in cand:
                edges.setdefault((b, "in:" + a), []).append(w)
    for (k, p), ws in edges.items():       # a partner enters when its edges average >= min_weight in |weight|
        if sum(abs(w) for w in ws) / len(ws) >= options.min_weight:
            profiles[k][p] = sum(ws)

    def sim(a, b):
        pa, pb = profiles[a], profiles[b]
        cos = sum(w * pb.get(p, 0.0) for p, w in pa.items()) / (
            math.sqrt(sum(w * w for w in pa.values())) * math.sqrt(sum(w * w for w in pb.values())))
        return max(cos, 0.0) * (len(cand[a] & cand[b]) / len(cand[a] | cand[b])) ** options.cooccurrence

    g = graphs[0]
    g.extra["error_ids"] = LEGACY_ERROR_IDS               # the file wrote error nodes as 0_{layer}_{pos}
    feats = [n for n in g.nodes if n.kind == "feature"]
    in_cand = [n for n in feats if g.feature_key(n) in cand]
    rare = next(n for n in feats if g.feature_key(n) not in cand)
    error = next(n for n in g.nodes if n.kind == "error")
    emb = next(n for n in g.nodes if n.kind == "embedding")
    named = in_cand[:4] + [rare, error, emb]
    g.extra["qParams"] = {"supernodes": [
        ["four candidates", *(n.node_id for n in in_cand[:4]), rare.node_id, f"0_{error.layer}_{error.pos}",
         emb.node_id, "nope"],
        ["one candidate", in_cand[5].node_id, rare.node_id],
        [], "not a list", ["no node of the graph", "nope"]]}
    assert len({g.feature_key(n) for n in in_cand[:4]}) >= 3 and len({g.feature_key(n) for n in in_cand[:6]}) >= 5
    with open_store(str(tmp_path / "atlas.db")) as store:
        store.add_graphs(graphs)
        assert sn.import_manual(store, [g], options) == 2
        assert sn.import_manual(store, [g], options) == 2                # idempotent: same ids, replaced
        rows = store.query("MATCH (s:Supernode) OPTIONAL MATCH (s)-[:HAS_MEMBER]->(f:Feature) "
                           "WITH s, collect(f.key) AS members RETURN s.id AS id, s.name AS name, s.gid AS gid, "
                           "s.coherence AS coherence, s.influence AS influence, s.n_graphs AS n_graphs, "
                           "s.node_ids AS node_ids, members ORDER BY id")
    keys = sorted({g.feature_key(n) for n in in_cand[:4]})
    pairs = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1:]]
    assert [r["id"] for r in rows] == [f"np/{g.id}/0", f"np/{g.id}/1"]
    four, one = rows
    assert four["name"] == "four candidates" and four["gid"] == g.id and four["n_graphs"] == 1
    assert sorted(four["members"]) == sorted(keys + [g.feature_key(rare)])
    assert four["node_ids"].split() == [n.node_id for n in named]
    assert four["influence"] == pytest.approx(sum(1.0 - n.influence for n in named if n.influence is not None))
    assert four["coherence"] == pytest.approx(sum(sim(a, b) for a, b in pairs) / len(pairs), rel=1e-9)
    assert 0 < four["coherence"] < 1
    assert sorted(one["members"]) == sorted({g.feature_key(in_cand[5]), g.feature_key(rare)})
    assert one["coherence"] is None                                   # one candidate: no pair to score


def _tagged_graph(i: int, country: str, task: str, features: dict[int, float]):
    """A small graph: one embedding, the given features (feature index -> influence) at layer 0, a logit."""
    import numpy as np

    from circuit_atlas.graph import Graph, Node

    uid = 100 + 10 * i + (country == "b") + 2 * (task == "u")          # a graph's id is its content's hash
    nodes = [Node(f"E_{uid}_0", "embedding", -1, 0, token_id=uid, token=f"x{uid}")]
    nodes += [Node(f"0_{f}_0", "feature", 0, 0, feature=f, activation=1.0, influence=infl) for f, infl in features.items()]
    nodes.append(Node("2_5_0", "logit", 2, 0, token_id=5, token="y", logit_prob=1.0))
    n = len(nodes)
    return Graph(prompt=f"prompt {country} {task} {i}", prompt_tokens=[f"x{uid}"], model="m", transcoder_set=T, n_layers=2,
                 nodes=nodes, edge_source=np.array(range(n - 1), np.int32), edge_target=np.array([n - 1] * (n - 1), np.int32),
                 edge_weight=np.ones(n - 1, np.float32), tags={"country": country, "task": task})


def test_contrast_supernode_is_the_hand_computed_one(tmp_path):
    """4 graphs tagged country=a, 4 country=b (task=t), 2 of country=a outside the scope (task=u).
    Feature 1: every a graph, no b one; 2: 2 of 4 a graphs (exactly min_share), none of b; 3: every a
    graph and 1 of 4 b (exactly max_other 0.25); 4: 1 of 4 a graphs; 5: every graph. Members, shares,
    graphs spanned and summed importance (1 - influence) in the tagged graphs are worked out by hand."""
    from circuit_atlas import queries
    from circuit_atlas.queries.registry import QueryError
    from circuit_atlas.store import open_store

    infl = {1: 0.2, 2: 0.5, 3: 0.9, 4: 0.1, 5: 0.0}
    a = [_tagged_graph(i, "a", "t", {f: infl[f] for f in (1, 3, 5) + ((2,) if i < 2 else ()) + ((4,) if i == 3 else ())})
         for i in range(4)]
    b = [_tagged_graph(i, "b", "t", {f: infl[f] for f in (5,) + ((3,) if i == 0 else ())}) for i in range(4)]
    out = [_tagged_graph(i, "a", "u", {2: 0.5, 5: 0.0}) for i in range(2)]   # would lift feature 2 above 0.5
    key = {f: f"{T}/0/{f}" for f in infl}
    with open_store(str(tmp_path / "atlas.db")) as store:
        store.add_graphs(a + b + out)
        with pytest.raises(QueryError, match="no stored graph tagged task=t carries the tag 'country=c'"):
            queries.run(store, "contrast-supernode", tag="country=c", within="task=t")
        [row] = queries.run(store, "contrast-supernode", tag="country=a", within="task=t", min_share=0.5,
                            max_other=0.25, dry_run=True)
        assert row["members"] == sorted([key[1], key[2], key[3]])
        assert row["specificity"] == {key[1]: [1.0, 0.0], key[2]: [0.5, 0.0], key[3]: [1.0, 0.25]}
        assert row["n_graphs"] == 4 and row["id"] == "tag/country=a" and row["n_members"] == 3
        assert row["influence"] == pytest.approx(4 * (1 - 0.2) + 2 * (1 - 0.5) + 4 * (1 - 0.9))
        assert queries.run(store, "supernodes", source="contrast") == []            # dry run: nothing stored
        queries.run(store, "contrast-supernode", tag="country=a", within="task=t", min_share=0.5, max_other=0.25,
                    dry_run=False)
        [stored] = queries.run(store, "supernodes", source="contrast")
        assert stored["members"] == row["members"] and stored["influence"] == pytest.approx(row["influence"])
        # in every graph (no scope): 6 tagged (feature 2 in 4 of them), 4 others; stored again, members replaced
        [wide] = queries.run(store, "contrast-supernode", tag="country=a", min_share=0.6, max_other=0.0, dry_run=False)
        assert wide["members"] == sorted([key[1], key[2]]) and wide["specificity"][key[2]] == [round(4 / 6, 4), 0.0]
        assert [s["members"] for s in queries.run(store, "supernodes", source="contrast")] == [wide["members"]]


def test_import_manual_scores_a_pair_when_the_corpus_has_two_candidates(tmp_path):
    """The smallest corpus that can score: exactly two candidates (features 3 and 5, in >= 5 of the 10
    graphs). Both only drive the logit (weight 1 per graph): cosine 1; feature 3's 5 graphs lie within
    feature 5's 10: Jaccard 1/2. So the manual pair's coherence is 0.5 ** cooccurrence."""
    from circuit_atlas.store import open_store

    infl = {1: 0.2, 2: 0.5, 3: 0.9, 4: 0.1, 5: 0.0}
    graphs = [_tagged_graph(i, "a", "t", {f: infl[f] for f in (1, 3, 5) + ((2,) if i < 2 else ())}) for i in range(4)]
    graphs += [_tagged_graph(i, "b", "t", {f: infl[f] for f in (5,) + ((3,) if i == 0 else ())}) for i in range(6)]
    options = sn.SupernodeOptions(min_graphs=5, min_weight=0.5)
    g = graphs[0]
    g.extra["qParams"] = {"supernodes": [["pair", "0_3_0", "0_5_0"], ["with a non-candidate", "0_1_0", "0_3_0", "0_5_0"]]}
    with open_store(str(tmp_path / "atlas.db")) as store:
        store.add_graphs(graphs)
        assert sn.import_manual(store, [g], options) == 2
        got = {r["name"]: r["coherence"] for r in store.query("MATCH (s:Supernode) RETURN s.name AS name, s.coherence AS coherence")}
    assert got == pytest.approx({"pair": 0.5 ** options.cooccurrence, "with a non-candidate": 0.5 ** options.cooccurrence})


def test_proposal_ids_are_stable_digests_of_the_members():
    """A proposal's id names its member set, whatever run made it: "auto/" and the first 12 hex digits
    of the SHA-1 of the sorted member keys joined by spaces (the documented example: auto/5f2c9a1b3d4e)."""
    import hashlib

    rows = sn.propose(corpus(), sn.SupernodeOptions(min_graphs=1))
    assert len(rows) == 2
    for r in rows:
        assert r["id"] == "auto/" + hashlib.sha1(" ".join(sorted(r["members"])).encode()).hexdigest()[:12]
