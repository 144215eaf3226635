"""ReplacementModel: a HF causal LM plus transcoders, loaded once and reused for many traces."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from circuit_atlas.tracer.architectures import Architecture, adapt, check_supported
from circuit_atlas.tracer.errors import MissingFile, PromptTooLong, TranscoderMismatch
from circuit_atlas.tracer.transcoders import Transcoders, load_transcoders


@dataclass
class ReplacementModel:
    hf_model: torch.nn.Module
    tokenizer: object
    arch: Architecture
    transcoders: Transcoders
    model_name: str              # the checkpoint's name (directory name unless given)
    device: torch.device
    offload: bool = False        # on a GPU: encoders and the attribution rows stay in CPU memory

    @property
    def n_layers(self) -> int:
        return len(self.arch.layers)

    def tokenize(self, prompt: str | list[int]) -> torch.Tensor:
        """(P,) token ids with a special token first, as circuit-tracer does (position 0 carries no nodes)."""
        if isinstance(prompt, str):
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        else:
            ids = [int(i) for i in prompt]
        special = set(self.tokenizer.all_special_ids)
        if not ids or ids[0] not in special:
            candidates = [self.tokenizer.bos_token_id, self.tokenizer.pad_token_id,
                          self.tokenizer.eos_token_id, *self.tokenizer.all_special_ids]
            first = next(filter(None, candidates), None)  # circuit-tracer skips id 0 too
            if first is not None:
                ids = [first, *ids]
        limit = self.arch.max_positions
        if limit is not None and len(ids) > limit:
            shown = prompt if isinstance(prompt, str) else f"{len(prompt)} token ids"
            raise PromptTooLong(f"prompt {shorten(shown)!r}: {len(ids)} tokens (with the leading special "
                                f"token) but {self.model_name} attends over at most {limit}; shorten it")
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    @torch.inference_mode()
    def feature_activations(self, prompt: str | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(token ids (P,), every feature's activation (n_layers, P, d_transcoder)) on the clean run:
        exactly what the encoders read during tracing, for activation statistics outside a graph."""
        from circuit_atlas.tracer.frozen import FrozenModel

        ids = self.tokenize(prompt)
        frozen = FrozenModel(self, ids)
        return ids, torch.stack([self.transcoders.encode(l, frozen.reads_clean[l]) for l in range(self.n_layers)])


    @torch.inference_mode()
    def promoted_tokens(self, layer: int, features: list[int], k: int = 8) -> list[list[int]]:
        """Per feature of `layer`, the k token ids whose logits its decoder raises most: W_U . (final norm
        gain * the sum of its decoder rows). Every layer a feature writes to adds to the residual stream the
        unembedding finally reads; the final norm's per-position scale is left out (it rescales all tokens alike)."""
        directions = self.transcoders.decoders(layer, torch.tensor(features)).sum(1)         # (n, D)
        scores = (self.arch.final_norm.gain.float() * directions) @ self.arch.W_U.float().T   # (n, V)
        return scores.topk(min(k, scores.shape[-1]), dim=-1).indices.tolist()


def shorten(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def load(model_dir: str | Path, transcoders_dir: str | Path, device: str = "cpu",
         model_name: str | None = None, lazy: bool = False, dtype: str | torch.dtype = "float32",
         offload: bool = False) -> ReplacementModel:
    """Load a local HF checkpoint and its transcoders; check that they fit each other.

    For transcoder sets larger than memory (docs/tracer.md, "Large transcoder sets"): `lazy` leaves the
    encoders in their files (read a chunk at a time when encoding), `dtype` holds transcoder weights in
    bfloat16/float16 (products stay float32), `offload` keeps encoders and attribution rows in CPU memory
    when `device` is a GPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise MissingFile(f"{config_path}: not found; --model must be a local HF checkpoint directory")
    for name in json.loads(config_path.read_text()).get("architectures") or ["(none given)"]:
        check_supported(name, str(config_path))
    transcoders = load_transcoders(transcoders_dir, lazy=lazy, dtype=dtype)
    hf_model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    hf_model.eval().requires_grad_(False).to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    arch = adapt(hf_model)
    d_model = arch.layers[0].W_O.shape[0]
    if transcoders.n_layers != len(arch.layers) or transcoders.d_model != d_model:
        raise TranscoderMismatch(
            f"{transcoders_dir}: transcoders have {transcoders.n_layers} layers with d_model {transcoders.d_model}, "
            f"but {model_dir} has {len(arch.layers)} layers with d_model {d_model}")
    return ReplacementModel(hf_model, tokenizer, arch, transcoders.to(device, offload=offload),
                            model_name or model_dir.resolve().name, torch.device(device), offload)
