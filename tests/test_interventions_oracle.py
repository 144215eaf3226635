"""Interventions equal circuit-tracer 0.5.0's `feature_intervention` / `feature_intervention_generate`.

On the oracle's tiny Llama (tests/fixtures/oracle/) with PLT, skip-PLT and CLT transcoders, two prompts,
each case of tests/fixtures/interventions/cases.json: set, scale, add and ablate; at positions, at
every position and at generated tokens; attention frozen or live; constrained to every layer (the
linear model), to the first or to the last. The logits must be within 1e-4 of circuit-tracer's,
relative to their largest magnitude, and the greedy continuation must pick the same tokens.
Regenerate the references with tests/fixtures/interventions/make_fixtures.py (needs the oracle venv).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from circuit_atlas import tracer
from circuit_atlas.tracer.interventions import Intervention, generate, intervened_logits

HERE = Path(__file__).parent / "fixtures"
CASES = json.loads((HERE / "interventions" / "cases.json").read_text())["cases"]
REFERENCE = np.load(HERE / "interventions" / "logits.npz")
TRANSCODERS = {"plt": "tiny-plt", "plt-skip": "tiny-plt-skip", "clt": "tiny-clt"}


@pytest.fixture(scope="module")
def models():
    return {kind: tracer.load(HERE / "oracle" / "model", HERE / "oracle" / "transcoders" / name)
            for kind, name in TRANSCODERS.items()}


def ours(case) -> list[Intervention]:
    out = []
    for r in case["interventions"]:
        positions = r["position"] if isinstance(r["position"], str) else (r["position"],)
        out.append(Intervention(r["layer"], r["feature"], r["op"], r["argument"], positions))
    return out


def close(got: torch.Tensor, want: np.ndarray) -> float:
    """max |got - want| relative to the reference's largest |logit|."""
    return float(np.abs(got.numpy() - want).max() / np.abs(want).max())


@pytest.mark.parametrize("case", [c for c in CASES if "generate" not in c], ids=lambda c: c["slug"])
def test_feature_intervention_matches_circuit_tracer(models, case):
    model = models[case["kind"]]
    assert model.tokenize(case["prompt"]).tolist() == case["input_tokens"]
    want = REFERENCE[case["slug"]]
    got = intervened_logits(model, case["prompt"], ours(case), freeze_attention=case["freeze_attention"],
                            constrained_layers=case["constrained_layers"])
    assert got.shape == want.shape
    clean = intervened_logits(model, case["prompt"], [])
    assert close(clean, want) > 1e-2, "the case does not move the logits: it could not tell right from wrong"
    assert close(got, want) <= 1e-4


@pytest.mark.parametrize("case", [c for c in CASES if "generate" in c], ids=lambda c: c["slug"])
def test_generation_matches_circuit_tracer(models, case):
    model = models[case["kind"]]
    want = REFERENCE[case["slug"]]                                   # (n, V): the logits of each chosen token
    tokens, logits = generate(model, case["prompt"], ours(case), case["generate"], freeze_attention=True)
    assert tokens == want.argmax(-1).tolist()
    assert close(logits, want) <= 1e-4
    clean_tokens, clean_logits = generate(model, case["prompt"], [], case["generate"])
    assert close(clean_logits, want) > 1e-2
