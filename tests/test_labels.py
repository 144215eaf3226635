"""Feature labels: automatic labels against a plain-Python reading of the graph files, users' imports,
the precedence between them, and that every query shows them."""
from __future__ import annotations

import gzip
import json
import re

import pytest
from click.testing import CliRunner

from circuit_atlas import queries
from circuit_atlas.cli import main
from circuit_atlas.queries import labels
from tests import queries_reference as ref
from tests.test_queries import ALL, FIXTURES, approx, load_graphs

TSET = "mntss/clt-gemma-2-2b-2.5M"


@pytest.fixture(scope="module")
def graphs():
    return load_graphs(sorted(FIXTURES.glob("*.json.gz")))


@pytest.fixture
def store(graphs, tmp_path):
    from circuit_atlas.store import open_store
    with open_store(str(tmp_path / "atlas.db")) as s:
        s.add_graphs(graphs)
        yield s


def cli(store, *args):
    result = CliRunner().invoke(main, ["--store", store.uri, *args])
    return result


def shown(store, key):
    return queries.run(store, "_labels-of", keys=[key])[0]["label"]


def test_auto_labels_match_plain_python(store, graphs):
    made = labels.auto_labels(store)
    want = ref.label_evidence(graphs)
    assert set(made) == set(want)
    evidence = labels.corpus_evidence(store)
    seen = []                                                        # what a progress bar is shown
    in_batches = labels.corpus_evidence(store, graphs_per_call=2, progress=lambda *a: seen.append(a))
    n = len(graphs)                                                  # summed over batches, as on a large corpus
    assert seen == [(done, n) for done in range(0, n, 2)] + [(n, n)]
    assert len(graphs) > 4 and set(in_batches) == set(want)
    for key, (inputs, logits) in want.items():
        for ev in (evidence[key], in_batches[key]):
            assert dict(ev.inputs) == dict(inputs), key
            assert set(ev.logits) == set(logits) and [ev.logits[t] for t in sorted(logits)] == \
                approx([logits[t] for t in sorted(logits)])
        assert made[key]["text"] == ref.auto_label_text(inputs, logits), key
    # the labels read like findings: most features sit on a real token and drive a logit
    says = [k for k, v in made.items() if " → say " in v["text"]]
    assert len(says) > len(made) / 2
    stored = {r["fkey"]: r for r in queries.run(store, "feature-labels", source="auto", limit=ALL)}
    assert {k: r["text"] for k, r in stored.items()} == {k: v["text"] for k, v in made.items()}
    assert all(r["inputs"] and "×" in r["inputs"] for r in stored.values())
    # each label lists the five logits it drives most (one concept is often several tokens: " Austin", "Austin")
    for key, (_, logits) in want.items():
        listed = [json.loads(t) for t in re.findall(r'("(?:[^"\\]|\\.)*") [+-]', stored[key]["logits"])]
        assert listed == sorted(logits, key=lambda t: (-abs(logits[t]), t))[:5], key
    assert any(len(logits) > 5 for _, logits in want.values())      # the cut is exercised
    result = cli(store, "labels", "auto", "--quiet")                # the command lists as many as the API
    assert result.exit_code == 0, result.output
    again = queries.run(store, "feature-labels", source="auto", limit=ALL)
    assert {r["fkey"]: r["logits"] for r in again} == {k: v["logits"] for k, v in made.items()}


def test_features_evidence_matches_plain_python(store, graphs):
    """The evidence of a few features (what names supernode proposals), read from their OF_FEATURE lists
    and the Neighbour aggregates instead of the corpus: what the graph files say about those features."""
    want = ref.label_evidence(graphs)
    keys = sorted(want)[::7] + ["no/such/feature"]
    got = labels.features_evidence(store, keys)
    assert set(got) == set(keys) - {"no/such/feature"} and labels.features_evidence(store, []) == {}
    for key in got:
        inputs, logits = want[key]
        assert dict(got[key].inputs) == dict(inputs), key
        assert set(got[key].logits) == set(logits) and [got[key].logits[t] for t in sorted(logits)] == \
            approx([logits[t] for t in sorted(logits)]), key
    assert sum(bool(ev.logits) for ev in got.values()) > len(got) / 3     # the comparison covers logits too


def test_every_query_shows_the_label(store, graphs):
    made = labels.auto_labels(store)
    clerped = {g.feature_key(n) for g in graphs for n in g.nodes if n.label and g.feature_key(n)}
    for name in ("hubs-by-graphs", "hubs-by-weight", "hubs-by-influence"):
        for r in queries.run(store, name, limit=200):
            want = "Say a Temperature word" if r["fkey"] in clerped else made[r["fkey"]]["text"]
            assert r["label"] == want, (name, r["fkey"])      # a graph file's label wins over the automatic one
    hub = queries.run(store, "hubs-by-graphs", limit=1)[0]["fkey"]
    for name in ("feature-upstream", "feature-downstream"):
        for r in queries.run(store, name, fkey=hub, limit=50):
            assert r["label"] == (shown(store, r["fkey"]) if r["fkey"] else None)
    [profile] = queries.run(store, "feature-profile", fkey=hub)
    assert profile["label"] == made[hub]["text"]
    [row] = queries.run(store, "shared-multilingual-features", concept="weather", k=2, limit=1)
    assert row["label"] == shown(store, row["fkey"])


def test_users_labels_win_and_survive_a_new_automatic_run(store, tmp_path):
    labels.auto_labels(store)
    key = queries.run(store, "hubs-by-graphs", limit=1)[0]["fkey"]
    layer, index = key.split("/")[-2:]
    csv = tmp_path / "mine.csv"
    csv.write_text(f"layer,index,label\n{layer},{index},template token hub\n")
    result = cli(store, "labels", "import", str(csv))
    assert result.exit_code == 0, result.output
    assert f"1 label of {TSET} stored" in result.output
    assert shown(store, key) == "template token hub"
    labels.auto_labels(store)                                   # users' labels win over a new automatic run
    assert shown(store, key) == "template token hub"
    rows = queries.run(store, "feature-labels", fkey=key)
    assert {(r["source"], r["shown"]) for r in rows} == {("csv:mine.csv", True), ("auto", False)}
    assert queries.run(store, "hubs-by-graphs", limit=1)[0]["label"] == "template token hub"
    found = queries.run(store, "search-features", text="TOKEN HUB")
    assert [(r["fkey"], r["source"]) for r in found] == [(key, "csv:mine.csv")]


def test_the_latest_users_label_shows_else_the_graph_files_else_the_automatic(store, graphs, tmp_path):
    """The order docs/queries.md states, on a feature that has all three kinds of label."""
    labels.auto_labels(store)
    clerps: dict[str, set] = {}
    for g in graphs:
        for n in g.nodes:
            if g.feature_key(n):
                clerps.setdefault(g.feature_key(n), set()).add(n.label)
    key = sorted(k for k, texts in clerps.items() if len(texts) == 1 and "" not in texts)[0]
    [clerp] = clerps[key]
    assert shown(store, key) == clerp                          # the graph file's label beats the automatic one
    assert {r["source"] for r in queries.run(store, "feature-labels", fkey=key)} == {"auto", "graph file"}
    layer, index = key.split("/")[-2:]
    for name, text in (("a.csv", "first import"), ("b.csv", "second import"), ("a.csv", "first import again")):
        (tmp_path / name).write_text(f"layer,index,label\n{layer},{index},{text}\n")
        labels.import_labels(store, tmp_path / name)
        assert shown(store, key) == text                       # a user's label, the latest import
    labels.auto_labels(store)
    assert shown(store, key) == "first import again"
    assert {r["source"]: r["shown"] for r in queries.run(store, "feature-labels", fkey=key)} == \
        {"auto": False, "graph file": False, "csv:a.csv": True, "csv:b.csv": False}


@pytest.mark.parametrize("form", ["json", "jsonl", "wrapped", "jsonl.gz"])
def test_neuronpedia_exports_and_labels_of_features_not_ingested_yet(form, tmp_path, graphs):
    """Neuronpedia's explanation exports as its API gives them (JSON), as lines, and as its bulk datasets
    ship them (batch-0.jsonl.gz)."""
    from circuit_atlas.store import open_store
    first = {graphs[0].feature_key(n) for n in graphs[0].nodes} - {None}
    later = sorted({g.feature_key(n) for g in graphs[1:] for n in g.nodes} - {None} - first)[0]
    layer, index = later.split("/")[-2:]
    explanations = [{"modelId": "gemma-2-2b", "layer": f"{layer}-clt-hp", "index": index, "description": " capital cities",
                     "explanationModelName": "gpt-4o-mini", "typeName": "oai_token-act-pair"},
                    {"modelId": "gemma-2-2b", "layer": "1-clt-hp", "index": 12928, "description": "template 'to'"},
                    {"modelId": "gemma-2-2b", "layer": "1-clt-hp", "index": 12928, "description": "a second opinion"}]
    path = tmp_path / ("labels.json" if form == "wrapped" else f"labels.{form}")
    text = ("\n".join(json.dumps(e) for e in explanations) if form.startswith("jsonl") else
            json.dumps({"explanations": explanations} if form == "wrapped" else explanations))
    path.write_bytes(gzip.compress(text.encode()) if form.endswith(".gz") else text.encode())
    with open_store(str(tmp_path / "atlas.db")) as store:
        store.add_graphs(graphs[:1])
        report = labels.import_labels(store, path)
        assert (report.labels, report.duplicates, report.transcoder_set, report.waiting) == (2, 1, TSET, 1)
        assert report.source == f"neuronpedia:{path.name}"
        store.add_graphs(graphs)
        labels.auto_labels(store)                # applies labels imported before their feature was ingested
        assert shown(store, later) == "capital cities"
        assert shown(store, f"{TSET}/1/12928") == "template 'to'"
        found = queries.run(store, "search-features", text="capital")
        assert [(r["fkey"], r["n_graphs"]) for r in found] == \
            [(later, sum(later in {g.feature_key(n) for n in g.nodes} for g in graphs))]


@pytest.mark.parametrize("name,text", [
    ("semicolons.csv", "\ufeffLayer;Index;Label\n{layer};{index};\"Texas; the state\"\n"),  # a spreadsheet's export
    ("tabs.tsv", "layer\tfeature\tdescription\n{layer}\t{index}\tTexas; the state\n"),
])
def test_label_tables_may_use_semicolons_or_tabs(store, tmp_path, graphs, name, text):
    key = sorted({graphs[0].feature_key(n) for n in graphs[0].nodes} - {None})[0]
    layer, index = key.split("/")[-2:]
    (tmp_path / name).write_text(text.format(layer=layer, index=index), encoding="utf-8")
    result = cli(store, "labels", "import", str(tmp_path / name))
    assert result.exit_code == 0, result.output
    assert shown(store, key) == "Texas; the state"


def test_bad_label_files_get_one_clear_line_and_store_nothing(store, tmp_path):
    cases = {"bad.json": "[{\"layer\": \"x-clt\", \"index\": 3, \"description\": \"y\"}]",
             "nolabel.json": "[{\"layer\": 3, \"index\": 3}]",
             "broken.jsonl": "{\"layer\": 3, \"index\": 3, \"description\": \"a\"}\n{not json\n",
             "header.csv": "a,b,c\n1,2,3\n",
             "empty.json": "",
             # two Neuronpedia sources (transcoder sets) in one file: one --transcoder-set cannot fit both
             "mixed.json": "[{\"layer\": \"20-clt-hp\", \"index\": 3, \"description\": \"a\"},"
                           " {\"layer\": \"20-gemmascope-transcoder-16k\", \"index\": 3, \"description\": \"b\"}]"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        result = cli(store, "labels", "import", str(tmp_path / name))
        assert result.exit_code == 1, (name, result.output)
        assert len(result.output.strip().splitlines()) == 1 and name in result.output, result.output
    for name, data in {"truncated.jsonl.gz": gzip.compress(b'{"layer": 3, "index": 3, "description": "a"}\n')[:-9],
                       "notgzip.jsonl.gz": b'{"layer": 3, "index": 3, "description": "a"}\n'}.items():
        (tmp_path / name).write_bytes(data)
        result = cli(store, "labels", "import", str(tmp_path / name))
        assert result.exit_code == 1, (name, result.output)
        assert len(result.output.strip().splitlines()) == 1 and name in result.output, result.output
    assert queries.run(store, "feature-labels", limit=ALL) == []


def test_a_label_file_over_the_cap_is_refused_as_too_large(store, tmp_path, monkeypatch):
    """The cap is checked on the bytes, before decoding, so a cut inside a character still reads as "too large"."""
    monkeypatch.setattr(labels, "MAX_LABEL_FILE", 100)
    text = "layer,index,label\n" + "".join(f"3,{i},üüüü\n" for i in range(20))
    with pytest.raises(UnicodeDecodeError):                  # the first 101 bytes end inside a "ü"
        text.encode()[:101].decode()
    (tmp_path / "big.csv").write_text(text, encoding="utf-8")
    (tmp_path / "big.csv.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("big.csv", "big.csv.gz"):
        result = cli(store, "labels", "import", str(tmp_path / name))
        assert result.exit_code == 1 and "over 100 bytes" in result.output and name in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert queries.run(store, "feature-labels", limit=ALL) == []


def test_import_asks_which_transcoder_set_when_the_store_has_several(tmp_path, graphs):
    from circuit_atlas.store import open_store
    from circuit_atlas.ingest.formats import read_graph_file
    other = read_graph_file(FIXTURES.parent / "formats" / "real" / "dallas-austin-gemma-2-2b-gemmascope-tc.json.gz")
    (tmp_path / "l.csv").write_text("layer,index,label\n20,15589,Texas\n")
    with open_store(str(tmp_path / "atlas.db")) as store:
        store.add_graphs([graphs[0], other])
        with pytest.raises(labels.LabelFileError, match="--transcoder-set.*mntss/clt-gemma-2-2b-2.5M, mntss/gemma-scope"):
            labels.import_labels(store, tmp_path / "l.csv")
        labels.import_labels(store, tmp_path / "l.csv", other.transcoder_set)
        assert shown(store, f"{other.transcoder_set}/20/15589") == "Texas"
        # an export that names a model no stored graph is of says so, and stores nothing
        (tmp_path / "other.json").write_text('[{"modelId": "llama-3-8b", "layer": "20-x", "index": 1, "description": "y"}]')
        before = queries.run(store, "feature-labels", limit=ALL)
        with pytest.raises(labels.LabelFileError, match="its labels are for llama-3-8b, and no stored graph is of that "
                                                        "model.*mntss/clt-gemma-2-2b-2.5M, mntss/gemma-scope"):
            labels.import_labels(store, tmp_path / "other.json")
        assert queries.run(store, "feature-labels", limit=ALL) == before


def test_decoder_promotions_with_the_model(tmp_path):
    """`labels auto --model` adds what each decoder promotes: W_U (gain * decoder), computed here with torch."""
    import torch
    from safetensors.torch import load_file
    from circuit_atlas import organisms, tracer

    root = organisms.zoo_path("planted")
    model = tracer.load(root / "model", root / "transcoders" / "plt")
    from circuit_atlas.store import open_store
    with open_store(str(tmp_path / "atlas.db")) as store:
        store.add_graph(tracer.trace(model, "the opposite of small is"))
        made = labels.auto_labels(store, model)
    weights = load_file(str(root / "model" / "model.safetensors"))
    W_U = weights.get("lm_head.weight", weights["model.embed_tokens.weight"]).float()
    gain = weights["model.norm.weight"].float()
    checked = 0
    for key, label in made.items():
        layer, index = map(int, key.split("/")[-2:])
        W_dec = load_file(str(root / "transcoders" / "plt" / f"layer_{layer}.safetensors"))["W_dec"].float()
        top = torch.topk(W_U @ (gain * W_dec[index]), 5).indices.tolist()
        assert label["promotes"] == ", ".join(json.dumps(model.tokenizer.decode([t])) for t in top), key
        checked += 1
    assert checked > 10


def test_automatic_labels_follow_the_corpus_as_it_grows(tmp_path, graphs):
    from circuit_atlas.store import open_store
    with open_store(str(tmp_path / "atlas.db")) as store:
        store.add_graphs(graphs[:2])
        before = labels.auto_labels(store)
        store.add_graphs(graphs[2:])
        after = labels.auto_labels(store)
        changed = [k for k in before if before[k]["text"] != after[k]["text"]]
        assert changed, "more graphs should change some automatic labels"
        clerped = {g.feature_key(n) for g in graphs for n in g.nodes if n.label and g.feature_key(n)}
        got = {r["fkey"]: r["label"] for r in queries.run(store, "_labels-of", keys=sorted(after))}
        assert {k: got[k] for k in after if k not in clerped} == {k: v["text"] for k, v in after.items() if k not in clerped}


def test_a_graph_files_labels_are_kept_once_when_their_graph_is_deleted_and_ingested_again(store_uri, graphs):
    """The graph-file labels kept before the delete outlive their features, and are linked again, not
    made twice (one label per feature and source), on both stores."""
    from circuit_atlas.store import open_store
    with open_store(store_uri) as store:
        store.add_graphs(graphs[:1])
        keys = sorted({graphs[0].feature_key(n) for n in graphs[0].nodes} - {None})
        clerps = {r["fkey"]: r["label"] for r in queries.run(store, "_labels-of", keys=keys) if r["label"]}
        assert clerps                                        # what ingest wrote from the graph file
        labels.auto_labels(store)
        store.delete_graphs([graphs[0].id])
        assert not queries.run(store, "_labels-of", keys=keys)
        store.add_graphs(graphs[:1])
        labels.auto_labels(store)
        kept = queries.run(store, "feature-labels", source="graph file", limit=ALL)
        assert sorted(r["fkey"] for r in kept) == sorted(clerps)
        assert {r["fkey"]: r["text"] for r in kept} == clerps
        assert {k: shown(store, k) for k in clerps} == clerps
