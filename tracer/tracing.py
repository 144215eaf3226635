"""trace(): prompt -> pruned circuit_atlas Graph (attribution, pruning, node and edge lists)."""
from __future__ import annotations

import re
import time
import warnings

import numpy as np
import torch

from circuit_atlas.graph import EMBEDDING_LAYER, Graph, Node
from circuit_atlas.tracer.attribution import Attribution, attribute
from circuit_atlas.tracer.config import TraceConfig
from circuit_atlas.tracer.errors import TracerWarning
from circuit_atlas.tracer.prune import Pruned, prune
from circuit_atlas.tracer.replacement import ReplacementModel, shorten

GENERATOR = {"name": "circuit-atlas tracer", "version": "0.1.0",
             "url": "https://github.com/decoderesearch/circuit-tracer (algorithm of 0.5.0)"}


# Below this replacement score a warning says the transcoders may not be this model's. On our organisms
# (docs/tracer.md, "Replacement score"), in-vocabulary prompts score 0.82-0.97 with their own transcoders
# and 0.39-0.70 with the other organism's (same shapes), 17 of 24 traces below 0.6; circuit-tracer's
# oracle fixtures (random encoders, fitted decoders) score 0.60-0.74. Capping the feature nodes
# (max_feature_nodes) lowers the score too, and the warning says so.
LOW_REPLACEMENT_SCORE = 0.6


def trace(model: ReplacementModel, prompt: str | list[int], config: TraceConfig | None = None,
          progress: bool = False) -> Graph:
    """Attribution graph of `prompt`, pruned with the config's thresholds, scores included.

    Warns (TracerWarning) about prompt words outside the vocabulary and about a replacement score
    below LOW_REPLACEMENT_SCORE.
    """
    config = config or TraceConfig()
    started = time.perf_counter()
    with torch.inference_mode():
        input_ids = model.tokenize(prompt)
        attribution = attribute(model, input_ids, config, progress=progress)
        pruned = prune_attribution(attribution, config)
    graph = to_graph(model, prompt, attribution, pruned, config)
    graph.generator["seconds"] = round(time.perf_counter() - started, 3)
    _warn_if_low_replacement(model, graph, len(attribution.active_features), len(attribution.selected))
    return graph


def _warn_if_low_replacement(model: ReplacementModel, graph: Graph, n_active: int, n_selected: int) -> None:
    score = graph.scores["replacement"]
    if score >= LOW_REPLACEMENT_SCORE:
        return
    capped = (f"only {n_selected} of {n_active} active features are nodes (raise max_feature_nodes), or "
              if n_selected < n_active else "")
    warnings.warn(TracerWarning(
        f"replacement score {score:.2f} is below {LOW_REPLACEMENT_SCORE} on {shorten(graph.prompt)!r}: {capped}the "
        f"transcoders ({model.transcoders.name}) explain little of {model.model_name}; are they this model's?"),
        stacklevel=3)


def slugify(prompt: str, limit: int = 60) -> str:
    """A short file-name-safe name for a graph ("The capital of Texas is" -> "the-capital-of-texas-is")."""
    return re.sub(r"\W+", "-", prompt.lower()).strip("-")[:limit].strip("-") or "graph"


def prune_attribution(attribution: Attribution, config: TraceConfig) -> Pruned:
    L, P = attribution.n_layers, attribution.n_pos
    return prune(attribution.adjacency, attribution.logit_probs.to(attribution.adjacency.device),
                 len(attribution.selected), L * P, P, config.node_threshold, config.edge_threshold)


def to_graph(model: ReplacementModel, prompt, attribution: Attribution, pruned: Pruned,
             config: TraceConfig) -> Graph:
    """Kept nodes and edges as a Graph, with circuit-tracer's node ids (errors: "{layer}_-1_{pos}")."""
    tokenizer = model.tokenizer
    L, P = attribution.n_layers, attribution.n_pos
    n_features = len(attribution.selected)
    token_ids = attribution.input_ids.tolist()
    scores = pruned.cumulative_scores.tolist()
    adjacency, node_mask, edge_mask = attribution.adjacency.cpu(), pruned.node_mask.cpu(), pruned.edge_mask.cpu()

    def node(i: int) -> Node:
        if i < n_features:
            f = int(attribution.selected[i])
            layer, pos, feature = attribution.active_features[f].tolist()
            return Node(f"{layer}_{feature}_{pos}", "feature", layer, pos, feature=feature,
                        activation=float(attribution.activations[f]), influence=scores[i])
        i -= n_features
        if i < L * P:
            layer, pos = divmod(i, P)
            return Node(f"{layer}_-1_{pos}", "error", layer, pos, influence=scores[i + n_features])
        i -= L * P
        if i < P:
            return Node(f"E_{token_ids[i]}_{i}", "embedding", EMBEDDING_LAYER, i, token_id=token_ids[i],
                        token=tokenizer.decode([token_ids[i]]), influence=scores[i + n_features + L * P])
        k = i - P
        token_id, prob = int(attribution.logit_ids[k]), float(attribution.logit_probs[k])
        token = tokenizer.decode([token_id])
        return Node(f"{L + 1}_{token_id}_{P - 1}", "logit", L, P - 1, token_id=token_id, token=token,
                    logit_prob=prob, label=f'Output "{token}" (p={prob:.3f})')

    # as circuit-tracer's JSON: kept edges between kept nodes; kept nodes that have such an edge,
    # plus every embedding and logit node
    targets, sources = torch.nonzero(edge_mask, as_tuple=True)
    between_kept = node_mask[targets] & node_mask[sources]
    targets, sources = targets[between_kept], sources[between_kept]
    weights = adjacency[targets, sources]
    connected = torch.zeros_like(node_mask)
    connected[targets] = True
    connected[sources] = True
    always = torch.zeros_like(node_mask)
    always[n_features + L * P:] = True
    keep = torch.where(node_mask & (connected | always))[0]
    index = torch.full((len(node_mask),), -1, dtype=torch.long)
    index[keep] = torch.arange(len(keep))

    text = prompt if isinstance(prompt, str) else tokenizer.decode(token_ids[1:])
    return Graph(
        prompt=text,
        slug=slugify(text),
        prompt_tokens=[tokenizer.decode([t]) for t in token_ids],
        model=model.model_name,
        transcoder_set=model.transcoders.name,
        n_layers=L,
        nodes=[node(int(i)) for i in keep],
        edge_source=index[sources].numpy().astype(np.int32),
        edge_target=index[targets].numpy().astype(np.int32),
        edge_weight=weights.numpy().astype(np.float32),
        node_threshold=config.node_threshold,
        edge_threshold=config.edge_threshold,
        generator={**GENERATOR, "settings": config.to_dict(), "architecture": model.arch.name,
                   "transcoder_kind": model.transcoders.kind,
                   "n_active_features": len(attribution.active_features), "n_selected_features": n_features},
        scores={"replacement": pruned.replacement, "completeness": pruned.completeness},
    )
