"""Pruning and graph scores, with circuit-tracer 0.5.0's semantics (graph.py: prune_graph, scores).

Influence: A_hat = |A| with rows normalised to sum 1; a node's influence on the logits is
w @ (A_hat + A_hat^2 + ...) with w the logit probabilities (the graph is a DAG, so the series ends).
  nodes  keep those with the largest influence holding `node_threshold` of the total
         (tokens and logits always stay);
  edges  on the node-pruned matrix, score(t <- s) = A_hat'[t, s] * (influence'(t) + w_t); keep the
         largest scores holding `edge_threshold` of the total;
  dangling  repeatedly drop feature/error nodes without kept outgoing edges and features without
         kept incoming edges.
Scores: replacement = token influence / (token + error influence); completeness = the
influence-weighted share of each node's normalised inputs that does not come from error nodes.

Memory: one N x N float buffer besides the adjacency (circuit-tracer allocates several); edge pruning
works on the kept nodes' block only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Pruned:
    node_mask: torch.Tensor          # (N,) bool
    edge_mask: torch.Tensor          # (N, N) bool, rows = targets
    cumulative_scores: torch.Tensor  # (N,) share of total influence held by nodes at least as influential
    replacement: float
    completeness: float


def _normalize_(matrix: torch.Tensor) -> torch.Tensor:
    """|matrix| with rows summing to 1, in place."""
    matrix.abs_()
    return matrix.div_(matrix.sum(dim=1, keepdim=True).clamp(min=1e-10))


def _normalized(matrix: torch.Tensor) -> torch.Tensor:
    """A new |matrix| with rows summing to 1 (two passes: abs into a new buffer, then divide)."""
    normalized = torch.abs(matrix)
    return normalized.div_(normalized.sum(dim=1, keepdim=True).clamp(min=1e-10))


def influence(normalized: torch.Tensor, logit_weights: torch.Tensor, max_iter: int = 1000) -> torch.Tensor:
    """w @ (A + A^2 + ...): summed until the walk leaves the DAG (exactly zero)."""
    step = _vector_matrix(logit_weights, normalized)
    total = step.clone()
    for _ in range(max_iter + 1):       # as circuit-tracer: max_iter steps past the first, then a last look
        if not step.any():
            return total
        step = _vector_matrix(step, normalized)
        total += step
    raise RuntimeError(f"influence did not converge after {max_iter} iterations (is the graph acyclic?)")


def _vector_matrix(v: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """v @ matrix, reading only the rows between v's first and last nonzero entry (the walk's frontier)."""
    nonzero = torch.nonzero(v)
    if len(nonzero) == 0:
        return torch.zeros_like(v)
    first, last = int(nonzero[0]), int(nonzero[-1]) + 1
    return v[first:last] @ matrix[first:last]


def find_threshold(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """The smallest score among the largest ones that hold `fraction` of the total."""
    ordered = torch.sort(scores, descending=True).values
    cumulative = torch.cumsum(ordered, dim=0) / torch.sum(ordered)
    index = min(int(torch.searchsorted(cumulative, fraction)), len(cumulative) - 1)
    return ordered[index]


def _edge_threshold(scores: torch.Tensor, fraction: float, n_zero_outside: int = 0) -> torch.Tensor:
    """find_threshold over `scores` plus `n_zero_outside` zeros, sorting only the nonzero scores."""
    nonzero = scores[scores != 0]
    n_zero = scores.numel() - len(nonzero) + n_zero_outside
    if len(nonzero) == 0:
        return scores.new_zeros(())
    ordered = torch.sort(nonzero, descending=True).values
    cumulative = torch.cumsum(ordered, dim=0) / torch.sum(ordered)
    index = int(torch.searchsorted(cumulative, fraction))
    if index < len(ordered):
        return ordered[index]
    return scores.new_zeros(()) if n_zero else ordered[-1]


def _drop_dangling(node_mask: torch.Tensor, edge_mask: torch.Tensor, n_features: int, n_inner: int) -> None:
    """In place: repeatedly drop feature/error nodes (the first n_inner) without kept outgoing edges and
    features (the first n_features) without kept incoming edges, and the edges of dropped nodes."""
    old_mask = node_mask.clone()
    node_mask[:n_inner] &= edge_mask[:, :n_inner].any(0)
    node_mask[:n_features] &= edge_mask[:n_features].any(1)
    while not torch.equal(node_mask, old_mask):
        old_mask.copy_(node_mask)
        edge_mask[~node_mask] = False
        edge_mask[:, ~node_mask] = False
        node_mask[:n_inner] &= edge_mask[:, :n_inner].any(0)
        node_mask[:n_features] &= edge_mask[:n_features].any(1)


def prune(adjacency: torch.Tensor, logit_probs: torch.Tensor, n_features: int, n_errors: int, n_tokens: int,
          node_threshold: float = 0.8, edge_threshold: float = 0.98) -> Pruned:
    N = adjacency.shape[0]
    n_logits = len(logit_probs)
    error_cols = slice(n_features, n_features + n_errors)
    token_cols = slice(n_features + n_errors, n_features + n_errors + n_tokens)
    logit_weights = torch.zeros(N, device=adjacency.device)
    logit_weights[N - n_logits:] = logit_probs

    # node influence on the full normalised matrix (shared with the graph scores)
    buffer = _normalized(adjacency)
    node_influence = influence(buffer, logit_weights)
    token_influence = node_influence[token_cols].sum()
    error_influence = node_influence[error_cols].sum()
    replacement = (token_influence / (token_influence + error_influence)).item()
    non_error_share = 1 - buffer[:, error_cols].sum(dim=-1)
    output_influence = node_influence + logit_weights
    completeness = ((non_error_share * output_influence).sum() / output_influence.sum()).item()

    node_mask = node_influence >= find_threshold(node_influence, node_threshold)
    node_mask[N - n_logits - n_tokens:] = True
    del buffer

    # edge scores on the node-pruned matrix: only the kept nodes' block is nonzero, so work on it alone
    kept = torch.nonzero(node_mask).squeeze(1)
    block = _normalize_(adjacency[kept[:, None], kept[None, :]])
    block_weights = logit_weights[kept]
    block_scores = block.mul_((influence(block, block_weights) + block_weights)[:, None])
    threshold = _edge_threshold(block_scores, edge_threshold, n_zero_outside=N * N - len(kept) ** 2)
    inner = N - n_logits - n_tokens             # features and errors come first
    if threshold == 0:  # the threshold fell among zero scores: circuit-tracer then keeps all N^2 "edges"
        del block, block_scores
        edge_mask = torch.ones(N, N, dtype=torch.bool, device=adjacency.device)
        _drop_dangling(node_mask, edge_mask, n_features, inner)
    else:               # scores outside the block are zero, below the threshold: prune inside it
        block_mask = block_scores >= threshold
        del block, block_scores
        kept_mask = node_mask[kept]
        _drop_dangling(kept_mask, block_mask, int((kept < n_features).sum()), int((kept < inner).sum()))
        node_mask[kept] = kept_mask
        edge_mask = torch.zeros(N, N, dtype=torch.bool, device=adjacency.device)
        edge_mask[kept[:, None], kept[None, :]] = block_mask

    ordered, order = torch.sort(node_influence, descending=True)
    cumulative_scores = torch.zeros_like(node_influence)
    cumulative_scores[order] = torch.cumsum(ordered, dim=0) / torch.sum(ordered)
    return Pruned(node_mask, edge_mask, cumulative_scores, replacement, completeness)
