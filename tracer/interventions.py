"""Interventions: set, scale, add to or ablate transcoder features, and watch the logits move.

    from circuit_atlas import tracer
    model = tracer.load(model_dir, transcoders_dir)
    result = tracer.intervene(model, "the capital of the country containing balton is",
                              [tracer.Intervention(2, 117, "ablate")], targets=[" dorton"], generate=5)
    result.table()            # top tokens before / after, the targets' change, the continuations

The semantics are circuit-tracer 0.5.0's `ReplacementModel.feature_intervention` (and
`feature_intervention_generate`), run on the real model (its MLPs, so the transcoders' errors stay
where they are):

  * Setting feature f of layer l to v at position p adds (v - a) x f's decoder rows where its
    transcoder writes: at layer l for a per-layer transcoder, at layers l .. L-1 for a cross-layer one.
    `a` is f's activation in this very run, so interventions upstream propagate into it.
  * freeze_attention: every attention pattern is the clean run's (norm scales stay live).
  * constrained_layers (a range of layers): patterns frozen; those layers' MLP outputs keep their clean
    values (plus the change of a skip connection and the interventions' deltas, computed from the
    clean activations), so effects do not propagate through their transcoders; a cross-layer
    transcoder writes only into them. A range over every layer also freezes the norm scales: the
    attribution graph's linear model, where an intervention's effect is its direct effect.
  * Generation is greedy with the KV cache, as circuit-tracer's: the prompt pass runs as above;
    each generated token runs live, with the interventions whose positions are "all" or "generated".

Ops: "set" (value = the new activation), "ablate" (set to 0), "scale" (value = a factor of the
activation), "add" (value = a delta). At prompt positions scale and add are taken from the clean
activation (so each is a set to a known value, as circuit-tracer expresses interventions); at
generated tokens, which have no clean run, from the live one. Positions: prompt positions (negative
count from the end; 0 is the special token and carries no features), "all" (every prompt position
after it and every generated token), or "generated" (generated tokens only).
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

from circuit_atlas.tracer.attribution import ZERO_POSITIONS, _token_id
from circuit_atlas.tracer.errors import TracerError
from circuit_atlas.tracer.frozen import FrozenModel
from circuit_atlas.tracer.replacement import ReplacementModel

OPS = ("set", "scale", "add", "ablate")
OPEN_ENDED = ("all", "generated")


class BadIntervention(TracerError):
    """An intervention names a layer, feature, position or operation the model does not have."""


@dataclass(frozen=True)
class Intervention:
    layer: int
    feature: int
    op: str = "set"                          # set | scale | add | ablate
    value: float = 0.0                       # set: new activation; scale: factor; add: delta; ablate: unused
    positions: tuple[int, ...] | str = "all"  # prompt positions, "all", or "generated"

    def __post_init__(self):
        if self.op not in OPS:
            raise BadIntervention(f"intervention op {self.op!r}: use one of {', '.join(OPS)}")
        if isinstance(self.positions, str):
            if self.positions not in OPEN_ENDED:
                raise BadIntervention(f"positions {self.positions!r}: give positions, 'all' or 'generated'")
        else:
            object.__setattr__(self, "positions", tuple(int(p) for p in (
                [self.positions] if isinstance(self.positions, int) else self.positions)))

    @property
    def open_ended(self) -> bool:
        """Applies to generated tokens too."""
        return isinstance(self.positions, str)

    def describe(self) -> str:
        where = self.positions if isinstance(self.positions, str) else ",".join(map(str, self.positions))
        what = {"set": f"={self.value:g}", "scale": f"×{self.value:g}", "add": f"+{self.value:g}",
                "ablate": "=0"}[self.op]
        return f"{self.layer}/{self.feature}@{where}{what}"


@dataclass
class TargetChange:
    token: str
    token_id: int
    logit_before: float
    logit_after: float
    prob_before: float
    prob_after: float
    rank_before: int          # 1 = the top token
    rank_after: int

    @property
    def logit_change(self) -> float:
        return self.logit_after - self.logit_before

    @property
    def prob_change(self) -> float:
        return self.prob_after - self.prob_before


@dataclass
class InterventionResult:
    """Logits at the last prompt position before and after, the targets' change, the continuations."""

    prompt: str
    tokens: list[str]                        # the prompt's tokens, special token first
    interventions: list[Intervention]
    freeze_attention: bool
    constrained_layers: tuple[int, ...] | None
    logits_before: torch.Tensor              # (V,)
    logits_after: torch.Tensor               # (V,)
    targets: list[TargetChange]
    top_k: int
    decode: object = field(repr=False, default=None)   # token id -> text
    continuation_before: str | None = None
    continuation_after: str | None = None

    def top(self, after: bool = True, k: int | None = None) -> list[tuple[str, float]]:
        probs = torch.softmax(self.logits_after if after else self.logits_before, -1)
        p, ids = probs.topk(min(k or self.top_k, len(probs)))
        return [(self.decode(int(i)), float(v)) for v, i in zip(p, ids)]

    @property
    def top_changed(self) -> bool:
        return int(self.logits_before.argmax()) != int(self.logits_after.argmax())

    def table(self) -> list[dict]:
        """Rows for a before/after table: the top-k tokens side by side."""
        before, after = self.top(False), self.top(True)
        return [{"rank": i + 1, "before": b[0], "p_before": b[1], "after": a[0], "p_after": a[1]}
                for i, (b, a) in enumerate(zip(before, after))]

    def to_dict(self) -> dict:
        return {
            "prompt": self.prompt, "tokens": self.tokens,
            "interventions": [i.describe() for i in self.interventions],
            "freeze_attention": self.freeze_attention,
            "constrained_layers": list(self.constrained_layers) if self.constrained_layers else None,
            "top_before": self.top(False), "top_after": self.top(True),
            "targets": [{**t.__dict__, "logit_change": t.logit_change, "prob_change": t.prob_change}
                        for t in self.targets],
            "continuation_before": self.continuation_before, "continuation_after": self.continuation_after,
        }


def intervene(model: ReplacementModel, prompt: str | list[int], interventions: Sequence[Intervention], *,
              targets: Iterable[str | int] = (), top_k: int = 5, freeze_attention: bool = True,
              constrained_layers: Iterable[int] | None = None, generate: int = 0,
              clean_logits: torch.Tensor | None = None) -> InterventionResult:
    """Run `prompt` clean and with `interventions`; compare the next-token logits (and continuations).

    `clean_logits`: the prompt's clean (P, V) logits, when the caller runs many interventions on it.
    """
    with torch.inference_mode():
        input_ids = model.tokenize(prompt)
        run = _Run(model, input_ids, list(interventions), freeze_attention, constrained_layers)
        after = run.logits()
        before = run.fm.logits if clean_logits is None else clean_logits
        continuation_before = continuation_after = None
        if generate:
            clean = _Run(model, input_ids, [], False, None)
            continuation_before = _decode(model, clean.generate(generate)[0])
            continuation_after = _decode(model, run.generate(generate)[0])
    vocab = before.shape[-1]
    target_ids = [_token_id(model, t, vocab) for t in targets] or [int(before[-1].argmax())]
    decode = lambda i: model.tokenizer.decode([i])  # noqa: E731
    return InterventionResult(
        prompt=prompt if isinstance(prompt, str) else model.tokenizer.decode(input_ids[1:].tolist()),
        tokens=[decode(int(t)) for t in input_ids], interventions=list(interventions),
        freeze_attention=freeze_attention, constrained_layers=run.constrained,
        logits_before=before[-1].cpu(), logits_after=after[-1].cpu(),
        targets=[_change(decode(t), t, before[-1], after[-1]) for t in target_ids], top_k=top_k, decode=decode,
        continuation_before=continuation_before, continuation_after=continuation_after)


def intervened_logits(model: ReplacementModel, prompt: str | list[int], interventions: Sequence[Intervention],
                      freeze_attention: bool = True, constrained_layers: Iterable[int] | None = None) -> torch.Tensor:
    """(P, V) logits of the prompt with the interventions (what circuit-tracer's feature_intervention returns)."""
    with torch.inference_mode():
        return _Run(model, model.tokenize(prompt), list(interventions), freeze_attention,
                    constrained_layers).logits()


def generate(model: ReplacementModel, prompt: str | list[int], interventions: Sequence[Intervention],
             n_tokens: int, freeze_attention: bool = True,
             constrained_layers: Iterable[int] | None = None) -> tuple[list[int], torch.Tensor]:
    """Greedy continuation with the interventions: (new token ids, (n, V) logits that chose them)."""
    with torch.inference_mode():
        return _Run(model, model.tokenize(prompt), list(interventions), freeze_attention,
                    constrained_layers).generate(n_tokens)


def transplant(model: ReplacementModel, donor: str | list[int], features: Iterable[tuple[int, int]],
               strength: float = 1.0, into: str | list[int] | None = None) -> list[Intervention]:
    """Set `features` (layer, feature) to `strength` x their activations on the `donor` prompt, position by
    position counted from the end (parallel prompts line up). Features inactive on the donor are left
    alone; with `into` (the recipient prompt), donor positions it lacks are dropped.

    The paper's swap: suppress one concept's features and transplant another's from a prompt about it.
    """
    features = list(dict.fromkeys((int(l), int(f)) for l, f in features))
    with torch.inference_mode():
        ids = model.tokenize(donor)
        fm = FrozenModel(model, ids)
        acts = {l: clean_activations(fm, l) for l in {l for l, _ in features}}
    P = len(ids)
    first = ZERO_POSITIONS if into is None else max(ZERO_POSITIONS, P - len(model.tokenize(into)) + ZERO_POSITIONS)
    return [Intervention(l, f, "set", strength * float(acts[l][p, f]), positions=(p - P,))
            for l, f in features for p in range(first, P) if acts[l][p, f] > 0]


def clean_activations(fm: FrozenModel, layer: int) -> torch.Tensor:
    """(P, F) activations of a layer's features on the clean run; position 0 is zero, as in graphs."""
    acts = fm.tc.encode(layer, fm.reads_clean[layer])
    acts[:ZERO_POSITIONS] = 0
    return acts


# --- the machinery ----------------------------------------------------------------------------

@dataclass
class _Edit:
    """The features of one layer to change in one pass, at (pos[i], feature[i])."""
    pos: torch.Tensor                # (n,) positions within the pass
    feature: torch.Tensor            # (n,)
    value: torch.Tensor              # (n,) the new activation; for scale / add entries the factor / delta
    op: torch.Tensor                 # (n,) index into _EDIT_OPS (scale / add from the live activation)
    decoders: torch.Tensor           # (n, n_outputs, D)


_EDIT_OPS = ("set", "scale", "add")


class _Run:
    """One prompt with one set of interventions: the prompt pass, then generated tokens on the KV cache."""

    def __init__(self, model: ReplacementModel, input_ids: torch.Tensor, interventions: list[Intervention],
                 freeze_attention: bool, constrained_layers):
        self.model, self.arch, self.tc = model, model.arch, model.transcoders
        self.L, self.P = model.n_layers, len(input_ids)
        self.input_ids = input_ids
        self.constrained = tuple(sorted(set(int(l) for l in constrained_layers))) if constrained_layers else None
        for l in self.constrained or ():
            if not 0 <= l < self.L:
                raise BadIntervention(f"constrained layer {l}: the model has layers 0..{self.L - 1}")
        self.interventions = interventions
        for iv in interventions:
            _check(model, iv, self.P)
        self.freeze_attention = bool(interventions) and (freeze_attention or self.constrained is not None)
        self.freeze_norms = self.freeze_attention and self.constrained is not None and \
            set(range(self.L)) <= set(self.constrained)
        self._decoders: dict[tuple[int, int], torch.Tensor] = {}
        self.prompt_edits = self._prompt_edits()
        self.open_edits = self._open_edits()

    @functools.cached_property
    def fm(self) -> FrozenModel:
        """The clean run (patterns, norm scales, reads and writes): built only when something needs it."""
        return FrozenModel(self.model, self.input_ids)

    # -- plans --

    def _rows(self, layer: int, features: list[int]) -> torch.Tensor:
        missing = [f for f in dict.fromkeys(features) if (layer, f) not in self._decoders]
        if missing:
            rows = self.tc.decoders(layer, torch.tensor(missing))
            for f, r in zip(missing, rows):
                self._decoders[layer, f] = r
        return torch.stack([self._decoders[layer, f] for f in features])

    def _prompt_edits(self) -> dict[int, _Edit]:
        """Per layer, the (position, feature) -> new activation of the prompt pass (last one wins)."""
        wanted: dict[int, dict[tuple[int, int], float]] = {}
        clean: dict[int, torch.Tensor] = {}
        for iv in self.interventions:
            if iv.positions == "generated":
                continue
            positions = range(1, self.P) if iv.positions == "all" else [p % self.P for p in iv.positions]
            if iv.op in ("scale", "add") and iv.layer not in clean:
                clean[iv.layer] = clean_activations(self.fm, iv.layer)
            for p in positions:
                a = float(clean[iv.layer][p, iv.feature]) if iv.layer in clean else 0.0
                value = {"set": iv.value, "ablate": 0.0, "scale": iv.value * a, "add": a + iv.value}[iv.op]
                wanted.setdefault(iv.layer, {})[p, iv.feature] = value
        return {layer: self._edit(layer, [(p, f, v, "set") for (p, f), v in entries.items()])
                for layer, entries in wanted.items()}

    def _open_edits(self) -> dict[int, _Edit]:
        """Per layer, what applies at each generated token (position 0 of its one-token pass)."""
        wanted: dict[int, dict[int, tuple[float, str]]] = {}
        for iv in self.interventions:
            if iv.open_ended:
                op, value = ("set", 0.0) if iv.op == "ablate" else (iv.op, iv.value)
                wanted.setdefault(iv.layer, {})[iv.feature] = (value, op)
        return {layer: self._edit(layer, [(0, f, v, op) for f, (v, op) in entries.items()])
                for layer, entries in wanted.items()}

    def _edit(self, layer: int, entries: list[tuple[int, int, float, str]]) -> _Edit:
        device = self.model.device
        pos, feature, value, op = zip(*entries)
        return _Edit(torch.tensor(pos, device=device), torch.tensor(feature, device=device),
                     torch.tensor(value, dtype=torch.float32, device=device),
                     torch.tensor([_EDIT_OPS.index(o) for o in op], device=device), self._rows(layer, list(feature)))

    # -- passes --

    def logits(self) -> torch.Tensor:
        """(P, V) logits of the prompt pass."""
        if not self.interventions:
            return self.fm.logits
        with self._hooks(prompt_pass=True):
            return self.model.hf_model(self.input_ids[None]).logits[0]

    def generate(self, n_tokens: int) -> tuple[list[int], torch.Tensor]:
        eos = self.model.tokenizer.eos_token_id
        with self._hooks(prompt_pass=True):
            out = _forward(self.model.hf_model, self.input_ids[None], None)
        logits, cache = [out.logits[0, -1]], _cache_of(out)
        new = [int(logits[-1].argmax())]
        while len(new) < n_tokens and new[-1] != eos:
            with self._hooks(prompt_pass=False):
                out = _forward(self.model.hf_model, torch.tensor([[new[-1]]], device=self.model.device), cache)
            cache = _cache_of(out)
            logits.append(out.logits[0, -1])
            new.append(int(logits[-1].argmax()))
        return new, torch.stack(logits)

    def _hooks(self, prompt_pass: bool) -> "_Hooks":
        return _Hooks(self, self.prompt_edits if prompt_pass else self.open_edits, prompt_pass)


class _Hooks:
    """Forward hooks on the HF modules for one pass; a context manager that removes them on exit.

    read hook (layer l)    records x_l where l's features read (to compute their live activations)
    write hook (layer l)   adds the interventions' decoder deltas to what layer l's MLP writes; in a
                           constrained layer, first replaces it with the clean value (+ skip change)
    attention hooks        the clean pattern instead of the live one (prompt pass, frozen)
    norm hooks             the clean scale instead of the live one (prompt pass, all layers constrained)
    """

    def __init__(self, run: _Run, edits: dict[int, _Edit], prompt_pass: bool):
        self.run, self.edits, self.prompt_pass = run, edits, prompt_pass
        self.frozen = prompt_pass and run.freeze_attention
        self.constrained = set(run.constrained or ()) if self.frozen else set()
        self.reads: dict[int, torch.Tensor] = {}
        self.deltas: dict[int, torch.Tensor] = {}     # write layer -> (P, D) pending delta
        self.handles = []

    def __enter__(self) -> "_Hooks":
        run, arch = self.run, self.run.arch
        if self.frozen:
            run.fm                       # the clean run first: never inside a hooked forward pass
        hooks = []
        if self.frozen:
            for l, layer in enumerate(arch.layers):
                hooks.append((layer.attn, self._frozen_attention(l), True))
            if run.freeze_norms:
                norms = [n for layer in arch.layers for n in
                         (layer.attn_norm, layer.post_attn_norm, layer.mlp_norm, layer.post_mlp_norm) if n is not None]
                for norm in norms + [arch.final_norm]:
                    hooks.append((norm.module, lambda m, a, o, norm=norm: run.fm._norm(norm, a[0]), False))
        need_reads = set(self.edits) | ({l for l in self.constrained} if run.tc.W_skip is not None else set())
        for l in sorted(need_reads):
            layer = arch.layers[l]
            if run.tc.input_hook == "mlp_in":
                self.handles.append(layer.mlp.register_forward_pre_hook(
                    lambda m, a, l=l: self.reads.__setitem__(l, a[0][0])))
            else:
                self.handles.append(layer.mlp_norm.module.register_forward_pre_hook(
                    lambda m, a, l=l: self.reads.__setitem__(l, self._read(l, a[0][0]))))
        for l, layer in enumerate(arch.layers):
            post = layer.post_mlp_norm
            write_at = post.module if run.tc.output_hook == "block_mlp_out" and post is not None else layer.mlp
            hooks.append((write_at, lambda m, a, o, l=l: self._write(l, o), False))
        for module, fn, with_kwargs in hooks:
            self.handles.append(module.register_forward_hook(fn, with_kwargs=with_kwargs))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()

    def _read(self, l: int, resid_mid: torch.Tensor) -> torch.Tensor:
        """x_l from the residual stream before the pre-MLP norm (input hooks resid_mid, normalized)."""
        if self.run.tc.input_hook == "resid_mid":
            return resid_mid
        norm = self.run.arch.layers[l].mlp_norm
        x = resid_mid - resid_mid.mean(-1, keepdim=True) if norm.center else resid_mid
        inv = self.run.fm.inv[id(norm)] if self.run.freeze_norms and self.frozen else norm.inv_scale(resid_mid)
        return x * inv

    def _frozen_attention(self, l: int):
        fm = self.run.fm

        def hook(module, args, kwargs, output):
            h = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            return (fm.attention(l, h), *output[1:])
        return hook

    def _write(self, l: int, out: torch.Tensor) -> torch.Tensor:
        run, tc = self.run, self.run.tc
        if l in self.constrained:        # the clean write, plus the skip connection's change
            out = run.fm.writes_clean[l][None].to(out.dtype)
            if tc.W_skip is not None:
                out = out + (tc.skip(l, self.reads[l]) - tc.skip(l, run.fm.reads_clean[l]))[None]
        if l in self.edits:
            self._add_deltas(l)
        delta = self.deltas.pop(l, None)
        if delta is not None and (not self.constrained or l in self.constrained):
            out = out + delta[None].to(out.dtype)
        return out

    def _add_deltas(self, l: int) -> None:
        """(new - current activation) x decoder rows of layer l's edited features, into the layers they write."""
        run, edit = self.run, self.edits[l]
        if self.constrained:             # deltas from the clean activations: effects do not propagate
            current = clean_activations(run.fm, l)
        else:
            current = run.tc.encode(l, self.reads[l])
            if self.prompt_pass:         # position 0 (the special token) counts as inactive, as in graphs
                current[:ZERO_POSITIONS] = 0
        a = current[edit.pos, edit.feature]
        target = torch.where(edit.op == 1, edit.value * a, torch.where(edit.op == 2, a + edit.value, edit.value))
        change = target - a                                         # (n,)
        n_pos = current.shape[0]
        for k in range(edit.decoders.shape[1]):
            delta = self.deltas.setdefault(l + k, torch.zeros(n_pos, run.tc.d_model,
                                                              device=change.device))
            delta.index_add_(0, edit.pos, change[:, None] * edit.decoders[:, k])


def _check(model: ReplacementModel, iv: Intervention, n_pos: int) -> None:
    L, F = model.n_layers, model.transcoders.d_transcoder
    if not 0 <= iv.layer < L:
        raise BadIntervention(f"intervention {iv.describe()}: layer {iv.layer} is not in 0..{L - 1}")
    if not 0 <= iv.feature < F:
        raise BadIntervention(f"intervention {iv.describe()}: feature {iv.feature} is not in 0..{F - 1}")
    if not isinstance(iv.positions, str):
        for p in iv.positions:
            if not -n_pos < p < n_pos:
                raise BadIntervention(f"intervention {iv.describe()}: position {p} is outside the prompt's "
                                      f"{n_pos} tokens (0 = the special token; negative counts from the end)")
            if p % n_pos < ZERO_POSITIONS:
                raise BadIntervention(f"intervention {iv.describe()}: position 0 is the special token, which "
                                      "has no features (as in graphs); positions start at 1")


def _change(token: str, token_id: int, before: torch.Tensor, after: torch.Tensor) -> TargetChange:
    pb, pa = torch.softmax(before, -1), torch.softmax(after, -1)
    rank = lambda logits: int((logits > logits[token_id]).sum()) + 1  # noqa: E731
    return TargetChange(token, token_id, float(before[token_id]), float(after[token_id]), float(pb[token_id]),
                        float(pa[token_id]), rank(before), rank(after))


def _decode(model: ReplacementModel, ids: list[int]) -> str:
    return model.tokenizer.decode(ids)


_CACHE_ARG: dict[type, str] = {}


def _forward(hf_model, ids: torch.Tensor, cache):
    """One forward pass with the KV cache (transformers 4.x calls it past_key_values, 5.x cache)."""
    kind = type(hf_model)
    if kind not in _CACHE_ARG:
        _CACHE_ARG[kind] = "cache" if "cache" in inspect.signature(hf_model.forward).parameters else "past_key_values"
    return hf_model(ids, use_cache=True, **({_CACHE_ARG[kind]: cache} if cache is not None else {}))


def _cache_of(out):
    return getattr(out, "cache", None) or getattr(out, "past_key_values", None)
