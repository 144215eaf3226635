"""Causal ground truth on the planted organism: the two-hop swap (organisms/experiments.py).

The fictional atlas (organisms/corpus.py: city -> country -> capital) is known, so the papers' swap can
be checked: each country's supernode is found from stored graphs of the training templates' two-hop
prompts through common-paths (the features on the strongest excitatory paths city -> f1 -> f2 -> capital
shared by at least 2 of the country's 3 cities; no hand-picked ids); then, on every held-out two-hop prompt of every
language, ablating it alone must lower the right capital's probability (>= 90% of prompts), and
suppressing it (x -1) while injecting the next country's (x 4 its activations on a parallel prompt)
must make that country's capital the top answer (>= 80%). Measured (docs/interventions.md): ablation
lowers it on 100% / 100% / 100% (en / fr / kl), the swap succeeds on 100% / 100% / 96%.
The hidden-objective experiment is in test_audit.py (it needs the audits of both organisms).
"""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from circuit_atlas import queries

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_hop(tmp_path_factory):
    from circuit_atlas import organisms, tracer
    from circuit_atlas.organisms.experiments import country_supernodes, trace_two_hop
    from circuit_atlas.store import open_store

    root = organisms.zoo_path("planted")
    model = tracer.load(root / "model", root / "transcoders" / "plt")
    path = str(tmp_path_factory.mktemp("twohop") / "atlas.db")
    with open_store(path) as store:
        n = trace_two_hop(model, store)
        found = country_supernodes(store)
    return model, path, n, found


def strongest_paths(graph, start: str, end: str) -> dict[tuple[str, str], float]:
    """(f1, f2) -> the strongest excitatory path start -> f1 -> f2 -> end in one graph (plain Python)."""
    out_edges = defaultdict(list)
    for s, t, w in zip(graph.edge_source.tolist(), graph.edge_target.tolist(), graph.edge_weight.tolist()):
        if w >= 0:
            out_edges[s].append((t, w))
    nodes, best = graph.nodes, {}
    for e, n in enumerate(nodes):
        if n.kind != "embedding" or n.token != start:
            continue
        for a, w1 in out_edges[e]:
            for b, w2 in (x for x in out_edges[a] if graph.feature_key(nodes[a])):
                for l, w3 in out_edges[b]:
                    if graph.feature_key(nodes[b]) and nodes[l].kind == "logit" and nodes[l].token == end:
                        key = (graph.feature_key(nodes[a]), graph.feature_key(nodes[b]))
                        best[key] = max(best.get(key, 0.0), 1.0 * w1 * w2 * w3)
    return best


def test_country_supernodes_are_what_the_stored_graphs_say(two_hop):
    """The common-paths supernodes against a plain-Python walk of the same stored graphs' edges."""
    from circuit_atlas.organisms import corpus as C
    from circuit_atlas.store import open_store

    _, path, n, found = two_hop
    assert n == len(C.facts("twohop")) * len(C.LANGUAGES) * 2      # two training templates per fact
    with open_store(path, read_only=True) as store:
        city_of = defaultdict(list)                                # city stem -> its stored graphs
        for r in store.query("MATCH (g:Graph)-[:TAGGED]->(t:Tag) WHERE t.key = 'city' RETURN g.id AS gid, t.value AS v"):
            city_of[r["v"]].append(store.get_graph(r["gid"]))
        stored = {r["id"]: sorted(r["members"]) for r in queries.run(store, "supernodes", source="common-paths")}
    for country in C.COUNTRIES:
        want = set()
        for lang in C.LANGUAGES:
            on_top = defaultdict(int)                              # feature -> cities whose top path it is on
            for fact in (f for f in C.facts("twohop") if f.args[1] == country):
                per_graph = [strongest_paths(g, C.city(fact.args[0], lang), C.answer(fact, lang))
                             for g in city_of[fact.args[0]]]
                paths = {k for p in per_graph for k in p}
                if not paths:
                    continue
                count = {k: sum(k in p for p in per_graph) for k in paths}
                mean = {k: sum(p[k] for p in per_graph if k in p) / count[k] for k in paths}
                top = min(paths, key=lambda k: (-count[k], -mean[k], k))
                for f in set(top):
                    on_top[f] += 1
            want |= {f for f, c in on_top.items() if c >= 2}
        assert want, country
        assert found[country]["members"] == sorted(want) == stored[f"paths/country={country}"], country


def test_two_hop_swap_and_ablation_per_language(two_hop):
    from circuit_atlas.organisms.experiments import two_hop_swap
    from circuit_atlas.store import open_store

    model, path, _, found = two_hop
    with open_store(path) as store:
        out = two_hop_swap(model, store, strength=4.0, suppress=-1.0)
        ranked = queries.run(store, "causal-supernodes", role="ablate")
        swaps = queries.run(store, "causal-supernodes", role="inject")
    print(json.dumps(out["by_language"], indent=1))
    assert set(out["by_language"]) == {"en", "fr", "kl"}
    for lang, share in out["by_language"].items():
        assert share["n"] == 24
        assert share["ablation_drops"] >= 0.9, (lang, share)
        assert share["swap_succeeds"] >= 0.8, (lang, share)
    # the evidence is in the store: every country's supernode, ablated on its own 9 held-out prompts
    assert {r["supernode"] for r in ranked} == {s["id"] for s in found.values()}
    assert all(r["n_prompts"] == 9 and r["mean_prob_change"] < 0 for r in ranked)
    assert all(r["share_top_changed"] >= 0.8 for r in swaps)
