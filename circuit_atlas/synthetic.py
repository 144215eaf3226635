"""Synthetic attribution graphs with a realistic shape, for tests and benchmarks (no model needed).

Shape follows the store benchmark in notes/embedded-cypher-engines.md: per graph 20 embedding,
20 error, 10 logit and the rest feature nodes, features drawn Zipf(1.05) over a shared id space so
popular features recur across graphs, random weighted edges (never an edge into an embedding).
"""
from __future__ import annotations

import numpy as np

from circuit_atlas.graph import Graph, Node


def synthetic_graph(seed: int, n_nodes: int = 500, n_edges: int = 10_000, n_layers: int = 26,
                    n_feature_ids: int = 200_000, transcoder_set: str = "synthetic/clt",
                    tags: dict[str, str] | None = None) -> Graph:
    rng = np.random.default_rng(seed)
    n_ctx = 20
    nodes = [Node(f"E_{1000 + p}_{p}", "embedding", -1, p, token_id=1000 + p, token=f"tok{p}") for p in range(n_ctx)]
    nodes += [Node(f"{p % n_layers}_-1_{p}", "error", p % n_layers, p, activation=None) for p in range(20)]
    nodes += [Node(f"{n_layers}_{t}_{n_ctx - 1}", "logit", n_layers, n_ctx - 1, token_id=t, token=f"out{t}",
                   logit_prob=float(np.float32(1 / (i + 2)))) for i, t in enumerate(range(10))]
    n_features = n_nodes - len(nodes)
    ids = (rng.zipf(1.05, size=4 * n_features) - 1) % n_feature_ids
    seen: set[tuple] = set()
    for f in ids.tolist():
        if len(seen) == n_features:
            break
        layer, pos = int(rng.integers(0, n_layers)), int(rng.integers(0, n_ctx))
        if (layer, f, pos) in seen:
            continue
        seen.add((layer, f, pos))
        nodes.append(Node(f"{layer}_{f}_{pos}", "feature", layer, pos, feature=f,
                          activation=float(np.float32(rng.random() * 10)),
                          influence=float(np.float32(rng.random())), label=f"feature {layer}/{f}"))
    n = len(nodes)
    src = rng.integers(0, n, n_edges)
    dst = rng.integers(n_ctx, n, n_edges)            # no edges into embeddings
    pairs = np.unique(np.stack([src, dst], 1), axis=0)
    return Graph(
        prompt=f"synthetic prompt {seed}", prompt_tokens=[f"tok{p}" for p in range(n_ctx)],
        model="synthetic-model", transcoder_set=transcoder_set, n_layers=n_layers, nodes=nodes,
        edge_source=pairs[:, 0], edge_target=pairs[:, 1],
        edge_weight=rng.standard_normal(len(pairs)).astype(np.float32),
        slug=f"synthetic-{seed}", node_threshold=0.8, edge_threshold=0.98,
        generator={"name": "circuit_atlas.synthetic", "seed": seed}, tags=dict(tags or {}),
    )
