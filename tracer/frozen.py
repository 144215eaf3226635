"""The frozen linear model of one prompt: the clean forward pass, then a transformer that is linear.

One HF forward pass records every attention pattern and every norm's scale. With those frozen and
each MLP replaced by what its transcoder writes (features + error + bias: constants of the prompt)
plus its live skip connection, the residual stream is a linear function of what is written into it.
`FrozenModel` holds that function as a few small maps per layer:

    r_0                     token embeddings (+ constants such as GPT-2's position embeddings)
    m_l = r_l + attn_l(r_l)                       attention with frozen pattern and norm scales
    x_l = read_l(m_l)                             where transcoder features of layer l read
    o_l = write_l + skip_l(x_l)                   where they write (write_l = features + error + b_dec)
    r_{l+1} = m_l + post_l(o_l)                   post_l: Gemma's post-MLP norm, or identity
    final = final_norm(r_L)                       what the unembedding reads

`forward` runs it (biases included, so that it reproduces the clean run exactly — the tests check
this); the `*_T` methods are the transposed linear maps that carry gradients back, batched, for
attribution. Shapes: P positions, D d_model, B a batch of gradient rows.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch

from circuit_atlas.tracer.architectures import Norm

if TYPE_CHECKING:   # replacement.py builds FrozenModels; at run time this module needs only the model's fields
    from circuit_atlas.tracer.replacement import ReplacementModel


class FrozenModel:
    mix_block = 64      # positions per block of the causal attention mixing (attn_block_T)

    def __init__(self, model: ReplacementModel, input_ids: torch.Tensor):
        self.model = model
        self.arch = arch = model.arch
        self.tc = model.transcoders
        self.input_ids = input_ids                                  # (P,)
        captured = _clean_run(model, input_ids)
        self.logits = captured["logits"]                            # (P, V) as the model outputs them
        self.resid0 = captured["resid0"]                            # (P, D) input of layer 0
        self.token_vectors = captured["embed"]                      # (P, D) token embeddings written to r_0
        self.final_clean = captured["final_out"]                    # (P, D) final norm output
        self.patterns = [captured[f"pattern{l}"] for l in range(len(arch.layers))]  # (H, P, P) each
        self.causal = all(not torch.triu(p, diagonal=1).any() for p in self.patterns)  # zero above the diagonal
        self.inv: dict[int, torch.Tensor] = {}                      # id(norm) -> (P, 1) frozen 1/scale
        for l, layer in enumerate(arch.layers):
            for norm in (layer.attn_norm, layer.post_attn_norm, layer.mlp_norm, layer.post_mlp_norm):
                if norm is not None:
                    self.inv[id(norm)] = norm.inv_scale(captured[f"in{id(norm.module)}"])
        self.inv[id(arch.final_norm)] = arch.final_norm.inv_scale(captured[f"in{id(arch.final_norm.module)}"])
        # clean values where transcoders read and write, per layer (P, D)
        self.reads_clean, self.writes_clean = [], []
        for l, layer in enumerate(arch.layers):
            resid_mid = captured[f"in{id(layer.mlp_norm.module)}"]
            self.reads_clean.append({"resid_mid": resid_mid,
                                     "normalized": self._norm(layer.mlp_norm, resid_mid, affine=False),
                                     "mlp_in": captured[f"mlp_in{l}"]}[self.tc.input_hook])
            mlp_out = captured[f"mlp_out{l}"]
            if self.tc.output_hook == "block_mlp_out" and layer.post_mlp_norm is not None:
                mlp_out = captured[f"out{id(layer.post_mlp_norm.module)}"]
            self.writes_clean.append(mlp_out)

    def prefix(self, n: int) -> "FrozenModel":
        """The frozen model of the first n positions: attention is causal, so they never see the others."""
        if n == len(self.input_ids):
            return self
        view = copy.copy(self)
        view.patterns = [pattern[:, :n, :n] for pattern in self.patterns]
        view.inv = {key: inv[:n] for key, inv in self.inv.items()}
        for name in ("input_ids", "logits", "resid0", "token_vectors", "final_clean"):
            setattr(view, name, getattr(self, name)[:n])
        view.reads_clean = [x[:n] for x in self.reads_clean]
        view.writes_clean = [o[:n] for o in self.writes_clean]
        return view

    # ---- the linear maps (inputs may carry leading batch dims) ----

    def _norm(self, norm: Norm, x: torch.Tensor, affine: bool = True, bias: bool = True) -> torch.Tensor:
        if norm.center:
            x = x - x.mean(-1, keepdim=True)
        x = x * self.inv[id(norm)]
        if affine:
            x = x * norm.gain
            if bias and norm.bias is not None:
                x = x + norm.bias
        return x

    def _norm_T(self, norm: Norm, g: torch.Tensor, affine: bool = True, positions: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Transposed norm of g (..., P, D), or of one vector per position given (`positions`: g is (B, D))."""
        if affine:
            g = g * norm.gain
        g = g * (self.inv[id(norm)] if positions is None else self.inv[id(norm)][positions])
        return g - g.mean(-1, keepdim=True) if norm.center else g

    def attn_block(self, l: int, r: torch.Tensor) -> torch.Tensor:
        """m_l = r_l + attention output, with the pattern frozen. (..., P, D) -> (..., P, D)"""
        layer = self.arch.layers[l]
        o = self.attention(l, self._norm(layer.attn_norm, r))
        if layer.post_attn_norm is not None:
            o = self._norm(layer.post_attn_norm, o)
        return r + o

    def attention(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """What layer l's attention module outputs with the clean pattern, from its input a (..., P, D)."""
        layer = self.arch.layers[l]
        v = a @ layer.W_V.T                                         # (..., P, n_kv * hd)
        if layer.b_V is not None:
            v = v + layer.b_V
        v = v.unflatten(-1, (layer.n_kv_heads, layer.head_dim))     # (..., P, n_kv, hd)
        v = v.repeat_interleave(layer.n_heads // layer.n_kv_heads, dim=-2)  # (..., P, H, hd)
        z = torch.einsum("hqk,...khd->...qhd", self.patterns[l], v)  # (..., P, H, hd)
        o = z.flatten(-2) @ layer.W_O.T                             # (..., P, D)
        if layer.b_O is not None:
            o = o + layer.b_O
        return o

    def attn_block_T(self, l: int, g_m: torch.Tensor) -> torch.Tensor:
        """Gradient at r_l from the gradient at m_l. (B, P, D) -> (B, P, D)"""
        layer = self.arch.layers[l]
        g_o = g_m if layer.post_attn_norm is None else self._norm_T(layer.post_attn_norm, g_m)
        B, P, H, hd = len(g_m), g_m.shape[1], layer.n_heads, layer.head_dim
        g_z = (g_o @ layer.W_O).view(B, P, H, hd).permute(2, 1, 0, 3).reshape(H, P, B * hd)  # (H, q, B*hd)
        g_v = self._mix_T(l, g_z).view(layer.n_kv_heads, H // layer.n_kv_heads, P, B, hd)
        g_v = g_v.sum(1) if H > layer.n_kv_heads else g_v[:, 0]    # (n_kv, k, B, hd): grouped heads share V
        g_v = g_v.permute(2, 1, 0, 3).reshape(B, P, layer.n_kv_heads * hd)  # (B, P, n_kv * hd)
        return g_m + self._norm_T(layer.attn_norm, g_v @ layer.W_V)

    def attn_block_T_at(self, l: int, g_m: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """attn_block_T for a gradient that is one vector per row, at that row's position: g_m (B, D) at
        `positions` (B,) -> (B, P, D). Where a backward pass starts, each row is such a one-hot: then each head
        reads one query position, so pattern row x (W_O W_V per head) replaces two (B*P, D) x (D, D) products
        and the mixing (a batch's top layer costs about nothing)."""
        layer = self.arch.layers[l]
        B, P, H, hd, n_kv = len(g_m), self.resid0.shape[0], layer.n_heads, layer.head_dim, layer.n_kv_heads
        g_o = g_m if layer.post_attn_norm is None else self._norm_T(layer.post_attn_norm, g_m, positions=positions)
        g_z = (g_o @ layer.W_O).view(B, n_kv, H // n_kv, hd)                    # per head, at the row's position
        u = torch.einsum("bjgd,jde->bjge", g_z, layer.W_V.view(n_kv, hd, -1)).flatten(1, 2)  # (B, H, D)
        weights = self.patterns[l][:, positions, :].permute(1, 2, 0)          # (B, k, H): pattern[h, p_b, k]
        g_r = self._norm_T(layer.attn_norm, torch.bmm(weights, u))            # (B, P, D)
        g_r[torch.arange(B, device=g_r.device), positions] += g_m
        return g_r

    def _mix_T(self, l: int, g_z: torch.Tensor) -> torch.Tensor:
        """pattern^T @ g_z per head: (H, q, C) -> (H, k, C). A causal pattern is zero above its diagonal, so
        output positions k in [s, s + block) read only q >= s: in blocks, about half the arithmetic at
        512 positions (the mixing was a third of a backward pass there)."""
        pattern_T = self.patterns[l].transpose(1, 2)                # (H, k, q), a view
        P, block = g_z.shape[1], self.mix_block
        if not self.causal or P <= 2 * block:
            return torch.bmm(pattern_T, g_z)
        out = torch.empty_like(g_z)
        for s in range(0, P, block):
            torch.bmm(pattern_T[:, s:s + block, s:], g_z[:, s:], out=out[:, s:s + block])
        return out

    def read(self, l: int, m: torch.Tensor) -> torch.Tensor:
        """x_l: what layer l's transcoder features read, from m_l."""
        hook = self.tc.input_hook
        return m if hook == "resid_mid" else self._norm(self.arch.layers[l].mlp_norm, m, affine=hook == "mlp_in")

    def read_T(self, l: int, g_x: torch.Tensor) -> torch.Tensor:
        hook = self.tc.input_hook
        return g_x if hook == "resid_mid" else self._norm_T(self.arch.layers[l].mlp_norm, g_x,
                                                            affine=hook == "mlp_in")

    def _post(self, l: int):
        post = self.arch.layers[l].post_mlp_norm
        return post if self.tc.output_hook == "mlp_out" else None

    def add_mlp(self, l: int, m: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """r_{l+1} from m_l and o_l, the value at layer l's write hook."""
        post = self._post(l)
        return m + (o if post is None else self._norm(post, o))

    def write_T(self, l: int, g_r: torch.Tensor) -> torch.Tensor:
        """Gradient at o_l (where layer l's features and error write) from the gradient at r_{l+1}."""
        post = self._post(l)
        return g_r if post is None else self._norm_T(post, g_r)

    def skip(self, l: int, x: torch.Tensor) -> torch.Tensor:
        return self.tc.skip(l, x) if self.tc.W_skip is not None else torch.zeros_like(x)

    def skip_T(self, l: int, g_o: torch.Tensor) -> torch.Tensor:
        return g_o @ self.tc.W_skip[l]

    def final(self, r: torch.Tensor) -> torch.Tensor:
        return self._norm(self.arch.final_norm, r)

    def final_T(self, g: torch.Tensor) -> torch.Tensor:
        return self._norm_T(self.arch.final_norm, g)

    def forward(self, resid0: torch.Tensor, writes: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run the frozen model from r_0 with constant writes o_l - skip_l(x_l); return (reads x_l, final)."""
        r, reads = resid0, []
        for l in range(len(self.arch.layers)):
            m = self.attn_block(l, r)
            x = self.read(l, m)
            reads.append(x)
            r = self.add_mlp(l, m, writes[l] + self.skip(l, x))
        return reads, self.final(r)


def _clean_run(model: ReplacementModel, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """One HF forward pass; record norm inputs/outputs, attention patterns, MLP inputs/outputs."""
    arch = model.arch
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def keep(key, value):
        captured[key] = value.detach()[0]

    def on_norm(module, args, output):
        keep(f"in{id(module)}", args[0])
        keep(f"out{id(module)}", output)

    norms = [arch.final_norm] + [n for layer in arch.layers for n in
                                 (layer.attn_norm, layer.post_attn_norm, layer.mlp_norm, layer.post_mlp_norm)
                                 if n is not None]
    for norm in norms:
        handles.append(norm.module.register_forward_hook(on_norm))
    for l, layer in enumerate(arch.layers):
        handles.append(layer.attn.register_forward_hook(lambda mod, args, out, l=l: keep(f"pattern{l}", out[1])))

        def on_mlp(module, args, output, l=l):
            keep(f"mlp_in{l}", args[0])
            keep(f"mlp_out{l}", output)

        handles.append(layer.mlp.register_forward_hook(on_mlp))
    first_block = arch.layers[0].attn_norm.module
    handles.append(first_block.register_forward_hook(lambda mod, args, out: keep("resid0", args[0])))
    handles.append(arch.embed.register_forward_hook(lambda mod, args, out: keep("embed", out)))
    try:
        with torch.no_grad():
            logits = model.hf_model(input_ids[None]).logits
    finally:
        for h in handles:
            h.remove()
    captured["logits"] = logits[0]
    captured["final_out"] = captured[f"out{id(arch.final_norm.module)}"]
    return captured
