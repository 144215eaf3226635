"""Every library query against an independent plain-Python computation over the same graph files.

The corpus: ten real Gemma-2-2B graphs (tests/fixtures/real-gemma), with test tags (lang, item,
concept) and a few labels added so that every query has something to find. The full 57-graph corpus
is used by test_full_real_corpus when /work/shared (or $CIRCUIT_ATLAS_REAL_GRAPHS) is present.
"""
from __future__ import annotations

import json
import math
import re
import os
import random
from pathlib import Path

import pytest

from circuit_atlas import queries
from circuit_atlas.queries import supernodes as sn
from tests import queries_reference as ref
from tests.backends import BACKENDS, empty_store

FIXTURES = Path(__file__).parent / "fixtures" / "real-gemma"
FULL_CORPUS = Path(os.environ.get("CIRCUIT_ATLAS_REAL_GRAPHS",
                                  Path(__file__).resolve().parents[2] / "shared/fixtures/real-graphs/gemma-2-2b-clt-hp"))
ALL = 1_000_000  # a limit that returns every row, so answers compare whole


def load_graphs(paths):
    from circuit_atlas.ingest.formats import read_graph_file
    graphs = [read_graph_file(p) for p in sorted(paths)]
    for i, g in enumerate(graphs):   # test tags: two "languages", parallel pairs, two concepts
        g.tags = {"lang": "en" if i % 2 == 0 else "fr", "item": str(i // 2),
                  "concept": "weather" if i < 8 else "other", "set": "real"}
    labelled = graphs[0].nodes[:0]
    for g in graphs:                 # a few labels to search for
        for n in g.nodes:
            if n.kind == "feature" and n.layer == 20 and n.pos == len(g.prompt_tokens) - 1:
                n.label = "Say a Temperature word"
                labelled.append(n)
    assert labelled
    return graphs


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(request, tmp_path_factory):
    from circuit_atlas.store import open_store
    graphs = load_graphs(FIXTURES.glob("*.json.gz"))
    uri = empty_store(request, request.param, tmp_path_factory.mktemp("atlas"))
    with open_store(uri) as store:
        for g in graphs:
            assert store.add_graph(g)
        yield store, graphs


def approx(x):
    return pytest.approx(x, rel=1e-4, abs=1e-6)


def assert_sorted(rows, key):
    keys = [key(r) for r in rows]
    assert keys == sorted(keys), "rows are not in the documented order"


def top_feature(graphs):
    return max(ref.hubs_by_graphs(graphs, 1).items(), key=lambda kv: (kv[1]["n_graphs"], kv[1]["n_occurrences"]))[0]


# --- hubs -------------------------------------------------------------------------------------------

def test_hubs_by_graphs(corpus):
    store, graphs = corpus
    rows = queries.run(store, "hubs-by-graphs", min_graphs=2, limit=ALL)
    want = ref.hubs_by_graphs(graphs, 2)
    assert {r["fkey"] for r in rows} == set(want)
    for r in rows:
        assert (r["n_graphs"], r["n_occurrences"]) == (want[r["fkey"]]["n_graphs"], want[r["fkey"]]["n_occurrences"])
        assert r["mean_activation"] == approx(want[r["fkey"]]["mean_activation"])
    assert_sorted(rows, lambda r: (-r["n_graphs"], -r["n_occurrences"], r["fkey"]))
    assert rows[0]["n_graphs"] == len(graphs)   # some features occur in every graph
    assert len(queries.run(store, "hubs-by-graphs", limit=5)) == 5
    positions = ref.hub_positions(graphs)
    for r in rows:
        p = positions[r["fkey"]]
        assert r["position_share"] == approx(p["position_share"]) and r["on_bos"] == p["on_bos"]
        assert r["specificity"] == approx(1 - p["position_share"])
        assert r["graph_share"] == approx(r["n_graphs"] / len(graphs))
        assert r["idf"] == approx(math.log(len(graphs) / r["n_graphs"]))
    # template features sit on most positions; the specific ranking puts features on one position first
    specific = queries.run(store, "hubs-by-graphs", rank_by="specificity", limit=ALL)
    assert_sorted(specific, lambda r: (-r["n_graphs"] * r["specificity"], -r["n_occurrences"], r["fkey"]))
    assert rows[0]["position_share"] > 0.5 > specific[0]["position_share"]
    kept = queries.run(store, "hubs-by-graphs", max_position_share=0.5, limit=ALL)
    assert {r["fkey"] for r in kept} == {r["fkey"] for r in rows if positions[r["fkey"]]["position_share"] <= 0.5}


def test_hubs_leave_out_features_on_bos(tmp_path):
    """Synthetic graphs put features on position 0 (real circuit-tracer graphs never do)."""
    from circuit_atlas.store import open_store
    from circuit_atlas.synthetic import synthetic_graph
    graphs = [synthetic_graph(seed, n_nodes=150, n_edges=300, n_feature_ids=300) for seed in range(12)]
    positions = ref.hub_positions(graphs)
    with open_store(str(tmp_path / "atlas.db")) as store:
        store.add_graphs(graphs)
        every = queries.run(store, "hubs-by-graphs", limit=ALL)
        kept = queries.run(store, "hubs-by-graphs", skip_bos=True, limit=ALL)
    assert any(r["on_bos"] for r in every)
    assert {r["fkey"] for r in kept} == {k for k, p in positions.items() if p["n_graphs"] >= 2 and not p["on_bos"]}


def test_hubs_by_weight(corpus):
    store, graphs = corpus
    rows = queries.run(store, "hubs-by-weight", limit=ALL)
    want = ref.hubs_by_weight(graphs)
    assert {r["fkey"] for r in rows} == set(want)
    for r in rows:
        w = want[r["fkey"]]
        assert (r["n_graphs"], r["n_edges"]) == (w["n_graphs"], w["n_edges"])
        assert r["total_abs_weight"] == approx(w["total_abs_weight"])
    assert_sorted(rows, lambda r: -r["total_abs_weight"])


def test_hubs_by_influence(corpus):
    store, graphs = corpus
    rows = queries.run(store, "hubs-by-influence", limit=ALL)
    want = ref.hubs_by_influence(graphs)
    assert {r["fkey"] for r in rows} == set(want)
    for r in rows:
        w = want[r["fkey"]]
        assert r["n_graphs"] == w["n_graphs"]
        assert r["importance"] == approx(w["importance"]) and r["best_influence"] == approx(w["best_influence"])
    assert_sorted(rows, lambda r: -r["importance"])


# --- search -----------------------------------------------------------------------------------------

def test_search_features(corpus):
    store, graphs = corpus
    rows = queries.run(store, "search-features", text="temperature", limit=ALL)
    want = ref.search_features(graphs, "temperature")
    assert want and {r["fkey"]: r["n_graphs"] for r in rows} == want
    assert all("temperature" in r["label"].lower() for r in rows)
    assert queries.run(store, "search-features", text="no such label anywhere") == []


@pytest.mark.parametrize("text,tags", [("", []), ("ice", []), ("", ["lang=fr"]), ("is to", ["lang=en", "concept=weather"]),
                                       ("", ["lang=en", "lang=fr"])])
def test_search_graphs(corpus, text, tags):
    store, graphs = corpus
    rows = queries.run(store, "search-graphs", text=text, tags=tags, limit=ALL)
    assert {r["gid"] for r in rows} == ref.search_graphs(graphs, text, tags)
    for r in rows:
        assert set(r["tags"]) >= set(tags)


def test_search_graphs_from_cli_strings(corpus):
    store, graphs = corpus
    rows = queries.run(store, "search-graphs", {"tags": "lang=fr,concept=weather", "limit": "3"})
    assert len(rows) == 3 and all({"lang=fr", "concept=weather"} <= set(r["tags"]) for r in rows)


# --- feature profile --------------------------------------------------------------------------------

def test_feature_graphs_and_neighbours(corpus):
    store, graphs = corpus
    fkey = top_feature(graphs)
    rows = queries.run(store, "feature-graphs", fkey=fkey)
    want = ref.feature_graphs(graphs, fkey)
    assert {r["gid"] for r in rows} == set(want)
    for r in rows:
        assert r["n_occurrences"] == want[r["gid"]]["n_occurrences"]
        assert r["max_activation"] == approx(want[r["gid"]]["max_activation"])
        assert r["best_influence"] == approx(want[r["gid"]]["best_influence"])
    for name, direction in (("feature-upstream", "up"), ("feature-downstream", "down")):
        rows = queries.run(store, name, fkey=fkey, limit=ALL)
        want = ref.neighbours(graphs, fkey, direction)
        got = {(r["kind"], r["layer"], r["fkey"], r["token"]): r for r in rows}
        assert set(got) == set(want), name
        for k, r in got.items():
            assert (r["n_edges"], r["n_graphs"]) == (want[k]["n_edges"], want[k]["n_graphs"])
            assert r["total_weight"] == approx(want[k]["total_weight"])
            assert r["total_abs_weight"] == approx(want[k]["total_abs_weight"])
        assert_sorted(rows, lambda r: -r["total_abs_weight"])


def test_feature_profile(corpus):
    store, graphs = corpus
    fkey = top_feature(graphs)
    [row] = queries.run(store, "feature-profile", fkey=fkey, top=3)
    acts = ref.activations(graphs, fkey)
    assert row["n_occurrences"] == len(acts) and row["n_graphs"] == len(ref.feature_graphs(graphs, fkey))
    assert row["activation"]["min"] == approx(acts[0]) and row["activation"]["max"] == approx(acts[-1])
    assert row["activation"]["mean"] == approx(sum(acts) / len(acts))
    assert len(row["graphs"]) == len(row["upstream"]) == len(row["downstream"]) == 3
    with pytest.raises(queries.QueryError, match="no feature"):
        queries.run(store, "feature-profile", fkey="no/such/feature")
    short = fkey.split("/", fkey.count("/") - 1)[-1]             # "<layer>/<index>", as path rows print it
    with pytest.raises(queries.QueryError, match=f'no feature "{short}" in the store; keys are whole, '
                                                 f'did you mean .*"{re.escape(fkey)}"'):
        queries.run(store, "feature-profile", fkey=short)


# --- graph diff -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sets", ["graphs", "tags"])
def test_graph_diff(corpus, sets):
    store, graphs = corpus
    if sets == "graphs":
        a, b, ga, gb = graphs[1].id, graphs[4].slug, [graphs[1]], [graphs[4]]
    else:
        a, b = "lang=en", "lang=fr"
        ga, gb = [g for g in graphs if g.tags["lang"] == "en"], [g for g in graphs if g.tags["lang"] == "fr"]
    rows = queries.run(store, "graph-diff", a=a, b=b, limit=ALL)
    want = ref.graph_diff(ga, gb)
    got = {(r["item"], r["key"]): r for r in rows}
    assert set(got) == set(want)
    for k, r in got.items():
        va, vb = want[k]
        assert r["status"] == ("both" if va is not None and vb is not None else "only_a" if va is not None else "only_b")
        assert (r["a"] is None) == (va is None) and (r["b"] is None) == (vb is None)
        assert r["change"] == pytest.approx((vb or 0.0) - (va or 0.0), rel=1e-4, abs=1e-4)
    assert {r["item"] for r in rows} == {"feature", "node", "edge"}
    for r in rows:                   # feature rows show the feature's label
        assert r["label"] == (queries.run(store, "_labels-of", keys=[r["key"]])[0]["label"] if r["item"] == "feature" else None)
    with pytest.raises(queries.QueryError, match="names no graph"):
        queries.run(store, "graph-diff", a="nope=nothing", b=b)


# --- multilingual -----------------------------------------------------------------------------------

def test_shared_multilingual_features(corpus):
    store, graphs = corpus
    rows = queries.run(store, "shared-multilingual-features", concept="weather", k=2, limit=ALL)
    want = ref.shared_multilingual(graphs, "weather", 2)
    assert want and {r["fkey"] for r in rows} == set(want)
    for r in rows:
        per = {p["lang"]: p for p in r["per_lang"]}
        assert r["n_langs"] == len(per) and set(per) == set(want[r["fkey"]])
        for lang, p in per.items():
            w = want[r["fkey"]][lang]
            assert p["n_graphs"] == w["n_graphs"]
            assert p["activation"] == approx(w["activation"]) and p["influence"] == approx(w["influence"])
    assert queries.run(store, "shared-multilingual-features", concept="weather", k=3) == []
    shares = ref.consistency(graphs, "weather")
    for r in rows:
        assert (r["consistency"], r["mean_share"]) == approx(shares[r["fkey"]])
        for p in r["per_lang"]:
            assert p["share"] == approx(p["n_graphs"] / sum(g.tags == {**g.tags, "concept": "weather", "lang": p["lang"]}
                                                          for g in graphs))
    assert_sorted(rows, lambda r: (-r["consistency"], -r["mean_share"], r["layer"], r["fkey"]))
    assert rows[0]["consistency"] == 1.0 and rows[-1]["consistency"] < 1.0


@pytest.mark.parametrize("point_lookups", [0, 10**6], ids=["one-scan", "key-by-key"])
def test_feature_labels_key_by_key_or_in_one_scan(corpus, monkeypatch, point_lookups):
    """analyses.feature_labels looks few keys up one by one: the rows of _labels-of either way, and the
    labels shared-multilingual-features shows are the features' own."""
    from circuit_atlas.queries import analyses
    store, graphs = corpus
    monkeypatch.setattr(analyses, "POINT_LOOKUPS", point_lookups)
    keys = sorted({g.feature_key(n) for g in graphs for n in g.nodes} - {None})
    want = sorted(queries.run(store, "_labels-of", keys=keys), key=lambda r: r["fkey"])
    assert len(want) == len(keys) and any(r["label"] for r in want)
    assert sorted(analyses.feature_labels(store, keys + ["no/such/1", None]), key=lambda r: r["fkey"]) == want
    shown = {r["fkey"]: r["label"] for r in want}
    rows = queries.run(store, "shared-multilingual-features", concept="weather", k=1, limit=ALL)
    assert rows and all(r["label"] == shown[r["fkey"]] for r in rows)


def test_multilingual_iou(corpus):
    store, graphs = corpus
    rows = queries.run(store, "multilingual-iou")
    want = ref.multilingual_iou(graphs)
    got = {(r["lang_a"], r["lang_b"], r["layer"]): r for r in rows}
    assert set(got) == set(want)
    for k, r in got.items():
        assert r["iou"] == approx(want[k][0]) and r["baseline"] == approx(want[k][1])
        assert 0.0 <= r["depth"] <= 1.0 if r["layer"] is not None else r["depth"] is None
    assert {r["n_pairs"] for r in rows} == {5}   # 5 items, each an en/fr pair
    assert [r["layer"] for r in rows][-1] is None  # the whole-graph row follows the pair's layers


def test_plot_multilingual(corpus, tmp_path, monkeypatch):
    """plot_iou writes PNG and SVG of the figure whose points are the IoU rows (checked on the figure itself)."""
    from matplotlib.figure import Figure

    from circuit_atlas.queries.multilingual import plot_iou
    store, graphs = corpus
    saved, savefig = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, path, **kw: (saved.append((fig, path)), savefig(fig, path, **kw)))
    rows = queries.run(store, "multilingual-iou")
    paths = plot_iou(rows, tmp_path / "iou")
    assert [p.suffix for p in paths] == [".png", ".svg"] and [p for _, p in saved] == paths
    assert all(p.stat().st_size > 0 for p in paths)
    ax = saved[0][0].axes[0]
    want = ref.multilingual_iou(graphs)
    n_layers = max(g.n_layers for g in graphs)
    (line,) = [l for l in ax.lines if l.get_linestyle() == "-" and len(l.get_xdata())]     # en-fr, solid
    points = sorted(zip(line.get_xdata(), line.get_ydata()))
    assert points == [(approx(layer / (n_layers - 1)), approx(iou)) for (_, _, layer), (iou, _) in
                      sorted((kv for kv in want.items() if kv[0][2] is not None), key=lambda kv: kv[0][2])]
    assert ax.get_xlabel() == "normalised layer depth" and ax.get_ylabel().startswith("IoU of active features")
    svg = paths[1].read_text()                           # the SVG keeps each text as a comment
    for text in ("normalised layer depth", ax.get_ylabel(), f"en–fr ({len(graphs) // 2} pairs)",
                 "unrelated prompts (baseline)"):
        assert f"<!-- {text} -->" in svg, text


def test_plot_multilingual_says_what_it_shows_with_error_bars_over_pairs(corpus):
    import statistics

    from matplotlib.container import ErrorbarContainer

    from circuit_atlas.queries.multilingual import iou_figure
    store, graphs = corpus
    rows = queries.run(store, "multilingual-iou", concept="weather")
    pair_ious = ref.multilingual_pair_ious([g for g in graphs if g.tags.get("concept") == "weather"])
    models = sorted({g.model for g in graphs if g.tags.get("concept") == "weather"})
    fig = iou_figure(rows, concept="weather")
    ax = fig.axes[0]
    n_pairs = sum({(r["lang_a"], r["lang_b"]): r["n_pairs"] for r in rows}.values())
    title = ax.get_title()
    assert "concept weather" in title and f"{n_pairs} parallel pairs" in title
    assert all(m in title for m in models)
    assert "s.e." in ax.get_ylabel() and ax.get_xlabel() == "normalised layer depth"
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == len({(r["lang_a"], r["lang_b"]) for r in rows})
    for bar in bars:
        line, _, (segments,) = bar.lines
        pair = tuple(bar.get_label().split(" ")[0].split("–"))
        for x, y, seg in zip(line.get_xdata(), line.get_ydata(), segments.get_segments()):
            layer = next(r["layer"] for r in rows if (r["lang_a"], r["lang_b"]) == pair and r["depth"] == approx(x))
            ious = pair_ious[(*pair, layer)]
            assert y == approx(statistics.mean(ious))                                   # the plotted mean
            half = (seg[1][1] - seg[0][1]) / 2                                          # ±1 s.e. over pairs
            assert half == approx(statistics.stdev(ious) / len(ious) ** 0.5 if len(ious) > 1 else 0.0)
    assert any(half > 0 for bar in bars for seg in bar.lines[2][0].get_segments()
               for half in [(seg[1][1] - seg[0][1]) / 2])


# --- common paths -----------------------------------------------------------------------------------

@pytest.mark.parametrize("hops,min_weight,token,tag,sign", [
    (2, 1.0, "", "", "excitatory"), (3, 1.0, "", "", "excitatory"), (4, 1.0, "", "", "excitatory"),
    (3, 0.5, " cold", "", "excitatory"), (3, 1.0, "", "lang=fr", "excitatory"),
    (2, 1.0, "", "", "inhibitory"), (3, 1.0, "", "", "inhibitory"), (3, 1.0, "", "", "all")])
def test_common_paths(corpus, hops, min_weight, token, tag, sign):
    store, graphs = corpus
    rows = queries.run(store, "common-paths", hops=hops, min_weight=min_weight, token=token, tag=tag, sign=sign,
                       limit=ALL)
    want = ref.common_paths(graphs, hops, min_weight, token, tag, sign)
    assert want, "the case should find paths"
    got = {(r["start_token"], *(r[f"f{i}"] for i in range(1, hops)), r["end_token"], r["signs"]): r for r in rows}
    assert len(got) == len(rows) and set(got) == set(want)
    for k, r in got.items():
        for col in ("n_graphs", "n_paths"):
            assert r[col] == want[k][col]
        for col in ("mean_strength", "max_strength", "max_bottleneck"):
            assert r[col] == approx(want[k][col])
    assert_sorted(rows, lambda r: (-r["n_graphs"], -abs(r["mean_strength"])))
    by_min = queries.run(store, "common-paths", hops=hops, min_weight=min_weight, token=token, tag=tag, sign=sign,
                         rank_by="min", limit=ALL)
    assert_sorted(by_min, lambda r: (-r["n_graphs"], -r["max_bottleneck"]))
    if sign == "all":     # double inhibitions are net excitatory: only "all" has them
        assert any(r["signs"].count("-") == 2 and r["mean_strength"] > 0 for r in rows)


def test_common_paths_bad_hops_and_weights(corpus):
    with pytest.raises(queries.QueryError, match="hops"):
        queries.run(corpus[0], "common-paths", hops=5)
    for weight in (-1.0, float("nan")):
        with pytest.raises(queries.QueryError, match="min_weight=.*never negative"):
            queries.run(corpus[0], "common-paths", min_weight=weight)


# --- supernodes -------------------------------------------------------------------------------------

def test_supernode_inputs_match_plain_python(corpus):
    store, graphs = corpus
    options = sn.SupernodeOptions(min_graphs=3, min_weight=0.5)
    got = sn.load_corpus(store, options)
    want_graphs, want_profiles = ref.supernode_inputs(graphs, 3, 0.5)
    assert set(got.keys) == set(want_graphs)
    for k in got.keys:
        assert set(got.graphs[k]) == set(want_graphs[k])
        assert [got.graphs[k][g] for g in sorted(got.graphs[k])] == approx([want_graphs[k][g] for g in sorted(want_graphs[k])])
        assert set(got.profiles[k]) == set(want_profiles[k])
        assert [got.profiles[k][p] for p in sorted(got.profiles[k])] == \
            pytest.approx([want_profiles[k][p] for p in sorted(want_profiles[k])], rel=1e-4, abs=1e-3)


def test_proposed_supernodes_are_stored_and_sensible(corpus):
    store, graphs = corpus
    rows = queries.run(store, "propose-supernodes", min_graphs=3)
    assert len(rows) >= 2
    options = sn.SupernodeOptions(min_graphs=3)
    c = sn.load_corpus(store, options)
    sim = sn.similarity(c, options)
    rng = random.Random(0)
    random_groups = [rng.sample(c.keys, len(r["members"])) for r in rows for _ in range(5)]
    baseline = sum(sn.score(g, c, sim)["coherence"] for g in random_groups) / len(random_groups)
    for r in rows:   # members play the same role far more than random features do
        assert r["coherence"] > 2 * baseline
        assert 3 <= r["n_graphs"] <= len(graphs) and r["influence"] > 0
    stored = queries.run(store, "supernodes", source="proposed", limit=ALL)
    assert {s["id"]: sorted(s["members"]) for s in stored} == {r["id"]: r["members"] for r in rows}
    assert queries.run(store, "propose-supernodes", min_graphs=3) == rows          # reproducible
    assert len(queries.run(store, "supernodes", source="proposed", limit=ALL)) == len(rows)   # replaced, not added


def test_import_manual_supernodes(corpus):
    store, graphs = corpus
    g = graphs[0]
    feats = [n for n in g.nodes if n.kind == "feature"][:3]
    g.extra["qParams"] = {"supernodes": [["my group", *(n.node_id for n in feats), "E_2_0"], ["empty", "nope"]]}
    assert sn.import_manual(store, [g]) == 1          # the second names no node of the graph
    [row] = queries.run(store, "supernodes", source="neuronpedia")
    assert row["name"] == "my group" and row["gid"] == g.id and row["n_graphs"] == 1
    assert sorted(row["members"]) == sorted({g.feature_key(n) for n in feats})
    assert sn.import_manual(store, [g]) == 1          # idempotent
    assert len(queries.run(store, "supernodes", source="neuronpedia")) == 1


# --- the full real corpus ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not FULL_CORPUS.is_dir(), reason=f"the 57-graph corpus is not at {FULL_CORPUS}")
def test_full_real_corpus(tmp_path):
    from circuit_atlas.store import open_store
    graphs = load_graphs(FULL_CORPUS.glob("*.json"))
    assert len(graphs) == 57
    with open_store(str(tmp_path / "atlas.db")) as store:
        for g in graphs:
            store.add_graph(g)
        rows = queries.run(store, "hubs-by-graphs", limit=ALL)
        want = ref.hubs_by_graphs(graphs, 2)
        assert {r["fkey"]: r["n_graphs"] for r in rows} == {k: v["n_graphs"] for k, v in want.items()}
        rows = queries.run(store, "common-paths", hops=3, min_weight=1.0, limit=ALL)
        want = ref.common_paths(graphs, 3, 1.0)
        assert {(r["start_token"], r["f1"], r["f2"], r["end_token"], r["signs"]): r["n_graphs"] for r in rows} == \
            {k: v["n_graphs"] for k, v in want.items()}
        got = {(r["lang_a"], r["lang_b"], r["layer"]): r["iou"] for r in queries.run(store, "multilingual-iou")}
        assert got == {k: approx(v[0]) for k, v in ref.multilingual_iou(graphs).items()}


def test_supernodes_are_named_from_the_corpus(corpus):
    """Name = layers, the two tokens the members sit on most (special tokens left out), the logit they drive most."""
    import json as _json
    from collections import Counter
    store, graphs = corpus
    rows = queries.run(store, "propose-supernodes", min_graphs=3, dry_run=True)
    evidence = ref.label_evidence(graphs)
    for r in rows:
        inputs, logits = Counter(), Counter()
        for m in r["members"]:
            inputs.update({t: n for t, n in evidence[m][0].items() if not (t.startswith("<") and t.endswith(">"))})
            logits.update(evidence[m][1])
        read = "/".join(_json.dumps(t) for t, _ in sorted(inputs.items(), key=lambda kv: (-kv[1], kv[0]))[:2])
        driven = sorted((t for t in logits if logits[t] > 0), key=lambda t: (-logits[t], t))
        say = f"say {_json.dumps(driven[0])}" if driven else "no logit edge"
        layers = sorted(int(m.split("/")[-2]) for m in r["members"])
        span = f"layer {layers[0]}" if layers[0] == layers[-1] else f"layers {layers[0]}-{layers[-1]}"
        assert r["name"] == f"{span} · {read} → {say}"
        assert "<bos>" not in r["name"] and "?" not in r["name"]
    assert {r["name"].split(" ")[0] for r in rows} == {"layer", "layers"}     # a one-layer group reads "layer 0"


def test_cli_supernodes_propose_json_has_members(tmp_path):
    from click.testing import CliRunner
    from circuit_atlas.cli import main
    from circuit_atlas.store import open_store
    path = str(tmp_path / "atlas.db")
    with open_store(path) as store:
        store.add_graphs(load_graphs(sorted(FIXTURES.glob("*.json.gz"))[:4]))
    out = CliRunner().invoke(main, ["--store", path, "supernodes", "propose", "-p", "min_graphs=2", "--format", "json"])
    assert out.exit_code == 0, out.output
    proposed = json.loads(out.stdout)
    assert proposed and all(len(r["members"]) == r["n_members"] >= 2 for r in proposed)
    with open_store(path, read_only=True) as store:
        stored = {r["id"]: sorted(r["members"]) for r in queries.run(store, "supernodes", limit=ALL)}
    assert stored == {r["id"]: r["members"] for r in proposed}


# --- cases the corpus above cannot tell apart (issue 14) -----------------------------------------

@pytest.mark.parametrize("concept", ["weather", "other"])
def test_multilingual_iou_of_one_concept(corpus, concept):
    store, graphs = corpus
    mine = [g for g in graphs if g.tags.get("concept") == concept]
    want = ref.multilingual_iou(mine)
    rows = queries.run(store, "multilingual-iou", concept=concept)
    got = {(r["lang_a"], r["lang_b"], r["layer"]): r for r in rows}
    assert set(got) == set(want)
    for k, r in got.items():
        assert r["iou"] == approx(want[k][0]), k
        assert r["baseline"] == (None if want[k][1] is None else approx(want[k][1])), k
    assert {r["n_pairs"] for r in rows} == {len(mine) // 2}


@pytest.mark.parametrize("max_pairs", [3, 6, 19, 20, 2000])
def test_multilingual_iou_baseline_takes_at_most_max_pairs(corpus, max_pairs):
    """20 unrelated en/fr pairs: thinned to every k-th pair when max_pairs is smaller, whole otherwise."""
    store, graphs = corpus
    pairs = ref.thinned_baseline_pairs(graphs, "en", "fr", max_pairs)
    assert len(pairs) == {3: 3, 6: 5, 19: 10, 20: 20, 2000: 20}[max_pairs]
    rows = queries.run(store, "multilingual-iou", max_pairs=max_pairs)
    assert rows and all(r["n_baseline_pairs"] == len(pairs) for r in rows)
    for r in rows:
        assert r["baseline"] == approx(ref.mean_iou(pairs, r["layer"])), r["layer"]


def test_iou_standard_error_from_two_pairs_on():
    """The error bar is the sample standard deviation over sqrt(n), defined from two pairs on
    (mutation survivor: `n < 2` -> `n <= 2`)."""
    import statistics

    from circuit_atlas.queries.multilingual import _sem
    for values in ([0.2, 0.4], [0.1, 0.5, 0.3]):
        assert _sem(values) == pytest.approx(statistics.stdev(values) / len(values) ** 0.5)
    assert _sem([0.3]) is None

