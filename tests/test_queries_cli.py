"""The query library's documentation contract and its command line.

Every named query is documented (summary, parameters, an example row whose columns are the real
ones), every parameter its Cypher uses is declared, and `circuit-atlas query` answers like the library.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from circuit_atlas import queries
from circuit_atlas.queries import labels, supernodes as sn
from tests.backends import BACKENDS, empty_store
from tests.test_queries import FIXTURES, load_graphs

ROOT = Path(__file__).resolve().parents[1]
WRITES = ("_supernodes-delete", "_supernode-store", "_supernode-unlink-members", "_intervention-store",
          "_intervention-features", "_intervention-supernodes", "_intervention-graph")   # statements that write


@pytest.fixture(scope="module", params=BACKENDS)
def store_path(request, tmp_path_factory):
    from circuit_atlas.store import open_store
    path = empty_store(request, request.param, tmp_path_factory.mktemp("cli"))
    graphs = load_graphs(sorted(FIXTURES.glob("*.json.gz"))[:4])
    with open_store(str(path)) as store:
        for g in graphs:
            store.add_graph(g)
        queries.run(store, "propose-supernodes", min_graphs=2)
        labels.auto_labels(store)
        store_evidence(store)
    return path, graphs


def store_evidence(store) -> None:
    """One (:Intervention) on a proposed supernode and one on a feature, so the causal queries have rows."""
    from circuit_atlas.queries import interventions
    supernode = queries.run(store, "supernodes", limit=1)[0]
    for i, (links, members) in enumerate([({supernode["id"]: "ablate"}, supernode["members"]),
                                          ({}, supernode["members"][:1])]):
        features = []
        for key in members:
            tset, layer, feature = interventions.parse_feature_key(key)
            features.append({"key": key, "transcoder_set": tset, "layer": layer, "feature": feature,
                             "op": "ablate", "value": 0.0})
        interventions.store_record(store, {
            "id": f"test-{i}", "created": "2026-01-01T00:00:00+00:00", "prompt": "p", "model": "m",
            "transcoder_set": "t", "kind": "ablate", "value": 0.0, "description": "test", "freeze_attention": True,
            "constrained_layers": "", "target_token": " cold", "logit_before": 3.0, "logit_after": 1.0,
            "prob_before": 0.6, "prob_after": 0.2, "top_before": " cold", "top_after": " warm", "effects": "{}",
            "job": "", "features": features, "supernodes": links})


def cli(store_path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", str(store_path), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def params_for(q, store, graphs) -> dict:
    """Values that make each query return rows on the small corpus."""
    hub = queries.run(store, "hubs-by-graphs", limit=1)[0]["fkey"]
    gids = [g.id for g in graphs]
    known = {"fkey": hub, "text": "temperature" if q.name in ("search-features", "_search-graph-labels", "_search-feature-labels") else "", "concept": "weather", "keys": [hub],
             "gids": gids, "selector": "lang=en", "a": gids[0], "b": gids[1], "tags": ["lang=en"],
             "min_graphs": 2, "min_weight": 0.5, "dry_run": True, "limit": 5, "max_features": 100,
             "source": "" if q.name == "feature-labels" else "proposed",
             "id": queries.run(store, "supernodes", limit=1)[0]["id"],
             "tag": "" if q.name.startswith("_common-paths") else "lang=en", "within": "", "min_share": 0.5, "max_other": 0.5, "gid": gids[0], "role": "",
             "op": "", "min_prompts": 1, "hops": 3, "ids": [0, 1, 2], "suffix": hub[hub.index("/"):]}
    return {p.name: known[p.name] for p in q.params if p.name in known}


def test_every_query_is_documented_with_its_real_columns(store_path):
    from circuit_atlas.store import open_store
    path, graphs = store_path
    with open_store(str(path), read_only=True) as store:
        for name, q in queries.QUERIES.items():
            assert q.summary and q.example is not None, name
            if q.writes or name in WRITES:
                continue
            rows = queries.run(store, name, params_for(q, store, graphs))
            assert rows, f"{name} returned no rows to check its example against"
            assert list(rows[0]) == list(q.example), f"{name}: the documented example row has other columns"


def test_cypher_parameters_are_declared():
    for name, cypher in queries.all_statements().items():
        used = set(re.findall(r"\$(\w+)", cypher))
        declared = {p.name for p in queries.get(name).params}
        assert used == declared, f"{name}: uses {sorted(used)}, documents {sorted(declared)}"


def test_store_linter_registry_sees_every_statement():
    from tests.statements import all_statements
    texts = {s.cypher for s in all_statements()}
    for name, cypher in queries.all_statements().items():
        assert any(cypher in t for t in texts), f"{name} is not in tests.statements.all_statements()"


def test_docs_cover_every_listed_query():
    doc = (ROOT / "docs" / "queries.md").read_text()
    for name, q in queries.QUERIES.items():
        if q.listed:
            assert f"### `{name}`" in doc, f"docs/queries.md has no section for {name}"
            for p in q.params:
                assert f"`{p.name}`" in doc.split(f"### `{name}`")[1].split("### ")[0], f"{name}: ${p.name} undocumented"


def test_supernode_defaults_have_one_source():
    defaults = {p.name: p.default for p in queries.get("propose-supernodes").params}
    options = sn.SupernodeOptions()
    for name in ("min_graphs", "max_features", "min_weight", "min_similarity", "resolution"):
        assert defaults[name] == getattr(options, name), name


def test_bad_parameters_get_one_clear_error():
    with pytest.raises(queries.QueryError, match=r"has no parameter \$nope"):
        queries.get("hubs-by-graphs").bind({"nope": 1})
    with pytest.raises(queries.QueryError, match="needs --param fkey"):
        queries.get("feature-graphs").bind({})
    with pytest.raises(queries.QueryError, match=r"query 'hubs-by-graphs': parameter limit: 'ten' is not an integer"):
        queries.get("hubs-by-graphs").bind({"limit": "ten"})
    with pytest.raises(queries.QueryError, match=re.escape("no query named 'hub'; did you mean 'hubs-by-graphs' or "
                                                           "'hubs-by-influence' or 'hubs-by-weight'?")):
        queries.get("hub")
    with pytest.raises(queries.QueryError, match=re.escape("no query named 'paths'; did you mean 'common-paths'?")):
        queries.get("paths")



def test_registry_coerces_and_explains_parameters_as_documented():
    """Booleans from the words the docs list, anything else refused with an example taken from the
    parameter's documented default (read here from the .cypher header), or a type's sample without one."""
    from circuit_atlas.queries.registry import REQUIRED, Param

    header = (ROOT / "queries" / "cypher" / "hubs-by-graphs.cypher").read_text()
    limit_default = re.search(r"\$limit: int = (\d+)", header).group(1)
    q = queries.get("hubs-by-graphs")
    assert [q.bind({"skip_bos": w})["skip_bos"] for w in ("yes", "TRUE", "1", "no", "false", "0")] == [True] * 3 + [False] * 3
    for bad in ("maybe", 1, 2.0):
        with pytest.raises(queries.QueryError, match="skip_bos: .* is not true or false; give e.g. --param skip_bos=false"):
            q.bind({"skip_bos": bad})
    with pytest.raises(queries.QueryError, match=f"give e.g. --param limit={limit_default} "):
        q.bind({"limit": "ten"})
    with pytest.raises(queries.QueryError, match=r"'x' is not an integer; give e.g. --param n=10 \(how many\)$"):
        Param("n", int, REQUIRED, "how many").coerce("x")
    with pytest.raises(queries.QueryError, match=r"'x' is not a number; give e.g. --param w=0.5$"):
        Param("w", float, None, "").coerce("x")


def test_registry_suggests_close_names_or_lists_the_known_ones():
    from circuit_atlas.queries.registry import QUERIES, _did_you_mean

    with pytest.raises(queries.QueryError, match="no query named 'hub-by-graph'; did you mean 'hubs-by-graphs'"):
        queries.get("hub-by-graph")
    with pytest.raises(queries.QueryError) as e:
        queries.get("zzzz")
    listed = sorted(n for n in QUERIES if not n.startswith("_"))
    assert "; known queries: " in str(e.value) and "did you mean" not in str(e.value)
    assert sorted(str(e.value).split("; known queries: ")[1].split(" (see")[0].split(", ")) == listed
    assert _did_you_mean("hubs", ["hubs1", "hubs2", "hubs3", "hubs4"]).count("'hubs") == 3    # three at most
    with pytest.raises(queries.QueryError, match=r"has no parameter \$nope \(it takes: none\)$"):
        queries.get("_graph-tokens").bind({"nope": 1})
    takes = ", ".join(sorted("$" + p.name for p in queries.get("hubs-by-graphs").params))
    with pytest.raises(queries.QueryError, match=re.escape(f"(it takes: {takes})")):
        queries.get("hubs-by-graphs").bind({"nope": 1})


def test_registry_plain_values_sort_sets_only():
    """collect() columns come back sorted by one order over any JSON value (None, numbers, text, lists,
    maps); every other value keeps its order, and a set column's non-list value is left alone."""
    from decimal import Decimal

    from circuit_atlas.queries.registry import _plain

    mixed = [{"k": 2}, [2], "b", 1.5, None, Decimal(3), "a", [1, "x"], True, {"k": 1}]
    assert _plain(mixed, is_set=True) == [None, True, 1.5, 3, "a", "b", [1, "x"], [2], {"k": 1}, {"k": 2}]
    assert _plain(["tok2", "tok1", None], is_set=False) == ["tok2", "tok1", None]      # prompt_tokens keep order
    assert _plain("ba", is_set=True) == "ba" and _plain(Decimal("2.5"), is_set=True) == 2.5

def test_cli_list_shows_every_query_with_its_parameters(store_path):
    out = cli(store_path[0], "query", "--list")
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines()]   # one line per query
    assert names == sorted(name for name, q in queries.QUERIES.items() if q.listed)
    for name in names:
        q = queries.get(name)
        assert q.summary in out.stdout
        assert all(f"{p.name}=" in out.stdout for p in q.params)


def test_cli_query_answers_like_the_library(store_path):
    """`circuit-atlas query` prints the answers a plain-Python reading of the graph files gives."""
    from tests import queries_reference as ref

    path, graphs = store_path
    out = cli(path, "query", "hubs-by-graphs", "--param", "limit=3", "--format", "json")
    assert out.returncode == 0, out.stderr
    want = ref.hubs_by_graphs(graphs, 2)
    top = sorted(want, key=lambda k: (-want[k]["n_graphs"], -want[k]["n_occurrences"], k))[:3]
    rows = json.loads(out.stdout)
    assert [r["fkey"] for r in rows] == top
    for r in rows:
        assert (r["n_graphs"], r["n_occurrences"]) == (want[r["fkey"]]["n_graphs"], want[r["fkey"]]["n_occurrences"])
        assert r["mean_activation"] == pytest.approx(want[r["fkey"]]["mean_activation"], rel=1e-4)

    # parameters after the name need no -p; both spellings mix
    out = cli(path, "query", "common-paths", "hops=2", "min_weight=0.5", "-p", 'token=" cold"',
              "-p", "limit=1000", "--format", "csv")
    assert out.returncode == 0, out.stderr
    lines = list(csv.reader(out.stdout.splitlines()))
    assert lines[0][:4] == ["path", "start_token", "f1", "f1_label"]
    rows = [dict(zip(lines[0], line)) for line in lines[1:]]
    paths = ref.common_paths(graphs, 2, 0.5, token=" cold")
    assert paths and len(rows) == len(paths)
    got = {(json.loads(r["start_token"]) if r["start_token"].startswith('"') else r["start_token"], r["f1"],
            json.loads(r["end_token"]) if r["end_token"].startswith('"') else r["end_token"], r["signs"]):
           int(r["n_graphs"]) for r in rows}
    assert got == {k: v["n_graphs"] for k, v in paths.items()}


def test_cli_errors_are_one_line(store_path):
    out = cli(store_path[0], "query", "hubs-by-graphs", "-p", "nope=1")
    assert out.returncode != 0 and "has no parameter $nope" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = cli(store_path[0], "query", "hubs-by-graphs", "limit")      # a usage error: click's usage, then the line
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1:] == [
        "Error: Invalid value: 'limit': expected key=value, e.g. layer=3 or names='[\"a\", \"b\"]'"]


def test_cli_plot_and_supernodes(store_path, tmp_path):
    path, _ = store_path
    out = cli(path, "plot", "multilingual", "--out", str(tmp_path / "fig"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "fig.png").stat().st_size > 0
    svg = (tmp_path / "fig.svg").read_text()             # the SVG keeps each text as a comment: what it shows
    models = sorted({g.model for g in store_path[1]})
    assert "<!-- normalised layer depth -->" in svg and "<!-- IoU of active features" in svg
    assert "<!-- en–fr (2 pairs) -->" in svg and all(m in svg for m in models)
    out = cli(path, "plot", "paths", "hops=2", "--out", str(tmp_path / "paths"))     # -p may be left out
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(tmp_path / "paths.png"), str(tmp_path / "paths.svg")]
    rows = json.loads(cli(path, "query", "common-paths", "-p", "hops=2", "--format", "json").stdout)
    svg = (tmp_path / "paths.svg").read_text()
    ends = {r["end_token"] for r in rows[:10]}
    into = json.dumps(ends.pop()) if len(ends) == 1 else f"{len(ends)} logits"
    assert f"<!-- Common paths into {into}: 10 paths, 2 hops" in svg
    out = cli(path, "plot", "paths", "-p", "token=nowhere", "--out", str(tmp_path / "none"))
    assert out.returncode == 1 and out.stderr.startswith('Error: no paths to draw: no logit token "nowhere"')
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "none.png").exists()
    out = cli(path, "supernodes", "propose", "-p", "min_graphs=2", "--format", "json")
    assert out.returncode == 0, out.stderr
    proposed = json.loads(out.stdout)
    listed = json.loads(cli(path, "query", "supernodes", "-p", "limit=1000", "--format", "json").stdout)
    assert {r["id"] for r in proposed} == {r["id"] for r in listed if r["source"] == "proposed"}


def test_docs_reference_is_generated_from_the_docstrings():
    """docs/queries.md's Reference section is `reference_markdown()`; regenerate it after changing a query:
    python -c 'from circuit_atlas.queries.registry import reference_markdown; print(reference_markdown())'"""
    from circuit_atlas.queries.registry import reference_markdown
    doc = (ROOT / "docs" / "queries.md").read_text()
    assert doc[doc.index("## Reference"):].strip() == reference_markdown().strip()


def test_registry_run_sorts_collected_columns_only():
    """run() returns a collect() column (supernodes' members) sorted, whatever order the engine gave,
    and a stored list (a graph's prompt tokens) in its stored order. The store here hands back rows in
    a planted order: what is under test is the registry's handling of them."""
    class PlantedStore:
        def query(self, cypher, params=None, **limits):
            if "prompt_tokens" in cypher:
                return [{"gid": "g", "tokens": ["<bos>", "b", "a"], "n_layers": 2}]
            return [{"id": "s", "name": "n", "source": "proposed", "gid": "", "coherence": 0.5, "n_graphs": 2,
                     "influence": 1.0, "n_members": 3, "members": ["t/1/2", "t/0/9", "t/1/10"]}]

    assert queries.get("supernodes").set_columns == {"members"} and not queries.get("_graph-tokens").set_columns
    assert queries.run(PlantedStore(), "supernodes")[0]["members"] == ["t/0/9", "t/1/10", "t/1/2"]
    assert queries.run(PlantedStore(), "_graph-tokens")[0]["tokens"] == ["<bos>", "b", "a"]
