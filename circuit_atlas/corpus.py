"""Realistic synthetic corpora: graphs whose shape is sampled from a summary of real graphs.

    summary = summarize(real_graphs)                  # a few tens of KB of JSON: commit it
    g = realistic_graph(summary, seed=7, tags={...})  # one graph drawn from it, deterministic per seed

The summary (bench/corpus/gemma-2-2b-clt-hp.json, made by `python -m circuit_atlas.corpus summarize
DIR OUT` from the 57 Gemma-2-2B CLT graphs in ../shared) keeps, per real graph, its size (feature,
error and logit nodes, edges, prompt length); the quantiles of node degrees (in and out, per kind),
of edge weights (signed, per (source kind, target kind)), activations, influences and logit
probabilities; the share of edges of each kind; where features and error nodes sit (layer, position);
and the features that recur, each with the share of graphs it occurs in.

A drawn graph takes the shape of one real graph (chosen at random), keeps each recurring feature with
its share as probability (so a feature in all 57 graphs is in every drawn graph), and fills the rest
with rare features drawn uniformly from the transcoder set's ids (the real features seen once). Edges
respect attribution order (source layer < target layer, source position <= target position); each
node gets an in- and an out-propensity drawn from its kind's degree distribution, and edges of each
kind are drawn by propensity until the real share of that kind is reached. Prompts are the real
template with content words drawn from a Zipf vocabulary, so tokens recur across graphs as they do
in a study corpus. `compare(summary, graphs)` prints the drawn corpus next to the summary.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from circuit_atlas.graph import Graph, Node

QUANTILES = np.linspace(0.0, 1.0, 101)
KINDS = ("embedding", "feature", "error", "logit")
VOCAB = 20_000          # content words of drawn prompts and logits, Zipf-distributed
SUMMARY = Path(__file__).resolve().parents[1] / "bench" / "corpus" / "gemma-2-2b-clt-hp.json"


def _q(values) -> list[float]:
    values = np.asarray(list(values), dtype=np.float64)
    return [round(float(x), 6) for x in np.quantile(values, QUANTILES)] if len(values) else []


def summarize(graphs: list[Graph]) -> dict:
    """The distribution summary `realistic_graph` draws from (plain JSON-able dict)."""
    shapes, out_deg, in_deg, weights, kinds = [], {}, {}, {}, Counter()
    df, occ_all, positions, layers, err_layers, err_pos = Counter(), {}, Counter(), Counter(), Counter(), Counter()
    act, infl, probs = [], {k: [] for k in KINDS}, []
    for g in graphs:
        k = np.array([n.kind for n in g.nodes])
        shapes.append([int((k == "feature").sum()), int((k == "error").sum()), int((k == "logit").sum()),
                       g.n_edges, len(g.prompt_tokens)])
        od, idg = np.bincount(g.edge_source, minlength=len(k)), np.bincount(g.edge_target, minlength=len(k))
        for kind in KINDS:
            out_deg.setdefault(kind, []).extend(od[k == kind].tolist())
            in_deg.setdefault(kind, []).extend(idg[k == kind].tolist())
        pair = np.char.add(np.char.add(k[g.edge_source], ">"), k[g.edge_target])
        for p in np.unique(pair):
            weights.setdefault(str(p), []).extend(g.edge_weight[pair == p].tolist())
        kinds.update(pair.tolist())
        counts = Counter(g.feature_key(n) for n in g.nodes if n.kind == "feature")
        df.update(counts.keys())
        for key, c in counts.items():
            occ_all.setdefault(key, []).append(c)
        for n in g.nodes:
            if n.kind == "feature":
                positions[n.pos] += 1
                layers[n.layer] += 1
                act.append(n.activation)
            elif n.kind == "error":
                err_layers[n.layer] += 1
                err_pos[n.pos] += 1
            elif n.kind == "logit" and n.logit_prob is not None:
                probs.append(n.logit_prob)
            if n.influence is not None:
                infl[n.kind].append(n.influence)
    g0 = graphs[0]
    recurring = sorted([int(key.rsplit("/", 2)[-2]), int(key.rsplit("/", 1)[-1]), d,
                        int(round(float(np.median(occ_all[key]))))] for key, d in df.items() if d >= 2)
    rare = [key for key, d in df.items() if d == 1]
    return {
        "source": f"{len(graphs)} graphs, model {g0.model}, transcoder set {g0.transcoder_set}",
        "model": g0.model, "transcoder_set": g0.transcoder_set, "n_layers": g0.n_layers,
        "template": list(g0.prompt_tokens[:5]),
        "n_graphs": len(graphs),
        "shapes": shapes,   # per real graph: [feature nodes, error nodes, logit nodes, edges, prompt tokens]
        "edge_kinds": {p: n / sum(kinds.values()) for p, n in sorted(kinds.items())},
        "out_degree": {kind: _q(v) for kind, v in out_deg.items() if any(v)},
        "in_degree": {kind: _q(v) for kind, v in in_deg.items() if any(v)},
        "weight": {p: _q(v) for p, v in sorted(weights.items())},
        "activation": _q(act),
        "influence": {kind: _q(v) for kind, v in infl.items() if v},
        "logit_prob_by_rank": [round(float(x), 6) for x in
                               np.mean([(sorted((n.logit_prob or 0.0 for n in g.nodes if n.kind == "logit"),
                                               reverse=True)[:10] + [0.0] * 10)[:10] for g in graphs], axis=0)],
        "feature_layer": [layers.get(i, 0) for i in range(g0.n_layers)],
        "feature_pos": [positions.get(i, 0) for i in range(max(positions) + 1)],
        "error_layer": [err_layers.get(i, 0) for i in range(g0.n_layers)],
        "error_pos": [err_pos.get(i, 0) for i in range(max(err_pos) + 1)],
        "recurring": recurring,   # [layer, index, graphs it occurs in, median occurrences per graph]
        "rare_layer": [sum(1 for key in rare if int(key.rsplit("/", 2)[-2]) == i) for i in range(g0.n_layers)],
        "rare_occurrences": sorted(Counter(occ_all[key][0] for key in rare).items()),
        "features_per_layer": 2_500_000 // g0.n_layers,   # the CLT's 2.5M features, evenly over layers
    }


def load_summary(path: str | Path = SUMMARY) -> dict:
    return json.loads(Path(path).read_text())


def _draw(rng, quantiles: list[float], size) -> np.ndarray:
    """Samples from a distribution given by its 101 quantiles (inverse CDF, linear in between)."""
    return np.interp(rng.random(size), QUANTILES, quantiles)


def _choice(rng, weights, size) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _token(i: int) -> str:
    return f" w{i}"


def realistic_graph(summary: dict, seed: int, tags: dict[str, str] | None = None, scale: float = 1.0) -> Graph:
    """One graph drawn from `summary`, the same for the same seed. `scale` multiplies node and edge
    counts (tests use small graphs of the same shape)."""
    rng = np.random.default_rng(seed)
    n_layers, s = summary["n_layers"], summary
    n_feat, n_err, n_logit, n_edges, n_ctx = s["shapes"][rng.integers(len(s["shapes"]))]
    n_feat, n_err, n_edges = (max(2, int(round(x * scale))) for x in (n_feat, n_err, n_edges))
    zipf = lambda size: (rng.zipf(1.3, size) - 1) % VOCAB           # recurring content words
    words = [int(t) for t in zipf(n_ctx - len(s["template"]))]
    tokens = list(s["template"]) + [_token(w) for w in words]
    token_ids = [VOCAB + i for i in range(len(s["template"]))] + words   # template tokens after the vocabulary
    nodes = [Node(f"E_{t}_{p}", "embedding", -1, p, token_id=t, token=tok)
             for p, (t, tok) in enumerate(zip(token_ids, tokens))]

    # features: recurring ones with their share of graphs as probability, then rare ones
    rec = np.asarray(s["recurring"], dtype=np.int64).reshape(-1, 4)
    keep = rec[rng.random(len(rec)) < rec[:, 2] / s["n_graphs"]]
    rare_occ = np.asarray(s["rare_occurrences"], dtype=np.int64).reshape(-1, 2)
    chosen: list[tuple[int, int, int]] = [(int(l), int(f), int(k)) for l, f, _, k in keep]
    n_rare = max(0, n_feat - int(keep[:, 3].sum()))
    rare_layers = _choice(rng, s["rare_layer"], n_rare)
    rare_ids = rng.integers(0, s["features_per_layer"], n_rare)
    rare_k = rare_occ[_choice(rng, rare_occ[:, 1], n_rare), 0]
    chosen += list(zip(rare_layers.tolist(), rare_ids.tolist(), rare_k.tolist()))
    chosen_arr = np.asarray(chosen, dtype=np.int64).reshape(-1, 3)              # (F, 3) layer, index, occurrences
    pos_w = np.asarray(s["feature_pos"][:n_ctx], dtype=np.float64) + 1e-3
    keys = rng.random((len(chosen_arr), n_ctx)) ** (1.0 / pos_w)              # weighted sampling without
    order = np.argsort(-keys, axis=1)                                          # replacement (Efraimidis-Spirakis)
    take = np.arange(n_ctx)[None, :] < np.minimum(chosen_arr[:, 2:3], n_ctx)  # the first k positions of each row
    f_row, f_pos = np.nonzero(take)
    f_pos = order[f_row, f_pos]
    f_layer, f_index = chosen_arr[f_row, 0], chosen_arr[f_row, 1]
    _, first = np.unique(np.stack([f_layer, f_index, f_pos], 1), axis=0, return_index=True)
    first = np.sort(first)[:n_feat]
    acts = _draw(rng, s["activation"], len(first)).astype(np.float32)
    infls = _draw(rng, s["influence"]["feature"], len(first)).astype(np.float32)
    for i, a, inf in zip(first.tolist(), acts.tolist(), infls.tolist()):
        layer, f, p = int(f_layer[i]), int(f_index[i]), int(f_pos[i])
        nodes.append(Node(f"{layer}_{f}_{p}", "feature", layer, p, feature=f, activation=a, influence=inf))
    cell_w = np.outer(np.asarray(s["error_layer"], dtype=np.float64) + 1e-3,
                      np.asarray(s["error_pos"][:n_ctx], dtype=np.float64) + 1e-3).ravel()   # (layer, position)
    cells = np.argsort(-(rng.random(len(cell_w)) ** (1.0 / cell_w)))[:n_err]             # without replacement
    err_layers, err_pos = cells // n_ctx, cells % n_ctx
    errors = sorted(set(zip(err_layers.tolist(), err_pos.tolist())))
    for (layer, p), inf in zip(errors, _draw(rng, s["influence"]["error"], len(errors)).astype(np.float32).tolist()):
        nodes.append(Node(f"{layer}_-1_{p}", "error", layer, p, influence=inf))
    logit_tokens = list(dict.fromkeys(int(t) for t in zipf(4 * n_logit)))[:n_logit]
    for rank, t in enumerate(logit_tokens):
        nodes.append(Node(f"{n_layers + 1}_{t}_{n_ctx - 1}", "logit", n_layers, n_ctx - 1, token_id=t,
                          token=_token(t), logit_prob=float(np.float32(s["logit_prob_by_rank"][min(rank, 9)]))))

    kind = np.array([n.kind for n in nodes])
    layer = np.array([n.layer for n in nodes])
    pos = np.array([n.pos for n in nodes])
    out_p = np.zeros(len(nodes))
    in_p = np.zeros(len(nodes))
    for k in KINDS:
        idx = np.flatnonzero(kind == k)
        if k in s["out_degree"]:
            out_p[idx] = _draw(rng, s["out_degree"][k], len(idx)) + 0.5
        if k in s["in_degree"]:
            in_p[idx] = _draw(rng, s["in_degree"][k], len(idx)) + 0.5
    src_all, dst_all = [], []
    classes = sorted(s["edge_kinds"].items(), key=lambda kv: kv[0] == "feature>feature")
    for pair, share in classes:         # feature>feature last: it takes up what a small graph cannot hold
        a, b = pair.split(">")
        sa, sb = np.flatnonzero(kind == a), np.flatnonzero(kind == b)
        want = int(round(share * n_edges))
        if pair == "feature>feature":
            want = n_edges - sum(len(x) for x in src_all)
        if want == 0 or len(sa) == 0 or len(sb) == 0:
            continue
        src, dst = np.repeat(sa, len(sb)), np.tile(sb, len(sa))               # every pair of the kinds ...
        ok = (layer[src] < layer[dst]) & (pos[src] <= pos[dst])                # ... in attribution order
        src, dst = src[ok], dst[ok]
        keys = rng.random(len(src)) ** (1.0 / (out_p[src] * in_p[dst]))       # weighted, without replacement
        top = np.argpartition(-keys, want)[:want] if want < len(src) else np.arange(len(src))
        src_all.append(src[np.sort(top)])
        dst_all.append(dst[np.sort(top)])
    src = np.concatenate(src_all)
    dst = np.concatenate(dst_all)
    pair = np.char.add(np.char.add(kind[src], ">"), kind[dst])
    weight = np.zeros(len(src), dtype=np.float32)
    for p in np.unique(pair):
        sel = pair == p
        weight[sel] = _draw(rng, s["weight"][str(p)], int(sel.sum()))
    prompt = "".join(tokens)
    return Graph(
        prompt=prompt, prompt_tokens=tokens, model=s["model"], transcoder_set=s["transcoder_set"],
        n_layers=n_layers, nodes=nodes, edge_source=src, edge_target=dst, edge_weight=weight,
        slug=f"realistic-{seed}", node_threshold=0.8, edge_threshold=0.85,
        generator={"name": "circuit_atlas.corpus", "seed": seed, "summary": s["source"]}, tags=dict(tags or {}),
    )


def compare(summary: dict, graphs: list[Graph]) -> list[tuple[str, float, float]]:
    """(statistic, summary's value, drawn corpus's value) for the main shape statistics."""
    drawn = summarize(graphs)
    mean = lambda shapes, i: float(np.mean([x[i] for x in shapes]))
    rows = [("feature nodes per graph", mean(summary["shapes"], 0), mean(drawn["shapes"], 0)),
            ("edges per graph", mean(summary["shapes"], 3), mean(drawn["shapes"], 3))]
    for name, q in (("median |weight| feature>feature", "feature>feature"), ("median weight embedding>feature",
                                                                             "embedding>feature")):
        rows.append((name, summary["weight"][q][50], drawn["weight"][q][50]))
    for kind in ("feature", "embedding"):
        rows.append((f"median out-degree {kind}", summary["out_degree"][kind][50], drawn["out_degree"][kind][50]))
        rows.append((f"90% out-degree {kind}", summary["out_degree"][kind][90], drawn["out_degree"][kind][90]))
    rows.append(("median in-degree feature", summary["in_degree"]["feature"][50], drawn["in_degree"]["feature"][50]))
    rows.append(("90% in-degree feature", summary["in_degree"]["feature"][90], drawn["in_degree"]["feature"][90]))
    share = lambda smry: sum(r[2] for r in smry["recurring"] if r[2] == smry["n_graphs"])
    rows.append(("features in every graph", share(summary) / summary["n_graphs"], share(drawn) / drawn["n_graphs"]))
    return rows


def _main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="summarize real graphs into the JSON realistic_graph draws from")
    ap.add_argument("command", choices=["summarize"])
    ap.add_argument("folder", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    from circuit_atlas.ingest.formats import read_graph_file

    graphs = [read_graph_file(p) for p in sorted(args.folder.glob("*.json"))]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summarize(graphs), separators=(",", ":")) + "\n")
    tmp.replace(args.out)
    print(f"{args.out}: summary of {len(graphs)} graphs, {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    _main()
