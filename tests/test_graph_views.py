"""`circuit-atlas graph show` and `graph export`: a stored graph read, and opened in the viewers with pins."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuit_atlas import queries
from circuit_atlas.cli import main
from circuit_atlas.queries import labels
from tests.test_paths_real import DALLAS

ORACLE_PYTHON = Path.home() / ".cache/ct-oracle-venv/bin/python"    # circuit-tracer 0.5.0 (COMMON.md)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    from circuit_atlas.ingest.formats import read_graph_file
    from circuit_atlas.store import open_store
    graph = read_graph_file(DALLAS)
    path = str(tmp_path_factory.mktemp("views") / "atlas.db")
    with open_store(path) as store:
        store.add_graph(graph)
        labels.auto_labels(store)
        shown = {r["fkey"]: r["text"] for r in queries.run(store, "feature-labels", source="auto", limit=10_000)}
    return path, graph, shown


def cli(path, *args):
    return CliRunner().invoke(main, ["--store", path, "graph", *args])


def test_show_prints_prompt_logits_and_labelled_features(stored):
    path, graph, shown = stored
    result = cli(path, "show", graph.slug, "--top", "5")
    assert result.exit_code == 0, result.output
    assert repr(graph.prompt) in result.output
    logits = sorted((n for n in graph.nodes if n.kind == "logit"), key=lambda n: -n.logit_prob)[:5]
    features = sorted((n for n in graph.nodes if n.kind == "feature"), key=lambda n: n.influence)[:5]
    out = json.loads(cli(path, "show", graph.id, "--top", "5", "--format", "json").stdout)[0]
    assert [(r["token"], r["prob"]) for r in out["top_logits"]] == [(n.token, n.logit_prob) for n in logits]
    assert [r["node_id"] for r in out["top_features"]] == [n.node_id for n in features]
    for r, n in zip(out["top_features"], features):
        assert r["label"] == shown[graph.feature_key(n)] and r["at_token"] == graph.prompt_tokens[n.pos]
        assert f'{r["node_id"]}' in result.output and r["label"] in result.output
    assert '" Austin"' in result.output                      # tokens quoted


def test_show_names_an_unknown_graph(stored):
    result = cli(stored[0], "show", "no-such-graph")
    assert result.exit_code == 1 and "no graph with id or slug 'no-such-graph'" in result.output


def test_export_pins_what_a_query_found(stored, tmp_path):
    from circuit_atlas.ingest.formats import read_graph_file
    path, graph, shown = stored
    out = tmp_path / "view.json"
    result = cli(path, "export", graph.slug, "--from-query", "common-paths", "-p", 'token=" Austin"', "-p", "limit=3",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    from circuit_atlas.store import open_store
    with open_store(path, read_only=True) as store:
        rows = queries.run(store, "common-paths", token=" Austin", limit=3)
    want = {n.node_id for n in graph.nodes for r in rows
            if graph.feature_key(n) in (r["f1"], r["f2"])
            or n.kind == "embedding" and n.token == r["start_token"] or n.kind == "logit" and n.token == r["end_token"]}
    data = json.loads(out.read_text())
    assert set(data["qParams"]["pinnedIds"]) == want and len(data["qParams"]["pinnedIds"]) == len(want)
    back = read_graph_file(out)                             # the same graph, labels in the clerps
    assert back.id == graph.id
    for n in back.nodes:
        if n.kind == "feature":
            assert n.label == shown[back.feature_key(n)]
    assert f"{len(want)} pinned nodes" in result.output


def test_export_nodes_and_supernodes(stored, tmp_path):
    path, graph, _ = stored
    feats = [n.node_id for n in graph.nodes if n.kind == "feature"][:2]
    out = tmp_path / "pins.json.gz"
    result = cli(path, "export", graph.slug, "--nodes", ",".join(feats), "--out", str(out))
    assert result.exit_code == 0, result.output
    from circuit_atlas.ingest.formats import read_graph_file
    assert read_graph_file(out).extra["qParams"]["pinnedIds"] == feats
    bad = cli(path, "export", graph.slug, "--nodes", "99_1_1", "--out", str(tmp_path / "x.json"))
    assert bad.exit_code == 1 and "has no node '99_1_1'" in bad.output and not (tmp_path / "x.json").exists()
    # a manual supernode imported from a viewer's file comes back as a viewer supernode
    from circuit_atlas.ingest.formats import write_graph_json
    graph.extra["qParams"] = {"supernodes": [["Texas", *feats]]}
    write_graph_json(graph, tmp_path / "viewed.json")
    graph.extra.pop("qParams")
    result = CliRunner().invoke(main, ["--store", path, "supernodes", "import", str(tmp_path / "viewed.json")])
    assert result.exit_code == 0 and result.output == "imported 1 supernode from 1 file\n", result.output
    result = cli(path, "export", graph.slug, "--supernodes", "--out", str(out))
    assert result.exit_code == 0, result.output
    [group] = read_graph_file(out).extra["qParams"]["supernodes"]
    assert group[0] == "Texas" and sorted(group[1:]) == sorted(feats)


@pytest.mark.skipif(not ORACLE_PYTHON.exists(), reason="circuit-tracer's venv (the oracle) is not built here")
def test_export_is_valid_for_circuit_tracer(stored, tmp_path):
    """circuit-tracer's own pydantic model of the viewer's file accepts the export, pins and all."""
    path, graph, _ = stored
    out = tmp_path / "view.json"
    assert cli(path, "export", graph.slug, "--from-query", "common-paths", "-p", 'token=" Austin"',
               "--out", str(out)).exit_code == 0
    check = ("import json, sys; from circuit_tracer.frontend.graph_models import Model; "
             "m = Model.model_validate_json(open(sys.argv[1]).read()); print(len(m.qParams.pinnedIds))")
    done = subprocess.run([str(ORACLE_PYTHON), "-c", check, str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(json.loads(out.read_text())["qParams"]["pinnedIds"]) > 0


@pytest.mark.parametrize("command", ["show", "export"])
def test_the_help_examples_run_on_the_graph_they_name(stored, tmp_path, command):
    """`graph show/export --help` name dallas-austin-llamma and its nodes: run each example on it."""
    import shlex

    from tests.test_cli import examples
    path, graph, _ = stored
    ran = 0
    for example in examples(main.commands["graph"].commands[command]):
        argv = shlex.split(" ".join(line.rstrip("\\") for line in example))[2:]      # after "circuit-atlas graph"
        if "--out" in argv:
            argv[argv.index("--out") + 1] = str(tmp_path / argv[argv.index("--out") + 1])
        result = cli(path, *argv)
        assert result.exit_code == 0, (example, result.output)
        ran += graph.slug in argv
    assert ran, f"no example of graph {command} names {graph.slug}"
