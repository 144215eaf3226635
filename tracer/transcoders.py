"""Transcoders read from circuit-tracer's on-disk formats, in one shape for the attribution code.

A directory holds `config.yaml` plus either

  per-layer (PLT, model_kind: transcoder_set)   layer_{i}.safetensors:
      W_enc (F, D), W_dec (F, D), b_enc (F), b_dec (D),
      optional activation_function.threshold (F) -> JumpReLU, optional W_skip (D, D): skip = x @ W_skip.T
  cross-layer (CLT, model_kind: cross_layer_transcoder)
      W_enc_{i}.safetensors: W_enc_i (F, D), b_enc_i (F), b_dec_i (D), optional threshold_i (F)
      W_dec_{i}.safetensors: W_dec_i (F, L-i, D)   features of layer i write to layers i .. L-1

config.yaml names the hook points: `feature_input_hook` (where encoders read) and `feature_output_hook`
(where decoders write), optionally `activation: relu|topk` with `k`, `scan` (the set's name) and
`transcoders:` (a list of per-layer files). Both kinds become a `Transcoders`: a PLT is a CLT whose
features write to one layer only, so the attribution code has a single path.

Memory (a real CLT's decoders are tens of GB, its encoders several):
  decoders   always read lazily from the memory-mapped files, only the rows of active features, as
             circuit-tracer does;
  encoders   kept in memory (the default), or with `lazy=True` read from the files when encoding, one
             layer and CHUNK_ROWS features at a time, so a trace never holds more than that of them;
  dtype      the precision weights are held in (float32, bfloat16, float16): encoders and the decoder rows
             of a trace are rounded to it where they are kept, and widened to float32 for every product,
             so sums accumulate in float32;
  offload    on a GPU, encoders stay in CPU memory and go to the device one layer at a time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from circuit_atlas.tracer.errors import BadConfig, MissingFile, TranscoderMismatch

# Hook names from circuit-tracer configs (TransformerLens spelling) and what they mean here.
INPUT_HOOKS = {
    "hook_resid_mid": "resid_mid",         # residual stream before the pre-MLP norm
    "ln2.hook_normalized": "normalized",   # pre-MLP norm output before its gain (and bias)
    "mlp.hook_in": "mlp_in",               # pre-MLP norm output: the MLP's input
}
OUTPUT_HOOKS = {
    "mlp.hook_out": "mlp_out",             # the MLP's output (before a post-MLP norm, if any)
    "hook_mlp_out": "block_mlp_out",       # what the MLP block adds to the residual stream
}


@dataclass
class Transcoders:
    kind: str                    # "plt" or "clt"
    name: str                    # the set's name (config `scan`, else the directory name)
    input_hook: str              # one of INPUT_HOOKS' values
    output_hook: str             # one of OUTPUT_HOOKS' values
    W_enc: list[torch.Tensor] | "_LazyEncoders"  # per layer (F, D), in `dtype`; lazy: read on access
    b_enc: list[torch.Tensor]    # per layer (F,)
    threshold: list[torch.Tensor | None]  # per layer (F,) for JumpReLU, else None
    b_dec: list[torch.Tensor]    # per *output* layer (D,)
    W_skip: list[torch.Tensor] | None     # per layer (D, D), skip(x) = x @ W_skip.T
    activation: str              # "jumprelu", "relu" or "topk"
    k: int | None                # TopK's k
    decoder_files: list[tuple[Path, str]]  # per layer: (safetensors file, tensor name)
    encoder_files: list[tuple[Path, str]] = field(default_factory=list)  # per layer: W_enc's file and name
    dtype: torch.dtype = torch.float32   # precision weights are held in; products are float32

    @property
    def n_layers(self) -> int:
        return len(self.b_enc)

    @property
    def d_transcoder(self) -> int:
        return self.b_enc[0].shape[0]

    @property
    def d_model(self) -> int:
        return self.b_dec[0].shape[0]

    @property
    def lazy(self) -> bool:
        return isinstance(self.W_enc, _LazyEncoders)

    def to(self, device: torch.device | str, offload: bool = False) -> "Transcoders":
        """Move to `device`; with offload (or lazy encoders), encoders stay where they are."""
        move = lambda ts: None if ts is None else [None if t is None else t.to(device) for t in ts]  # noqa: E731
        names = ["b_enc", "threshold", "b_dec", "W_skip"] + ([] if offload or self.lazy else ["W_enc"])
        for name in names:
            setattr(self, name, move(getattr(self, name)))
        return self

    def encode(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Feature activations (..., F) of the layer's features for inputs x (..., D)."""
        pre = self._pre_activations(layer, x) + self.b_enc[layer]
        if self.activation == "jumprelu":
            return pre * (pre > self.threshold[layer])
        if self.activation == "topk":  # keeps the k largest pre-activations, whatever their sign
            top = pre.topk(self.k, dim=-1).indices
            return pre * torch.zeros_like(pre).scatter_(-1, top, 1.0)
        return torch.relu(pre)

    def active(self, layer: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The features that fire on inputs x (P, D): (positions, features, activations), sorted by
        (position, feature). Encoded CHUNK_ROWS features at a time, so no (P, F) matrix is ever held
        (TopK ranks whole rows, so it encodes densely)."""
        if self.activation == "topk":
            acts = self.encode(layer, x)
            pos, feat = acts.nonzero(as_tuple=True)
            return pos, feat, acts[pos, feat]
        parts = []
        for start in range(0, self.d_transcoder, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, self.d_transcoder)
            pre = x @ self._encoders(layer, start, stop, x.device).T
            pre += self.b_enc[layer][start:stop]
            cut = self.threshold[layer][start:stop] if self.activation == "jumprelu" else 0
            pos, feat = ((pre > cut) & (pre != 0)).nonzero(as_tuple=True)
            parts.append((pos, feat + start, pre[pos, feat]))
        pos, feat, values = (torch.cat(p) for p in zip(*parts))
        order = torch.argsort(pos * self.d_transcoder + feat)
        return pos[order], feat[order], values[order]

    def _pre_activations(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """x @ W_enc.T in float32, CHUNK_ROWS features at a time (lazy encoders: straight from the file)."""
        if self.d_transcoder <= CHUNK_ROWS:
            return x @ self._encoders(layer, 0, self.d_transcoder, x.device).T
        out = x.new_empty(*x.shape[:-1], self.d_transcoder)
        for start in range(0, self.d_transcoder, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, self.d_transcoder)
            out[..., start:stop] = x @ self._encoders(layer, start, stop, x.device).T
        return out

    def _encoders(self, layer: int, start: int, stop: int, device: torch.device) -> torch.Tensor:
        """Encoder rows start:stop of a layer, float32 on `device` (read from the file when lazy)."""
        rows = self.W_enc.rows(layer, slice(start, stop)) if self.lazy else self.W_enc[layer][start:stop]
        return rows.to(device, torch.float32)

    def encoder_rows(self, layer: int, features: torch.Tensor) -> torch.Tensor:
        """Encoder rows (n, D) of the given features, float32, on the device of the biases."""
        rows = self.W_enc.rows(layer, features) if self.lazy else self.W_enc[layer][features.to(self.W_enc[layer].device)]
        return rows.to(self.b_enc[0].device, torch.float32)

    def skip(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W_skip[layer].T

    def n_outputs(self, layer: int) -> int:
        """How many layers a feature of `layer` writes to: 1 for a PLT, L - layer for a CLT."""
        return 1 if self.kind == "plt" else self.n_layers - layer

    def decoders(self, layer: int, features: torch.Tensor) -> torch.Tensor:
        """Decoder rows (n, n_outputs(layer), D) of the given features, read from disk, float32 (rounded
        through `dtype` first, like every weight held)."""
        rows = _read_rows(*self.decoder_files[layer], features, self.dtype)
        rows = rows.reshape(len(features), self.n_outputs(layer), self.d_model)
        return rows.to(self.b_dec[0].device, torch.float32)


CHUNK_ROWS = 8192   # lazy encoders: features read and multiplied at a time (8192 x d_model floats)


def _read_rows(path: Path, key: str, rows: torch.Tensor | slice, dtype: torch.dtype) -> torch.Tensor:
    """Rows of one tensor of a safetensors file, in `dtype`. The file is memory-mapped only while they are
    copied out, so its pages do not stay in this process's resident memory."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensor = f.get_slice(key)
        if isinstance(rows, slice):
            return tensor[rows].to(dtype)
        if rows.numel() == 0:
            return torch.zeros((0, *tensor.get_shape()[1:]), dtype=dtype)
        # an index tensor makes safetensors read the whole tensor: read runs of consecutive rows instead
        wanted, inverse = torch.unique(rows.cpu(), return_inverse=True)
        starts = torch.cat([torch.tensor([0]), torch.nonzero(wanted.diff() != 1).squeeze(1) + 1]).tolist()
        runs = zip(starts, starts[1:] + [len(wanted)])
        parts = [tensor[int(wanted[a]):int(wanted[b - 1]) + 1].to(dtype) for a, b in runs]
    return torch.cat(parts)[inverse]


class _LazyEncoders:
    """Encoder matrices left in their files: `rows(layer, features)` reads a few; `[layer]` reads a whole one."""

    def __init__(self, files: list[tuple[Path, str]], dtype: torch.dtype):
        self.files, self.dtype = files, dtype

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, layer: int) -> torch.Tensor:
        return self.rows(layer, slice(None))

    def rows(self, layer: int, features: torch.Tensor | slice) -> torch.Tensor:
        return _read_rows(*self.files[layer], features, self.dtype)


def load_transcoders(directory: str | Path, lazy: bool = False, dtype: torch.dtype | str = torch.float32) -> Transcoders:
    """Read a transcoder directory (see the module docstring); raise a TracerError naming what is wrong.
    `lazy`: leave the encoders in their files; `dtype`: the precision weights are held in."""
    import yaml

    directory = Path(directory)
    config_path = directory / "config.yaml"
    if not config_path.is_file():
        sets = sorted(d.name for d in directory.glob("*/") if (d / "config.yaml").is_file())
        if sets:          # an organism's transcoders/ holds plt/ and clt/: the user named their parent
            raise MissingFile(f"{directory}: a folder of transcoder sets ({', '.join(sets)}), not one set; "
                              f"give one of them, e.g. {directory / sets[0]}")
        raise MissingFile(f"{config_path}: no config.yaml in the transcoder directory "
                          "(it names model_kind, feature_input_hook and feature_output_hook)")
    try:
        config = yaml.safe_load(config_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise TranscoderMismatch(f"{config_path}: not readable YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(config, dict):
        raise TranscoderMismatch(f"{config_path}: expected a mapping of keys (model_kind, ...)")
    for key in ("model_kind", "feature_input_hook", "feature_output_hook"):
        if key not in config:
            raise TranscoderMismatch(f"{config_path}: missing key {key!r}")
    input_hook = _hook(config_path, config["feature_input_hook"], INPUT_HOOKS, "feature_input_hook")
    output_hook = _hook(config_path, config["feature_output_hook"], OUTPUT_HOOKS, "feature_output_hook")
    name = str(config.get("scan") or directory.name)
    dtype = _dtype(dtype)
    if config["model_kind"] == "transcoder_set":
        return _hold(_load_plt(directory, config, name, input_hook, output_hook, lazy), lazy, dtype)
    if config["model_kind"] == "cross_layer_transcoder":
        return _hold(_load_clt(directory, name, input_hook, output_hook, lazy), lazy, dtype)
    raise TranscoderMismatch(f"{config_path}: unknown model_kind {config['model_kind']!r} "
                             "(expected transcoder_set or cross_layer_transcoder)")


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if str(dtype).removeprefix("torch.") in DTYPES:
        return DTYPES[str(dtype).removeprefix("torch.")]
    raise BadConfig(f"transcoder dtype {dtype!r} is not supported; supported: {', '.join(DTYPES)}")


def _hold(tc: Transcoders, lazy: bool, dtype: torch.dtype) -> Transcoders:
    """Encoders in memory in `dtype`, or left in their files."""
    tc.dtype = dtype
    tc.W_enc = _LazyEncoders(tc.encoder_files, dtype) if lazy else [w.to(dtype) for w in tc.W_enc]
    return tc


def _hook(config_path: Path, name: str, known: dict[str, str], key: str) -> str:
    if name not in known:
        raise TranscoderMismatch(f"{config_path}: {key} {name!r} is not supported; "
                                 f"supported: {', '.join(known)}")
    return known[name]


def _read(path: Path, keys: list[str] | None = None, skip: str | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (all, or `keys` where present; never `skip`), as float32."""
    from safetensors import safe_open

    if not path.is_file():
        raise MissingFile(f"{path}: transcoder file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            names = [k for k in f.keys() if (keys is None or k in keys) and k != skip]
            return {k: f.get_tensor(k).to(torch.float32) for k in names}
    except Exception as e:  # noqa: BLE001 — safetensors' errors are not OSErrors; name the file
        raise TranscoderMismatch(f"{path}: not a readable safetensors file ({e})") from e


def _plt_files(directory: Path, config: dict) -> list[Path]:
    if "transcoders" in config:  # explicit list: local paths, or hf:// URIs already downloaded here
        files = []
        for entry in config["transcoders"]:
            path = Path(entry) if not str(entry).startswith("hf://") else Path(str(entry).split("/")[-1])
            path = path if path.is_absolute() else directory / path
            if not path.is_file():
                raise MissingFile(f"{path}: transcoder file listed in {directory / 'config.yaml'} not found "
                                  "(hf:// files must be downloaded into the transcoder directory)")
            files.append(path)
        return files
    n_layers = len(list(directory.glob("layer_*.safetensors")))
    if n_layers == 0:
        raise MissingFile(f"{directory}: no layer_{{i}}.safetensors files")
    files = [directory / f"layer_{i}.safetensors" for i in range(n_layers)]
    for path in files:
        if not path.is_file():
            raise MissingFile(f"{path}: missing (layer files must be numbered 0 .. {n_layers - 1})")
    return files


def _load_plt(directory: Path, config: dict, name: str, input_hook: str, output_hook: str, lazy: bool) -> Transcoders:
    activation = config.get("activation") or "jumprelu"
    if activation not in ("relu", "topk", "jumprelu", "jump_relu"):
        raise TranscoderMismatch(f"{directory / 'config.yaml'}: activation {activation!r} is not supported "
                                 "(relu, topk, or a threshold tensor for JumpReLU)")
    W_enc, b_enc, threshold, b_dec, W_skip, decoders = [], [], [], [], [], []
    for layer, path in enumerate(_plt_files(directory, config)):
        tensors = _read(path, ["W_enc", "b_enc", "b_dec", "activation_function.threshold", "W_skip"],
                        skip="W_enc" if lazy else None)
        missing = {"W_enc", "b_enc", "b_dec"} - set(tensors) - ({"W_enc"} if lazy else set())
        if missing:
            raise TranscoderMismatch(f"{path}: missing tensors {sorted(missing)}")
        W_enc.append(tensors.get("W_enc"))
        b_enc.append(tensors["b_enc"])
        b_dec.append(tensors["b_dec"])
        threshold.append(tensors.get("activation_function.threshold"))
        W_skip.append(tensors.get("W_skip"))
        decoders.append((path, "W_dec"))
    if activation not in ("relu", "topk"):  # circuit-tracer: JumpReLU when a threshold is stored, else ReLU
        activation = "jumprelu" if threshold[0] is not None else "relu"
    if activation == "jumprelu" and any(t is None for t in threshold):
        raise TranscoderMismatch(f"{directory}: activation_function.threshold present in some layer files but not all")
    if activation == "topk" and config.get("k") is None:
        raise TranscoderMismatch(f"{directory / 'config.yaml'}: activation topk needs k")
    has_skip = [s is not None for s in W_skip]
    if any(has_skip) and not all(has_skip):
        raise TranscoderMismatch(f"{directory}: W_skip present in some layer files but not all")
    tc = Transcoders("plt", name, input_hook, output_hook, W_enc, b_enc, threshold, b_dec,
                     W_skip if all(has_skip) else None, activation, config.get("k"), decoders,
                     [(path, "W_enc") for path, _ in decoders])
    _check_shapes(directory, tc)
    return tc


def _load_clt(directory: Path, name: str, input_hook: str, output_hook: str, lazy: bool) -> Transcoders:
    n_layers = _clt_layer_count(directory)
    if n_layers == 0:
        raise MissingFile(f"{directory}: no W_enc_{{i}}.safetensors files for a cross-layer transcoder")
    W_enc, b_enc, threshold, b_dec, decoders, encoders = [], [], [], [], [], []
    for i in range(n_layers):
        enc_path, dec_path = directory / f"W_enc_{i}.safetensors", directory / f"W_dec_{i}.safetensors"
        if not enc_path.is_file():
            raise MissingFile(f"{enc_path}: encoder file not found (the CLT has layers 0 .. {n_layers - 1})")
        tensors = _read(enc_path, skip=f"W_enc_{i}" if lazy else None)
        missing = {f"W_enc_{i}", f"b_enc_{i}", f"b_dec_{i}"} - set(tensors) - ({f"W_enc_{i}"} if lazy else set())
        if missing:
            raise TranscoderMismatch(f"{enc_path}: missing tensors {sorted(missing)}")
        if not dec_path.is_file():
            raise MissingFile(f"{dec_path}: decoder file not found")
        W_enc.append(tensors.get(f"W_enc_{i}"))
        encoders.append((enc_path, f"W_enc_{i}"))
        b_enc.append(tensors[f"b_enc_{i}"])
        b_dec.append(tensors[f"b_dec_{i}"])
        threshold.append(tensors.get(f"threshold_{i}"))
        decoders.append((dec_path, f"W_dec_{i}"))
    activation = "jumprelu" if threshold[0] is not None else "relu"
    tc = Transcoders("clt", name, input_hook, output_hook, W_enc, b_enc, threshold, b_dec, None,
                     activation, None, decoders, encoders)
    _check_shapes(directory, tc)
    return tc


def _clt_layer_count(directory: Path) -> int:
    """Layers of a CLT: one past the highest W_enc_i / W_dec_i file, or as many as W_dec_0 writes to,
    whichever is more, so that a missing file is named rather than read as a smaller CLT."""
    indices = [int(p.stem.rsplit("_", 1)[1]) for pattern in ("W_enc_*.safetensors", "W_dec_*.safetensors")
               for p in directory.glob(pattern) if p.stem.rsplit("_", 1)[1].isdigit()]
    n_layers = max(indices) + 1 if indices else 0
    first_decoder = directory / "W_dec_0.safetensors"
    if first_decoder.is_file():
        shape = _stored_shape(first_decoder, "W_dec_0")
        if shape is not None and len(shape) == 3:
            n_layers = max(n_layers, shape[1])
    return n_layers


def _stored_shape(path: Path, key: str) -> tuple[int, ...] | None:
    """The shape of one tensor of a safetensors file without reading it; None when it has no `key`."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return tuple(f.get_slice(key).get_shape()) if key in f.keys() else None
    except Exception as e:  # noqa: BLE001 — safetensors' errors are not OSErrors; name the file
        raise TranscoderMismatch(f"{path}: not a readable safetensors file ({e})") from e


def _check_shapes(directory: Path, tc: Transcoders) -> None:
    """Every layer must agree on (F, D); decoders must have shape (F, outputs, D)."""
    F, D = _shape(*tc.encoder_files[0])
    for layer in range(tc.n_layers):
        shapes = {"W_enc": (_shape(*tc.encoder_files[layer]), (F, D)), "b_enc": (tuple(tc.b_enc[layer].shape), (F,)),
                  "b_dec": (tuple(tc.b_dec[layer].shape), (D,))}
        if tc.threshold[layer] is not None:
            shapes["threshold"] = (tuple(tc.threshold[layer].shape), (F,))
        if tc.W_skip is not None:
            shapes["W_skip"] = (tuple(tc.W_skip[layer].shape), (D, D))
        path, key = tc.decoder_files[layer]
        dec_shape = _stored_shape(path, key)
        if dec_shape is None:
            raise TranscoderMismatch(f"{path}: missing tensor {key}")
        expected_dec = (F, D) if tc.kind == "plt" else (F, tc.n_layers - layer, D)
        shapes[key] = (dec_shape, expected_dec)
        for tensor, (got, want) in shapes.items():
            if got != want:
                raise TranscoderMismatch(f"{path}: {tensor} has shape {got}, expected {want} "
                                         f"(layer {layer} of a {tc.kind.upper()} with F={F}, D={D})")


def _shape(path: Path, key: str) -> tuple[int, ...]:
    shape = _stored_shape(path, key)
    if shape is None:
        raise TranscoderMismatch(f"{path}: missing tensor {key}")
    return shape
