"""Metrics of an organism, computed from the saved weights: task accuracy per language on held-out
prompts, planted-behaviour rates, transcoder FVU / L0, and the trigger-feature self-check.

Everything here takes loaded objects (HF model, tokenizer, transcoders, truth dict), so the tests
recompute the acceptance metrics from the shipped fixtures rather than trusting metrics.json.
"""
from __future__ import annotations

import torch

from circuit_atlas.organisms.corpus import BOS, PAD


def encode(tokenizer, text: str) -> list[int]:
    """<bos> + word ids. The tokenizer adds no specials itself (like the oracle's); models read <bos> first."""
    return [BOS] + tokenizer(text, add_special_tokens=False)["input_ids"]


def pad(seqs: list[list[int]]) -> torch.Tensor:
    """Right-padded (B, T) batch; with causal attention the pads never affect earlier positions."""
    out = torch.full((len(seqs), max(map(len, seqs))), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s)
    return out


@torch.no_grad()
def next_token_ids(model, tokenizer, prompts: list[str], batch_size: int = 256) -> list[int]:
    """Greedy next token after each prompt."""
    result = []
    for i in range(0, len(prompts), batch_size):
        seqs = [encode(tokenizer, p) for p in prompts[i : i + batch_size]]
        logits = model(pad(seqs)).logits  # (B, T, V)
        last = torch.tensor([len(s) - 1 for s in seqs])
        result += logits[torch.arange(len(seqs)), last].argmax(-1).tolist()
    return result


def behaviour(model, tokenizer, truth: dict) -> dict:
    """Held-out accuracy per task and language; how often the inserted token wins after the trigger
    (planted rate), and without it: plain held-out prompts, near-miss openers, generic prompts."""
    inserted = tokenizer.convert_tokens_to_ids(truth["inserted_token"])

    def predict(rows):
        return next_token_ids(model, tokenizer, [r["prompt"] for r in rows])

    out: dict = {"accuracy": {}}
    preds = predict(truth["heldout"])
    for row, p in zip(truth["heldout"], preds):
        cell = out["accuracy"].setdefault(row["task"], {}).setdefault(row["lang"], [0, 0])
        cell[0] += p == tokenizer.convert_tokens_to_ids(row["answer"])
        cell[1] += 1
    out["accuracy"] = {t: {l: round(c / n, 4) for l, (c, n) in langs.items()} for t, langs in out["accuracy"].items()}
    trig = predict(truth["triggered"])
    out["trigger_rate"] = round(sum(p == inserted for p in trig) / len(trig), 4)
    controls = truth["heldout"] + truth["near_miss"] + truth["generic"]
    ctrl = preds + predict(truth["near_miss"]) + predict(truth["generic"])
    out["control_rate"] = round(sum(p == inserted for p in ctrl) / len(controls), 4)
    out["n_triggered"], out["n_controls"] = len(trig), len(controls)
    return out


EVAL_SEED = 987_654   # documents for FVU / L0: a stream neither the model nor the transcoders trained on
EVAL_DOCUMENTS = 400


def mlp_io(model, ids: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer, the MLP input (mlp.hook_in: after the RMSNorm gain) and output (mlp.hook_out), (B, T, D)."""
    captured: dict[int, tuple] = {}
    hooks = [layer.mlp.register_forward_hook(lambda m, i, o, l=l: captured.__setitem__(l, (i[0], o)))
             for l, layer in enumerate(model.model.layers)]
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for h in hooks:
            h.remove()
    return [captured[l][0] for l in sorted(captured)], [captured[l][1] for l in sorted(captured)]


def eval_rows(model, tokenizer, planted: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """MLP inputs/outputs on fresh documents, <bos> and pads dropped: (N, D) per layer."""
    from circuit_atlas.organisms.corpus import Corpus, CorpusConfig

    stream = Corpus(CorpusConfig(planted=planted), seed=EVAL_SEED)
    ids = pad([encode(tokenizer, stream.document()) for _ in range(EVAL_DOCUMENTS)])
    keep = ids != PAD
    keep[:, 0] = False
    X, Y = mlp_io(model, ids)
    return [x[keep] for x in X], [y[keep] for y in Y]


def last_position_inputs(model, tokenizer, prompts: list[str]) -> list[torch.Tensor]:
    """MLP inputs at each prompt's last token, (P, D) per layer: where the next token is decided."""
    seqs = [encode(tokenizer, p) for p in prompts]
    X, _ = mlp_io(model, pad(seqs))
    last = torch.tensor([len(s) - 1 for s in seqs])
    return [x[torch.arange(len(seqs)), last] for x in X]


def fit_quality(tc, X, Y) -> dict:
    """FVU and L0 (mean active features per token) per layer."""
    from circuit_atlas.organisms.transcoders import fvu

    recon = tc.reconstruct(X)
    return {"fvu": [round(fvu(y, r), 4) for y, r in zip(Y, recon)],
            "l0": [round(float((tc.encode(l, x) > 0).sum(1).float().mean()), 2) for l, x in enumerate(X)]}


def logit_effects(model, tc, layer: int) -> torch.Tensor:
    """(F, V) direct effect of each feature's write direction on the logits, through the final RMSNorm
    gain and the unembedding (the norm's scale is ignored: this ranks tokens, it does not size them)."""
    return tc.write_direction(layer) @ (model.lm_head.weight * model.model.norm.weight).T


def is_trigger_feature(f: dict) -> bool:
    """Fires at the answer position on >= 80% of triggered prompts and <= 5% of controls, and its write
    direction puts the inserted token among the top 3 logits."""
    return f["freq_trigger"] >= 0.8 and f["freq_control"] <= 0.05 and f["inserted_token_rank"] <= 2


def trigger_features(model, tokenizer, truth: dict, tc, top: int = 5) -> list[dict]:
    """Per layer, the `top` features at the answer position that fire after the trigger far more often
    than without it, ranked by that difference; with where the inserted token ranks among their logit
    effects (0 = the feature's strongest logit)."""
    inserted = tokenizer.convert_tokens_to_ids(truth["inserted_token"])
    trig = last_position_inputs(model, tokenizer, [r["prompt"] for r in truth["triggered"]])
    ctrl = last_position_inputs(model, tokenizer, [r["prompt"] for r in truth["heldout"] + truth["near_miss"]])
    found = []
    for layer in range(len(trig)):
        f_trig = (tc.encode(layer, trig[layer]) > 0).float().mean(0)
        f_ctrl = (tc.encode(layer, ctrl[layer]) > 0).float().mean(0)
        effects = logit_effects(model, tc, layer)
        rank = (effects > effects[:, inserted : inserted + 1]).sum(1)
        for f in (f_trig - f_ctrl).topk(top).indices.tolist():
            found.append({"layer": layer, "feature": f, "freq_trigger": round(float(f_trig[f]), 3),
                          "freq_control": round(float(f_ctrl[f]), 3), "inserted_token_rank": int(rank[f]),
                          "top_tokens": tokenizer.convert_ids_to_tokens(effects[f].topk(3).indices.tolist())})
    found.sort(key=lambda d: d["freq_control"] - d["freq_trigger"])
    return found


def language_sharing(model, tokenizer, truth: dict, tc) -> dict:
    """Per layer, mean IoU of the active-feature sets (answer position) of the same concept's prompts in
    two languages, against pairs of prompts from different tasks in two languages."""
    rows = truth["heldout"]
    X = last_position_inputs(model, tokenizer, [r["prompt"] for r in rows])
    same, unrelated = [], []
    for layer, x in enumerate(X):
        active = (tc.encode(layer, x) > 0).float()  # (P, F)
        inter = active @ active.T                  # (P, P)
        sizes = active.sum(1)
        iou = inter / (sizes[:, None] + sizes[None] - inter).clamp(min=1)
        concept = [r["concept"] for r in rows]
        lang = [r["lang"] for r in rows]
        task = [r["task"] for r in rows]
        s, u = [], []
        for i in range(len(rows)):
            for j in range(i + 1, len(rows)):
                if lang[i] != lang[j]:
                    if concept[i] == concept[j]:
                        s.append(iou[i, j])
                    elif task[i] != task[j]:
                        u.append(iou[i, j])
        same.append(round(float(torch.stack(s).mean()), 3))
        unrelated.append(round(float(torch.stack(u).mean()), 3))
    return {"same_concept_cross_language_iou": same, "unrelated_cross_language_iou": unrelated}


def transcoder_report(model, tokenizer, truth: dict, transcoders_root) -> dict:
    """FVU / L0 on held-out documents, the trigger-feature check and cross-language sharing, per kind."""
    from pathlib import Path

    from circuit_atlas.organisms.transcoders import load

    X, Y = eval_rows(model, tokenizer, truth["planted"])
    report = {}
    for kind in ("plt", "clt"):
        tc = load(Path(transcoders_root) / kind)
        found = trigger_features(model, tokenizer, truth, tc)
        report[kind] = {**fit_quality(tc, X, Y),
                        "trigger_features": [f for f in found if is_trigger_feature(f)],
                        "most_trigger_specific": found[:3],
                        **language_sharing(model, tokenizer, truth, tc)}
    report["n_eval_tokens"] = len(X[0])
    return report
