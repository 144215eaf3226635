"""What `circuit-atlas query` prints, for people (table) and programs (json, csv, DataFrame)."""
from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from circuit_atlas import queries
from circuit_atlas.cli import main
from circuit_atlas.queries import labels
from tests.test_paths_real import DALLAS
from tests.test_queries import FIXTURES, load_graphs


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    from circuit_atlas.ingest.formats import read_graph_file
    from circuit_atlas.store import open_store
    path = str(tmp_path_factory.mktemp("out") / "atlas.db")
    with open_store(path) as store:
        store.add_graphs([read_graph_file(DALLAS), *load_graphs(sorted(FIXTURES.glob("*.json.gz"))[:4])])
        labels.auto_labels(store)
    return path


def query(uri, *args):
    result = CliRunner().invoke(main, ["--store", uri, "query", *args])
    assert result.exit_code == 0, result.output
    return result


def library(uri, name, **params):
    from circuit_atlas.store import open_store
    with open_store(uri, read_only=True) as store:
        return queries.run(store, name, **params)


def test_csv_keeps_full_precision_and_quotes_text(store_uri):
    args = ["common-paths", "-p", 'token=" Austin"', "-p", "limit=5"]
    want = library(store_uri, "common-paths", token=" Austin", limit=5)
    rows = list(csv.DictReader(io.StringIO(query(store_uri, *args, "--format", "csv").stdout)))
    assert [r["start_token"] for r in rows] == [w["start_token"] for w in want]   # " Dallas", leading space kept
    assert [float(r["mean_strength"]) for r in rows] == [w["mean_strength"] for w in want]   # exact, not 6 digits
    assert any(len(r["mean_strength"]) > 8 for r in rows)
    text = query(store_uri, *args, "--format", "csv").stdout.splitlines()[1]
    assert text.startswith('"""') and ',1,' in text          # text quoted, numbers bare


def test_table_quotes_tokens_so_spaces_show(store_uri):
    out = query(store_uri, "feature-downstream", "-p", "fkey=mntss/gemma-scope-transcoders/20/15589", "-p", "limit=50").stdout
    assert '" Austin"' in out and '" Texas"' in out
    out = query(store_uri, "common-paths", "-p", 'token=" Austin"', "-p", "limit=3").stdout
    lines = out.splitlines()
    assert lines[0].startswith("path") and lines[2].startswith('"')
    assert '" Dallas" → [" Dallas" → say " Texas"] → [" is" → say " Austin"] → " Austin"' in out   # never shortened


def test_nested_fields_are_a_vertical_card(store_uri):
    fkey = "mntss/gemma-scope-transcoders/20/15589"
    out = query(store_uri, "feature-profile", "-p", f"fkey={fkey}", "-p", "top=3").stdout
    [row] = library(store_uri, "feature-profile", fkey=fkey, top=3)
    lines = out.splitlines()
    assert lines[0].startswith("-[ row 1 ]") and lines[-1] == "(1 row)"
    assert f"fkey           {fkey}" in lines
    assert "activation" in lines and f"  median: {row['activation']['median']:.6g}" in lines
    for r in row["upstream"]:                               # every neighbour on its own line, nothing cut
        assert any(line.startswith("  - kind=") and f"total_weight={r['total_weight']:.6g}" in line for line in lines)
    assert "…" not in out


def test_to_dataframe(store_uri):
    rows = library(store_uri, "hubs-by-graphs", limit=5)
    frame = queries.to_dataframe(rows)
    assert list(frame.columns) == list(rows[0]) and len(frame) == 5
    assert frame["n_graphs"].tolist() == [r["n_graphs"] for r in rows]
    assert queries.to_dataframe([]).empty


@pytest.mark.parametrize("args,why", [
    (["common-paths", "-p", "token=Austin"], 'no logit token "Austin" in the store; did you mean " Austin"?'),
    (["common-paths", "-p", "tag=lang"], 'tag "lang" has no value: tags are key=value; tags with key lang: lang=en, lang=fr'),
    (["shared-multilingual-features", "-p", "concept=antonym"], 'tags with key concept: concept=weather'),
    (["search-graphs", "-p", "tags=lang=de"], 'no graph is tagged "lang=de"; tags with key lang: lang=en, lang=fr'),
    (["feature-graphs", "-p", "fkey=nope/1/2"], 'no feature "nope/1/2" in the store'),
    (["feature-downstream", "-p", "fkey=20/15589"],          # a key as path rows print it
     'no feature "20/15589" in the store; keys are whole, did you mean "mntss/gemma-scope-transcoders/20/15589"?'),
    (["common-paths", "-p", 'token=" Austin"', "-p", "min_weight=1000"], 'no excitatory 3-hop path into " Austin" has every edge at |weight| >= 1000'),
    (["hubs-by-graphs", "-p", "limit=0"], "limit=0 asks for no rows"),
])
def test_an_empty_answer_says_which_filter_matched_nothing(store_uri, args, why):
    result = query(store_uri, *args)
    assert "(no rows)" in result.output and why in result.output, result.output
    result = query(store_uri, *args, "--format", "json")
    assert json.loads(result.stdout) == [] and why in result.stderr


def test_a_cut_by_limit_says_so(store_uri):
    out = query(store_uri, "hubs-by-graphs", "-p", "limit=3").output
    assert out.rstrip().endswith("(cut at limit=3: there may be more rows; raise it with -p limit=N)")
    everything = len(library(store_uri, "hubs-by-graphs", limit=100_000))
    assert "cut at" not in query(store_uri, "hubs-by-graphs", "-p", f"limit={everything + 1}").output


def test_too_high_a_min_graphs_says_how_many_graphs_the_commonest_feature_is_in(store_uri):
    from circuit_atlas.ingest.formats import read_graph_file
    graphs = [read_graph_file(DALLAS), *load_graphs(sorted(FIXTURES.glob("*.json.gz"))[:4])]
    seen: dict[str, set] = {}
    for g in graphs:                                    # independently: the graphs each feature occurs in
        for n in g.nodes:
            if g.feature_key(n):
                seen.setdefault(g.feature_key(n), set()).add(g.id)
    most = max(len(ids) for ids in seen.values())
    out = query(store_uri, "hubs-by-graphs", "-p", f"min_graphs={most + 1}").output
    assert f"why: no feature occurs in {most + 1} or more graphs (the most is {most}); try -p min_graphs={most}" in out
    assert library(store_uri, "hubs-by-graphs", min_graphs=most)[0]["n_graphs"] == most


def test_blank_labels_say_how_to_get_some(tmp_path):
    """A store without labels: every label column is blank, and the answer says why and what to run."""
    from circuit_atlas.ingest.formats import read_graph_file
    from circuit_atlas.store import open_store
    uri = str(tmp_path / "atlas.db")
    with open_store(uri) as store:
        store.add_graphs([read_graph_file(DALLAS)])
    hint = "(the store has no feature labels yet: `circuit-atlas labels auto` names every feature"
    commands = [["query", "common-paths", "-p", 'token=" Austin"', "-p", "limit=3"],
                ["query", "hubs-by-influence", "-p", "limit=100"],
                ["graph", "show", "dallas-austin-llamma"]]
    for args in commands:
        result = CliRunner().invoke(main, ["--store", uri, *args])
        assert result.exit_code == 0 and hint in result.output, result.output
    assert hint not in query(uri, "common-paths", "-p", 'token=" Austin"', "--columns", "path,n_graphs").output
    assert f"why: {hint[1:]}" in query(uri, "feature-labels").output       # asking for the labels themselves
    with open_store(uri) as store:
        labels.auto_labels(store)
    for args in commands:
        result = CliRunner().invoke(main, ["--store", uri, *args])
        assert result.exit_code == 0 and "no feature labels" not in result.output, result.output
    assert "no feature labels" not in query(uri, "feature-labels").output
