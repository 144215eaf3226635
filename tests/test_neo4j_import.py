"""A first load through neo4j-admin (`circuit-atlas ingest --neo4j-import DIR`) gives the same store as
ingest through Bolt: every graph reads back equal, and every library query answers as on the embedded
store (itself equal to Neo4j through Bolt: test_backends_agree.py). The importer refuses a database
that exists and a running server, changing nothing."""
from __future__ import annotations

import dataclasses
import json
import secrets

import pytest
from click.testing import CliRunner

from circuit_atlas.cli import main
from circuit_atlas.ingest.formats import read_graph_file
from circuit_atlas.ingest.write import write_graph_json
from circuit_atlas.queries import labels
from circuit_atlas.store import neo4j_server, open_store
from circuit_atlas.store.aggregates import FEATURE_AGGREGATES
from circuit_atlas.synthetic import synthetic_graph
from tests.backends import empty_store
from tests.test_aggregates import assert_exact, close, corpus, stored
from tests.test_backends_agree import answers, differences, parameter_sets
from tests.test_formats import assert_same_graph
from tests.test_queries import FIXTURES, load_graphs

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


def awkward_graph(g):
    """`g` with values that CSV can get wrong: commas, quotes, newlines, empty strings, non-ASCII, in
    the prompt, its tokens (a string list), labels and tags."""
    odd = ['x,y', '"q"', "two\nlines", "", "ünï ✓"]
    nodes = [dataclasses.replace(n, label=odd[i % 5]) for i, n in enumerate(g.nodes)]
    tokens = [odd[i % 5] if i else t for i, t in enumerate(g.prompt_tokens)]
    return dataclasses.replace(g, prompt='He said, "hi"\nthen left', nodes=nodes, prompt_tokens=tokens,
                               tags={"note": 'a, "quoted"\nvalue', "lang": "ü"})


def test_import_equals_bolt_ingest(request, tmp_path, monkeypatch):
    files = tmp_path / "graphs"
    files.mkdir()
    real = load_graphs(FIXTURES.glob("*.json.gz"))
    manifest, graphs = [], []
    for i, g in enumerate(real + [awkward_graph(real[0])]):
        write_graph_json(g, files / f"{i:02d}.json")
        manifest.append(json.dumps({"file": f"graphs/{i:02d}.json", "tags": g.tags}))
        graphs.append(read_graph_file(files / f"{i:02d}.json"))                # what both loads read
        graphs[-1].tags.update(g.tags)
    (tmp_path / "tags.jsonl").write_text("\n".join(manifest) + "\n")
    home = tmp_path / "neo4j"
    out = CliRunner().invoke(main, ["ingest", str(files), "--manifest", str(tmp_path / "tags.jsonl"),
                                    "--neo4j-import", str(home)])
    assert out.exit_code == 0, out.output
    assert f"{len(graphs)} new graphs" in out.output

    again = CliRunner().invoke(main, ["ingest", str(files), "--neo4j-import", str(home)])
    assert again.exit_code == 1 and "already exists" in again.output       # never over data unasked

    with open_store(empty_store(request, "embedded", tmp_path)) as store:
        assert all(store.add_graphs(graphs))
        labels.auto_labels(store)
        stored = {gid: store.get_graph(gid) for gid in store.existing_graphs([g.id for g in graphs])}
        params = parameter_sets(store, graphs[:-1])
        embedded = answers(store, params)

    password = secrets.token_hex(12)
    server = neo4j_server.start(home, password, log=lambda msg: None)
    try:
        for prefix in ("", "CIRCUIT_ATLAS_"):        # the session server's CIRCUIT_ATLAS_ names would win
            monkeypatch.setenv(f"{prefix}NEO4J_USER", server.user)
            monkeypatch.setenv(f"{prefix}NEO4J_PASSWORD", password)
        busy = CliRunner().invoke(main, ["ingest", str(files), "--neo4j-import", str(home), "--overwrite"])
        assert busy.exit_code == 1 and "stop it first" in busy.output
        with open_store(server.uri) as store:
            assert len(stored) == len(graphs)
            for gid, expected in stored.items():
                assert_same_graph(store.get_graph(gid), expected)
                assert store.get_graph(gid).tags == expected.tags
            assert_exact(store)                                       # Feature aggregates, Path rows, Graph.features
            labels.auto_labels(store)
            imported = answers(store, params)
            store.add_graph(synthetic_graph(5, n_nodes=50, n_edges=200))   # Bolt writes go on after an import
            uids = store.query("MATCH (n:Node) RETURN count(*) AS n, count(DISTINCT n.uid) AS d")[0]
            assert uids["n"] == uids["d"]
    finally:
        neo4j_server.stop(home, grace_s=30)
    problems = differences(embedded, imported)
    assert not problems, f"{len(problems)} of {len(embedded)} answers differ:\n" + "\n".join(problems[:40])


def test_import_keeps_the_aggregates_exact_across_batches(request, tmp_path, monkeypatch):
    """Features recur across the CSV batches: each gets one row with the batches' aggregates summed,
    equal to the from-scratch reference and to the embedded store's; a Bolt delete then subtracts."""
    from circuit_atlas.store.neo4j_import import run_import, write_csv

    graphs = corpus(9, seed=11)
    home = tmp_path / "neo4j"
    files = write_csv([graphs[i:i + 3] for i in range(0, len(graphs), 3)] + [graphs[:2]], tmp_path / "csv")
    assert files.graphs == len(graphs) and files.parts.get("Path")
    run_import(home, files)
    with open_store(empty_store(request, "embedded", tmp_path)) as store:
        store.add_graphs(graphs)
        embedded = stored(store)
    password = secrets.token_hex(12)
    server = neo4j_server.start(home, password, log=lambda msg: None)
    try:
        for prefix in ("", "CIRCUIT_ATLAS_"):        # the session server's CIRCUIT_ATLAS_ names would win
            monkeypatch.setenv(f"{prefix}NEO4J_USER", server.user)
            monkeypatch.setenv(f"{prefix}NEO4J_PASSWORD", password)
        with open_store(server.uri) as store:
            assert_exact(store)
            feats, paths, tables = stored(store)
            assert (paths, tables) == embedded[1:] and set(feats) == set(embedded[0])
            for key, row in feats.items():
                assert all(close(row[a], embedded[0][key][a]) for a in FEATURE_AGGREGATES), (row, embedded[0][key])
            store.delete_graphs([graphs[0].id, graphs[4].id])
            assert_exact(store)
    finally:
        neo4j_server.stop(home, grace_s=30)
