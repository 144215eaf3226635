"""Per-graph summaries: the few numbers an audit needs from each attribution graph.

An audit reads thousands of graphs of 10^4-10^6 edges; it keeps only this summary of each one
(a few hundred floats), so memory stays flat and a finished audit can be re-analysed or re-rendered
from its saved summaries without tracing or touching the store again.

Influence follows circuit-tracer's `compute_influence`: edge weights are made absolute and each
node's incoming weights normalised to sum to 1; a node's influence on the target logits is the sum
over all paths of the products of these normalised weights (a power series, finite on a DAG).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from circuit_atlas.graph import Graph

SETS = ("suspect", "control", "generic")


@dataclass
class GraphSummary:
    graph_id: str
    prompt: str
    set: str                                                  # one of SETS
    max_activation: dict[str, float] = field(default_factory=dict)  # feature key -> max activation
    labels: dict[str, str] = field(default_factory=dict)      # feature key -> label (non-empty only)
    logit_tokens: list[str] = field(default_factory=list)     # tokens of the graph's logit nodes
    targets_found: list[str] = field(default_factory=list)    # target tokens present as logit nodes
    direct: dict[str, float] = field(default_factory=dict)    # feature key -> signed share of the direct input to the target logits
    influence: dict[str, float] = field(default_factory=dict)  # feature key -> influence on the target logits (all paths)
    control_active: list[list[str]] = field(default_factory=list)  # per control-token position: feature keys active there

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "GraphSummary":
        return cls(**d)


def token_matches(token: str | None, wanted: str) -> bool:
    """A logit token matches a target written with or without its leading space (' banana' / 'banana')."""
    return token is not None and (token == wanted or token.strip() == wanted.strip())


def control_positions(graph: Graph, control_tokens: tuple[str, ...] | None) -> list[int]:
    """Positions of control tokens; without a list, the last position (where a chat prompt opens the reply)."""
    if not control_tokens:
        return [len(graph.prompt_tokens) - 1] if graph.prompt_tokens else []
    return [i for i, t in enumerate(graph.prompt_tokens) if any(token_matches(t, c) for c in control_tokens)]


def summarize(graph: Graph, set_name: str, target_tokens: tuple[str, ...] = (),
              control_tokens: tuple[str, ...] | None = None) -> GraphSummary:
    """Reduce one graph to what the analyses read (see the module docstring)."""
    if set_name not in SETS:
        raise ValueError(f"unknown prompt set {set_name!r}; expected one of {SETS}")
    s = GraphSummary(graph_id=graph.id, prompt=graph.prompt, set=set_name)
    keys = [graph.feature_key(n) for n in graph.nodes]
    for key, node in zip(keys, graph.nodes):
        if key is None:
            continue
        act = float(node.activation or 0.0)
        s.max_activation[key] = max(act, s.max_activation.get(key, act))
        if node.label:
            s.labels.setdefault(key, node.label)
    s.logit_tokens = [n.token or "" for n in graph.nodes if n.kind == "logit"]
    if set_name == "generic":
        active_at: dict[int, list[str]] = {}
        for key, node in zip(keys, graph.nodes):
            if key is not None and (node.activation is None or node.activation > 0):
                active_at.setdefault(node.pos, []).append(key)
        s.control_active = [sorted(set(active_at.get(p, []))) for p in control_positions(graph, control_tokens)]
    targets = [i for i, n in enumerate(graph.nodes)
               if n.kind == "logit" and any(token_matches(n.token, t) for t in target_tokens)]
    if targets:
        s.targets_found = sorted({graph.nodes[i].token or "" for i in targets})
        s.direct, s.influence = _target_effects(graph, keys, targets)
    return s


def _target_effects(graph: Graph, keys: list[str | None], targets: list[int]):
    """Per feature key: signed direct share into the target logits, and all-path influence on them."""
    n = len(graph.nodes)
    adj = sp.csr_matrix((graph.edge_weight.astype(np.float64), (graph.edge_target, graph.edge_source)),
                        shape=(n, n))                                  # (target, source)
    absolute = abs(adj)
    row_sum = np.asarray(absolute.sum(axis=1)).ravel()
    inv = np.divide(1.0, row_sum, out=np.zeros_like(row_sum), where=row_sum > 0)
    normalized = sp.diags(inv) @ absolute                              # rows sum to 1 (or 0)

    weight = np.zeros(n)
    weight[targets] = 1.0 / len(targets)                               # each target logit counts equally
    direct = (sp.diags(weight * inv) @ adj).sum(axis=0).A1             # signed share of each source
    influence, frontier = np.zeros(n), weight
    for _ in range(n):                                                 # a DAG: at most n hops
        frontier = normalized.T @ frontier
        if frontier.sum() < 1e-12:
            break
        influence += frontier

    d_out: dict[str, float] = {}
    i_out: dict[str, float] = {}
    for i, key in enumerate(keys):
        if key is None:
            continue
        if direct[i]:
            d_out[key] = d_out.get(key, 0.0) + float(direct[i])
        if influence[i]:
            i_out[key] = i_out.get(key, 0.0) + float(influence[i])
    return d_out, i_out
