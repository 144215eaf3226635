"""The values no attribution graph can hold, checked after any reader (JSON or .pt) built a Graph."""
from __future__ import annotations

import numpy as np

from circuit_atlas.graph import EMBEDDING_LAYER, Graph
from circuit_atlas.ingest.errors import _more, _Problem


_KIND_CODE = {"embedding": 0, "feature": 1, "error": 2, "logit": 3}
_PROB_SLACK = 1e-3       # float32 rounding in the writers; real files' logit probabilities sum to <= 0.99


def check_values(graph: Graph) -> None:
    """Refuse values no attribution graph can hold, in one line naming the node or link and the field:
    n_layers < 1, a node outside the prompt or its layer range, a negative token or feature index,
    non-finite activation / influence / weight, a logit probability (token_prob) outside [0, 1] or
    logits whose probabilities sum past 1; and links that cannot exist in circuit-tracer's graphs
    (into an embedding or an error node, out of a logit, to the same or an earlier layer, or back to
    an earlier position). Every real graph we have (circuit-tracer .json and .pt, Neuronpedia exports
    of five models, 57 Gemma-2-2B graphs) satisfies all of them. Column-wise: ~5% of reading a file."""
    n_layers, n_tokens, nodes = graph.n_layers, len(graph.prompt_tokens), graph.nodes
    if n_layers < 1:
        raise _Problem(f"n_layers is {n_layers}: a graph has at least one layer (logits at layer n_layers + 1)")
    kind = np.array([_KIND_CODE[n.kind] for n in nodes], dtype=np.int8)
    # one pass over the nodes; None (not given) reads as 0, which every check accepts
    table = np.array([(n.layer, n.pos, n.feature or 0, n.token_id or 0, n.activation or 0.0, n.influence or 0.0,
                       n.logit_prob or 0.0) for n in nodes], dtype=np.float64).reshape(len(nodes), 7)
    layer, pos = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    low = np.array([EMBEDDING_LAYER, 0, 0, n_layers])[kind]        # by kind code: embedding, feature, error, logit
    high = np.array([EMBEDDING_LAYER, n_layers - 1, n_layers - 1, n_layers])[kind]
    prob = table[:, 6]
    logit = kind == _KIND_CODE["logit"]
    checks = [
        ((pos < 0) | (pos >= n_tokens), lambda i: f"ctx_idx {pos[i]} is outside the prompt's {n_tokens} tokens"),
        ((layer < low) | (layer > high), lambda i: f"layer {layer[i]} is outside a {nodes[i].kind}'s layers "
                                                   f"{low[i]}..{high[i]} (n_layers = {n_layers})"),
        (table[:, 2] < 0, lambda i: f"feature {nodes[i].feature} is negative"),
        (table[:, 3] < 0, lambda i: f"token id {nodes[i].token_id} is negative"),
    ]
    for col, name, field in ((4, "activation", "activation"), (5, "influence", "influence"),
                             (6, "token_prob", "logit_prob")):
        checks.append((~np.isfinite(table[:, col]),
                       lambda i, name=name, field=field: f"{name} is {getattr(nodes[i], field)}, not a finite number"))
    checks.append((logit & ((prob < 0) | (prob > 1)),
                   lambda i: f"token_prob {prob[i]:g} is not a probability (outside [0, 1])"))
    for broken, problem in checks:
        if broken.any():
            i = int(np.flatnonzero(broken)[0])
            raise _Problem(f"node {i} ({nodes[i].node_id!r}): {problem(i)}")
    prob_sum = float(prob[logit].sum())
    if prob_sum > 1 + _PROB_SLACK:
        raise _Problem(f"the logit nodes' token_prob sum to {prob_sum:.4g}, over 1: they are probabilities "
                       "of different tokens at one position")
    _check_links(graph, kind, layer, pos)


def _check_links(graph: Graph, kind: np.ndarray, layer: np.ndarray, pos: np.ndarray) -> None:
    if not graph.n_edges:
        return
    src, dst, weight = graph.edge_source, graph.edge_target, graph.edge_weight
    if min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= len(graph.nodes):
        raise _Problem("a link names a node index outside the graph")
    rules = [
        (~np.isfinite(weight), lambda s, t, k: f"has a non-finite weight {weight[k]}"),
        (kind[dst] == _KIND_CODE["embedding"], lambda s, t, k: "points into an embedding (embeddings have no inputs)"),
        (kind[dst] == _KIND_CODE["error"], lambda s, t, k: "points into an error node (error nodes have no inputs)"),
        (kind[src] == _KIND_CODE["logit"], lambda s, t, k: "leaves a logit (logits have no outputs)"),
        (layer[src] >= layer[dst], lambda s, t, k: f"goes from layer {layer[s]} to layer {layer[t]}: "
                                                   "effects only reach later layers"),
        (pos[src] > pos[dst], lambda s, t, k: f"goes from position {pos[s]} back to position {pos[t]}: "
                                              "effects only reach the same or later positions"),
    ]
    for broken, problem in rules:
        if broken.any():
            k = int(np.flatnonzero(broken)[0])
            s, t = int(src[k]), int(dst[k])
            raise _Problem(f"link {k} ({graph.nodes[s].node_id} -> {graph.nodes[t].node_id}) {problem(s, t, k)}"
                           + _more(int(broken.sum()) - 1, "such link"))
