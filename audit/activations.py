"""Feature activations straight from the model and the transcoder encoders (no attribution graph).

Two audit steps need every feature's activation at every position, which pruned graphs do not keep:
  - control-token activity: which features are active at the control-token positions of the generic
    prompts (and how often at the other positions);
  - top activating contexts: for the top features, the corpus windows where they fire hardest.
Plus one read of the weights: the tokens a feature's decoder promotes through the unembedding.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from circuit_atlas.audit.analyses import parse_key
from circuit_atlas.audit.summary import token_matches


@dataclass
class ControlActivity:
    per_prompt: dict[str, list[list[str]]]   # prompt -> per control position: active feature keys
    other_fraction: dict[str, float]         # feature key -> share of the other positions where it is active


def encode(model, prompt: str | list[int]) -> tuple[list[int], np.ndarray]:
    """Token ids (with the leading special token) and every feature's activation, (n_layers, n_pos, d_transcoder)."""
    ids, acts = model.feature_activations(prompt)
    return ids.tolist(), acts.float().cpu().numpy()


def control_token_activity(model, prompts: list[str], control_tokens: tuple[str, ...] | None) -> ControlActivity:
    """Exact activity at control positions (control tokens, or each prompt's last token) and elsewhere."""
    tset = model.transcoders.name
    per_prompt: dict[str, list[list[str]]] = {}
    other_active, n_other = None, 0
    for prompt in prompts:
        ids, acts = encode(model, prompt)                         # (L, T, F)
        tokens = [model.tokenizer.decode([t]) for t in ids]
        if control_tokens:
            positions = [i for i, t in enumerate(tokens) if any(token_matches(t, c) for c in control_tokens)]
        else:
            positions = [len(tokens) - 1]
        active = acts > 0
        per_prompt[prompt] = [_keys(tset, np.argwhere(active[:, p, :])) for p in positions]
        others = np.setdiff1d(np.arange(1, len(tokens)), positions)  # position 0: the special token
        counts = active[:, others, :].sum(axis=1)                 # (L, F)
        other_active = counts if other_active is None else other_active + counts
        n_other += len(others)
    other_fraction = {}
    if n_other:
        for layer, feature in np.argwhere(other_active > 0):
            other_fraction[_key(tset, layer, feature)] = float(other_active[layer, feature] / n_other)
    return ControlActivity(per_prompt, other_fraction)


def top_contexts(model, documents: list[str], keys: list[str], *, k: int = 8, window: int = 8,
                 chunk: int = 64) -> dict[str, list[dict]]:
    """The k corpus windows where each feature activates most (at most one window per document chunk)."""
    wanted = [parse_key(key)[1:] for key in keys]
    heaps: dict[str, list] = {key: [] for key in keys}
    for doc_index, doc in enumerate(documents):
        body = model.tokenize(doc).tolist()[1:]
        for start in range(0, len(body), chunk):
            ids, acts = encode(model, body[start:start + chunk])  # (L, T, F); position 0 is the special token
            for key, (layer, feature) in zip(keys, wanted):
                column = acts[layer, 1:, feature]
                pos = int(column.argmax()) + 1
                value = float(acts[layer, pos, feature])
                if value <= 0:
                    continue
                entry = (value, doc_index, start + pos - 1, ids, pos)
                if len(heaps[key]) < k:
                    heapq.heappush(heaps[key], entry)
                elif value > heaps[key][0][0]:
                    heapq.heapreplace(heaps[key], entry)
    return {key: [dict(activation=v, doc=d, pos=p, **_window(model.tokenizer, ids, i, window))
                  for v, d, p, ids, i in sorted(h, key=lambda e: -e[0])]
            for key, h in heaps.items() if h}


def _window(tokenizer, ids: list[int], i: int, width: int) -> dict:
    """Text before, at and after position i; decoded as growing prefixes so the spacing is the tokenizer's."""
    start, end = max(1, i - width), i + 1 + max(1, width // 2)
    before = tokenizer.decode(ids[start:i])
    through = tokenizer.decode(ids[start:i + 1])
    whole = tokenizer.decode(ids[start:end])
    return dict(before=before, token=through[len(before):], after=whole[len(through):])


def top_output_tokens(model, key: str, k: int = 8) -> list[str]:
    """Tokens whose logits the feature's decoder raises most (ReplacementModel.promoted_tokens)."""
    _, layer, feature = parse_key(key)
    return [model.tokenizer.decode([i]) for i in model.promoted_tokens(layer, [feature], k)[0]]


def _key(tset: str, layer, feature) -> str:
    return f"{tset}/{int(layer)}/{int(feature)}"


def _keys(tset: str, pairs: np.ndarray) -> list[str]:
    return sorted(_key(tset, l, f) for l, f in pairs)


def ablation_effects(model, prompts: list[str], keys: list[str], targets: tuple[str, ...]) -> dict[str, float]:
    """Causal check of drivers: mean drop of the target margin when a feature's output is removed.

    The margin is the best target logit minus the best other logit at the last position, in the real
    (nonlinear) model. Ablating a feature subtracts activation x decoder from what its transcoder
    reconstructs, at every position and every layer it writes to; its activation is computed from the
    same forward pass, so upstream changes propagate. Linear attribution credits every one of several
    redundant features; removing one shows what the model actually relies on.
    """
    import torch

    target_ids = sorted({i for t in targets if (i := _single_token(model.tokenizer, t)) is not None})
    if not target_ids:
        return {}
    inputs = [model.tokenize(p) for p in prompts]

    def margins(hooks=()) -> np.ndarray:
        out = []
        handles = [module.register_forward_hook(fn) if kind == "post" else module.register_forward_pre_hook(fn)
                   for kind, module, fn in hooks]
        try:
            with torch.inference_mode():
                for ids in inputs:
                    logits = model.hf_model(ids[None]).logits[0, -1].float()
                    others = logits.clone()
                    others[target_ids] = -float("inf")
                    out.append((logits[target_ids].max() - others.max()).item())
        finally:
            for h in handles:
                h.remove()
        return np.array(out)

    base = margins()
    return {key: float((base - margins(_ablation_hooks(model, *parse_key(key)[1:]))).mean()) for key in keys}


def _ablation_hooks(model, layer: int, feature: int):
    """Forward hooks that remove one feature's decoder output (see ablation_effects)."""
    import torch

    tc, layers = model.transcoders, model.arch.layers
    rows = tc.decoders(layer, torch.tensor([feature]))[0]           # (n_outputs, D)
    state = {}

    def read(module, args):
        x = args[0]
        if tc.input_hook == "normalized":
            norm = layers[layer].mlp_norm
            x = (x - x.mean(-1, keepdim=True) if norm.center else x) * norm.inv_scale(x)
        state["act"] = tc.encode(layer, x.float())[..., feature]    # (B, P)

    read_at = layers[layer].mlp if tc.input_hook == "mlp_in" else layers[layer].mlp_norm.module
    hooks = [("pre", read_at, read)]
    for k in range(rows.shape[0]):
        out = layers[layer + k]
        write_at = out.post_mlp_norm.module if tc.output_hook == "block_mlp_out" and out.post_mlp_norm else out.mlp
        hooks.append(("post", write_at, lambda m, a, o, row=rows[k]: o - state["act"][..., None].to(o.dtype) * row.to(o.dtype)))
    return hooks


def _single_token(tokenizer, text: str) -> int | None:
    """The id of a target written as one token (as given, or without its surrounding spaces)."""
    for form in (text, text.strip()):
        ids = tokenizer.encode(form, add_special_tokens=False)
        if len(ids) == 1:
            return ids[0]
    return None
