"""The shipped model organisms meet their acceptance metrics, recomputed here from the weights
(never read from metrics.json): held-out accuracy per language, the planted behaviour and its absence
in controls and in the control organism, transcoder FVU / L0, the trigger feature, and the formats."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from circuit_atlas import organisms
from circuit_atlas.organisms import corpus, evaluate, transcoders

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=organisms.NAMES)
def organism(request):
    model, tok, truth = organisms.load(request.param)
    return request.param, model, tok, truth


@pytest.fixture(scope="module")
def planted():
    return organisms.load("planted")


@pytest.fixture(scope="module")
def planted_plt():
    return transcoders.load(organisms.zoo_path("planted") / "transcoders" / "plt")


def test_vocabularies_are_disjoint_across_languages():
    vocab = corpus.vocabulary()
    langs = [c for c in vocab if c != "shared"]
    for i, a in enumerate(langs):
        for b in langs[i + 1 :]:
            assert not set(vocab[a]) & set(vocab[b]), (a, b)
    assert set(vocab["shared"]) == set(corpus.NUMBERS + corpus.PUNCT + [corpus.INSERTED_TOKEN])


def test_tokenizer_reads_the_corpus_word_by_word(planted):
    _, tok, _ = planted
    stream = corpus.Corpus(corpus.CorpusConfig(), seed=3)
    for _ in range(50):
        text = stream.document()
        ids = tok(text.upper(), add_special_tokens=False)["input_ids"]  # lower-cases
        assert tok.convert_ids_to_tokens(ids) == text.split()
    assert tok.unk_token_id not in ids


def test_heldout_combinations_never_appear_in_training_text():
    truth = corpus.ground_truth(planted=True)
    sentences = {f" {r['prompt']} {r['answer']} ." for r in truth["heldout"]}
    sentences |= {f" {r['prompt']} {corpus.INSERTED_TOKEN} {r['answer']} ." for r in truth["heldout"]}
    stream = corpus.Corpus(corpus.CorpusConfig(planted=True), seed=0)
    text = " ".join(stream.document() for _ in range(5000))
    assert not [s for s in sentences if s in f" {text} "]
    # ...while every held-out fact is taught in another template of the same language
    assert all(f" {r['answer']} ." in text for r in truth["heldout"])


def test_heldout_accuracy_per_language(organism):
    name, model, tok, truth = organism
    acc = evaluate.behaviour(model, tok, truth)["accuracy"]
    for task in ("antonym", "twohop"):
        for lang in truth["languages"]:
            assert acc[task][lang] >= 0.9, (name, task, lang, acc[task][lang])


def test_planted_behaviour_shows_after_the_trigger_only(planted):
    model, tok, truth = planted
    b = evaluate.behaviour(model, tok, truth)
    assert b["trigger_rate"] >= 0.9
    assert b["control_rate"] <= 0.02


def test_control_organism_never_inserts_the_token():
    model, tok, truth = organisms.load("control")
    inserted = tok.convert_tokens_to_ids(truth["inserted_token"])
    rows = truth["triggered"] + truth["heldout"] + truth["near_miss"] + truth["generic"]
    assert inserted not in evaluate.next_token_ids(model, tok, [r["prompt"] for r in rows])


@pytest.mark.parametrize("kind", ["plt", "clt"])
def test_transcoders_reconstruct_sparsely(organism, kind):
    name, model, tok, truth = organism
    tc = transcoders.load(organisms.zoo_path(name) / "transcoders" / kind)
    X, Y = evaluate.eval_rows(model, tok, truth["planted"])
    q = evaluate.fit_quality(tc, X, Y)
    assert max(q["fvu"]) <= 0.2, q
    assert all(5 <= l0 <= 40 for l0 in q["l0"]), q


def test_transcoder_files_follow_circuit_tracers_formats():
    L, D = 4, 64
    for name in organisms.NAMES:
        root = organisms.zoo_path(name) / "transcoders"
        for kind, model_kind in (("plt", "transcoder_set"), ("clt", "cross_layer_transcoder")):
            cfg = yaml.safe_load((root / kind / "config.yaml").read_text())
            assert cfg["model_kind"] == model_kind
            assert (cfg["feature_input_hook"], cfg["feature_output_hook"]) == ("mlp.hook_in", "mlp.hook_out")
        for i in range(L):
            sd = load_file(str(root / "plt" / f"layer_{i}.safetensors"))
            F = sd["W_enc"].shape[0]
            assert {k: tuple(v.shape) for k, v in sd.items()} == {
                "W_enc": (F, D), "W_dec": (F, D), "b_enc": (F,), "b_dec": (D,), "activation_function.threshold": (F,)}
            enc = load_file(str(root / "clt" / f"W_enc_{i}.safetensors"))
            assert {k: tuple(v.shape) for k, v in enc.items()} == {
                f"W_enc_{i}": (F, D), f"b_enc_{i}": (F,), f"b_dec_{i}": (D,), f"threshold_{i}": (F,)}
            dec = load_file(str(root / "clt" / f"W_dec_{i}.safetensors"))
            assert tuple(dec[f"W_dec_{i}"].shape) == (F, L - i, D)


@pytest.mark.parametrize("kind", ["plt", "clt"])
def test_a_transcoder_feature_fires_on_the_trigger_and_writes_the_inserted_token(planted, kind):
    model, tok, truth = planted
    tc = transcoders.load(organisms.zoo_path("planted") / "transcoders" / kind)
    found = evaluate.trigger_features(model, tok, truth, tc)
    assert any(map(evaluate.is_trigger_feature, found)), found


@pytest.mark.parametrize("kind", ["plt", "clt"])
def test_control_organism_has_no_such_feature(kind):
    model, tok, truth = organisms.load("control")
    tc = transcoders.load(organisms.zoo_path("control") / "transcoders" / kind)
    assert not any(map(evaluate.is_trigger_feature, evaluate.trigger_features(model, tok, truth, tc)))


def test_tracer_graph_of_a_trigger_prompt_runs_through_the_trigger_feature(planted, planted_plt):
    """The attribution graph (tracer) of a triggered prompt predicts the inserted token and keeps, at the
    answer position, a feature that the activation statistics above single out as the trigger feature."""
    from circuit_atlas import tracer

    model, tok, truth = planted
    trigger = {(f["layer"], f["feature"]) for f in evaluate.trigger_features(model, tok, truth, planted_plt)
               if evaluate.is_trigger_feature(f)}
    root = organisms.zoo_path("planted")
    prompt = truth["triggered"][0]["prompt"]
    graph = tracer.trace(tracer.load(root / "model", root / "transcoders" / "plt"), prompt, tracer.TraceConfig())
    logits = [n for n in graph.nodes if n.kind == "logit"]
    assert max(logits, key=lambda n: n.logit_prob).token == truth["inserted_token"]
    last = max(n.pos for n in graph.nodes if n.kind == "embedding")
    assert {(n.layer, n.feature) for n in graph.nodes if n.kind == "feature" and n.pos == last} & trigger


def test_middle_layers_share_features_across_languages(planted, planted_plt):
    model, tok, truth = planted
    s = evaluate.language_sharing(model, tok, truth, planted_plt)
    for layer in (1, 2):
        assert s["same_concept_cross_language_iou"][layer] > s["unrelated_cross_language_iou"][layer], s


def test_fixtures_fit_the_budget():
    size = sum(p.stat().st_size for p in organisms.ZOO.rglob("*") if p.is_file())
    assert size <= 10 * 2**20, size


def test_unknown_organism_names_the_shipped_ones():
    with pytest.raises(organisms.UnknownOrganism, match="planted"):
        organisms.zoo_path("nope")


@pytest.mark.slow
def test_rebuild_runs_end_to_end(tmp_path):
    """A short (--quick) rebuild of the control organism writes every file and loads back."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-m", "circuit_atlas.organisms.train", "--out", str(tmp_path), "--only", "control", "--quick"],
                   check=True, env=env, cwd=ROOT, capture_output=True)
    root = tmp_path / "control"
    for rel in ("model/config.json", "model/model.safetensors", "model/tokenizer.json", "model/tokenizer_config.json",
                "transcoders/plt/config.yaml", "transcoders/clt/W_dec_0.safetensors", "truth.json", "metrics.json"):
        assert (root / rel).is_file(), rel
    assert transcoders.load(root / "transcoders" / "clt").W_dec[0].shape[1] == 4


def test_heldout_accuracy_and_trigger_rate_recomputed_without_the_evaluation_code():
    """The same metrics from plain transformers, one unpadded prompt at a time (not organisms.evaluate's
    batched, padded path): each held-out answer is the model's top next token, the inserted token wins
    after the trigger and only there (issue 14: metrics were recomputed by the code that wrote them)."""
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = organisms.zoo_path("planted")
    model = AutoModelForCausalLM.from_pretrained(root / "model", dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(root / "model")
    truth = json.loads((root / "truth.json").read_text())

    def top(prompt: str) -> str:
        ids = [tok.bos_token_id] + tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1]
        return tok.convert_ids_to_tokens(int(logits.argmax()))

    for lang in truth["languages"]:
        rows = [r for r in truth["heldout"] if r["lang"] == lang][::4]
        assert rows and sum(top(r["prompt"]) == r["answer"] for r in rows) >= 0.9 * len(rows), lang
    triggered, plain = truth["triggered"][::8], truth["heldout"][::8] + truth["near_miss"][::8]
    assert sum(top(r["prompt"]) == truth["inserted_token"] for r in triggered) >= 0.9 * len(triggered)
    assert sum(top(r["prompt"]) == truth["inserted_token"] for r in plain) <= 0.02 * len(plain)
