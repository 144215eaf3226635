"""Signed common paths on real Gemma-2-2B graphs, against edges read straight from the graph files.

The dallas-austin graph ("Fact: The capital of state containing Dallas is") and the real corpus: ten
graphs here (tests/fixtures/real-gemma), all 57 when ../shared holds them. Every row's sign must be
the product of the signs of real edges that form that path, and the strongest excitatory paths into
" Austin" must be made of excitatory edges only.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import pytest

from circuit_atlas import queries
from circuit_atlas.queries import labels
from tests import queries_reference as ref
from tests.test_queries import ALL, FIXTURES, FULL_CORPUS

DALLAS = FIXTURES.parent / "formats" / "real" / "dallas-austin-gemma-2-2b-gemmascope-tc.json.gz"


def corpus_graphs(full: bool):
    from circuit_atlas.ingest.formats import read_graph_file
    paths = sorted(FULL_CORPUS.glob("*.json")) if full else sorted(FIXTURES.glob("*.json.gz"))
    return [read_graph_file(p) for p in [DALLAS, *paths]]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The dallas-austin graph and ten real graphs, stored and labelled automatically."""
    from circuit_atlas.store import open_store
    graphs = corpus_graphs(False)
    with open_store(str(tmp_path_factory.mktemp("paths") / "atlas.db")) as store:
        store.add_graphs(graphs)
        labels.auto_labels(store)
        yield store, graphs


def check_signs(store, graphs, hops):
    """Each row's signs are those of real edges forming that path, and its strength has their product's sign."""
    instances = {}
    for g, start, feats, end, ws in ref.path_instances(graphs, hops, 1.0):
        signs = "".join("+" if w > 0 else "-" for w in ws)
        instances.setdefault((start, *feats, end, signs), []).append(ws)
    rows = queries.run(store, "common-paths", hops=hops, sign="all", limit=ALL)
    assert len(rows) == len(instances)
    for r in rows:
        key = (r["start_token"], *(r[f"f{i}"] for i in range(1, hops)), r["end_token"], r["signs"])
        assert key in instances, f"no path of real edges reads {r['path']}"
        for ws in instances[key]:
            assert math.copysign(1, r["mean_strength"]) == math.prod(math.copysign(1, w) for w in ws)
            assert math.copysign(1, r["max_strength"]) == math.prod(math.copysign(1, w) for w in ws)
    return rows


@pytest.mark.parametrize("full", [False, pytest.param(True, marks=[pytest.mark.slow, pytest.mark.skipif(
    not FULL_CORPUS.is_dir(), reason=f"the 57-graph corpus is not at {FULL_CORPUS}")])], ids=["10-graphs", "57-graphs"])
def test_every_path_sign_is_the_product_of_its_edge_signs(full, small, tmp_path):
    from circuit_atlas.store import open_store
    graphs = corpus_graphs(True) if full else small[1]
    assert len(graphs) == (58 if full else 11)
    with open_store(str(tmp_path / "atlas.db")) if full else nullcontext(small[0]) as store:
        if full:
            store.add_graphs(graphs)
            labels.auto_labels(store)
        for hops in (2, 3, 4):
            rows = check_signs(store, graphs, hops)
            assert {r["signs"].count("-") % 2 for r in rows} == {0, 1}     # both kinds occur


def test_top_excitatory_paths_into_austin_are_excitatory_edges_only(small):
    store, graphs = small
    [dallas] = [g for g in graphs if "Dallas" in g.prompt]
    for hops in (2, 3, 4):
        top = queries.run(store, "common-paths", hops=hops, token=" Austin", limit=5)
        assert top, hops
        for r in top:
            feats = tuple(r[f"f{i}"] for i in range(1, hops))
            found = [ws for _, start, fs, end, ws in ref.path_instances([dallas], hops, 1.0, " Austin")
                     if (start, fs) == (r["start_token"], feats)]
            assert found and all(w > 0 for ws in found for w in ws), r["path"]
            assert r["signs"] == "+" * hops and r["mean_strength"] > 0 and "⊣" not in r["path"]
    # the paper's story, read off the corpus: " Dallas" -> [a Texas feature] -> [a say-Austin feature] -> " Austin"
    paths = [r["path"] for r in queries.run(store, "common-paths", hops=3, token=" Austin", limit=5)]
    assert any(p.startswith('" Dallas" → [') and 'say " Texas"' in p and 'say " Austin"' in p for p in paths), paths
    # the inhibitory ones are the other half of the graph: the strongest lowers " Austin"
    worst = queries.run(store, "common-paths", hops=3, token=" Austin", sign="inhibitory", limit=5)
    assert worst and all(r["mean_strength"] < 0 and r["path"].count("⊣") % 2 == 1 for r in worst)


def test_path_reads_start_token_labels_and_end_token(small):
    store, _ = small
    for r in queries.run(store, "common-paths", hops=3, sign="all", limit=50):
        names = []
        for f in ("f1", "f2"):
            label = queries.run(store, "_labels-of", keys=[r[f]])[0]["label"]
            assert r[f"{f}_label"] == label and label
            names.append(f"[{label}]")
        arrows = ["→" if s == "+" else "⊣" for s in r["signs"]]
        tokens = [f'"{r["start_token"]}"', *names, f'"{r["end_token"]}"']
        assert r["path"] == f"{tokens[0]} {arrows[0]} {tokens[1]} {arrows[1]} {tokens[2]} {arrows[2]} {tokens[3]}"
