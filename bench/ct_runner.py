"""circuit-tracer side of bench/trace.py: runs INSIDE the oracle venv (circuit-tracer 0.5.0 installed).

Loads the oracle's model and transcoders with one backend, then times attribute() + prune_graph() +
compute_graph_scores() (what tracer.trace does) `--repeats` times, and prints one JSON line:
{"times": [...], "rss_before_mb", "peak_rss_mb" (VmHWM), ...}. With --save it writes the graph's arrays (.npz).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def peak_rss_mb() -> float:
    """This process's own peak resident set (VmHWM; ru_maxrss would include the parent's peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--oracle", required=True, help="path of ct_oracle.py (its offline loading helpers are reused)")
    p.add_argument("--build", required=True, help="the oracle's --outdir holding model/ and transcoders/")
    p.add_argument("--kind", required=True, choices=["plt", "plt-skip", "clt"])
    p.add_argument("--backend", required=True, choices=["transformerlens", "nnsight"])
    p.add_argument("--prompt", required=True)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--max-feature-nodes", type=int, default=0, help="0: every active feature")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--save")
    a = p.parse_args()
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[k] = "1"

    import warnings
    import logging

    import torch

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    if a.threads:
        torch.set_num_threads(a.threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(a.oracle)))
    import ct_oracle  # noqa: E402  (the oracle's offline loaders: TransformerLens rejects local paths otherwise)
    from circuit_tracer import attribute
    from circuit_tracer.graph import compute_graph_scores, prune_graph

    transcoders = ct_oracle.load_transcoders(os.path.join(a.build, "transcoders"), a.kind)
    model = ct_oracle.load_replacement_model(os.path.join(a.build, "model"), transcoders, a.backend)
    if a.device != "cpu":
        model.to(a.device)
        transcoders.to(a.device)
    rss_before = rss_mb()
    times = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        graph = attribute(a.prompt, model, batch_size=a.batch_size, max_feature_nodes=a.max_feature_nodes or None,
                          verbose=False)
        node_mask, edge_mask, cumulative = prune_graph(graph, 0.8, 0.98)
        replacement, completeness = compute_graph_scores(graph)
        if a.device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = peak_rss_mb()
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if a.device != "cpu" else None
    if a.save:
        import numpy as np

        np.savez(a.save, adjacency=graph.adjacency_matrix.cpu().numpy(),
                            active_features=graph.active_features.cpu().numpy(),
                            selected_features=graph.selected_features.cpu().numpy(),
                            node_mask=node_mask.cpu().numpy(), edge_mask=edge_mask.cpu().numpy())
    print(json.dumps({"times": times, "rss_before_mb": rss_before, "peak_rss_mb": peak, "gpu_peak_mb": gpu_peak,
                      "n_nodes": int(graph.adjacency_matrix.shape[0]), "kept_nodes": int(node_mask.sum()),
                      "replacement": replacement, "completeness": completeness,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
