"""Causal ground truth on the planted organism: the two-hop swap (organisms/experiments.py).

The fictional atlas (organisms/corpus.py: city -> country -> capital) is known, so the papers' swap can
be checked: each country's supernode is found from stored graphs of the training templates' two-hop
prompts (contrast-supernode: no hand-picked ids); then, on every held-out two-hop prompt of every
language, ablating it alone must lower the right capital's probability (>= 90% of prompts), and
suppressing it (x -1) while injecting the next country's (x 4 its activations on a parallel prompt)
must make that country's capital the top answer (>= 80%). Measured (docs/interventions.md): ablation
lowers it on 100% / 96% / 100% (en / fr / kl), the swap succeeds on 100% in every language.
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


def test_country_supernodes_are_what_the_stored_graphs_say(two_hop):
    """contrast-supernode against a plain-Python count over the same stored graphs."""
    from circuit_atlas.organisms import corpus as C
    from circuit_atlas.store import open_store

    _, path, n, found = two_hop
    assert n == len(C.facts("twohop")) * len(C.LANGUAGES) * 2      # two training templates per fact
    graphs = defaultdict(set)                                      # graph id -> feature keys
    with open_store(path, read_only=True) as store:
        country = {r["gid"]: r["v"] for r in store.query(
            "MATCH (g:Graph)-[:TAGGED]->(t:Tag) WHERE t.key = 'country' RETURN g.id AS gid, t.value AS v")}
        for gid in country:
            graphs[gid] = {g.feature_key(x) for g in [store.get_graph(gid)] for x in g.nodes if x.kind == "feature"}
        stored = {r["id"]: sorted(r["members"]) for r in queries.run(store, "supernodes", source="contrast")}
    for c in C.COUNTRIES:
        mine = [gid for gid, v in country.items() if v == c]
        others = [gid for gid, v in country.items() if v != c]
        keys = set().union(*graphs.values())
        want = sorted(k for k in keys if sum(k in graphs[g] for g in mine) >= 0.5 * len(mine)
                      and sum(k in graphs[g] for g in others) <= 0.1 * len(others))
        assert want, c
        assert found[c]["members"] == want and stored[f"tag/country={c}"] == want


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
