"""ReplacementModel: a HF causal LM plus transcoders, loaded once and reused for many traces."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from circuit_atlas.tracer.architectures import Architecture, adapt, check_supported
from circuit_atlas.tracer.errors import (BadCheckpoint, BadConfig, BadPrompt, MissingFile, PromptTooLong, TracerWarning,
                                         TranscoderMismatch)
from circuit_atlas.tracer.frozen import FrozenModel
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
            if not prompt.strip():
                raise BadPrompt("the prompt is empty; give at least one word to trace")
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            _warn_unknown_words(self, prompt, ids)
        else:
            ids = [int(i) for i in prompt]
            vocab = self.vocab_size
            outside = [i for i in ids if not 0 <= i < vocab]
            if outside:
                raise BadPrompt(f"token ids {outside[:5]} are outside the vocabulary of {self.model_name} "
                                f"[0, {vocab})")
        special = set(self.tokenizer.all_special_ids)
        if not ids or ids[0] not in special:
            candidates = [self.tokenizer.bos_token_id, self.tokenizer.pad_token_id,
                          self.tokenizer.eos_token_id, *self.tokenizer.all_special_ids]
            first = next(filter(None, candidates), None)  # circuit-tracer skips id 0 too
            if first is not None:
                ids = [first, *ids]
        if len(ids) < 2 or all(i in special for i in ids):
            raise BadPrompt(f"the prompt {shorten(str(prompt))!r} has no token to trace besides special tokens; "
                            "give at least one word")
        limit = self.arch.max_positions
        if limit is not None and len(ids) > limit:
            shown = prompt if isinstance(prompt, str) else f"{len(prompt)} token ids"
            raise PromptTooLong(f"prompt {shorten(shown)!r}: {len(ids)} tokens (with the leading special "
                                f"token) but {self.model_name} attends over at most {limit}; shorten it")
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    @property
    def vocab_size(self) -> int:
        """Rows of the unembedding: every id the model can read or predict."""
        return self.arch.W_U.shape[0]

    @torch.inference_mode()
    def feature_activations(self, prompt: str | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(token ids (P,), every feature's activation (n_layers, P, d_transcoder)) on the clean run:
        exactly what the encoders read during tracing, for activation statistics outside a graph."""
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


def _warn_unknown_words(model: ReplacementModel, prompt: str, ids: list[int]) -> None:
    """Words the tokenizer can only spell as its unknown token are traced as that token: say which."""
    unk = model.tokenizer.unk_token_id
    if unk is None or unk not in ids:
        return
    words = None   # slow tokenizers have no offsets: then only the count is known
    try:
        offsets = model.tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        words = [prompt[a:b] for i, (a, b) in zip(ids, offsets) if i == unk and prompt[a:b] != model.tokenizer.unk_token]
    except (NotImplementedError, ValueError, KeyError):
        pass
    if words == []:
        return   # only literal unknown tokens in the prompt
    shown = ", ".join(repr(w) for w in dict.fromkeys(words)) if words else f"{ids.count(unk)} word(s)"
    warnings.warn(TracerWarning(f"prompt {shorten(prompt)!r}: {shown} not in the vocabulary of "
                                f"{model.model_name}; traced as {model.tokenizer.unk_token}"), stacklevel=4)


def shorten(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def load(model_dir: str | Path, transcoders_dir: str | Path, device: str = "cpu",
         model_name: str | None = None, lazy: bool = False, dtype: str | torch.dtype = "float32",
         offload: bool = False) -> ReplacementModel:
    """Load a local HF checkpoint and its transcoders; check that they fit each other.

    The model's name (stored with every graph, written as the JSON's `scan`) is `model_name`, else the
    config's `_name_or_path` when it is a model id rather than a local path, else the directory's name.

    For transcoder sets larger than memory (docs/tracer.md, "Large transcoder sets"): `lazy` leaves the
    encoders in their files (read a chunk at a time when encoding), `dtype` holds transcoder weights in
    bfloat16/float16 (products stay float32), `offload` keeps encoders and attribution rows in CPU memory
    when `device` is a GPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise MissingFile(f"{config_path}: not found; --model must be a local HF checkpoint directory")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as e:
        raise BadCheckpoint(f"{config_path}: not readable JSON ({e})") from e
    for name in config.get("architectures") or ["(none given)"]:
        check_supported(name, str(config_path))
    _check_checkpoint_files(model_dir)
    try:
        device = torch.device(device)
    except RuntimeError as e:
        raise BadConfig(f"device {device!r}: {e}") from e
    transcoders = load_transcoders(transcoders_dir, lazy=lazy, dtype=dtype)
    try:
        hf_model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except Exception as e:  # noqa: BLE001 — transformers and safetensors raise many kinds; one line names it
        raise BadCheckpoint(f"{model_dir}: transformers cannot load it: {_first_line(e)}") from e
    hf_model.eval().requires_grad_(False).to(device)
    arch = adapt(hf_model)
    d_model = arch.layers[0].W_O.shape[0]
    if transcoders.n_layers < len(arch.layers):
        _name_missing_layers(Path(transcoders_dir), transcoders, len(arch.layers), model_dir)
    if transcoders.n_layers != len(arch.layers) or transcoders.d_model != d_model:
        raise TranscoderMismatch(
            f"{transcoders_dir}: transcoders have {transcoders.n_layers} layers with d_model {transcoders.d_model}, "
            f"but {model_dir} has {len(arch.layers)} layers with d_model {d_model}")
    return ReplacementModel(hf_model, tokenizer, arch, transcoders.to(device, offload=offload),
                            model_name or _model_name(config, model_dir), device, offload)


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "tekken.json")


def _check_checkpoint_files(model_dir: Path) -> None:
    """Name the missing file before transformers does, in one line (it raises a long OSError)."""
    if not any((model_dir / name).is_file() for name in WEIGHT_FILES):
        raise MissingFile(f"{model_dir / WEIGHT_FILES[0]}: not found (nor {', '.join(WEIGHT_FILES[1:])}); "
                          "the checkpoint has no weights")
    if not any((model_dir / name).is_file() for name in TOKENIZER_FILES):
        raise MissingFile(f"{model_dir / TOKENIZER_FILES[0]}: not found (nor {', '.join(TOKENIZER_FILES[1:])}); "
                          "the checkpoint has no tokenizer")
    if (model_dir / "vocab.json").is_file() and not (model_dir / "tokenizer.json").is_file() \
            and not (model_dir / "merges.txt").is_file():
        raise MissingFile(f"{model_dir / 'merges.txt'}: not found; a vocab.json (BPE) tokenizer needs it")


def _name_missing_layers(directory: Path, transcoders, n_model_layers: int, model_dir: Path) -> None:
    """Fewer transcoder layers than model layers because trailing layer files are missing: name them."""
    pattern = "layer_{}.safetensors" if transcoders.kind == "plt" else "W_enc_{}.safetensors"
    missing = [directory / pattern.format(i) for i in range(transcoders.n_layers, n_model_layers)
               if not (directory / pattern.format(i)).is_file()]
    if missing:
        raise MissingFile(f"{missing[0]}: missing ({model_dir} has {n_model_layers} layers, "
                          f"so the transcoders need files 0 .. {n_model_layers - 1})")


def _model_name(config: dict, model_dir: Path) -> str:
    name = str(config.get("_name_or_path") or "")
    if name and not name.startswith((".", "/", "~")) and "\\" not in name:
        return name   # a model id, e.g. "google/gemma-2-2b"; a local path says nothing more than the folder
    return model_dir.resolve().name


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
