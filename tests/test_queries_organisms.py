"""The multilingual queries on a model organism traced with the tracer.

The organisms (organisms/zoo) are trained on parallel sentences in three languages with disjoint
vocabularies, so whatever features the languages share the model had to learn. Parallel held-out
prompts (same task and concept, different language) must therefore share more active features in
the middle layers than unrelated prompts in the same two languages (the Biology paper's measure).
Skips when the zoo has not been built.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from circuit_atlas import queries
from tests import queries_reference as ref
from tests.backends import BACKENDS, empty_store

PER_TASK = 4          # concepts per task traced in every language (3 languages): 36 traces


def organism_graphs(root: Path, name: str = "planted"):
    """Traces of PER_TASK held-out concepts per task in every language, tagged lang / concept / item."""
    from circuit_atlas import tracer
    model = tracer.load(root / "model", root / "transcoders" / "plt")
    prompts = json.loads((root / "truth.json").read_text())["heldout"]
    concepts = {}
    for p in prompts:
        concepts.setdefault(p["task"], [])
        if p["concept"] not in concepts[p["task"]]:
            concepts[p["task"]].append(p["concept"])
    keep = {c for cs in concepts.values() for c in cs[:PER_TASK]}
    graphs = []
    for p in (p for p in prompts if p["concept"] in keep):
        g = tracer.trace(model, p["prompt"], tracer.TraceConfig(max_feature_nodes=200))
        g.tags = {"lang": p["lang"], "concept": p["task"], "item": p["concept"].split(":", 1)[1], "organism": name}
        graphs.append(g)
    return graphs


@pytest.fixture(scope="module")
def planted_graphs():
    from circuit_atlas import organisms

    return organism_graphs(organisms.zoo_path("planted"))       # shipped with the package: never skipped


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_prompts_share_middle_layer_features(request, backend, tmp_path, planted_graphs):
    from circuit_atlas.store import open_store
    graphs = planted_graphs
    with open_store(empty_store(request, backend, tmp_path)) as store:
        store.add_graphs(graphs)
        by_concept = {c: queries.run(store, "multilingual-iou", concept=c) for c in ("", "antonym")}
        shared = queries.run(store, "shared-multilingual-features", concept="antonym", k=3)
    want = ref.multilingual_iou(graphs)
    got = {(r["lang_a"], r["lang_b"], r["layer"]): r["iou"] for r in by_concept[""]}
    assert got == {k: pytest.approx(v[0]) for k, v in want.items()}
    # all tasks, and antonyms alone (no token is shared between the languages' antonym prompts)
    for concept, rows in by_concept.items():
        middle = [r for r in rows if r["depth"] is not None and 0.25 <= r["depth"] <= 0.75 and r["baseline"] is not None]
        assert middle, "no middle layers with parallel and unrelated pairs"
        for pair in sorted({(r["lang_a"], r["lang_b"]) for r in middle}):
            mine = [r for r in middle if (r["lang_a"], r["lang_b"]) == pair]
            iou = sum(r["iou"] for r in mine) / len(mine)
            baseline = sum(r["baseline"] for r in mine) / len(mine)
            assert iou > 2 * baseline, (f"{concept or 'all'} {pair}: parallel prompts share {iou:.3f} of their "
                                        f"middle-layer features, unrelated ones {baseline:.3f}")
    assert shared, "no antonym feature is active in all three languages"
