"""Attribution: the direct-effect adjacency matrix of one prompt, as circuit-tracer 0.5.0 computes it.

Phases (paper: https://transformer-circuits.pub/2025/attribution-graphs/methods.html):
  0. Clean run   one forward pass freezes patterns and norm scales (`FrozenModel`).
  1. Nodes       active transcoder features (position 0 excluded), one error node per (layer, position),
                 one embedding node per position; their vectors: encoders (what a feature reads),
                 activation * decoders (what it writes), errors, token embeddings.
  2. Targets     salient logits (cumulative probability) or explicit tokens; demeaned unembedding rows.
  3. Logit rows  one backward pass per batch of logit targets through the frozen linear model.
  4. Feature rows  the same for features: all of them, or when `max_feature_nodes` is set, in order
                 of their influence on the logits, re-ranked every `update_interval` batches.
  5. Assemble    rows and columns in circuit-tracer's node order:
                 [features, errors (layer-major), tokens, logits]; rows are targets, columns sources.

A row is the gradient of one target (a feature's pre-activation or a logit) with respect to every
write into the residual stream, contracted with what each source node writes there: its direct
effect in the frozen linear model. Gradients go down the layers through `FrozenModel`'s transposed
maps; no autograd graph, no copies of the forward pass per batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from circuit_atlas.tracer.config import TraceConfig
from circuit_atlas.tracer.errors import BadTarget
from circuit_atlas.tracer.frozen import FrozenModel
from circuit_atlas.tracer.replacement import ReplacementModel

ZERO_POSITIONS = 1  # position 0 (the special token) has no feature or error nodes, as in circuit-tracer


@dataclass
class Attribution:
    """The unpruned graph, laid out exactly like circuit-tracer's Graph."""

    input_ids: torch.Tensor          # (P,)
    active_features: torch.Tensor    # (n_active, 3) (layer, pos, feature), sorted
    activations: torch.Tensor        # (n_active,)
    selected: torch.Tensor           # (n_selected,) indices into active_features that are nodes
    adjacency: torch.Tensor          # (N, N) rows = targets, columns = sources (on the model's device)
    logit_ids: torch.Tensor          # (n_logits,)
    logit_probs: torch.Tensor        # (n_logits,)
    n_layers: int

    @property
    def n_pos(self) -> int:
        return len(self.input_ids)


@dataclass
class Sources:
    """What each source node writes, grouped by the layer it writes at, padded per position for bmm."""

    n_cols: int                      # n_active + n_layers * P errors + P tokens
    cols: list[torch.Tensor]         # per write layer (P, n_max) column index; n_cols marks padding
    vectors: list[torch.Tensor]      # per write layer (P, n_max, D) activation * decoder row (transcoder dtype)
    errors: torch.Tensor             # (L, P, D) error vectors
    tokens: torch.Tensor             # (P, D) token embeddings
    starts: list[list[int]]          # per source layer: column of its first feature at each position 0..P
    buffer: torch.Tensor | None = None  # (n_cols + 1, B) feature columns of one batch, reused across batches

    def column_buffer(self, batch: int) -> torch.Tensor:
        """A (n_cols + 1, batch) scratch buffer, allocated once per trace (no page faults per batch)."""
        if self.buffer is None or self.buffer.shape[1] < batch:
            self.buffer = torch.empty(self.n_cols + 1, batch, device=self.tokens.device)
        return self.buffer[:, :batch]


def attribute(model: ReplacementModel, input_ids: torch.Tensor, config: TraceConfig,
              progress: bool = False) -> Attribution:
    # Phase 0-1: clean run, nodes
    fm = FrozenModel(model, input_ids)
    L, P = model.n_layers, len(input_ids)
    active, activations, encoders, sources = _nodes(fm)
    n_active, n_cols = len(active), sources.n_cols
    active_cpu = active.cpu()

    # Phase 2: targets
    logit_ids, logit_probs, logit_vecs = _targets(model, fm.logits[-1], config)
    n_logits = len(logit_ids)

    max_features = min(config.max_feature_nodes or n_active, n_active)
    limited = max_features < n_active
    store = torch.device("cpu") if model.offload else fm.logits.device   # where rows are collected
    if limited:   # rows in visit order, reordered in phase 5
        rows = torch.zeros(n_logits + max_features, n_cols, device=store)
        logit_slot = torch.arange(n_logits)
    else:         # rows written where they end up
        n_nodes = n_cols + n_logits
        adjacency = torch.zeros(n_nodes, n_nodes, device=store)
        rows = adjacency[:, :n_cols]
        logit_slot = torch.arange(n_nodes - n_logits, n_nodes)
    row_to_node = torch.zeros(len(rows), dtype=torch.long)  # column index of each row's node (limited mode)

    bar = _progress(n_logits + max_features, progress)

    # Phase 3: logit rows
    for start in range(0, n_logits, config.batch_size):
        batch = slice(start, min(start + config.batch_size, n_logits))
        seeds = logit_vecs[batch]
        n = len(seeds)
        slot = logit_slot[batch]
        _rows(fm, sources, torch.full((n,), L), torch.full((n,), P - 1), seeds, rows[int(slot[0]):int(slot[-1]) + 1])
        row_to_node[slot] = n_cols + torch.arange(batch.start, batch.stop)
        bar.update(n)

    # Phase 4: feature rows
    visited = torch.zeros(n_active, dtype=torch.bool)
    n_visited, next_row = 0, n_logits
    while n_visited < max_features:
        if not limited:
            pending = torch.arange(n_active)
        else:
            influence = _partial_influence(rows[:next_row], logit_probs.to(store), row_to_node[:next_row].to(store),
                                           n_cols)
            ranking = torch.argsort(influence[:n_active], descending=True).cpu()
            queue_size = min(config.update_interval * config.batch_size, max_features - n_visited)
            # the queue is a set (the next ranking reads all rows so far), so visit it sorted by (layer,
            # position): each batch then goes down from one layer and over the fewest positions
            pending = ranking[~visited[ranking]][:queue_size].sort().values
        for part in _plan(active_cpu[pending, 0], active_cpu[pending, 1], config.batch_size, P, fm.resid0.shape[1]):
            batch = pending[part]
            first = next_row if limited else int(batch[0])       # full mode: batch is a contiguous range
            _rows(fm, sources, active_cpu[batch, 0], active_cpu[batch, 1], encoders[batch],
                  rows[first:first + len(batch)])
            if limited:
                row_to_node[next_row:next_row + len(batch)] = batch
                next_row += len(batch)
            visited[batch] = True
            n_visited += len(batch)
            bar.update(len(batch))
    bar.close()

    # Phase 5: assemble
    selected = torch.where(visited)[0]
    if limited:
        adjacency = _assemble(rows, row_to_node, selected, n_active, n_cols, n_logits)
    return Attribution(input_ids.cpu(), active_cpu, activations.cpu(), selected, adjacency, logit_ids.cpu(),
                       logit_probs.cpu(), L)


def _nodes(fm: FrozenModel):
    """Active features (sorted by layer, pos, feature), their encoders, and every source's write vectors."""
    tc, L = fm.tc, len(fm.arch.layers)
    P, D = fm.resid0.shape
    device = fm.resid0.device
    per_layer = []  # (positions, features, activations, decoders (n, n_out, D)) of features read at layer l
    for l in range(L):
        pos, feat, values = tc.active(l, fm.reads_clean[l][ZERO_POSITIONS:])   # sorted by (pos, feature)
        pos = pos + ZERO_POSITIONS
        per_layer.append((pos, feat, values, tc.decoders(l, feat) * values[:, None, None]))
    active = torch.cat([torch.stack([torch.full_like(p, l), p, f], 1) for l, (p, f, _, _) in enumerate(per_layer)])
    activations = torch.cat([v for _, _, v, _ in per_layer])
    encoders = torch.cat([tc.encoder_rows(l, f) for l, (_, f, _, _) in enumerate(per_layer)])  # (n_active, D)
    n_active = len(active)
    n_cols = n_active + L * P + P

    # what is written at each layer's write hook: features of layers i <= l (a PLT: i == l), then errors
    cols, vectors, errors = [], [], []
    offsets = [0]
    for pos, _, _, _ in per_layer:
        offsets.append(offsets[-1] + len(pos))
    for l in range(L):
        col_parts, pos_parts, vec_parts = [], [], []
        for i in range(l + 1):
            pos, _, _, decoders = per_layer[i]
            out = l - i if tc.kind == "clt" else (0 if i == l else None)
            if out is None:
                continue
            col_parts.append(torch.arange(offsets[i], offsets[i + 1], device=device))
            pos_parts.append(pos)
            vec_parts.append(decoders[:, out])
        col, pos, vec = torch.cat(col_parts), torch.cat(pos_parts), torch.cat(vec_parts)
        reconstruction = torch.zeros(P, D, device=device).index_add_(0, pos, vec) + tc.b_dec[l]
        if tc.W_skip is not None:
            reconstruction = reconstruction + tc.skip(l, fm.reads_clean[l])
        error = fm.writes_clean[l] - reconstruction
        error[:ZERO_POSITIONS] = 0
        errors.append(error)
        c, v = _pad_by_position(col, pos, vec, P, n_cols)
        cols.append(c)
        vectors.append(v.to(tc.dtype))      # held in the transcoders' precision, widened per use
    starts = [[offsets[l] + c for c in [0] + torch.bincount(per_layer[l][0], minlength=P).cumsum(0).tolist()]
              for l in range(L)]
    sources = Sources(n_cols, cols, vectors, torch.stack(errors), fm.token_vectors, starts)
    return active, activations, encoders, sources


def _pad_by_position(col, pos, vec, P, pad_col):
    """Group source vectors by position: (P, n_max) columns (pad_col = padding) and (P, n_max, D) vectors."""
    order = torch.argsort(pos, stable=True)
    col, pos, vec = col[order], pos[order], vec[order]
    counts = torch.bincount(pos, minlength=P)
    n_max = int(counts.max()) if len(pos) else 0
    slot = torch.arange(len(pos), device=pos.device) - (torch.cumsum(counts, 0) - counts)[pos]
    cols = torch.full((P, n_max), pad_col, dtype=torch.long, device=pos.device)
    vectors = torch.zeros(P, n_max, vec.shape[-1], device=vec.device)
    cols[pos, slot] = col
    vectors[pos, slot] = vec
    return cols, vectors


def _plan(layers: torch.Tensor, positions: torch.Tensor, batch_size: int, n_pos: int, d_model: int) -> list[slice]:
    """Split rows sorted by (layer, position) into contiguous batches of at most `batch_size` rows that do
    the least work. A batch's backward pass costs about rows x (its last position + 1) per layer visited (the
    positions before the last target are all carried), plus a fixed overhead; so within each layer, a
    dynamic programme over positions cuts where the rows of early positions would otherwise pay for late
    ones (about halving the work over one batch per layer), and never across layers.
    """
    import numpy as np

    overhead = 256 + 1.5e8 / d_model ** 2          # fixed cost of a batch (calls, smaller matmuls), in row-positions
    layers, positions = layers.numpy(), positions.numpy()
    parts = []
    bounds = [0, *(np.flatnonzero(np.diff(layers)) + 1).tolist(), len(layers)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        below = np.concatenate([[0], np.cumsum(np.bincount(positions[lo:hi], minlength=n_pos))])  # rows < p
        cost, cut = np.zeros(n_pos + 1), np.zeros(n_pos + 1, dtype=int)
        for end in range(1, n_pos + 1):               # best split of the rows at positions < end
            rows = below[end] - below[:end]
            candidates = cost[:end] + rows * end + overhead * np.ceil(rows / batch_size)
            cut[end] = int(np.argmin(candidates))
            cost[end] = candidates[cut[end]]
        spans, end = [], n_pos
        while end > 0:
            spans.append((int(below[cut[end]]), int(below[end])))
            end = cut[end]
        for first, stop in reversed(spans):           # a span of more than batch_size rows: equal parts
            n_parts = -(-(stop - first) // batch_size)
            edges = np.linspace(first, stop, n_parts + 1).round().astype(int)
            parts += [slice(lo + a, lo + b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    return parts


def _rows(fm: FrozenModel, sources: Sources, layers: torch.Tensor, positions: torch.Tensor,
          seeds: torch.Tensor, out: torch.Tensor) -> None:
    """Write the attribution rows of B targets into `out` (B, n_cols), which holds zeros: seeds (B, D) read
    at (layer, position); layer L = logits.

    Only the layers below the highest target and the positions up to the last target are visited:
    nothing above a target and, attention being causal, nothing after it has a direct effect on it.
    Feature columns gather in a (columns, B) buffer (one index_add per layer), copied into `out` once.
    """
    L, (P, D) = len(fm.arch.layers), fm.resid0.shape
    B, device = len(seeds), seeds.device
    batch = torch.arange(B, device=device)
    layers, positions = layers.to(device), positions.to(device)
    n = int(positions.max()) + 1                                   # positions 0 .. n-1 matter
    top = min(int(layers.max()), L) - 1                            # highest layer whose writes matter
    fm = fm.prefix(n)
    n_active = sources.n_cols - L * P - P
    features = sources.column_buffer(B)                            # (n_cols + 1, B); row n_cols: padding
    if top >= 0:
        features[:sources.starts[top][P]].zero_()                  # features of layers <= top
        features[sources.n_cols].zero_()

    g_r, g_r_is_zero = None, True                                  # gradient at r_{l+1}
    one_hot = True    # until the first attention, each row's gradient lives at its own position only
    is_logit = layers == L
    if is_logit.any():
        g_final = torch.zeros(B, n, D, device=device)
        g_final[batch[is_logit], positions[is_logit]] = seeds[is_logit]
        g_r, g_r_is_zero = fm.final_T(g_final), False
    has_skip = fm.tc.W_skip is not None
    for l in range(min(int(layers.max()), L - 1), -1, -1):
        here = layers == l
        g_x = None                                                 # gradient where layer l's features read
        if here.any():
            g_x = torch.zeros(B, n, D, device=device)
            g_x[batch[here], positions[here]] = seeds[here]
        if not g_r_is_zero:
            g_o = fm.write_T(l, g_r)                               # (B, n, D) gradient where layer l writes
            if sources.cols[l].numel():
                effects = torch.bmm(sources.vectors[l][:n].float(), g_o.permute(1, 2, 0))  # (n, n_max, B)
                features.index_add_(0, sources.cols[l][:n].flatten(), effects.flatten(0, 1))
            error_start = n_active + l * P
            out[:, error_start:error_start + n] = torch.einsum("bpd,pd->bp", g_o, sources.errors[l][:n])
            if has_skip:
                g_x = fm.skip_T(l, g_o) if g_x is None else g_x + fm.skip_T(l, g_o)
        if g_x is not None:
            g_r = fm.read_T(l, g_x) if g_r_is_zero else g_r + fm.read_T(l, g_x)
            g_r_is_zero = False
        if not g_r_is_zero:                                        # through m_l to r_l
            g_r = fm.attn_block_T_at(l, g_r[batch, positions], positions) if one_hot else fm.attn_block_T(l, g_r)
            one_hot = False
    token_start = n_active + L * P
    if not g_r_is_zero:
        out[:, token_start:token_start + n] = torch.einsum("bpd,pd->bp", g_r, sources.tokens[:n])
    for i in range(top + 1):                                       # features of layer i at positions < n
        _copy_transposed(out, features, sources.starts[i][0], sources.starts[i][n])


def _copy_transposed(out: torch.Tensor, columns: torch.Tensor, start: int, stop: int, block: int = 256) -> None:
    """out[:, start:stop] = columns[start:stop].T, in blocks of columns (4x faster than one strided copy)."""
    for s in range(start, stop, block):
        e = min(s + block, stop)
        out[:, s:e].copy_(columns[s:e].T)


def _targets(model: ReplacementModel, logits: torch.Tensor, config: TraceConfig):
    """(ids, probabilities, demeaned unembedding rows (n, D)) of the logit targets."""
    probs = torch.softmax(logits, dim=-1)
    if config.target_tokens is None:
        top_p, top_ids = torch.topk(probs, min(config.max_n_logits, len(probs)))
        cutoff = int(torch.searchsorted(torch.cumsum(top_p, 0), config.desired_logit_prob)) + 1
        ids = top_ids[:cutoff]
    else:
        ids = torch.tensor([_token_id(model, t, len(probs)) for t in config.target_tokens], device=logits.device)
    W_U = model.arch.W_U                                            # (V, D)
    return ids, probs[ids], W_U[ids] - W_U.mean(0)


def _token_id(model: ReplacementModel, token: str | int, vocab_size: int) -> int:
    if isinstance(token, int):
        if not 0 <= token < vocab_size:
            raise BadTarget(f"target token id {token} is outside the vocabulary [0, {vocab_size})")
        return token
    ids = model.tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1:
        raise BadTarget(f"target {token!r} is {len(ids)} tokens ({ids}); each target must be exactly one token")
    unk = model.tokenizer.unk_token_id
    if ids[0] == unk and unk is not None and token.strip() != model.tokenizer.unk_token:
        raise BadTarget(f"target {token!r} is not in the vocabulary of {model.model_name} "
                        f"(it would be {model.tokenizer.unk_token}); pick a word the model knows")
    return ids[0]


def _partial_influence(rows, logit_probs, row_to_node, n_cols, max_iter: int = 128, chunk: int = 256):
    """Influence on the logits of every column, from the rows computed so far (circuit-tracer's ranking):
    w @ (M + M^2 + ...), M = the rows' |values| normalised to sum 1, w = the logit probabilities.

    Only nodes that own a row pass influence on, so the series runs on the small (rows x feature rows)
    block of M; the full rows are then read once, in chunks, with no normalised copy of them.
    """
    row_sums = torch.linalg.vector_norm(rows, ord=1, dim=1).clamp(min=1e-8)   # (R,)
    is_feature = row_to_node < n_cols
    feature_rows = torch.nonzero(is_feature).squeeze(1)
    block = rows[:, row_to_node[feature_rows]].abs_().div_(row_sums[:, None])  # (R, R_f): M at row nodes
    u = torch.zeros(len(rows), device=rows.device)               # influence arriving at each row's node
    u[~is_feature] = logit_probs[row_to_node[~is_feature] - n_cols]
    total = u.clone()
    for _ in range(max_iter):
        step = u @ block
        if not step.any():
            break
        u = torch.zeros_like(u)
        u[feature_rows] = step
        total += u
    else:
        raise RuntimeError(f"feature ranking did not converge in {max_iter} iterations")
    weights = total / row_sums
    influence = torch.zeros(n_cols, device=rows.device)
    for start in range(0, len(rows), chunk):
        if weights[start:start + chunk].any():
            influence += weights[start:start + chunk] @ rows[start:start + chunk].abs()
    return influence


def _assemble(rows, row_to_node, selected, n_active, n_cols, n_logits, chunk: int = 256):
    """Limited mode: keep selected feature columns; order rows [features by index, logits]."""
    col_read = torch.cat([selected, torch.arange(n_active, n_cols)]).to(rows.device)
    n_sel = len(selected)
    n_nodes = len(col_read) + n_logits
    adjacency = torch.zeros(n_nodes, n_nodes, device=rows.device)
    feature_rows = torch.arange(n_logits, len(rows))
    feature_rows = torch.cat([feature_rows[torch.argsort(row_to_node[n_logits:])], torch.arange(n_logits)])
    targets = torch.cat([torch.arange(n_sel), torch.arange(n_nodes - n_logits, n_nodes)])
    for start in range(0, len(targets), chunk):    # in chunks: no (rows x kept columns) temporary
        adjacency[targets[start:start + chunk], :len(col_read)] = rows[feature_rows[start:start + chunk].to(
            rows.device)][:, col_read]
    return adjacency


class _NoBar:
    def update(self, n): pass
    def close(self): pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc="backward batches", unit="batch")
