"""Interventions as a capability: the API's contract, stored evidence and its ranking, the command line.

Equality with circuit-tracer is in test_interventions_oracle.py; the organisms' ground truth in
test_interventions_organisms.py. Here: the oracle's tiny model (tests/fixtures/oracle/).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from circuit_atlas import queries, tracer
from circuit_atlas.queries import interventions as evidence
from circuit_atlas.tracer.frozen import FrozenModel
from circuit_atlas.tracer.interventions import (BadIntervention, Intervention, clean_activations, generate,
                                                intervened_logits, transplant)
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "oracle"
MODEL, TRANSCODERS = FIXTURES / "model", FIXTURES / "transcoders" / "tiny-clt"
PROMPTS = ["The opposite of small is", "Fact: Michael Jordan plays the sport of"]


@pytest.fixture(scope="module")
def model():
    return tracer.load(MODEL, TRANSCODERS)


def active(model, prompt, layer=0, pos=-1, n=3) -> list[int]:
    fm = FrozenModel(model, model.tokenize(prompt))
    return clean_activations(fm, layer)[pos].topk(n).indices.tolist()


@pytest.mark.parametrize("iv, message", [
    (Intervention(5, 1), "layer 5 is not in 0..1"),
    (Intervention(0, 10_000), "feature 10000 is not in 0..127"),
    (Intervention(0, 1, positions=(0,)), "position 0 is the special token"),
    (Intervention(0, 1, positions=(40,)), "position 40 is outside the prompt's 6 tokens"),
])
def test_bad_interventions_get_one_clear_error(model, iv, message):
    with pytest.raises(BadIntervention, match=message):
        tracer.intervene(model, PROMPTS[0], [iv])


def test_bad_op_and_positions_are_refused_when_written():
    with pytest.raises(BadIntervention, match="use one of set, scale, add, ablate"):
        Intervention(0, 1, "zero")
    with pytest.raises(BadIntervention, match="give positions, 'all' or 'generated'"):
        Intervention(0, 1, positions="everywhere")


def test_transplanting_a_prompts_own_activations_changes_nothing(model):
    """Setting every active feature to its own activation is the identity; twice that is not."""
    features = [(l, f) for l in range(model.n_layers) for f in range(model.transcoders.d_transcoder)]
    same = transplant(model, PROMPTS[0], features)
    assert len(same) > 20
    clean = intervened_logits(model, PROMPTS[0], [])
    for freeze in (True, False):
        got = intervened_logits(model, PROMPTS[0], same, freeze_attention=freeze)
        assert (got - clean).abs().max() <= 1e-4 * clean.abs().max()
    doubled = intervened_logits(model, PROMPTS[0], transplant(model, PROMPTS[0], features, strength=2.0))
    assert (doubled - clean).abs().max() > 0.1


def test_result_reports_the_targets_change_and_continuations(model):
    ivs = [Intervention(0, f, "ablate") for f in active(model, PROMPTS[0])]
    result = tracer.intervene(model, PROMPTS[0], ivs, targets=["big", "small"], top_k=3, generate=3)
    after = intervened_logits(model, PROMPTS[0], ivs)[-1]
    before = intervened_logits(model, PROMPTS[0], [])[-1]
    for t in result.targets:
        i = model.tokenizer.convert_tokens_to_ids(t.token.strip())
        assert t.token_id == i
        assert t.logit_before == pytest.approx(float(before[i]), abs=1e-5)
        assert t.logit_after == pytest.approx(float(after[i]), abs=1e-5)
        assert t.prob_after == pytest.approx(float(torch.softmax(after, -1)[i]), abs=1e-6)
        assert t.rank_after == int((after > after[i]).sum()) + 1
    assert [p for _, p in result.top(True)] == pytest.approx(torch.softmax(after, -1).topk(3).values.tolist())
    assert result.continuation_after == model.tokenizer.decode(generate(model, PROMPTS[0], ivs, 3)[0])
    assert result.continuation_before == model.tokenizer.decode(generate(model, PROMPTS[0], [], 3)[0])
    assert len(result.table()) == 3 and result.to_dict()["targets"][0]["token"] == result.targets[0].token


def test_bad_target_token_is_named(model):
    with pytest.raises(tracer.BadTarget, match="each target must be exactly one token"):
        tracer.intervene(model, PROMPTS[0], [Intervention(0, 1)], targets=["big small"])


def test_specs_as_written_on_the_command_line():
    spec = evidence.Spec.parse("scale", "supernode:tag/country=zot@last,2=-1")
    assert spec == evidence.Spec("scale", "supernode:tag/country=zot", (-1, 2), -1.0)
    assert evidence.Spec.parse("ablate", "3/117") == evidence.Spec("ablate", "3/117", None, 0.0)
    assert evidence.Spec.parse("set", "a/b/3/117@all=2.5").positions == "all"
    with pytest.raises(queries.QueryError, match="needs =VALUE"):
        evidence.Spec.parse("set", "3/117@2")
    with pytest.raises(queries.QueryError, match="bad positions"):
        evidence.Spec.parse("ablate", "3/117@two")


def test_evidence_is_stored_once_linked_and_ranked(model, store_uri):
    """Interventions on a supernode over two prompts: one (:Intervention) per run whatever the repeats,
    linked to its features, supernode and the prompt's stored graph; causal-supernodes and
    causal-features aggregate exactly what the results measured."""
    from circuit_atlas.queries.supernodes import store_supernodes
    from circuit_atlas.store import open_store

    tset = model.transcoders.name
    graph = tracer.trace(model, PROMPTS[0])
    members = sorted({(n.layer, n.feature) for n in graph.nodes if n.kind == "feature"})[:3]  # stored features
    keys = [f"{tset}/{l}/{f}" for l, f in members]
    results = []
    with open_store(store_uri) as store:
        store.add_graph(graph)
        store_supernodes(store, [{"id": "test/sn", "name": "test", "source": "test", "gid": "", "coherence": None,
                                  "n_graphs": 1, "influence": 0.0, "members": keys}], "test", replace=False)
        for prompt in PROMPTS:
            ivs, roles = evidence.resolve(evidence.Spec("ablate", "supernode:test/sn", None), model, store)
            assert sorted((i.layer, i.feature) for i in ivs) == members and roles == {"test/sn": "ablate"}
            result = tracer.intervene(model, prompt, ivs)
            results.append(result)
            for _ in range(2):             # a repeat stores nothing new
                evidence.store_result(store, result, model=model.model_name, transcoder_set=tset, supernodes=roles)
        single = tracer.intervene(model, PROMPTS[1], [Intervention(*members[0], "ablate")])
        evidence.store_result(store, single, model=model.model_name, transcoder_set=tset)
        n = store.query("MATCH (i:Intervention) RETURN count(i) AS n")[0]["n"]
        links = store.query("MATCH (i:Intervention)-[:INTERVENED_ON]->(f:Feature) RETURN i.prompt AS p, count(f) AS n")
        on_graph = store.query("MATCH (i:Intervention)-[:ON_GRAPH]->(g:Graph) RETURN i.prompt AS p, g.id AS gid")
        ranked = queries.run(store, "causal-supernodes")
        by_feature = queries.run(store, "causal-features")
    assert n == 3
    assert sorted(r["n"] for r in links) == sorted([len(members), len(members) + 1])
    assert [(r["p"], r["gid"]) for r in on_graph] == [(PROMPTS[0], graph.id)] * len(on_graph) and on_graph
    row, = ranked
    changes = [r.targets[0].logit_change for r in results]
    assert (row["supernode"], row["role"], row["n_prompts"], row["n_interventions"]) == ("test/sn", "ablate", 2, 2)
    assert row["mean_logit_change"] == pytest.approx(sum(changes) / 2, rel=1e-5)
    assert row["share_top_changed"] == pytest.approx(sum(r.top_changed for r in results) / 2)
    assert [(r["fkey"], r["n_prompts"]) for r in by_feature] == [(keys[0], 1)]
    assert by_feature[0]["mean_logit_change"] == pytest.approx(single.targets[0].logit_change, rel=1e-5)


def test_stored_graph_nodes_are_targets_at_their_own_positions(model, store_uri):
    """`graph:GID` ablates every feature node of a stored graph where the graph has it; `graph:GID:A,B`
    only those nodes; the result equals ablating the traced graph's nodes directly (the Graph in memory)."""
    from circuit_atlas.store import open_store

    graph = tracer.trace(model, PROMPTS[0], tracer.TraceConfig(node_threshold=1.0, edge_threshold=1.0))
    nodes = [n for n in graph.nodes if n.kind == "feature"]
    assert len({n.pos for n in nodes}) > 1, "nodes at one position could not tell own positions from 'all'"
    picked = sorted(nodes, key=lambda n: -abs(n.activation))[:2]
    with open_store(store_uri) as store:
        store.add_graph(graph)
        every, roles = evidence.resolve(evidence.Spec.parse("ablate", f"graph:{graph.id}"), model, store,
                                        prompt=PROMPTS[0])
        some, _ = evidence.resolve(evidence.Spec.parse("ablate", f"graph:{graph.id}:{picked[0].node_id},"
                                                                 f"{picked[1].node_id}"), model, store)
        with pytest.raises(queries.QueryError, match="the graph is of the prompt"):
            evidence.resolve(evidence.Spec.parse("ablate", f"graph:{graph.id}"), model, store, prompt=PROMPTS[1])
        with pytest.raises(queries.QueryError, match="no feature node nope"):
            evidence.resolve(evidence.Spec.parse("ablate", f"graph:{graph.id}:nope"), model, store)
    assert roles == {}
    assert sorted((i.layer, i.feature, i.positions) for i in every) == \
        sorted((n.layer, n.feature, (n.pos,)) for n in nodes)
    assert sorted((i.layer, i.feature, i.positions) for i in some) == \
        sorted((n.layer, n.feature, (n.pos,)) for n in picked)
    direct = intervened_logits(model, PROMPTS[0], [Intervention(n.layer, n.feature, "ablate", 0.0, (n.pos,))
                                                   for n in nodes])
    clean = intervened_logits(model, PROMPTS[0], [])
    assert (direct - clean).abs().max() > 0.1
    assert torch.allclose(intervened_logits(model, PROMPTS[0], every), direct, atol=1e-5)


def cli(*args, store=None):
    base = [sys.executable, "-m", "circuit_atlas"] + (["--store", str(store)] if store else [])
    return subprocess.run([*base, "intervene", "--model", str(MODEL), "--transcoders", str(TRANSCODERS), *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def test_cli_prints_before_and_after_and_stores_evidence(model, tmp_path):
    f0, f1 = active(model, PROMPTS[0], n=2)
    store = tmp_path / "atlas.db"
    args = [PROMPTS[0], "--ablate", f"0/{f0}@last", "--scale", f"0/{f1}=-2", "--target", "big", "--generate", "3"]
    out = cli(*args, "--save", store=store)
    assert out.returncode == 0, out.stderr
    want = tracer.intervene(model, PROMPTS[0], [Intervention(0, f0, "ablate", positions=(-1,)),
                                                Intervention(0, f1, "scale", -2.0)], targets=["big"], generate=3)
    top_after = want.top(True, 1)[0][0]
    assert "before" in out.stdout and "after" in out.stdout
    assert out.stdout.splitlines()[1] == "interventions: 2 on 2 features (frozen attention)"
    assert f"continuation after:  {want.continuation_after}" in out.stdout
    assert top_after in out.stdout.splitlines()[4]
    assert "stored (:Intervention" in out.stdout
    as_json = json.loads(cli(*args, "--format", "json").stdout)
    assert as_json["targets"][0]["logit_after"] == pytest.approx(want.targets[0].logit_after, abs=1e-5)
    from circuit_atlas.store import open_store
    with open_store(str(store), read_only=True) as s:
        rows = s.query("MATCH (i:Intervention) RETURN i.description AS d, i.target_token AS t, i.kind AS k")
    assert rows == [{"d": f"scale 0/{f1}=-2; ablate 0/{f0}@last", "t": "big", "k": "steer"}]   # applied by kind


@pytest.mark.parametrize("args, message", [
    (["--set", "0/1@2"], "needs =VALUE"),
    (["--ablate", "0/999"], "feature 999 is not in 0..127"),
    (["--ablate", "supernode:nope"], "no supernode 'nope'"),
    ([], "nothing to do"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    from circuit_atlas.store import open_store
    with open_store(str(tmp_path / "atlas.db")):
        pass                                                # an empty store
    out = cli(PROMPTS[0], *args, store=tmp_path / "atlas.db")
    assert out.returncode != 0 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cli_refuses_an_empty_prompt_in_one_line():
    out = subprocess.run([sys.executable, "-m", "circuit_atlas", "intervene", "--model", str(MODEL), "--transcoders",
                          str(TRANSCODERS), "  ", "--ablate", "0/1"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode != 0 and "the prompt is empty" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cli_names_unknown_prompt_words_once_as_a_warning_line():
    out = cli("The opposite of Qwerty is", "--ablate", "0/1", "--generate", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1] == "interventions: 1 on 1 feature (frozen attention)"
    warned = [line for line in out.stderr.splitlines() if "not in the vocabulary" in line]
    assert warned == [f"Warning: prompt 'The opposite of Qwerty is': 'Qwerty' not in the vocabulary of "
                      f"{tracer.load(MODEL, TRANSCODERS).model_name}; traced as <unk>"]
    assert "TracerWarning" not in out.stderr                   # no Python warning report with file and line
