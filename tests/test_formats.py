"""Graph files in the wild <-> Graph: real Neuronpedia / circuit-tracer JSON, circuit-tracer .pt, bad input."""
from __future__ import annotations

import gzip
import json
import random
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from circuit_atlas.graph import Graph, Node
from circuit_atlas.ingest.formats import GraphFileError, cantor, model_from_scan, read_graph_file
from circuit_atlas.ingest.write import graph_to_json, write_graph_json

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
REAL = sorted((FIXTURES / "real").glob("*.json.gz"))
ORACLE = FIXTURES / "oracle"
TOKENIZER = ORACLE / "tokenizer"
SHARED_GRAPHS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real-graphs"


def load_json(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def edge_dict(g: Graph) -> dict[tuple[str, str], float]:
    return {(s.node_id, t.node_id): w for s, t, w in g.edges()}


def f32(x):
    return None if x is None else float(np.float32(x))


def assert_same_graph(a: Graph, b: Graph) -> None:
    assert a.id == b.id
    assert [n.node_id for n in a.nodes] == [n.node_id for n in b.nodes]
    assert a.nodes == b.nodes
    assert edge_dict(a) == edge_dict(b)
    assert (a.model, a.transcoder_set, a.n_layers, a.prompt, a.prompt_tokens, a.slug) == \
           (b.model, b.transcoder_set, b.n_layers, b.prompt, b.prompt_tokens, b.slug)


def assert_equivalent_json(original: dict, written: dict) -> None:
    """Same metadata, viewer state and nodes; the same links with float32 weights."""
    assert written["metadata"] == original["metadata"]
    assert written["qParams"] == original["qParams"]
    assert written["nodes"] == original["nodes"]
    links = lambda d: [(x["source"], x["target"], f32(x["weight"])) for x in d["links"]]  # noqa: E731
    assert links(written) == links(original)


# ------------------------------------------------------------------------------------ real graphs

@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_graph_round_trips(path, tmp_path):
    g = read_graph_file(path)
    original = load_json(path)
    assert len(g.nodes) == len(original["nodes"]) and g.n_edges == len(original["links"])
    for name in ("out.json", "out.json.gz"):
        out = write_graph_json(g, tmp_path / name)
        assert_same_graph(read_graph_file(out), g)
        assert_equivalent_json(original, load_json(out))


def test_neuronpedia_graph_fields():
    g = read_graph_file(FIXTURES / "real" / "123-qwen3-4b-transcoder-hp.json.gz")
    assert (g.model, g.transcoder_set, g.n_layers) == ("qwen3-4b", "mwhanna/qwen3-4b-transcoders", 36)
    assert g.slug == "ie-tiny-123-qwen3-4b-tc" and g.prompt_tokens == ["<|endoftext|>", "1", "2", "3"]
    assert (g.node_threshold, g.edge_threshold) == (0.5, 0.8)
    assert g.generator["generation_settings"]["max_n_logits"] == 5 and g.generator["version"] == "3f0965b6"
    by_id = {n.node_id: n for n in g.nodes}
    feat = by_id["0_116505_1"]     # feature 6786882270 in the file: Cantor(0, 116505), beyond 32 bits
    assert (feat.kind, feat.layer, feat.pos, feat.feature, feat.activation) == ("feature", 0, 1, 116505, 0.734375)
    assert g.feature_key(feat) == "mwhanna/qwen3-4b-transcoders/0/116505"
    err = by_id["0_-1_1"]
    assert (err.kind, err.layer, err.pos, err.feature, err.activation) == ("error", 0, 1, None, None)
    emb = by_id["E_16_1"]
    assert (emb.kind, emb.layer, emb.token_id, emb.token) == ("embedding", -1, 16, "1")
    logit = by_id["37_19_3"]       # JSON layer 37 = n_layers + 1
    assert (logit.kind, logit.layer, logit.token_id, logit.token, logit.logit_prob, logit.label) == \
           ("logit", 36, 19, "4", 0.61328125, "")


def test_scan_holding_a_transcoder_repo():
    g = read_graph_file(FIXTURES / "real" / "dallas-austin-gemma-2-2b-gemmascope-tc.json.gz")
    assert (g.model, g.transcoder_set, g.n_layers) == ("gemma-2-2b", "mntss/gemma-scope-transcoders", 26)
    assert g.generator == {} and g.edge_threshold is None
    austin = next(n for n in g.nodes if n.kind == "logit" and n.token == " Austin")
    assert (austin.node_id, austin.token_id, austin.logit_prob) == ("27_22605_9", 22605, 0.396484375)
    assert g.extra["target_logit"] == "27_22605_9"
    meta = graph_to_json(g)["metadata"]
    assert meta["scan"] == "mntss/gemma-scope-transcoders" and "info" not in meta


def test_circuit_tracer_error_ids_are_canonical_and_written_back():
    g = read_graph_file(FIXTURES / "real" / "son-clt-hp.json.gz")
    original = load_json(FIXTURES / "real" / "son-clt-hp.json.gz")
    errors = [n for n in g.nodes if n.kind == "error"]
    assert errors and all(n.node_id == f"{n.layer}_-1_{n.pos}" for n in errors)
    file_errors = [d["node_id"] for d in original["nodes"] if d["feature_type"] == "mlp reconstruction error"]
    assert file_errors == [f"0_{n.layer}_{n.pos}" for n in errors]
    assert g.extra["error_ids"] == "0_{layer}_{pos}"
    written = graph_to_json(g)
    assert [d["node_id"] for d in written["nodes"]] == [d["node_id"] for d in original["nodes"]]
    for d in original["nodes"]:   # the middle of the id is authoritative; `feature` is its Cantor pair
        if d["feature_type"] == "cross layer transcoder":
            layer, index, _ = map(int, d["node_id"].split("_"))
            assert d["feature"] == cantor(layer, index)


def test_raw_feature_indices_of_older_exports(tmp_path):
    d = load_json(FIXTURES / "real" / "123-gemma-2-2b-clt-hp.json.gz")
    for n in d["nodes"]:
        if n["feature_type"] == "cross layer transcoder":
            n["feature"] = int(n["node_id"].split("_")[1])
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(d))
    g = read_graph_file(path)
    assert g.extra["feature_encoding"] == "raw"
    assert g.id == read_graph_file(FIXTURES / "real" / "123-gemma-2-2b-clt-hp.json.gz").id
    assert graph_to_json(g)["nodes"] == d["nodes"]


@pytest.mark.parametrize("how", ["absent", "null"])
def test_feature_field_missing_or_null_is_read_from_the_node_id(how, tmp_path):
    """`feature` repeats what the node id says; files that leave it out (or null) read as the same graph."""
    original = FIXTURES / "real" / "123-gemma-2-2b-clt-hp.json.gz"
    d = load_json(original)
    assert {n["feature_type"] for n in d["nodes"]} == {"cross layer transcoder", "mlp reconstruction error",
                                                        "embedding", "logit"}
    for n in d["nodes"]:
        if how == "absent":
            del n["feature"]
        else:
            n["feature"] = None
    path = tmp_path / "no-feature.json"
    path.write_text(json.dumps(d))
    g = read_graph_file(path)
    assert_same_graph(g, read_graph_file(original))
    assert graph_to_json(g)["nodes"] == load_json(original)["nodes"]   # written back in full


def test_qparams_and_supernodes_are_kept_and_follow_subgraphs(tmp_path):
    d = load_json(FIXTURES / "real" / "123-gemma-2-2b-clt-hp.json.gz")
    ids = [n["node_id"] for n in d["nodes"]]
    d["qParams"].update(pinnedIds=ids[:3], supernodes=[["digits", ids[0], ids[1]], ["one", ids[2]]],
                        clickedId=ids[2])
    path = tmp_path / "q.json"
    path.write_text(json.dumps(d))
    g = read_graph_file(path)
    assert g.extra["qParams"]["supernodes"] == [["digits", ids[0], ids[1]], ["one", ids[2]]]
    assert graph_to_json(g)["qParams"] == d["qParams"]
    sub = graph_to_json(g.subgraph(set(ids) - {ids[1], ids[2]}))["qParams"]
    assert sub["pinnedIds"] == [ids[0]] and sub["supernodes"] == [["digits", ids[0]]] and sub["clickedId"] == ""


@pytest.mark.parametrize("with_logits", [True, False])
def test_subgraph_writes_and_reads_back(tmp_path, with_logits):
    g = read_graph_file(FIXTURES / "real" / "123-gemma-2-2b-clt-hp.json.gz")
    keep = [n.node_id for n in g.nodes if n.kind != "logit" or with_logits][:-3]
    sub = g.subgraph(keep)
    assert 0 < sub.n_edges < g.n_edges
    back = read_graph_file(write_graph_json(sub, tmp_path / "sub.json"))
    assert_same_graph(back, sub)
    assert back.n_layers == 26


def test_graph_built_in_memory_writes_the_viewer_field_set(tmp_path):
    """A tracer-made graph (no file metadata) gets circuit-tracer's exact node / link / top-level fields."""
    nodes = [Node("E_1_0", "embedding", -1, 0, token_id=1, token="<bos>", influence=0.5),
             Node("E_7_1", "embedding", -1, 1, token_id=7, token=" hi", influence=0.25),
             Node("0_0_1", "feature", 0, 1, feature=0, activation=1.5, influence=0.75, label="greeting"),
             Node("1_-1_1", "error", 1, 1, influence=0.125),
             Node("3_9_1", "logit", 2, 1, token_id=9, token=" there", logit_prob=0.75)]
    g = Graph(prompt="<bos> hi", prompt_tokens=["<bos>", " hi"], model="org/tiny-llama", transcoder_set="me/tiny-clt",
              n_layers=2, nodes=nodes, edge_source=[0, 1, 2, 3, 1], edge_target=[2, 2, 4, 4, 4],
              edge_weight=[0.5, -1.25, 2.0, 0.25, 0.0625], slug="hi", node_threshold=0.8,
              edge_threshold=0.98, generator={"name": "circuit-atlas", "generation_settings": {"max_n_logits": 1}})
    path = write_graph_json(g, tmp_path / "hi.json", update_index=True)
    assert_same_graph(read_graph_file(path), g)
    ours, theirs = load_json(path), load_json(ORACLE / "clt-tl-p0-max32.json")
    assert ours.keys() == theirs.keys()
    assert set(theirs["metadata"]) <= set(ours["metadata"])
    assert {tuple(n) for n in ours["nodes"]} == {tuple(n) for n in theirs["nodes"]}   # same keys, same order
    assert {tuple(x) for x in ours["links"]} == {("source", "target", "weight")}
    by_id = {n["node_id"]: n for n in ours["nodes"]}
    assert by_id["0_0_1"]["feature"] == 0 and by_id["0_0_1"]["jsNodeId"] == "0_0-0"
    assert by_id["3_9_1"]["layer"] == "3" and by_id["3_9_1"]["is_target_logit"] is True
    assert by_id["3_9_1"]["clerp"] == 'Output " there" (p=0.750)'
    g.nodes[4].node_id = "2_9_1"       # the logit id carries the JSON layer n_layers + 1
    with pytest.raises(ValueError, match="a logit node's id must be '3_9_1'"):
        graph_to_json(g)
    g.nodes[4].node_id = "3_9_1"
    assert ours["metadata"]["info"] == {"transcoder_set": "me/tiny-clt", "generator": {"name": "circuit-atlas"}}
    index = load_json(tmp_path / "graph-metadata.json")
    write_graph_json(g, tmp_path / "hi.json", update_index=True)
    assert [e["slug"] for e in index["graphs"]] == ["hi"] == [e["slug"] for e in load_json(tmp_path / "graph-metadata.json")["graphs"]]


@pytest.mark.parametrize("scan, transcoders, model", [
    ("gemma-2-2b", "", "gemma-2-2b"),
    ("mntss/gemma-scope-transcoders", "", "gemma-2-2b"),
    ("mntss/clt-gemma-2-2b-2.5M", "", "gemma-2-2b"),
    ("mwhanna/qwen3-4b-transcoders", "", "qwen3-4b"),
    ("mwhanna/gemma-scope-2-1b-pt", "", "gemma-3-1b"),
    (None, "mntss/transcoder-Llama-3.2-1B", "llama3.2-1b"),
    ("someone/mystery-transcoders", "", "someone/mystery-transcoders"),
    ("google/gemma-2-2b", "mntss/clt-gemma-2-2b-2.5M", "google/gemma-2-2b"),
])
def test_model_from_scan(scan, transcoders, model):
    assert model_from_scan(scan, transcoders) == model


@pytest.mark.skipif(not SHARED_GRAPHS.is_dir(), reason=f"shared corpus {SHARED_GRAPHS} not present")
def test_full_shared_corpus_round_trips(tmp_path):
    paths = sorted(SHARED_GRAPHS.glob("*.json")) + sorted(SHARED_GRAPHS.glob("*/*.json"))
    assert len(paths) == 62
    for path in paths:
        g = read_graph_file(path)
        out = write_graph_json(g, tmp_path / "out.json")
        assert read_graph_file(out).id == g.id, path.name
        assert_equivalent_json(load_json(path), load_json(out))


# ----------------------------------------------------------------------------- circuit-tracer .pt

@pytest.mark.parametrize("slug", ["clt-tl-p0-max32", "collide-plt-tl-p2"])
def test_pt_is_the_full_graph_behind_the_oracle_json(slug):
    """Every node and edge of circuit-tracer's pruned JSON is in the .pt graph with the same values, and
    circuit-tracer's own pruning masks (from the .npz) select exactly the JSON's edges."""
    pt_path = next(ORACLE.glob(f"{slug}.pt*"))
    full = read_graph_file(pt_path, tokenizer=TOKENIZER)
    pruned = read_graph_file(next(ORACLE.glob(f"{slug}.json*")))
    assert full.prompt_tokens == pruned.prompt_tokens and full.prompt == pruned.prompt
    assert (full.model, full.transcoder_set, full.n_layers) == (pruned.model, pruned.transcoder_set, pruned.n_layers)
    index = {n.node_id: i for i, n in enumerate(full.nodes)}
    for n in pruned.nodes:
        m = full.nodes[index[n.node_id]]
        assert (m.kind, m.layer, m.pos, m.feature, m.token_id, m.token) == \
               (n.kind, n.layer, n.pos, n.feature, n.token_id, n.token)
        assert f32(m.activation) == f32(n.activation) and f32(m.logit_prob) == f32(n.logit_prob)
    full_edges, pruned_edges = edge_dict(full), edge_dict(pruned)
    assert len(full_edges) == full.n_edges > pruned.n_edges
    assert all(full_edges[k] == w for k, w in pruned_edges.items())
    masks = np.load(ORACLE / f"{slug}.npz")
    keep = masks["node_mask"][full.edge_source] & masks["node_mask"][full.edge_target] & \
        masks["edge_mask"][full.edge_target, full.edge_source]
    ids = [n.node_id for n in full.nodes]
    assert {(ids[s], ids[t]) for s, t in zip(full.edge_source[keep], full.edge_target[keep])} == set(pruned_edges)


def test_pt_graph_writes_as_json(tmp_path):
    full = read_graph_file(ORACLE / "clt-tl-p0-max32.pt", tokenizer=TOKENIZER / "tokenizer.json")
    assert full.prompt_tokens == load_json(ORACLE / "clt-tl-p0-max32.json")["metadata"]["prompt_tokens"]
    assert_same_graph(read_graph_file(write_graph_json(full, tmp_path / "full.json")), full)


def test_pt_of_older_circuit_tracer(tmp_path):
    """circuit-tracer < 0.4 saved `logit_tokens` (ids, no text) and no vocab_size; the tokenizer spells them."""
    import torch
    from circuit_atlas.ingest.pt import load_pt
    d = load_pt((ORACLE / "clt-tl-p0-max32.pt").read_bytes())
    d["logit_tokens"] = torch.tensor([t.args[1] for t in d.pop("logit_targets")])
    d["cfg"] = {"n_layers": d["cfg"].n_layers, "tokenizer_name": str(TOKENIZER)}
    del d["vocab_size"]
    torch.save(d, tmp_path / "old.pt")
    old = read_graph_file(tmp_path / "old.pt")
    new = read_graph_file(ORACLE / "clt-tl-p0-max32.pt", tokenizer=TOKENIZER)
    assert_same_graph(old, new)
    assert [n.token for n in old.nodes if n.kind == "logit"][:3] == ["ask", "stand", "just"]


def test_pt_naming_its_transcoders_scan_name(tmp_path):
    """Later circuit-tracer saves the transcoders' name as `scan_name` (was `scan`): same graph, same set."""
    import torch
    from circuit_atlas.ingest.pt import load_pt
    d = load_pt((ORACLE / "clt-tl-p0-max32.pt").read_bytes())
    d["scan_name"] = d.pop("scan")
    # circuit-tracer's own classes do not pickle here (it is not installed): plain stand-ins
    d["cfg"] = {"n_layers": d["cfg"].n_layers, "tokenizer_name": str(TOKENIZER)}
    d["logit_targets"] = torch.tensor([t.args[1] for t in d["logit_targets"]])
    torch.save(d, tmp_path / "renamed.pt")
    renamed = read_graph_file(tmp_path / "renamed.pt", tokenizer=TOKENIZER)
    assert renamed.transcoder_set == "oracle-tiny-clt-seed0"
    assert_same_graph(renamed, read_graph_file(ORACLE / "clt-tl-p0-max32.pt", tokenizer=TOKENIZER))


def test_pt_tokenizer_must_be_available():
    with pytest.raises(GraphFileError, match=r"clt-tl-p0-max32\.pt: cannot spell the prompt tokens.*tokenizer="):
        read_graph_file(ORACLE / "clt-tl-p0-max32.pt", tokenizer="/nonexistent/tokenizer")


def test_pt_damaged_or_inconsistent(tmp_path):
    import torch
    from circuit_atlas.ingest.pt import load_pt
    blob = (ORACLE / "clt-tl-p0-max32.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(GraphFileError, match=r"cut\.pt: not a readable torch file"):
        read_graph_file(tmp_path / "cut.pt", tokenizer=TOKENIZER)
    d = load_pt(blob)
    d["selected_features"] = d["selected_features"][:-1]
    d["cfg"] = {"n_layers": 2}
    d["logit_tokens"] = torch.tensor([t.args[1] for t in d.pop("logit_targets")])
    torch.save(d, tmp_path / "odd.pt")
    with pytest.raises(GraphFileError, match=r"odd\.pt: adjacency_matrix is \(69, 69\), expected \(68, 68\)"):
        read_graph_file(tmp_path / "odd.pt", tokenizer=TOKENIZER)


def test_pt_refuses_foreign_code(tmp_path):
    import torch
    path = tmp_path / "evil.pt"
    torch.save({"input_string": "x", "cfg": warnings.WarningMessage("m", UserWarning, "f", 1)}, path)
    with pytest.raises(GraphFileError, match=r"evil\.pt: not a circuit-tracer graph file: refusing to load warnings"):
        read_graph_file(path, tokenizer=TOKENIZER)


# --------------------------------------------------------------------------------- id collisions

def test_upstream_id_collision_is_resolved():
    path = ORACLE / "collide-plt-tl-p2.json.gz"
    original = load_json(path)
    assert [n["node_id"] for n in original["nodes"]].count("0_0_5") == 2
    g = read_graph_file(path)
    feature, error = (next(n for n in g.nodes if n.node_id == i) for i in ("0_0_5", "0_-1_5"))
    assert (feature.kind, feature.feature, error.kind, error.layer) == ("feature", 0, "error", 0)
    assert g.extra["id_collisions"] == {"0_0_5": ["0_0_5", "0_-1_5"]}
    assert len(g.nodes) == len(original["nodes"]) and g.n_edges == len(original["links"])
    edges = edge_dict(g)
    assert not any(t == "0_-1_5" for _, t in edges)          # errors have no incoming edges
    assert any(s == "0_-1_5" for s, _ in edges) and any(s == "0_0_5" for s, _ in edges)
    written = graph_to_json(g)                                  # no duplicate ids in what we write
    ids = [n["node_id"] for n in written["nodes"]]
    assert len(set(ids)) == len(ids) and "0_-1_5" in ids and ids.count("0_0_5") == 1
    assert read_graph_file(path).id == g.id


def test_collision_in_shuffled_links_keeps_every_link(tmp_path):
    d = load_json(ORACLE / "collide-plt-tl-p2.json.gz")
    reference = edge_dict(read_graph_file(ORACLE / "collide-plt-tl-p2.json.gz"))
    random.Random(0).shuffle(d["links"])
    path = tmp_path / "shuffled.json"
    path.write_text(json.dumps(d))
    with pytest.warns(UserWarning, match="could not be attributed with certainty"):
        g = read_graph_file(path)
    assert set(edge_dict(g)) == set(reference)


def _collision_graph(seed: int, n_pairs: int) -> Graph:
    """A physically valid 3-layer graph whose circuit-tracer 0.5.0 ids collide `n_pairs` times: a
    layer-0 feature with index l < 3 at position p shares "0_{l}_{p}" with the error at layer l,
    position p. Nodes in circuit-tracer's order (features, errors, embeddings, logits); an edge goes to
    a later layer, never back in position."""
    rng = random.Random(seed)
    n_pos, n_layers = 5, 3
    colliding = rng.sample([(0, f, p) for f in range(n_layers) for p in range(n_pos)], n_pairs)
    feats = sorted(set(colliding) | {(rng.randrange(n_layers), rng.randrange(3, 40), rng.randrange(n_pos))
                                     for _ in range(12)})
    nodes = [Node(f"{l}_{f}_{p}", "feature", l, p, feature=f, activation=1.0, influence=0.5) for l, f, p in feats]
    nodes += [Node(f"{l}_-1_{p}", "error", l, p, influence=0.5) for l in range(n_layers) for p in range(n_pos)]
    nodes += [Node(f"E_{10 + p}_{p}", "embedding", -1, p, token_id=10 + p, token=f"t{p}") for p in range(n_pos)]
    nodes += [Node(f"{n_layers + 1}_{t}_{n_pos - 1}", "logit", n_layers, n_pos - 1, token_id=t, token=f"out{t}",
                   logit_prob=0.1) for t in (3, 4)]
    density = rng.choice([0.1, 0.3, 0.6])
    edges = [(s, t) for s, a in enumerate(nodes) for t, b in enumerate(nodes)
             if a.kind != "logit" and b.kind not in ("embedding", "error") and a.layer < b.layer and a.pos <= b.pos
             and rng.random() < density]
    return Graph(prompt=" ".join(f"t{p}" for p in range(n_pos)), prompt_tokens=[f"t{p}" for p in range(n_pos)],
                 model="tiny", transcoder_set="tiny/plt", n_layers=n_layers, nodes=nodes,
                 edge_source=[e[0] for e in edges], edge_target=[e[1] for e in edges],
                 edge_weight=[round(rng.uniform(-2, 2), 3) or 0.5 for _ in edges])


def _ct_links(graph: Graph, edges: dict[tuple[int, int], float]) -> list[dict]:
    """Links as circuit-tracer 0.5.0 writes them: errors named "0_{layer}_{pos}" (colliding), sorted by
    (target, source) in node order."""
    ids = [f"0_{n.layer}_{n.pos}" if n.kind == "error" else n.node_id for n in graph.nodes]
    return [{"source": ids[s], "target": ids[t], "weight": w} for (s, t), w in sorted(edges.items(), key=lambda e: e[0][::-1])]


def _read_collision_file(g: Graph, path: Path):
    """Write `g` as circuit-tracer 0.5.0 would, read it back. -> (truth, ambiguous links, read graph,
    links the reader says it could not attribute with certainty).

    A link from a colliding id is ambiguous when the other node of its pair could have sent it (a
    later layer, no such link already) AND the file would be byte for byte the same; worked out here
    from the graph, not from the reader's rules."""
    doc = graph_to_json(g)
    for n, d in zip(g.nodes, doc["nodes"]):
        if n.kind == "error":
            d["node_id"] = f"0_{n.layer}_{n.pos}"
    truth = {(int(s), int(t)): float(w) for s, t, w in zip(g.edge_source, g.edge_target, g.edge_weight)}
    doc["links"] = _ct_links(g, truth)
    ids = [d["node_id"] for d in doc["nodes"]]
    partner = {i: j for i in range(len(ids)) for j in range(len(ids)) if i != j and ids[i] == ids[j]}
    ambiguous = {}
    for (s, t), w in truth.items():
        other = partner.get(s)
        if other is None or (other, t) in truth or g.nodes[other].layer >= g.nodes[t].layer:
            continue
        if _ct_links(g, {**{k: v for k, v in truth.items() if k != (s, t)}, (other, t): w}) == doc["links"]:
            ambiguous[(s, t)] = other
    path.write_text(json.dumps(doc))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = read_graph_file(path)
    said = sum(int(str(w.message).split()[0]) for w in caught if "attributed with certainty" in str(w.message))
    return truth, ambiguous, back, said


def test_collision_rules_read_circuit_tracer_files_exactly(tmp_path):
    """One colliding pair per graph, as in real 0.5.0 files: every link the file determines reads back
    exactly (source, target, weight), and the reader warns for exactly the ambiguous ones (issue 14)."""
    n_links = n_ambiguous = 0              # links from a colliding id (or any error), and ambiguous ones
    for seed in range(60):
        g = _collision_graph(seed, n_pairs=1)
        truth, ambiguous, back, said = _read_collision_file(g, tmp_path / f"collide{seed}.json")
        assert said == len(ambiguous), (seed, said, len(ambiguous))
        name = [n.node_id for n in g.nodes]
        got = {(s.node_id, t.node_id): w for s, t, w in back.edges()}
        for (s, t), w in truth.items():
            sources = (s, ambiguous[(s, t)]) if (s, t) in ambiguous else (s,)   # either reading is the file's
            assert any(got.get((name[x], name[t])) == f32(w) for x in sources), (seed, name[s], name[t])
        assert back.n_edges == len(truth)
        n_links += sum(name[s].startswith("0_") and int(name[s].split("_")[1]) < 3 or "_-1_" in name[s]
                       for s, _ in truth)
        n_ambiguous += len(ambiguous)
    assert 0 < n_ambiguous < n_links / 10


def test_collision_reader_never_claims_certainty_it_lacks(tmp_path):
    """Several colliding pairs per graph: a guess for one link is no evidence for the next, so the
    reader warns for at least every link that a single swap leaves ambiguous; weights and targets are
    always right and no link is lost."""
    for seed in range(40):
        g = _collision_graph(seed, n_pairs=6)
        truth, ambiguous, back, said = _read_collision_file(g, tmp_path / f"collide{seed}.json")
        assert said >= len(ambiguous), (seed, said, len(ambiguous))
        got = sorted((t.node_id, f32(w)) for _, t, w in back.edges())
        assert got == sorted((g.nodes[t].node_id, f32(w)) for (_, t), w in truth.items())


# ------------------------------------------------------------------------------------- bad input

def _good() -> dict:
    return load_json(FIXTURES / "real" / "123-gemma-2-2b-clt-hp.json.gz")


def _edit(fn):
    d = _good()
    fn(d)
    return json.dumps(d)


BAD_FILES = {
    "truncated": (lambda: json.dumps(_good())[:5000], r"truncated JSON"),
    "missing-metadata-field": (lambda: _edit(lambda d: d["metadata"].pop("prompt_tokens")),
                               r"missing required field 'metadata\.prompt_tokens'"),
    "missing-node-field": (lambda: _edit(lambda d: d["nodes"][3].pop("node_id")),
                           r"missing required field 'nodes\[3\]\.node_id'"),
    "nan-weight": (lambda: _edit(lambda d: d["links"][7].update(weight=float("nan"))),
                   r"link 7 \(.* -> .*\) has a non-finite weight nan"),
    "inf-weight": (lambda: json.dumps(_good()).replace('"weight": -2.390625', '"weight": 1e999', 1),
                   r"link 0 \(.*\) has a non-finite weight inf"),
    "weight-beyond-float32": (lambda: json.dumps(_good()).replace('"weight": -2.390625', '"weight": 1e300', 1),
                              r"link 0 \(.*\) has a weight 1e\+300 beyond float32's range"),
    "empty-file": (lambda: "\n", r"empty file \(no JSON in it\)"),
    "nan-activation": (lambda: _edit(lambda d: d["nodes"][0].update(activation=float("nan"))),
                       r"nodes\[0\]\.activation: Input should be a finite number"),
    "unknown-node": (lambda: _edit(lambda d: d["links"][2].update(target="9_999_9")),
                     r"link 2: target '9_999_9' is not a node of this graph"),
    "duplicate-node": (lambda: _edit(lambda d: d["nodes"].append(dict(d["nodes"][0]))),
                       r"duplicate node id '0_18753_3'"),
    "wrong-type-node": (lambda: _edit(lambda d: d["nodes"][1].update(ctx_idx="3")),
                        r"nodes\[1\]\.ctx_idx: Input should be a valid integer"),
    "wrong-type-weight": (lambda: _edit(lambda d: d["links"][4].update(weight="0.5")),
                          r"link 4: 'weight' should be a number \(got '0\.5'\)"),
    "bad-cantor": (lambda: _edit(lambda d: d["nodes"][0].update(feature=12345)),
                   r"'feature' 12345 is neither Cantor\(0, 18753\)"),
    "empty-graph": (lambda: _edit(lambda d: (d["nodes"].clear(), d["links"].clear())), r"empty graph"),
    "not-a-graph": (lambda: json.dumps({"hello": "world", "n": [1, 2]}),
                    r"not an attribution graph: expected a JSON object .* \(found: hello, n\)"),
    "json-list": (lambda: "[1, 2, 3]", r"not an attribution graph.*\(found: list\)"),
    # impossible values (nodes 0-12 features, 13-14 errors, 15-18 embeddings at positions 0-3, 19-23 logits)
    "logit-prob-over-1": (lambda: _edit(lambda d: d["nodes"][19].update(token_prob=3.5)),
                          r"node 19 \('27_235310_3'\): token_prob 3\.5 is not a probability \(outside \[0, 1\]\)"),
    "logit-prob-negative": (lambda: _edit(lambda d: d["nodes"][20].update(token_prob=-0.25)),
                            r"node 20 \('27_235318_3'\): token_prob -0\.25 is not a probability"),
    "logit-probs-sum-over-1": (lambda: _edit(lambda d: [n.update(token_prob=0.4) for n in d["nodes"][19:]]),
                               r"the logit nodes' token_prob sum to 2, over 1"),
    "inf-influence": (lambda: _edit(lambda d: d["nodes"][2].update(influence=float("inf"))),
                      r"nodes\[2\]\.influence: Input should be a finite number"),
    "negative-n-layers": (lambda: _edit(lambda d: (d["metadata"].update(n_layers=-3), d.update(
                              nodes=d["nodes"][15:19], links=[]))), r"n_layers is -3: a graph has at least one layer"),
    "layer-beyond-n-layers": (lambda: _rename(_good(), "24_17481_3", "30_17481_3", layer="30", feature=cantor(30, 17481)),
                              r"node '30_17481_3': layer 30 is not below the logit layer 27 \(n_layers = 26\)"),
    "negative-token-id": (lambda: _rename(_good(), "E_2_0", "E_-5_0"), r"node 15 \('E_-5_0'\): token id -5 is negative"),
    "link-into-embedding": (lambda: _link("0_18753_3", "E_2_0"),
                            r"link 75 \(0_18753_3 -> E_2_0\) points into an embedding \(embeddings have no inputs\)"),
    "link-into-error": (lambda: _link("0_18753_3", "24_-1_3"), r"link 75 \(0_18753_3 -> 24_-1_3\) points into an error node"),
    "link-out-of-logit": (lambda: _link("27_235310_3", "24_17481_3"), r"link 75 \(27_235310_3 -> 24_17481_3\) leaves a logit"),
    "link-to-earlier-layer": (lambda: _link("24_17481_3", "1_12928_3"),
                              r"link 75 \(24_17481_3 -> 1_12928_3\) goes from layer 24 to layer 1: effects only reach "
                              r"later layers"),
    "link-within-a-layer": (lambda: _link("0_18753_3", "0_27046_3"), r"link 75 .* goes from layer 0 to layer 0"),
    # circuit-tracer's legacy error ids are 0_{layer}_{pos}: both the 0 and the layer must be there
    "legacy-error-id-head": (lambda: _rename(_good(), "24_-1_3", "1_24_3"),
                             r"node 13 \('1_24_3'\): an error node's id is '24_-1_3' or '0_24_3'"),
    "legacy-error-id-layer": (lambda: _rename(_good(), "24_-1_3", "0_23_3"),
                              r"node 13 \('0_23_3'\): an error node's id is '24_-1_3' or '0_24_3'"),
}


def _link(source: str, target: str) -> str:
    return _edit(lambda d: d["links"].append({"source": source, "target": target, "weight": 0.5}))


def _rename(d: dict, old: str, new: str, **fields) -> str:
    """`d` with node `old` renamed `new` (in its links too) and `fields` set on it."""
    for n in d["nodes"]:
        if n["node_id"] == old:
            n.update(node_id=new, **fields)
    for link in d["links"]:
        for end in ("source", "target"):
            link[end] = new if link[end] == old else link[end]
    return json.dumps(d)


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_file_gets_one_clear_error(case, tmp_path):
    make, message = BAD_FILES[case]
    path = tmp_path / f"{case}.json"
    path.write_text(make())
    with pytest.raises(GraphFileError) as e:
        read_graph_file(path)
    text = str(e.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert re.search(message, text), text


def test_size_cap(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps(_good()))
    assert read_graph_file(path, max_bytes=1_000_000).nodes
    with pytest.raises(GraphFileError, match=r"big\.json: file is [\d,]+ bytes, over the 1,000-byte limit"):
        read_graph_file(path, max_bytes=1000)
    gz = tmp_path / "bomb.json.gz"        # small on disk, too large once decompressed
    gz.write_bytes(gzip.compress(json.dumps(_good()).encode() + b" " * 200_000))
    with pytest.raises(GraphFileError, match=r"bomb\.json\.gz: decompresses to over the 100,000-byte limit"):
        read_graph_file(gz, max_bytes=100_000)


def test_size_cap_is_inclusive_and_its_default_documented(tmp_path):
    """A file (or its decompressed JSON) of exactly max_bytes is read, one byte over is refused; the
    default is the 2 GiB docs/formats.md states."""
    import inspect

    text = json.dumps(_good()).encode()
    raw, gz = tmp_path / "exact.json", tmp_path / "exact.json.gz"
    raw.write_bytes(text)
    gz.write_bytes(gzip.compress(text))
    assert read_graph_file(raw, max_bytes=len(text)).nodes and read_graph_file(gz, max_bytes=len(text)).nodes
    with pytest.raises(GraphFileError, match=f"over the {len(text) - 1:,}-byte limit"):
        read_graph_file(raw, max_bytes=len(text) - 1)
    with pytest.raises(GraphFileError, match=f"decompresses to over the {len(text) - 1:,}-byte limit"):
        read_graph_file(gz, max_bytes=len(text) - 1)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text()
    gib = int(re.search(r"capped at `max_bytes` \(default (\d+) GiB", doc).group(1))
    assert inspect.signature(read_graph_file).parameters["max_bytes"].default == gib * 1024**3


def test_missing_file(tmp_path):
    with pytest.raises(GraphFileError, match=r"nope\.json: cannot read: no such file or folder$"):
        read_graph_file(tmp_path / "nope.json")
    with pytest.raises(GraphFileError, match=r"graphs/\*\.json: cannot read: no file matches this pattern$"):
        read_graph_file(tmp_path / "graphs" / "*.json")


def test_standard_library_json_fallback(tmp_path, monkeypatch):
    from circuit_atlas.ingest import formats, write
    path = FIXTURES / "real" / "son-clt-hp.json.gz"
    expected = read_graph_file(path)
    monkeypatch.setattr(formats, "orjson", None)
    monkeypatch.setattr(write, "orjson", None)
    assert_same_graph(read_graph_file(write_graph_json(read_graph_file(path), tmp_path / "x.json")), expected)


def test_impossible_values_in_memory_and_in_pt_files(tmp_path):
    """What the JSON cases above cannot spell: a node outside the prompt, a link back in the prompt,
    and the .pt reader's impossible values (it shares `check_values` with the JSON reader)."""
    import torch
    from circuit_atlas.ingest.formats import check_values
    from circuit_atlas.ingest.pt import load_pt

    g = read_graph_file(FIXTURES / "real" / "123-gemma-2-2b-clt-hp.json.gz")
    check_values(g)
    g.nodes[1].pos = 99
    with pytest.raises(ValueError, match=r"node 1 \('0_27046_3'\): ctx_idx 99 is outside the prompt's 4 tokens"):
        check_values(g)
    g.nodes[1].pos = 3
    g.nodes[0].pos = 1                        # its input E_235304_3 sits at position 3
    with pytest.raises(ValueError, match=r"link 1 \(E_235304_3 -> 0_18753_3\) goes from position 3 back to position 1"):
        check_values(g)

    d = load_pt((ORACLE / "clt-tl-p0-max32.pt").read_bytes())
    d["cfg"] = {"n_layers": d["cfg"].n_layers}           # plain values: the stand-in records cannot be saved
    d["logit_tokens"] = torch.tensor([t.args[1] for t in d.pop("logit_targets")])
    for name, edit, message in [
        ("prob", lambda d: d["logit_probabilities"].__setitem__(0, 3.5), r"token_prob 3\.5 is not a probability"),
        ("nan-activation", lambda d: d["activation_values"].fill_(float("nan")), r"activation is nan, not a finite"),
    ]:
        bad = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in d.items()}
        edit(bad)
        torch.save(bad, tmp_path / f"{name}.pt")
        with pytest.raises(GraphFileError, match=rf"{name}\.pt: node \d+ \('[^']+'\): {message}"):
            read_graph_file(tmp_path / f"{name}.pt", tokenizer=TOKENIZER)
