"""Per-architecture adapters: where a HF model keeps the pieces the frozen linear model needs.

Under frozen attention patterns and norm scales a transformer is linear in its residual stream, so
all the attribution code needs from a checkpoint is, per layer: the norms (kind, gain, bias), the
value and output projections, head counts, the MLP and its norms; plus the final norm, the
unembedding and the module whose output is the token embedding. Each adapter below reads those
from one family of HF modules; everything else (RoPE, q/k norms, attention softcapping, sliding
windows) only shapes the attention patterns, which the clean forward pass records as they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from circuit_atlas.tracer.errors import UnsupportedArchitecture


@dataclass
class Norm:
    """A norm with frozen scale is the linear map x -> gain * (center(x) * inv_scale) + bias."""

    module: nn.Module            # hooked to record its input, from which inv_scale is computed
    gain: torch.Tensor           # (D,) effective gain (Gemma stores weight - 1)
    bias: torch.Tensor | None    # (D,) LayerNorm bias
    eps: float
    center: bool                 # LayerNorm subtracts the mean; RMSNorm does not

    def inv_scale(self, x: torch.Tensor) -> torch.Tensor:
        """(..., P, 1) the factor the norm applies to each position, computed as HF does."""
        x = x.float()
        if self.center:
            x = x - x.mean(-1, keepdim=True)
        return torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


@dataclass
class Layer:
    attn_norm: Norm
    attn: nn.Module              # its forward returns (output, attention weights (B, H, P, P))
    W_V: torch.Tensor            # (n_kv_heads * head_dim, D)
    b_V: torch.Tensor | None     # (n_kv_heads * head_dim,)
    W_O: torch.Tensor            # (D, n_heads * head_dim)
    b_O: torch.Tensor | None     # (D,)
    n_heads: int
    n_kv_heads: int
    head_dim: int
    post_attn_norm: Norm | None  # Gemma: normalises the attention output before it joins the residual
    mlp_norm: Norm
    mlp: nn.Module
    post_mlp_norm: Norm | None   # Gemma: normalises the MLP output before it joins the residual


@dataclass
class Architecture:
    name: str                    # the HF class, e.g. "LlamaForCausalLM"
    layers: list[Layer]
    embed: nn.Module             # output (B, P, D) = the token embedding written to the residual
    final_norm: Norm
    W_U: torch.Tensor            # (V, D) unembedding
    max_positions: int | None    # longest prompt the model attends over


def _norm(module: nn.Module, plus_one: bool = False) -> Norm:
    if isinstance(module, nn.LayerNorm):
        return Norm(module, module.weight.detach(), module.bias.detach() if module.bias is not None else None,
                    module.eps, center=True)
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
    gain = module.weight.detach().float()
    return Norm(module, 1.0 + gain if plus_one else gain, None, float(eps), center=False)


def _heads(config) -> tuple[int, int, int]:
    n_heads = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    return n_heads, n_kv, head_dim


def _bias(linear: nn.Module) -> torch.Tensor | None:
    return None if linear.bias is None else linear.bias.detach()


def _llama_like(model, gemma: bool = False) -> Architecture:
    """Llama, Mistral, Qwen2, Qwen3 (q/k norms only shape patterns), and with `gemma` Gemma-2/3."""
    config = model.config
    n_heads, n_kv, head_dim = _heads(config)
    layers = []
    for block in model.model.layers:
        attn = block.self_attn
        layers.append(Layer(
            attn_norm=_norm(block.input_layernorm, gemma),
            attn=attn,
            W_V=attn.v_proj.weight.detach(), b_V=_bias(attn.v_proj),
            W_O=attn.o_proj.weight.detach(), b_O=_bias(attn.o_proj),
            n_heads=n_heads, n_kv_heads=n_kv, head_dim=head_dim,
            post_attn_norm=_norm(block.post_attention_layernorm, True) if gemma else None,
            mlp_norm=_norm(block.pre_feedforward_layernorm if gemma else block.post_attention_layernorm, gemma),
            mlp=block.mlp,
            post_mlp_norm=_norm(block.post_feedforward_layernorm, True) if gemma else None,
        ))
    return Architecture(type(model).__name__, layers, model.model.embed_tokens, _norm(model.model.norm, gemma),
                        model.lm_head.weight.detach(), getattr(config, "max_position_embeddings", None))


def _gpt2(model) -> Architecture:
    """GPT-2: LayerNorms (centering is part of the linear map), fused Conv1D qkv, tied embeddings."""
    config = model.config
    D = config.hidden_size
    n_heads = config.num_attention_heads
    layers = []
    for block in model.transformer.h:
        c_attn, c_proj = block.attn.c_attn, block.attn.c_proj  # Conv1D: y = x @ weight + bias
        layers.append(Layer(
            attn_norm=_norm(block.ln_1), attn=block.attn,
            W_V=c_attn.weight.detach()[:, 2 * D:].T, b_V=c_attn.bias.detach()[2 * D:],
            W_O=c_proj.weight.detach().T, b_O=c_proj.bias.detach(),
            n_heads=n_heads, n_kv_heads=n_heads, head_dim=D // n_heads,
            post_attn_norm=None, mlp_norm=_norm(block.ln_2), mlp=block.mlp, post_mlp_norm=None,
        ))
    # the token embedding is wte's output; the position embedding is a constant, not a node
    return Architecture(type(model).__name__, layers, model.transformer.wte, _norm(model.transformer.ln_f),
                        model.lm_head.weight.detach(), config.n_positions)


ADAPTERS = {
    "LlamaForCausalLM": _llama_like,
    "MistralForCausalLM": _llama_like,
    "Qwen2ForCausalLM": _llama_like,
    "Qwen3ForCausalLM": _llama_like,
    "Gemma2ForCausalLM": lambda model: _llama_like(model, gemma=True),
    "Gemma3ForCausalLM": lambda model: _llama_like(model, gemma=True),
    "GPT2LMHeadModel": _gpt2,
}
SUPPORTED = tuple(ADAPTERS)


def check_supported(name: str, where: str) -> None:
    if name not in ADAPTERS:
        raise UnsupportedArchitecture(f"{where}: architecture {name} is not supported; "
                                      f"supported: {', '.join(SUPPORTED)}")


def adapt(model) -> Architecture:
    name = type(model).__name__
    check_supported(name, getattr(model.config, "_name_or_path", "model"))
    return ADAPTERS[name](model)
