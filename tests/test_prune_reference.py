"""tracer.prune against a plain, dense rendering of circuit-tracer 0.5.0's pruning on random DAGs.

The oracle fixtures pin prune on real graphs; these random ones reach what they may not: thresholds
that fall among zero scores, nodes left dangling after edge pruning (several rounds), rows without
inputs, graphs where few nodes are kept. The reference below is written the obvious way (full
matrices, no blocks, no frontier), from circuit-tracer's definitions (graph.py: normalize_matrix,
compute_influence, prune_graph, compute_graph_scores), and shares no code with tracer/prune.py.
"""
from __future__ import annotations

import pytest
import torch

from circuit_atlas.tracer.prune import prune


def normalized(m: torch.Tensor) -> torch.Tensor:
    a = m.abs()
    return a / a.sum(dim=1, keepdim=True).clamp(min=1e-10)


def walk(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """w @ (A + A^2 + ...), until the walk is exactly zero."""
    step = w @ a
    total = step.clone()
    while step.any():
        step = step @ a
        total += step
    return total


def threshold(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    ordered = torch.sort(scores, descending=True).values
    cumulative = torch.cumsum(ordered, 0) / ordered.sum()
    return ordered[min(int(torch.searchsorted(cumulative, fraction)), len(ordered) - 1)]


def reference(adj, probs, n_features, n_errors, n_tokens, node_threshold, edge_threshold):
    n = adj.shape[0]
    n_logits = len(probs)
    w = torch.zeros(n)
    w[n - n_logits:] = probs
    a = normalized(adj)
    infl = walk(a, w)
    errors = slice(n_features, n_features + n_errors)
    tokens = slice(n_features + n_errors, n_features + n_errors + n_tokens)
    replacement = (infl[tokens].sum() / (infl[tokens].sum() + infl[errors].sum())).item()
    out = infl + w
    completeness = (((1 - a[:, errors].sum(-1)) * out).sum() / out.sum()).item()

    node_mask = infl >= threshold(infl, node_threshold)
    node_mask[n - n_logits - n_tokens:] = True
    pruned = adj.clone()
    pruned[~node_mask] = 0
    pruned[:, ~node_mask] = 0
    b = normalized(pruned)
    scores = b * (walk(b, w) + w)[:, None]
    edge_mask = scores >= threshold(scores.flatten(), edge_threshold)
    inner = n - n_logits - n_tokens
    while True:
        before = node_mask.clone()
        node_mask[:inner] &= edge_mask[:, :inner].any(0)
        node_mask[:n_features] &= edge_mask[:n_features].any(1)
        if torch.equal(node_mask, before):
            break
        edge_mask[~node_mask] = False
        edge_mask[:, ~node_mask] = False
    ordered, order = torch.sort(infl, descending=True)
    cumulative = torch.zeros_like(infl)
    cumulative[order] = torch.cumsum(ordered, 0) / ordered.sum()
    return node_mask, edge_mask, cumulative, replacement, completeness


def random_graph(seed: int, n_features: int, n_layers: int, n_tokens: int, n_logits: int, density: float):
    """A layered DAG (rows = targets): tokens -> features/errors of layers 0..L-1 -> logits, signed
    weights, some feature rows left without inputs."""
    g = torch.Generator().manual_seed(seed)
    n_errors = n_layers * n_tokens
    n = n_features + n_errors + n_tokens + n_logits
    level = torch.cat([torch.randint(1, n_layers + 1, (n_features,), generator=g),
                       torch.arange(1, n_layers + 1).repeat_interleave(n_tokens),
                       torch.zeros(n_tokens, dtype=torch.long), torch.full((n_logits,), n_layers + 1)])
    allowed = level[:, None] > level[None, :]                 # target row above source column
    allowed[n - n_logits:, n - n_logits:] = False
    keep = torch.rand(n, n, generator=g) < density
    adj = torch.randn(n, n, generator=g) * allowed * keep
    adj[torch.randperm(n_features, generator=g)[: n_features // 6]] = 0.0   # features with no input
    probs = torch.softmax(torch.randn(n_logits, generator=g), 0)
    return adj.float(), probs.float(), n_features, n_errors, n_tokens


CASES = [  # seed, n_features, n_layers, n_tokens, n_logits, density, node_threshold, edge_threshold
    (0, 40, 3, 4, 3, 0.3, 0.8, 0.98),
    (1, 60, 4, 5, 5, 0.15, 0.8, 0.98),
    (2, 30, 2, 3, 2, 0.5, 0.5, 0.7),        # few nodes kept: many dangle after edge pruning
    (3, 50, 3, 4, 4, 0.2, 0.9, 1.0),         # edge threshold 1.0: it falls among the zero scores
    (4, 25, 5, 3, 1, 0.4, 0.3, 0.5),
    (5, 45, 2, 6, 3, 0.05, 0.8, 0.9),        # sparse: rows and columns without edges
]


@pytest.mark.parametrize("case", CASES, ids=[f"reference-{c[0]}" for c in CASES])
def test_prune_equals_the_dense_reference(case):
    seed, nf, nl, nt, nlog, density, node_t, edge_t = case
    adj, probs, n_features, n_errors, n_tokens = random_graph(seed, nf, nl, nt, nlog, density)
    want = reference(adj.clone(), probs, n_features, n_errors, n_tokens, node_t, edge_t)
    got = prune(adj.clone(), probs, n_features, n_errors, n_tokens, node_threshold=node_t, edge_threshold=edge_t)
    n = adj.shape[0]
    assert torch.equal(got.node_mask, want[0]), (got.node_mask ^ want[0]).nonzero().ravel().tolist()
    assert torch.equal(got.edge_mask, want[1]), int((got.edge_mask ^ want[1]).sum())
    torch.testing.assert_close(got.cumulative_scores, want[2], rtol=1e-5, atol=1e-6)
    assert got.replacement == pytest.approx(want[3], rel=1e-5) and got.completeness == pytest.approx(want[4], rel=1e-5)
    # the cases reach what they are for: something pruned, something kept, dangling nodes dropped
    kept = int(got.node_mask[: n - nlog - n_tokens].sum())
    assert 0 < kept < n - nlog - n_tokens and 0 < int(got.edge_mask.sum()) < n * n


@pytest.mark.parametrize("fraction", [0.3, 0.9, 1.5])   # 1.5: past the last score, into the zeros
def test_edge_threshold_is_the_reference_threshold_over_the_implicit_zeros(fraction):
    """The block shortcut: a threshold over the block's scores plus zeros that stand for the scores
    outside it equals the threshold over all of them written out (the reference). (At exactly 1.0 the
    two can differ by the rounding of their sums: the last cumulative share is 1 - 1 ulp or 1.)"""
    from circuit_atlas.tracer.prune import _edge_threshold

    g = torch.Generator().manual_seed(7)
    for n_inside_zero, n_outside in [(0, 0), (3, 0), (0, 4), (5, 5), (2, 9)]:
        scores = torch.cat([torch.rand(12, generator=g) + 0.01, torch.zeros(n_inside_zero)])
        scores = scores[torch.randperm(len(scores), generator=g)]
        want = threshold(torch.cat([scores, torch.zeros(n_outside)]), fraction)
        assert _edge_threshold(scores, fraction, n_zero_outside=n_outside) == want, (n_inside_zero, n_outside)
    assert _edge_threshold(torch.zeros(4), fraction, n_zero_outside=3) == 0
    scores = torch.rand(9, generator=g) + 0.01                      # no zeros outside unless told
    assert _edge_threshold(scores, fraction) == threshold(scores, fraction)


@pytest.mark.parametrize("case", [(106, 12, 2, 2, 1, 0.4), (116, 20, 2, 3, 2, 0.3)], ids=["reference-zeros-106", "reference-zeros-116"])
def test_prune_keeps_every_edge_when_the_threshold_falls_among_zeros(case):
    """edge_threshold 1.0 where the last cumulative share stays below 1: circuit-tracer's threshold is
    then a zero score and it keeps all N^2 "edges" (the dangling rounds still drop nodes). Seeds where
    the reference and prune round their sums alike (at exactly 1.0 the rounding decides; see the note
    on the threshold test)."""
    seed, nf, nl, nt, nlog, density = case
    adj, probs, n_features, n_errors, n_tokens = random_graph(seed, nf, nl, nt, nlog, density)
    want = reference(adj.clone(), probs, n_features, n_errors, n_tokens, 0.8, 1.0)
    got = prune(adj.clone(), probs, n_features, n_errors, n_tokens, node_threshold=0.8, edge_threshold=1.0)
    assert bool(want[1].all())                          # the case is the one it claims to be
    assert torch.equal(got.node_mask, want[0]) and torch.equal(got.edge_mask, want[1])



def test_tiny_rows_are_normalised_like_the_reference():
    """A target whose inputs sum to 1.5e-10 in absolute value is still normalised to 1 (the clamp at
    1e-10 only guards empty rows)."""
    adj, probs, n_features, n_errors, n_tokens = random_graph(0, 40, 3, 4, 3, 0.3)
    rows = [r for r in range(n_features) if adj[r].abs().sum() > 0][:5]
    for r in rows:
        adj[r] *= 1.5e-10 / adj[r].abs().sum()
    want = reference(adj.clone(), probs, n_features, n_errors, n_tokens, 0.8, 0.98)
    got = prune(adj.clone(), probs, n_features, n_errors, n_tokens)
    assert torch.equal(got.node_mask, want[0]) and torch.equal(got.edge_mask, want[1])
    torch.testing.assert_close(got.cumulative_scores, want[2], rtol=1e-5, atol=1e-6)


def test_influence_walks_up_to_a_thousand_steps_then_gives_up():
    """The walk is cut after 1000 steps past the first (a cycle never ends), as circuit-tracer's
    compute_influence: along a chain of 1000 edges it ends, one edge more raises, naming the cause."""
    from circuit_atlas.tracer.prune import influence

    def chain(n_edges: int):
        a = torch.zeros(n_edges + 1, n_edges + 1)
        a[torch.arange(1, n_edges + 1), torch.arange(n_edges)] = 1.0      # node i feeds node i + 1
        w = torch.zeros(n_edges + 1)
        w[-1] = 1.0
        return a, w

    total = influence(*chain(1000))
    assert torch.equal(total, torch.cat([torch.ones(1000), torch.zeros(1)]))   # every upstream node, once
    with pytest.raises(RuntimeError, match="did not converge after 1000 iterations .is the graph acyclic"):
        influence(*chain(1001))
