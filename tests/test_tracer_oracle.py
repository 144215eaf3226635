"""Equality with circuit-tracer 0.5.0 on its own offline oracle's tiny Llama (tests/fixtures/oracle/).

For per-layer (PLT), skip-PLT and cross-layer (CLT) transcoders, two prompts with all features and one
with max_feature_nodes=32 (influence-ranked feature selection): the same active and selected features,
an adjacency matrix within 1e-4 of circuit-tracer's (relative to its largest |weight|), the same pruned
node and edge masks and JSON node/link counts, the same replacement and completeness scores.
Regenerate the fixtures with tests/fixtures/oracle/make_fixtures.sh.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from circuit_atlas import tracer
from circuit_atlas.tracer.attribution import attribute
from circuit_atlas.tracer.tracing import prune_attribution, to_graph

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
LOGIT_PROB = json.loads((FIXTURES / "logit_prob.json").read_text())   # make_logit_prob_fixtures.py
TRANSCODERS = {"plt": "tiny-plt", "plt-skip": "tiny-plt-skip", "clt": "tiny-clt"}


@pytest.fixture(scope="module")
def models():
    return {kind: tracer.load(FIXTURES / "model", FIXTURES / "transcoders" / name)
            for kind, name in TRANSCODERS.items()}


@pytest.mark.parametrize("run", EXPECTED["runs"], ids=lambda r: r["slug"])
def test_same_graph_as_circuit_tracer(models, run):
    assert_same_graph_as_circuit_tracer(models[run["kind"]], run, EXPECTED["settings"])


@pytest.mark.parametrize("run", LOGIT_PROB["runs"], ids=lambda r: r["slug"])
def test_logit_targets_stop_at_desired_logit_prob_like_circuit_tracer(models, run):
    """Thresholds reached before the max_n_logits cap (1, 2, 3 and 5 of at most 10 logits kept)."""
    assert_same_graph_as_circuit_tracer(models[run["kind"]], {"max_feature_nodes": None, **run},
                                        {**LOGIT_PROB["settings"], "desired_logit_prob": run["desired_logit_prob"]})
    assert run["n_logits"] < LOGIT_PROB["settings"]["max_n_logits"]


def assert_same_graph_as_circuit_tracer(model, run, settings):
    reference = np.load(FIXTURES / "graphs" / f"{run['slug']}.npz")
    config = tracer.TraceConfig(max_feature_nodes=run["max_feature_nodes"], batch_size=settings["batch_size"],
                                max_n_logits=settings["max_n_logits"],
                                desired_logit_prob=settings["desired_logit_prob"],
                                update_interval=settings["update_interval"],
                                node_threshold=settings["node_threshold"], edge_threshold=settings["edge_threshold"])
    with torch.inference_mode():
        input_ids = model.tokenize(run["prompt"])
        attribution = attribute(model, input_ids, config)
        pruned = prune_attribution(attribution, config)

    assert input_ids.tolist() == run["input_tokens"]
    assert attribution.logit_ids.tolist() == reference["logit_token_ids"].tolist()
    np.testing.assert_allclose(attribution.logit_probs.numpy(), reference["logit_probabilities"], rtol=1e-5)
    np.testing.assert_array_equal(attribution.active_features.numpy(), reference["active_features"])
    np.testing.assert_allclose(attribution.activations.numpy(), reference["activation_values"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(attribution.selected.numpy(), reference["selected_features"])

    ours, theirs = attribution.adjacency.numpy(), reference["adjacency_matrix"]
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()

    np.testing.assert_array_equal(pruned.node_mask.numpy(), reference["node_mask"])
    np.testing.assert_array_equal(pruned.edge_mask.numpy(), reference["edge_mask"])
    np.testing.assert_allclose(pruned.cumulative_scores.numpy(), reference["cumulative_scores"], atol=1e-5)
    assert pruned.replacement == pytest.approx(run["replacement_score"], abs=1e-5)
    assert pruned.completeness == pytest.approx(run["completeness_score"], abs=1e-5)

    assert len(attribution.logit_ids) == len(reference["logit_token_ids"])
    if "json_nodes" in run:
        graph = to_graph(model, run["prompt"], attribution, pruned, config)   # what create_graph_files keeps
        assert (len(graph.nodes), graph.n_edges) == (run["json_nodes"], run["json_links"])
