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
    embedding = [r for r in row["upstream"] if r["kind"] == "embedding"]
    assert embedding and not any(r["fkey"] for r in embedding)
    for r in embedding:                                     # blank fields left out: no "fkey=, label=,"
        [line] = [x for x in lines if x.startswith("  - kind=embedding") and f"token={json.dumps(r['token'])}" in x]
        assert "fkey=" not in line and "label=" not in line, line
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


def test_empty_answers_name_what_the_store_lacks(tmp_path):
    """Interventions, lang=/item= tags, label sources, prompt text: each empty answer names what is missing,
    from what was put in the store here (one graph, then planted interventions)."""
    from circuit_atlas.ingest.formats import read_graph_file
    from circuit_atlas.queries import interventions
    from circuit_atlas.store import open_store
    uri, graph = str(tmp_path / "atlas.db"), read_graph_file(DALLAS)
    why = lambda *args: query(uri, *args).output.split("why: ", 1)[1].strip()
    with open_store(uri) as store:                                   # a store whose graphs were all deleted
        store.add_graph(graph)
        store.delete_graphs([graph.id])
    for name in ("hubs-by-influence", "search-graphs", "common-paths", "feature-labels"):
        assert why(name).startswith("the store holds no graphs yet: `circuit-atlas ingest FILES` loads some"), name
    with open_store(uri) as store:
        store.add_graph(graph)
        labels.auto_labels(store)

    assert "no interventions on features alone yet" in why("causal-features")
    assert "no interventions on supernodes yet" in why("causal-supernodes")
    assert why("supernodes").startswith("the store has no supernodes yet: `circuit-atlas supernodes propose`")
    result = CliRunner().invoke(main, ["--store", uri, "supernodes", "propose", "-p", "min_graphs=2"])
    assert result.exit_code == 0 and "(no rows)" in result.output, result.output        # one graph only
    assert "why: fewer than two features occur in 2 or more graphs (two occur in 1); try -p min_graphs=1" in result.output
    with open_store(uri) as store:
        proposed = queries.run(store, "propose-supernodes", min_graphs=1)
    assert proposed and why("supernodes", "-p", "source=neuronpedia") == (
        f'no supernodes from source "neuronpedia"; supernode sources: proposed ({len(proposed)})')
    assert why("multilingual-iou").startswith("no graph is tagged lang=<code> or item=<id>")
    tagged = CliRunner().invoke(main, ["--store", uri, "tag", graph.slug, "--add", "lang=en", "--add", "item=capital"])
    assert tagged.exit_code == 0, tagged.output
    assert why("multilingual-iou") == "only one language is tagged (lang=en): multilingual-iou compares two or more"
    n_auto = len(library(uri, "feature-labels", source="auto", limit=1_000_000))
    assert why("feature-labels", "-p", "source=nosuch") == f'no labels from source "nosuch"; label sources: "auto" ({n_auto})'
    word = "Austin"                          # in the slug, not the prompt
    assert word.lower() in graph.slug.lower() and word.lower() not in graph.prompt.lower()
    assert why("search-graphs", "-p", f"text={word}").startswith(
        f'no graph\'s prompt contains "{word}" (case-insensitive); slugs that contain it: {graph.slug}')

    fkey = next(graph.feature_key(n) for n in graph.nodes if graph.feature_key(n))
    tset, layer, feature = interventions.parse_feature_key(fkey)
    planted = [("ablate", "p1"), ("ablate", "p2"), ("scale", "p1")]      # (op, prompt)
    with open_store(uri) as store:
        for i, (op, prompt) in enumerate(planted):
            interventions.store_record(store, {
                "id": f"t{i}", "created": "2026-01-01T00:00:00+00:00", "prompt": prompt, "model": "m",
                "transcoder_set": tset, "kind": op, "value": 0.0, "description": "test", "freeze_attention": True,
                "constrained_layers": "", "target_token": " Austin", "logit_before": 3.0, "logit_after": 1.0,
                "prob_before": 0.6, "prob_after": 0.2, "top_before": " Austin", "top_after": " Texas", "effects": "{}",
                "job": "", "features": [{"key": fkey, "transcoder_set": tset, "layer": layer, "feature": feature,
                                         "op": op, "value": 0.0}], "supernodes": {}})
    ops = sorted({op for op, _ in planted})
    assert why("causal-features", "-p", "op=zero") == (
        f'no intervention on features alone has op "zero"; ops stored: {", ".join(json.dumps(o) for o in ops)}')
    most = max(len({p for o, p in planted if o == op}) for op in ops)
    assert why("causal-features", "-p", f"min_prompts={most + 1}") == (
        f"no intervention on features alone ran on {most + 1} or more prompts (the most is {most}); try -p min_prompts={most}")
    assert why("causal-features", "-p", "op=scale", "-p", "min_prompts=2").startswith(
        'no intervention on features alone with op "scale" ran on 2 or more prompts (the most is 1)')
    assert library(uri, "causal-features", op="ablate", min_prompts=most)          # the suggestion answers
