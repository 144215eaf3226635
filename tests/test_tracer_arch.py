"""Every supported architecture traces end to end, and its frozen linear model is checked three ways:

1. faithful: run from the clean embeddings with the clean MLP outputs, it reproduces the HF forward
   pass (what transcoders read, the final norm, the logits - Gemma's softcap included);
2. edges are direct effects: the whole adjacency matrix recomputed by intervention (add each source's
   write to the frozen residual stream, read every target's change) equals the gradient-based one;
3. row sums: each target's incoming edges add up to its value in the frozen model fed only with nodes.

Architecture specifics get their own assertions: Gemma's embedding scale and logit softcapping,
GPT-2's position embeddings and tied embeddings, Qwen3's q/k norms, grouped-query attention.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from circuit_atlas import tracer
from circuit_atlas.graph import NODE_KINDS, Graph
from circuit_atlas.tracer.attribution import _nodes, attribute
from circuit_atlas.tracer.frozen import FrozenModel
from circuit_atlas.tracer.testing import adjacency_by_intervention, build_tiny_model

PROMPT = "The opposite of small is"

# (arch, transcoder kind, options): together they cover every hook point, activation and format
CASES = [
    ("llama", "plt-skip", {}),
    ("qwen2", "plt", {"activation": "relu"}),
    ("qwen3", "clt", {}),
    ("gemma2", "plt-skip", {"input_hook": "ln2.hook_normalized", "output_hook": "hook_mlp_out"}),
    ("gemma3", "clt", {"input_hook": "mlp.hook_in", "output_hook": "mlp.hook_out"}),
    ("gemma3", "plt", {"input_hook": "hook_resid_mid", "output_hook": "hook_mlp_out"}),
    ("gpt2", "plt", {"activation": "topk", "k": 12, "input_hook": "hook_resid_mid", "output_hook": "hook_mlp_out"}),
]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2].get('input_hook', 'mlp.hook_in')}")
def traced(request, tmp_path_factory):
    arch, kind, options = request.param
    model_dir, tc_dir = build_tiny_model(tmp_path_factory.mktemp(arch), arch, kind, seed=1, **options)
    model = tracer.load(model_dir, tc_dir)
    with torch.inference_mode():
        attribution = attribute(model, model.tokenize(PROMPT), tracer.TraceConfig())
    return arch, model, attribution


def test_frozen_model_reproduces_the_clean_forward_pass(traced):
    arch, model, attribution = traced
    with torch.inference_mode():
        fm = FrozenModel(model, attribution.input_ids)
        constant_writes = [w - fm.skip(l, x) for l, (w, x) in enumerate(zip(fm.writes_clean, fm.reads_clean))]
        reads, final = fm.forward(fm.resid0, constant_writes)
    for l, (x, x_clean) in enumerate(zip(reads, fm.reads_clean)):
        torch.testing.assert_close(x, x_clean, atol=1e-5, rtol=1e-4, msg=f"layer {l} transcoder input")
    torch.testing.assert_close(final, fm.final_clean, atol=1e-5, rtol=1e-4)
    logits = final @ fm.arch.W_U.T
    cap = getattr(model.hf_model.config, "final_logit_softcapping", None)
    if arch.startswith("gemma"):
        assert cap, "the tiny Gemma configs use logit softcapping"
        assert not torch.allclose(logits, fm.logits, atol=1e-3)   # softcapping changes the logits ...
        logits = cap * torch.tanh(logits / cap)                     # ... and is all that happens after the norm
    torch.testing.assert_close(logits, fm.logits, atol=1e-5, rtol=1e-4)


def test_nodes_reconstruct_the_clean_mlp_outputs(traced):
    _, model, attribution = traced
    with torch.inference_mode():
        fm = FrozenModel(model, attribution.input_ids)
        _, _, _, sources = _nodes(fm)
    tc = model.transcoders
    for l in range(model.n_layers):
        written = torch.zeros_like(fm.resid0)
        for p in range(len(attribution.input_ids)):
            written[p] = sources.vectors[l][p].sum(0)              # padding rows are zero
        written += sources.errors[l] + tc.b_dec[l]
        if tc.W_skip is not None:
            written += tc.skip(l, fm.reads_clean[l])
        torch.testing.assert_close(written[1:], fm.writes_clean[l][1:], atol=1e-5, rtol=1e-4)


def test_every_edge_is_the_direct_effect_measured_by_intervention(traced):
    _, model, attribution = traced
    with torch.inference_mode():
        by_intervention = adjacency_by_intervention(model, attribution)
    A = attribution.adjacency
    assert A.abs().max() > 0
    assert ((A - by_intervention).abs().max() / A.abs().max()).item() < 1e-4


def test_row_sums_equal_the_target_in_the_frozen_model_fed_only_nodes(traced):
    _, model, attribution = traced
    with torch.inference_mode():
        fm = FrozenModel(model, attribution.input_ids)
        active, _, encoders, sources = _nodes(fm)
        L, (P, D) = model.n_layers, fm.resid0.shape
        node_writes = []
        for l in range(L):
            written = torch.stack([sources.vectors[l][p].sum(0) for p in range(P)]) + sources.errors[l]
            node_writes.append(written)
        reads, final = fm.forward(sources.tokens, node_writes)
        reads0, final0 = fm.forward(torch.zeros(P, D), [torch.zeros(P, D)] * L)
    A, n_sel = attribution.adjacency, len(attribution.selected)
    for row, f in enumerate(attribution.selected.tolist()):
        layer, pos, _ = active[f].tolist()
        expected = (reads[layer][pos] - reads0[layer][pos]) @ encoders[f]
        assert math.isclose(A[row].sum().item(), expected.item(), rel_tol=1e-4, abs_tol=1e-4)
    W_U = fm.arch.W_U
    for k, token in enumerate(attribution.logit_ids.tolist()):
        expected = (final[P - 1] - final0[P - 1]) @ (W_U[token] - W_U.mean(0))
        assert math.isclose(A[len(A) - len(attribution.logit_ids) + k].sum().item(), expected.item(),
                            rel_tol=1e-4, abs_tol=1e-4)
    assert n_sel == len(active)


def test_architecture_specifics(traced):
    arch, model, attribution = traced
    hf, ids = model.hf_model, attribution.input_ids
    with torch.inference_mode():
        fm = FrozenModel(model, ids)
    if arch.startswith("gemma"):  # token nodes write the scaled embedding
        scale = math.sqrt(hf.config.hidden_size)
        torch.testing.assert_close(fm.token_vectors, hf.model.embed_tokens.weight[ids] * scale)
        assert fm.arch.layers[0].post_attn_norm is not None and fm.arch.layers[0].post_mlp_norm is not None
    if arch == "gpt2":  # tied embeddings; position embeddings are a constant, not part of token nodes
        assert fm.arch.W_U.data_ptr() == hf.transformer.wte.weight.data_ptr()
        torch.testing.assert_close(fm.resid0 - fm.token_vectors, hf.transformer.wpe.weight[: len(ids)])
        assert fm.arch.final_norm.center
    if arch == "qwen3":  # q/k norms exist but only shape the (frozen) patterns
        assert hasattr(hf.model.layers[0].self_attn, "q_norm")
    if arch in ("llama", "qwen2", "qwen3", "gemma2", "gemma3"):
        layer = fm.arch.layers[0]
        assert layer.n_kv_heads < layer.n_heads                    # grouped-query attention is exercised
    for pattern in fm.patterns:                                    # causal, rows sum to one
        torch.testing.assert_close(pattern.sum(-1), torch.ones(pattern.shape[:2]))
        assert torch.all(pattern.triu(1) == 0)


def test_attention_backward_is_the_transpose_of_the_frozen_attention(traced):
    """attn_block_T (causal mixing in blocks, every block shape exercised; dense for a non-causal
    pattern) and attn_block_T_at (one-hot rows) equal autograd's vector-Jacobian product of attn_block."""
    _, model, _ = traced
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, model.hf_model.config.vocab_size, (11,), generator=generator)
    with torch.no_grad():
        fm = FrozenModel(model, ids)
    fm.mix_block = 3                                                # blocks of 3, 3, 3 and 2 positions
    assert fm.causal
    P, D = fm.resid0.shape
    for l in range(len(fm.arch.layers)):
        r = torch.randn(3, P, D, generator=generator, requires_grad=True)
        g = torch.randn(3, P, D, generator=generator)
        expected, = torch.autograd.grad(fm.attn_block(l, r), r, g)
        with torch.no_grad():
            torch.testing.assert_close(fm.attn_block_T(l, g), expected, rtol=1e-4, atol=1e-5)
            fm.causal = False
            torch.testing.assert_close(fm.attn_block_T(l, g), expected, rtol=1e-4, atol=1e-5)
            fm.causal = True
        # a gradient that is one vector per row at that row's position (where a backward pass starts)
        positions = torch.tensor([0, 4, P - 1])
        one_hot = torch.zeros(3, P, D)
        one_hot[torch.arange(3), positions] = g[torch.arange(3), positions]
        expected, = torch.autograd.grad(fm.attn_block(l, r), r, one_hot)
        with torch.no_grad():
            torch.testing.assert_close(fm.attn_block_T_at(l, one_hot[torch.arange(3), positions], positions),
                                       expected, rtol=1e-4, atol=1e-5)


def test_trace_returns_a_valid_graph(traced, tmp_path):
    arch, model, _ = traced
    graph = tracer.trace(model, PROMPT, tracer.TraceConfig(max_feature_nodes=40))
    assert isinstance(graph, Graph)
    ids = [n.node_id for n in graph.nodes]
    assert len(ids) == len(set(ids))
    assert {n.kind for n in graph.nodes} <= set(NODE_KINDS)
    assert {"embedding", "logit"} <= {n.kind for n in graph.nodes}
    assert graph.n_edges > 0 and np.all(graph.edge_weight != 0)
    assert graph.edge_source.max() < len(graph.nodes) and graph.edge_target.max() < len(graph.nodes)
    for node in graph.nodes:
        assert -1 <= node.layer <= graph.n_layers
        if node.kind == "feature":
            assert node.activation != 0 and node.feature is not None and 0 <= node.layer < graph.n_layers
        if node.kind == "logit":
            assert 0 < node.logit_prob <= 1 and node.layer == graph.n_layers
    assert sum(n.kind == "embedding" for n in graph.nodes) == len(graph.prompt_tokens)
    assert 0 < graph.scores["replacement"] <= 1 and 0 < graph.scores["completeness"] <= 1
    assert graph.generator["settings"]["max_feature_nodes"] == 40
    assert graph.generator["n_selected_features"] <= 40
    assert len(graph.id) == 32
    _ingest_if_store_available(graph, tmp_path)


def _ingest_if_store_available(graph: Graph, tmp_path) -> None:
    """The traced graph goes into the store whole (the store is part of the package: no skip)."""
    from circuit_atlas.store import open_store

    with open_store(str(tmp_path / "store")) as store:
        assert store.add_graph(graph)
        assert not store.add_graph(graph)
        rows = store.query("MATCH (g:Graph {id: $id})-[:HAS_NODE]->(n:Node) RETURN count(n) AS n", {"id": graph.id})
        assert rows[0]["n"] == len(graph.nodes)
        rows = store.query("MATCH (a:Node {gid: $id})-[e:EFFECT]->(b:Node) RETURN count(e) AS n", {"id": graph.id})
        assert rows[0]["n"] == graph.n_edges
