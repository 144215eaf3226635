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


@pytest.mark.parametrize("sign", ["excitatory", "all"])
def test_the_paths_figure_draws_each_path_along_real_edges(small, sign, tmp_path):
    """plot_paths: every path of the rows is drawn through its own nodes (one per column, however many paths
    pass it), each edge coloured by the sign of the real edge it stands for, its width by the path's
    |mean strength| worked out from the graph's edges."""
    from matplotlib.colors import to_hex

    from circuit_atlas.queries.analyses import short_key
    from circuit_atlas.queries.figures import EXCITES, INHIBITS, paths_figure, plot_paths
    store, graphs = small
    [dallas] = [g for g in graphs if "Dallas" in g.prompt]
    rows = queries.run(store, "common-paths", hops=3, token=" Austin", sign=sign, min_weight=1.0, limit=10)
    assert len(rows) == 10 and (sign == "excitatory") == all(r["signs"] == "+++" for r in rows)
    strongest = {}                                # (start, f1, f2, end, signs) -> graph -> strongest |product|
    for g, start, feats, end, ws in ref.path_instances(graphs, 3, 1.0, " Austin"):
        key = (start, *feats, end, "".join("+" if w > 0 else "-" for w in ws))
        per_graph = strongest.setdefault(key, {})
        per_graph[id(g)] = max(per_graph.get(id(g), 0.0), abs(math.prod(ws)))
    want = {k: sum(v.values()) / len(v) for k, v in strongest.items()}

    fig = paths_figure(rows)
    ax = fig.axes[0]
    node = {t.get_gid(): t for t in ax.texts}
    for r in rows:                                 # one node per distinct key in each column
        assert f"0:{r['start_token']}" in node and f"3:{r['end_token']}" in node
        for i in (1, 2):
            assert short_key(r[f"f{i}"]) in node[f"{i}:{r[f'f{i}']}"].get_text()
    assert len(node) == sum(len({r[c] for r in rows}) for c in ("start_token", "f1", "f2", "end_token"))
    edges = {l.get_gid(): l for l in ax.lines if l.get_gid()}
    assert len(edges) == 3 * len(rows)
    top = max(want[(r["start_token"], r["f1"], r["f2"], r["end_token"], r["signs"])] for r in rows)
    for n, r in enumerate(rows):
        cells = [f"0:{r['start_token']}", f"1:{r['f1']}", f"2:{r['f2']}", f"3:{r['end_token']}"]
        signs = r["signs"]
        assert (r["start_token"], r["f1"], r["f2"], r["end_token"], signs) in want, r["path"]  # real edges
        for i in range(3):
            line = edges[f"{n}:{i}"]
            assert list(zip(line.get_xdata(), line.get_ydata())) == [node[c].get_position() for c in cells[i:i + 2]]
            assert to_hex(line.get_color()) == (EXCITES if signs[i] == "+" else INHIBITS)
            share = want[(r["start_token"], r["f1"], r["f2"], r["end_token"], signs)] / top
            assert line.get_linewidth() == pytest.approx(0.8 + 5.2 * share, rel=1e-4)
    assert ax.get_title().startswith('Common paths into " Austin": 10 paths, 3 hops')
    if sign == "all":
        assert any(to_hex(l.get_color()) == INHIBITS for l in edges.values())
    paths = plot_paths(rows, tmp_path / "austin")
    assert [p.name for p in paths] == ["austin.png", "austin.svg"] and all(p.stat().st_size for p in paths)
    assert '" Dallas"' in paths[1].read_text()
