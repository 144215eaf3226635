"""The README's main job: `circuit-atlas demo` traces, stores and queries on either backend."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from circuit_atlas.cli import main
from circuit_atlas.store import open_store
from tests import queries_reference as ref


def test_demo_traces_stores_and_reports_shared_features(store_uri):
    result = CliRunner().invoke(main, ["--store", store_uri, "demo", "--tasks", "antonym", "--per-language", "2"])
    assert result.exit_code == 0, result.output
    assert "6 new, 0 already present" in result.output
    with open_store(store_uri, read_only=True) as store:
        rows = store.query("MATCH (g:Graph)-[:TAGGED]->(t:Tag {key: 'lang'}) RETURN t.value AS lang, count(*) AS n")
        graphs = [store.get_graph(r["id"]) for r in store.query("MATCH (g:Graph) RETURN g.id AS id")]
    assert sorted((r["lang"], r["n"]) for r in rows) == [("en", 2), ("fr", 2), ("kl", 2)]
    # the numbers it prints are the plain-Python answers over the graphs it stored
    shared = ref.shared_multilingual(graphs, "antonym", 3)
    assert f"concept=antonym: {len(shared)} features occur in all 3 languages" in result.output
    lines = [line.split() for line in result.output.splitlines()]
    for (la, lb, layer), (iou, baseline) in ref.multilingual_iou(graphs).items():
        row = next(cells for cells in lines if cells[:2] == [f"{la}-{lb}", "all" if layer is None else str(layer)])
        assert float(row[2]) == pytest.approx(iou, abs=6e-4), (la, lb, layer)
        assert (row[3:] == ["None"] or not row[3:]) if baseline is None else \
            float(row[3]) == pytest.approx(baseline, abs=6e-4), (la, lb, layer)

    again = CliRunner().invoke(main, ["--store", store_uri, "demo", "--tasks", "antonym", "--per-language", "2"])
    assert again.exit_code == 0, again.output
    assert "0 new, 6 already present" in again.output


def test_demo_names_the_prompt_sets_it_has(tmp_path):
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "a.db"), "demo", "--tasks", "poetry"])
    assert result.exit_code != 0
    assert "antonym" in result.output and "poetry" in result.output
