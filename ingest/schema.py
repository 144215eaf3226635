"""The attribution-graph JSON file (circuit-tracer `create_graph_files` / Neuronpedia), as pydantic models.

Strict about types (a string where a number belongs is an error, so is NaN), lenient about the variants
seen in the wild: optional `info` / `generation_settings` / `pruning_settings`, null activation and
influence, unknown extra keys (kept). Links are deliberately NOT modelled here: a graph has up to 10^6
of them and they are validated column-wise in `ingest.formats`.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# feature_type in the file -> Node.kind
FEATURE_TYPES: dict[str, str] = {
    "cross layer transcoder": "feature",   # circuit-tracer writes this for per-layer transcoders too
    "mlp reconstruction error": "error",
    "embedding": "embedding",
    "logit": "logit",
}
KIND_FEATURE_TYPE: dict[str, str] = {kind: ft for ft, kind in FEATURE_TYPES.items()}

_strict = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)


class Info(BaseModel):
    """Neuronpedia's `metadata.info`; circuit-tracer itself does not write it."""
    model_config = _strict
    transcoder_set: str | None = None
    generator: dict | None = None          # {name, version, url}


class PruningSettings(BaseModel):
    model_config = _strict
    node_threshold: float | None = None
    edge_threshold: float | None = None


class Metadata(BaseModel):
    model_config = _strict
    slug: str = ""
    scan: str | None = None                # a model id ("gemma-2-2b") or a transcoder repo
    transcoder_list: list[str] = Field(default_factory=list)
    prompt_tokens: list[str]
    prompt: str
    node_threshold: float | None = None
    schema_version: int | None = 1
    info: Info | None = None
    generation_settings: dict | None = None
    pruning_settings: PruningSettings | None = None


class QParams(BaseModel):
    """Viewer state: pinned nodes and manual supernodes ([label, node_id, ...])."""
    model_config = _strict
    pinnedIds: list[str] = Field(default_factory=list)
    supernodes: list[list[str]] = Field(default_factory=list)
    linkType: str = "both"
    clickedId: str = ""
    sg_pos: str = ""


class Node(BaseModel):
    model_config = _strict
    node_id: str
    feature: int | None = None            # Cantor(layer, index) | raw index | -1 | position | token id;
                                          # None or absent: read from node_id, which holds the same
    layer: str | int                      # "0".."n_layers-1", "E", or str(n_layers + 1) for logits
    ctx_idx: int
    feature_type: str
    token_prob: float = 0.0
    is_target_logit: bool = False
    run_idx: int = 0
    reverse_ctx_idx: int = 0
    jsNodeId: str | None = None
    clerp: str | None = ""
    influence: float | None = None
    activation: float | None = None


class GraphFile(BaseModel):
    """The whole file except `links` (checked in bulk by the reader)."""
    model_config = ConfigDict(strict=True, extra="allow")
    metadata: Metadata
    qParams: QParams | None = None
    nodes: list[Node]


# -- conventions of the file format, shared by the reader (ingest/formats.py) and the writer (ingest/write.py) --

LEGACY_ERROR_IDS = "0_{layer}_{pos}"   # circuit-tracer <= 0.5.0's error node ids (ours: "{layer}_-1_{pos}")


def cantor(layer: int, index: int) -> int:
    """circuit-tracer's `feature` value for a transcoder feature: the Cantor pairing of (layer, index)."""
    return (layer + index) * (layer + index + 1) // 2 + index


def logit_clerp(token: str, prob: float) -> str:
    return f'Output "{token}" (p={prob:.3f})'
