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
    """Causal check of drivers: mean drop of the target margin when a feature is ablated (tracer.intervene).

    The margin is the best target logit minus the best other logit at the last position, in the real
    (nonlinear) model with live attention; the feature is set to 0 at every position, so upstream
    changes propagate. Linear attribution credits every one of several redundant features; removing
    one shows what the model actually relies on.
    """
    target_ids = _target_ids(model, targets)
    if not target_ids:
        return {}
    effects = _ablate_each(model, prompts, keys, target_ids, factor=0.0)
    return {key: float(np.mean([e["margin_drop"] for e in rows])) for key, rows in effects.items()}


def steering_checks(model, prompts: list[str], keys: list[str], targets: tuple[str, ...],
                    factor: float = 0.0) -> dict[str, dict]:
    """Each feature steered alone on the suspect prompts (factor 0: ablated; -k: steered against):
    {key: {"drop": mean drop of the best target token's probability, "removed": share of the prompts
    whose top token was a target and no longer is, "n": prompts, "runs": the InterventionResults}}."""
    target_ids = _target_ids(model, targets)
    if not target_ids:
        return {}
    out = {}
    for key, rows in _ablate_each(model, prompts, keys, target_ids, factor).items():
        topped = [r for r in rows if r["was_top"]]
        out[key] = {"drop": float(np.mean([r["prob_drop"] for r in rows])),
                    "removed": float(np.mean([not r["is_top"] for r in topped])) if topped else 0.0,
                    "n": len(rows), "runs": [r["result"] for r in rows]}
    return out


def _target_ids(model, targets: tuple[str, ...]) -> list[int]:
    return sorted({i for t in targets if (i := _single_token(model.tokenizer, t)) is not None})


def _ablate_each(model, prompts: list[str], keys: list[str], target_ids: list[int], factor: float) -> dict[str, list]:
    """Per feature key, per prompt: the effect of scaling the feature by `factor` (0 = ablation) everywhere."""
    from circuit_atlas.tracer.interventions import Intervention, intervene, intervened_logits

    def best(logits):
        others = logits.clone()
        others[target_ids] = -float("inf")
        return float(logits[target_ids].max() - others.max()), float(logits.softmax(-1)[target_ids].max()), \
            int(logits.argmax()) in target_ids

    out: dict[str, list] = {}
    clean = {prompt: intervened_logits(model, prompt, []) for prompt in prompts}
    for key in keys:
        _, layer, feature = parse_key(key)
        iv = Intervention(layer, feature, "ablate") if factor == 0 else Intervention(layer, feature, "scale", factor)
        rows = []
        for prompt in prompts:
            result = intervene(model, prompt, [iv], targets=[int(i) for i in target_ids[:1]], freeze_attention=False,
                               clean_logits=clean[prompt])
            m0, p0, top0 = best(result.logits_before)
            m1, p1, top1 = best(result.logits_after)
            rows.append({"margin_drop": m0 - m1, "prob_drop": p0 - p1, "was_top": top0, "is_top": top1,
                         "result": result})
        out[key] = rows
    return out


def _single_token(tokenizer, text: str) -> int | None:
    """The id of a target written as one token (as given, or without its surrounding spaces)."""
    for form in (text, text.strip()):
        ids = tokenizer.encode(form, add_special_tokens=False)
        if len(ids) == 1:
            return ids[0]
    return None
