"""The attribution graph: the one in-memory form that tracer, ingest, store and queries share.

A graph is a list of nodes and three parallel edge arrays. Edges are columnar (numpy) because a
graph carries 10^4-10^6 of them and every consumer (the store's bulk COPY, exports, queries in
Python) wants them as columns, never as millions of Python objects.

Layer convention (the same in the store):
    embedding nodes  layer = -1
    feature / error  layer = 0 .. n_layers-1   (the transcoder layer the node reads from)
    logit nodes      layer = n_layers          (circuit-tracer's JSON writes n_layers + 1)

A *global feature* is (transcoder_set, layer, feature index): the key that makes cross-graph
questions possible. `feature_key()` spells it as one string, the primary key of (:Feature).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

NodeKind = Literal["feature", "error", "embedding", "logit"]
NODE_KINDS: tuple[str, ...] = ("feature", "error", "embedding", "logit")
EMBEDDING_LAYER = -1


def feature_key(transcoder_set: str, layer: int, feature: int) -> str:
    """The global identity of a transcoder feature across graphs, e.g. 'mntss/clt-gemma-2-2b-2.5M/3/117'."""
    return f"{transcoder_set}/{layer}/{feature}"


@dataclass(slots=True)
class Node:
    node_id: str                     # unique within its graph: "3_117_5", "E_2_0", "3_-1_5", "27_235310_3"
    kind: str                        # one of NODE_KINDS
    layer: int                       # see the module docstring
    pos: int                         # ctx_idx: the token position
    feature: int | None = None       # transcoder feature index (feature nodes only; never Cantor-paired)
    token_id: int | None = None      # embedding and logit nodes
    token: str | None = None         # the token's text (embedding and logit nodes)
    activation: float | None = None  # feature activation
    influence: float | None = None   # cumulative influence on the logits (pruning score)
    logit_prob: float | None = None  # probability of a logit node's token
    label: str = ""                  # clerp / human or auto-interp label


@dataclass
class Graph:
    """One attribution graph. `edge_*` are parallel arrays; sources/targets index into `nodes`."""

    prompt: str
    prompt_tokens: list[str]
    model: str                                  # model id, e.g. "gemma-2-2b"
    transcoder_set: str                         # e.g. "mntss/clt-gemma-2-2b-2.5M"; "" when unknown
    n_layers: int
    nodes: list[Node]
    edge_source: np.ndarray                     # (E,) int32, index into nodes
    edge_target: np.ndarray                     # (E,) int32, index into nodes
    edge_weight: np.ndarray                     # (E,) float32, direct effect source -> target
    slug: str = ""
    node_threshold: float | None = None
    edge_threshold: float | None = None
    generator: dict = field(default_factory=dict)   # name/version/url + generation settings
    tags: dict[str, str] = field(default_factory=dict)  # free tags: lang, concept, set, ...
    extra: dict = field(default_factory=dict)       # source-file metadata kept for faithful export
    scores: dict[str, float] = field(default_factory=dict)  # replacement / completeness, when known

    def __post_init__(self) -> None:
        self.edge_source = np.asarray(self.edge_source, dtype=np.int32)
        self.edge_target = np.asarray(self.edge_target, dtype=np.int32)
        self.edge_weight = np.asarray(self.edge_weight, dtype=np.float32)
        self._id: str | None = None

    @property
    def n_edges(self) -> int:
        return int(self.edge_weight.shape[0])

    @property
    def id(self) -> str:
        """Content hash: the same graph (model, transcoders, prompt, nodes, edges) always gets the same id.

        Tags, slug and file metadata are not part of it, so re-ingesting a graph under new tags finds
        the stored one. Node and edge order do not matter either.
        """
        if self._id is None:
            self._id = _content_id(self)
        return self._id

    def feature_key(self, node: Node) -> str | None:
        if node.kind != "feature" or node.feature is None:
            return None
        return feature_key(self.transcoder_set, node.layer, node.feature)

    def edges(self):
        """Iterate (source Node, target Node, weight) — for small graphs and tests, not hot paths."""
        for s, t, w in zip(self.edge_source.tolist(), self.edge_target.tolist(), self.edge_weight.tolist()):
            yield self.nodes[s], self.nodes[t], w

    def subgraph(self, node_ids) -> "Graph":
        """The graph restricted to `node_ids` (and the edges among them); same metadata."""
        keep = set(node_ids)
        old_index = [i for i, n in enumerate(self.nodes) if n.node_id in keep]
        remap = np.full(len(self.nodes), -1, dtype=np.int64)
        remap[old_index] = np.arange(len(old_index))
        src, dst = remap[self.edge_source], remap[self.edge_target]
        mask = (src >= 0) & (dst >= 0)
        return Graph(
            prompt=self.prompt, prompt_tokens=list(self.prompt_tokens), model=self.model,
            transcoder_set=self.transcoder_set, n_layers=self.n_layers,
            nodes=[self.nodes[i] for i in old_index],
            edge_source=src[mask], edge_target=dst[mask], edge_weight=self.edge_weight[mask],
            slug=self.slug, node_threshold=self.node_threshold, edge_threshold=self.edge_threshold,
            generator=dict(self.generator), tags=dict(self.tags), extra=dict(self.extra),
            scores=dict(self.scores),
        )


def _content_id(graph: Graph) -> str:
    h = hashlib.sha256()
    header = [graph.model, graph.transcoder_set, graph.prompt_tokens, graph.n_layers]
    h.update(json.dumps(header, ensure_ascii=False).encode())
    node_ids = [n.node_id for n in graph.nodes]
    order = sorted(range(len(node_ids)), key=node_ids.__getitem__)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    nodes = (graph.nodes[i] for i in order)
    h.update(json.dumps([[n.node_id, n.kind, n.layer, n.pos, n.feature, n.token_id, _round(n.activation),
                          _round(n.influence), _round(n.logit_prob)] for n in nodes]).encode())
    src, dst = rank[graph.edge_source], rank[graph.edge_target]
    edge_order = np.argsort(src * max(len(order), 1) + dst, kind="stable")   # by (source, target)
    h.update(src[edge_order].astype("<i8").tobytes())
    h.update(dst[edge_order].astype("<i8").tobytes())
    h.update(graph.edge_weight[edge_order].astype("<f4").tobytes())
    return h.hexdigest()[:32]


def _round(x: float | None) -> float | None:
    # float32 precision: values that survive a JSON round trip hash the same
    return None if x is None else float(np.float32(x))
