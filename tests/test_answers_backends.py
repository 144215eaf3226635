"""The readable answers (labels, signed paths, rankings, exports) on both store backends, embedded and a
real Neo4j server, each against the plain-Python computations of tests/queries_reference.py."""
from __future__ import annotations

import math

from circuit_atlas import queries
from circuit_atlas.queries import labels
from tests import queries_reference as ref
from tests.test_paths_real import DALLAS
from tests.test_queries import ALL, FIXTURES, approx, load_graphs


def test_answers_on_each_backend(store_uri, tmp_path):
    from circuit_atlas.ingest.formats import read_graph_file
    from circuit_atlas.queries.views import export_view
    from circuit_atlas.store import open_store

    graphs = load_graphs(sorted(FIXTURES.glob("*.json.gz"))[:6])
    dallas = read_graph_file(DALLAS)
    everything = [dallas, *graphs]
    (tmp_path / "mine.csv").write_text("layer,index,label\n20,15589,Texas\n")
    with open_store(store_uri) as store:
        store.add_graphs(everything)
        made = labels.auto_labels(store)
        evidence = ref.label_evidence(everything)
        assert set(made) == set(evidence)
        assert all(made[k]["text"] == ref.auto_label_text(*evidence[k]) for k in made)
        labels.import_labels(store, tmp_path / "mine.csv", dallas.transcoder_set)
        texas = f"{dallas.transcoder_set}/20/15589"
        assert queries.run(store, "_labels-of", keys=[texas])[0]["label"] == "Texas"
        assert [r["fkey"] for r in queries.run(store, "search-features", text="texas", limit=3)][0] == texas

        for hops, sign in ((2, "excitatory"), (3, "all"), (3, "inhibitory"), (4, "excitatory")):
            rows = queries.run(store, "common-paths", hops=hops, sign=sign, limit=ALL)
            want = ref.common_paths(everything, hops, 1.0, sign=sign)
            got = {(r["start_token"], *(r[f"f{i}"] for i in range(1, hops)), r["end_token"], r["signs"]): r for r in rows}
            assert set(got) == set(want), (hops, sign)
            for k, r in got.items():
                assert r["mean_strength"] == approx(want[k]["mean_strength"]) and r["n_graphs"] == want[k]["n_graphs"]
        top = queries.run(store, "common-paths", hops=3, token=" Austin", limit=5)
        assert any("[Texas]" in r["path"] and r["path"].startswith('" Dallas" → ') for r in top)

        positions = ref.hub_positions(everything)
        for r in queries.run(store, "hubs-by-graphs", limit=ALL):
            assert r["position_share"] == approx(positions[r["fkey"]]["position_share"])
            assert r["idf"] == approx(math.log(len(everything) / r["n_graphs"]))
        shares = ref.consistency(graphs, "weather")
        rows = queries.run(store, "shared-multilingual-features", concept="weather", limit=ALL)
        assert rows and all((r["consistency"], r["mean_share"]) == approx(shares[r["fkey"]]) for r in rows)
        got = {(r["lang_a"], r["lang_b"], r["layer"]): r["iou"] for r in queries.run(store, "multilingual-iou")}
        assert got == {k: approx(v[0]) for k, v in ref.multilingual_iou(graphs).items()}

        proposed = queries.run(store, "propose-supernodes", min_graphs=3)
        assert proposed and all("<bos>" not in r["name"] for r in proposed)
        view = export_view(store, dallas.slug, query="common-paths", params={"token": " Austin", "limit": 3})
        assert view.id == dallas.id and view.extra["qParams"]["pinnedIds"]
        assert "no logit token" in queries.explain_empty(store, "common-paths", {"token": "Austin"})


def test_an_untagged_graph_lists_no_tags(store_uri):
    """collect() over no match is [] in Cypher (so Neo4j); the embedded engine gives null, and
    queries.run gives [] for every collect() column on both."""
    from circuit_atlas.store import open_store

    graph = load_graphs(FIXTURES.glob("*.json.gz"))[0]
    graph.tags = {}
    with open_store(store_uri) as store:
        store.add_graphs([graph])
        assert [r["tags"] for r in queries.run(store, "search-graphs")] == [[]]
