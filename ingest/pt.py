"""circuit-tracer `Graph.to_pt` files -> the FULL, unpruned `Graph`.

A .pt file holds the dense adjacency matrix (rows = targets, columns = sources) over the nodes
[selected features, errors (layer-major, then position), embeddings, logits], plus
`active_features` (layer, pos, index), `selected_features`, `activation_values` (indexed like
active_features), `input_tokens`, `logit_targets` (0.4+: [(token_str, vocab_idx)]; older files:
`logit_tokens`), `logit_probabilities`, `cfg` and `scan`. Every nonzero entry becomes an edge; pruning
(circuit-tracer's node/edge thresholds) is the tracer's job, and the JSON that `create_graph_files`
writes from the same file is that pruned graph.

The file is a pickle, so it is loaded with a restricted unpickler: tensors and plain containers only,
circuit-tracer's / TransformerLens' config and LogitTarget classes replaced by inert records. A file
that names anything else is refused instead of being executed.
"""
from __future__ import annotations

import io
import pickle
import types
from pathlib import Path

import numpy as np

from circuit_atlas.graph import EMBEDDING_LAYER, Graph, Node
from circuit_atlas.ingest.checks import check_values
from circuit_atlas.ingest.errors import _Problem
from circuit_atlas.ingest.names import model_from_scan, transcoder_set_from_scan

_STUB_MODULES = ("circuit_tracer", "transformer_lens", "nnsight", "transformers")
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"),
    ("builtins", "object"), ("copyreg", "_reconstructor"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"), ("torch", "Size"), ("torch", "device"),
}


class _Record:
    """An inert stand-in for a pickled config / LogitTarget: positional args and attributes only."""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args = args
        return obj

    def __setstate__(self, state):
        for part in state if isinstance(state, tuple) else (state,):
            if isinstance(part, dict):
                self.__dict__.update(part)


class _SafeUnpickler(pickle.Unpickler):
    _stubs: dict = {}

    def find_class(self, module, name):
        import torch
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.split(".")[0] in _STUB_MODULES:
            return self._stubs.setdefault((module, name), type(name, (_Record,), {"__module__": module}))
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not part of a circuit-tracer graph)")


_safe_pickle = types.ModuleType("ingest_safe_pickle")
_safe_pickle.Unpickler = _SafeUnpickler
_safe_pickle.load = lambda f, **kw: _SafeUnpickler(f, **kw).load()
_safe_pickle.__name__ = "ingest_safe_pickle"


def load_pt(data: bytes) -> dict:
    """The dict that `Graph.to_pt` saved, loaded safely (see the module docstring)."""
    import torch
    try:
        d = torch.load(io.BytesIO(data), map_location="cpu", pickle_module=_safe_pickle, weights_only=False)
    except pickle.UnpicklingError as e:
        raise _Problem(f"not a circuit-tracer graph file: {e}") from None
    except Exception as e:  # torch raises RuntimeError/EOFError/ValueError/... on damaged files
        raise _Problem(f"not a readable torch file ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(d, dict):
        raise _Problem(f"not a circuit-tracer graph file (holds a {type(d).__name__}, not a dict)")
    return d


def graph_from_pt(data: bytes, tokenizer=None) -> Graph:
    d = load_pt(data)
    required = ["input_string", "adjacency_matrix", "cfg", "active_features", "logit_probabilities",
                "input_tokens", "selected_features", "activation_values"]
    missing = [k for k in required if k not in d] + ([] if {"logit_targets", "logit_tokens"} & d.keys()
                                                      else ["logit_targets"])
    if missing:
        raise _Problem(f"not a circuit-tracer graph file: missing {', '.join(missing)}")
    cfg = d["cfg"]
    n_layers = int(_cfg(cfg, "n_layers"))
    adjacency = _numpy(d["adjacency_matrix"], np.float32)
    active = _numpy(d["active_features"], np.int64)
    selected = _numpy(d["selected_features"], np.int64)
    activations = _numpy(d["activation_values"], np.float32)
    input_tokens = _numpy(d["input_tokens"], np.int64).tolist()
    probs = _numpy(d["logit_probabilities"], np.float32).tolist()
    logit_targets = _logit_targets(d)
    n_pos = len(input_tokens)
    n = len(selected) + n_layers * n_pos + n_pos + len(logit_targets)
    if adjacency.shape != (n, n):
        raise _Problem(f"adjacency_matrix is {tuple(adjacency.shape)}, expected ({n}, {n}) for "
                       f"{len(selected)} features, {n_layers} layers x {n_pos} positions, "
                       f"{len(logit_targets)} logits")
    if not np.isfinite(adjacency).all():
        raise _Problem(f"adjacency_matrix has {int((~np.isfinite(adjacency)).sum())} non-finite entries")

    decode = _decoder(tokenizer, cfg)
    prompt_tokens = [decode([t]) for t in input_tokens]
    nodes = []
    for a in selected.tolist():  # (layer, pos, index) of the selected active features
        layer, pos, index = active[a].tolist()
        nodes.append(Node(f"{layer}_{index}_{pos}", "feature", layer, pos, feature=index,
                          activation=float(activations[a])))
    nodes += [Node(f"{layer}_-1_{pos}", "error", layer, pos) for layer in range(n_layers) for pos in range(n_pos)]
    nodes += [Node(f"E_{t}_{pos}", "embedding", EMBEDDING_LAYER, pos, token_id=t, token=prompt_tokens[pos])
              for pos, t in enumerate(input_tokens)]
    for (token, vocab_idx), p in zip(logit_targets, probs):
        nodes.append(Node(f"{n_layers + 1}_{vocab_idx}_{n_pos - 1}", "logit", n_layers, n_pos - 1,
                          token_id=vocab_idx, token=token or decode([vocab_idx]), logit_prob=p))

    dst, src = np.nonzero(adjacency)   # row-major: sorted by (target, source), as circuit-tracer writes
    scan = d.get("scan", d.get("scan_name"))   # renamed scan_name in later circuit-tracer
    if isinstance(scan, (list, tuple)):  # per-layer transcoder list ("custom" scan)
        transcoder_set, model = ",".join(map(str, scan)), str(_cfg(cfg, "model_name", ""))
    else:
        transcoder_set = transcoder_set_from_scan(scan)
        model = model_from_scan(scan, transcoder_set) if scan else str(_cfg(cfg, "model_name", ""))
    graph = Graph(
        prompt=d["input_string"], prompt_tokens=prompt_tokens, model=model, transcoder_set=transcoder_set,
        n_layers=n_layers, nodes=nodes, edge_source=src, edge_target=dst, edge_weight=adjacency[dst, src],
        extra={"metadata": {"scan": scan} if isinstance(scan, str) else {},
               "pt": {"vocab_size": d.get("vocab_size"), "cfg": _plain(cfg)}},
    )
    check_values(graph)
    return graph


def _numpy(x, dtype) -> np.ndarray:
    import torch
    if isinstance(x, torch.Tensor):
        x = x.detach().to(torch.float32 if dtype == np.float32 else torch.int64).numpy()
    return np.asarray(x, dtype=dtype)


_REQUIRED = object()


def _cfg(cfg, key, default=_REQUIRED):
    value = cfg.get(key, default) if isinstance(cfg, dict) else getattr(cfg, key, default)
    if value is _REQUIRED:
        raise _Problem(f"not a circuit-tracer graph file: its cfg has no '{key}'")
    return value


def _plain(cfg) -> dict:
    """The config's JSON-safe scalars (for graph.extra)."""
    items = cfg.items() if isinstance(cfg, dict) else vars(cfg).items()
    return {k: v for k, v in items if isinstance(v, (str, int, float, bool)) or v is None}


def _logit_targets(d: dict) -> list[tuple[str, int]]:
    """[(token text or "", vocab index)], from 0.4+ LogitTarget records or older `logit_tokens`."""
    if "logit_targets" in d and not hasattr(d["logit_targets"], "shape"):
        out = []
        for t in d["logit_targets"]:
            args = getattr(t, "args", ()) or (getattr(t, "token_str", ""), getattr(t, "vocab_idx", None))
            if len(args) != 2 or not isinstance(args[1], int):
                raise _Problem(f"cannot read logit target {args!r:.80}")
            out.append((str(args[0] or ""), int(args[1])))
        return out
    tokens = d.get("logit_targets", d.get("logit_tokens"))
    return [("", int(t)) for t in _numpy(tokens, np.int64).tolist()]


def _decoder(tokenizer, cfg):
    """A function ids -> text, from `tokenizer` or else the file's own (local) tokenizer_name."""
    if hasattr(tokenizer, "decode"):
        return tokenizer.decode
    name = tokenizer if tokenizer is not None else _cfg(cfg, "tokenizer_name", None)
    if name is None:
        raise _Problem("the file names no tokenizer to spell its tokens with; pass tokenizer=<dir>")
    path = Path(name)
    try:
        if path.is_file():  # a tokenizer.json
            from tokenizers import Tokenizer
            tok = Tokenizer.from_file(str(path))
            return lambda ids: tok.decode(ids, skip_special_tokens=False)
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(name), local_files_only=True)
        return tok.decode
    except Exception as e:  # not on this machine (we never download)
        raise _Problem(f"cannot spell the prompt tokens: tokenizer {str(name)!r} is not available "
                       f"locally ({type(e).__name__}); pass tokenizer=<tokenizer dir or tokenizer.json>") from None
