"""A graph file's `scan` -> the model id and the transcoder set it names (Neuronpedia's spelling)."""
from __future__ import annotations

import re

_TRANSCODER_HINT = re.compile(r"transcoder|clt|plt|scope", re.I)   # "google/gemma-2-2b" is a model
# transcoder repo or circuit-tracer shorthand -> model id (Neuronpedia's spelling)
_MODEL_PATTERNS = [
    (re.compile(r"^gemma$"), "gemma-2-2b"),                 # circuit-tracer's --transcoder_set gemma
    (re.compile(r"^llama$"), "llama3.2-1b"),                # ... and llama
    (re.compile(r"gemma-?scope-2-(\d+b)"), r"gemma-3-\1"),  # Gemma Scope 2 is for Gemma 3
    (re.compile(r"gemma-?scope"), "gemma-2-2b"),
    (re.compile(r"gemma-?(\d)-(\d+b)"), r"gemma-\1-\2"),
    (re.compile(r"qwen(\d(?:\.\d)?)-(\d+(?:\.\d+)?b)"), r"qwen\1-\2"),
    (re.compile(r"llama-?(\d(?:\.\d)?)-(\d+b)"), r"llama\1-\2"),
]


def _looks_like_transcoders(scan: str | None) -> bool:
    return bool(scan) and (scan in ("gemma", "llama") or bool(_TRANSCODER_HINT.search(scan)))


def transcoder_set_from_scan(scan: str | None) -> str:
    """`scan` when it names transcoders (not a model), else ""."""
    return scan if _looks_like_transcoders(scan) else ""


def model_from_scan(scan: str | None, transcoder_set: str = "") -> str:
    """The model id behind a file's `scan`: itself when it is a model id ("gemma-2-2b"), else
    inferred from the transcoder names ("mntss/gemma-scope-transcoders" -> "gemma-2-2b"), else `scan`."""
    if scan and not _looks_like_transcoders(scan):
        return scan
    for name in (scan, transcoder_set):
        for pattern, model in _MODEL_PATTERNS:
            m = pattern.search((name or "").lower())
            if m:
                return m.expand(model)
    return scan or ""
