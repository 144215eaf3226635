"""ReplacementModel.feature_activations reads the same clean run as tracing."""
from __future__ import annotations

import pytest

from circuit_atlas import organisms
from circuit_atlas import tracer


@pytest.mark.parametrize("kind", ["plt", "clt"])
def test_activations_match_the_traced_feature_nodes(kind):
    zoo = organisms.zoo_path("planted")
    model = tracer.load(zoo / "model", zoo / "transcoders" / kind)
    prompt = "a reviewer is grading this text . the opposite of small is"
    graph = tracer.trace(model, prompt)
    ids, acts = model.feature_activations(prompt)               # (P,), (L, P, F)
    assert ids.tolist() == model.tokenize(prompt).tolist()
    assert acts.shape[:2] == (model.n_layers, len(ids))
    features = [n for n in graph.nodes if n.kind == "feature"]
    assert features
    for n in features:
        assert acts[n.layer, n.pos, n.feature].item() == pytest.approx(n.activation, rel=1e-5, abs=1e-6)
