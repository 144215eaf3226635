"""Cross-language feature sharing: the Biology paper's IoU of active features of parallel prompts.

Tagging convention (docs/queries.md): every graph of a multilingual set carries `lang=<code>` and
`item=<id>`, and optionally `concept=<name>`. Graphs with the same (concept, item) in different
languages are *parallel prompts* (translations of one another). For each language pair and layer,
the IoU |F1 ∩ F2| / |F1 ∪ F2| of the two graphs' active feature sets at that layer is averaged over
parallel pairs; the baseline is the same average over unrelated pairs (different items) in the same
two languages. Layers where both sets are empty are skipped.
"""
from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from circuit_atlas.queries.analyses import feature_labels
from circuit_atlas.queries.registry import analysis, run
from circuit_atlas.store.aggregates import decode_blob


@analysis("shared-multilingual-features")
def shared_multilingual_features(store, concept: str, k: int, limit: int) -> list[dict]:
    """Features the graphs of one concept share across at least k languages, the most consistent first.

    Uses the tagging convention of docs/queries.md: graphs carry `concept=<name>` and `lang=<code>`.
    For each language of the concept, a feature's `share` is the fraction of that language's graphs
    (of this concept) it occurs in; its `consistency` is its smallest share over all the concept's
    languages (0 when it is missing from one), so 1.0 means "in every graph of every language".
    `mean_share` averages the shares. Ranked by consistency, then mean_share (then layer and key).
    `per_lang` holds, for each language it occurs in, its graphs, share, mean activation and best
    (smallest) cumulative influence.

    Parameters:
      $concept: str            the concept tag value, e.g. "antonym"
      $k: int = 2              minimum number of languages the feature occurs in
      $limit: int = 100        rows returned
    Example row:
      {"fkey": "organisms/planted-plt-seed0/1/17", "layer": 1, "label": "\\"big\\" → say \\"grand\\"", "n_langs": 3, "consistency": 0.75, "mean_share": 0.92, "per_lang": [{"lang": "en", "n_graphs": 4, "share": 1.0, "activation": 2.1, "influence": 0.12}]}
    """
    rows = run(store, "_concept-graph-features", concept=concept)
    langs = sorted({r["lang"] for r in rows})
    if not langs:
        return []
    totals = {lang: len({r["gid"] for r in rows if r["lang"] == lang}) for lang in langs}
    lang_index = {lang: j for j, lang in enumerate(langs)}
    t = _feature_tables(rows, lambda r: lang_index[r["lang"]])       # one row per (graph, lang, feature)
    keys, feature = np.unique(t["code"], return_inverse=True)          # (F,) global features
    cell = feature * len(langs) + t["group"]                          # (feature, lang)
    size = len(keys) * len(langs)
    n_graphs = np.bincount(cell, minlength=size).reshape(-1, len(langs))          # (F, L)
    act_sum = np.bincount(cell, t["act_sum"], minlength=size).reshape(-1, len(langs))
    act_n = np.bincount(cell, t["act_n"], minlength=size).reshape(-1, len(langs))
    best = np.full(size, np.nan)
    np.fmin.at(best, cell, t["best_influence"])
    best = best.reshape(-1, len(langs))
    shares = n_graphs / np.array([totals[lang] for lang in langs], dtype=np.float64)     # (F, L)
    n_langs = (n_graphs > 0).sum(axis=1)
    chosen = np.flatnonzero(n_langs >= k)
    consistency, mean_share = shares.min(axis=1), shares.mean(axis=1)
    layer = _layer(keys)
    chosen = sorted(chosen.tolist(), key=lambda i: (-consistency[i], -mean_share[i], layer[i], t["key_of"](keys[i])))[:limit]
    fkeys = [t["key_of"](keys[i]) for i in chosen]
    labels = {r["fkey"]: r["label"] for r in feature_labels(store, fkeys)}
    out = []
    for i, fkey in zip(chosen, fkeys):
        per_lang = [{"lang": lang, "n_graphs": int(n_graphs[i, j]), "share": float(shares[i, j]),
                     "activation": float(act_sum[i, j] / act_n[i, j]) if act_n[i, j] else None,
                     "influence": None if np.isnan(best[i, j]) else float(best[i, j])}
                    for j, lang in enumerate(langs) if n_graphs[i, j]]
        out.append({"fkey": fkey, "layer": int(layer[i]), "label": labels.get(fkey), "n_langs": int(n_langs[i]),
                    "consistency": float(consistency[i]), "mean_share": float(mean_share[i]), "per_lang": per_lang})
    return out


def _feature_tables(rows: list[dict], group) -> dict:
    """The feature tables (Graph.features) of `rows`, concatenated: per (row, feature) its global
    feature code, the row's `group(row)`, layer and stats; `key_of(code)` spells a code's feature key."""
    from circuit_atlas.graph import feature_key

    tsets = sorted({r["transcoder_set"] or "" for r in rows})
    parts = {name: [] for name in ("tset", "layer", "feature", "group", "act_sum", "act_n", "best_influence", "row")}
    for i, r in enumerate(rows):
        t = decode_blob(r["features"])
        n = len(t["layer"])
        parts["tset"].append(np.full(n, tsets.index(r["transcoder_set"] or ""), np.int64))
        parts["group"].append(np.full(n, group(r), np.int64))
        parts["row"].append(np.full(n, i, np.int64))
        for name in ("layer", "feature", "act_sum", "act_n", "best_influence"):
            parts[name].append(t[name])
    cat = {name: np.concatenate(v) if v else np.zeros(0) for name, v in parts.items()}
    layers = cat["layer"].astype(np.int64)
    feats = cat["feature"].astype(np.int64)
    # (transcoder set, layer, feature) as one integer: feature layers are 0..4095, indices < 2^40
    code = (cat["tset"].astype(np.int64) << 52) | ((layers & 0xFFF) << 40) | feats
    return {"code": code, "group": cat["group"].astype(np.int64), "row": cat["row"].astype(np.int64),
            "layer": layers, "act_sum": cat["act_sum"].astype(np.float64), "act_n": cat["act_n"].astype(np.float64),
            "best_influence": cat["best_influence"].astype(np.float64),
            "key_of": lambda c: feature_key(tsets[int(c) >> 52], _layer(c), int(c) & ((1 << 40) - 1))}


def _layer(code):
    """The layer of a global feature code of _feature_tables (works on arrays too)."""
    return (code >> 40) & 0xFFF


@analysis("multilingual-iou")
def multilingual_iou(store, concept: str, max_pairs: int) -> list[dict]:
    """Per language pair and layer: mean IoU of active features of parallel prompts vs unrelated prompts.

    Needs graphs tagged lang=<code> and item=<id> (parallel prompts share (concept, item)).
    `depth` is layer / (n_layers - 1). `baseline` averages over prompt pairs of different items in
    the same two languages (at most $max_pairs of them per language pair, chosen deterministically).
    After a pair's layers comes its whole-graph row (layer and depth null): the IoU of all the
    features of the two graphs, every layer together.

    `iou_sem` is the standard error of `iou` over the parallel pairs (None for one pair); `model` names the
    graphs' model(s), comma-separated.

    Parameters:
      $concept: str = ""       only graphs tagged concept=<value> ("" for all)
      $max_pairs: int = 2000   cap on unrelated pairs per language pair for the baseline
    Example row:
      {"lang_a": "en", "lang_b": "fr", "layer": 2, "depth": 0.67, "iou": 0.41, "baseline": 0.12, "n_pairs": 8, "n_baseline_pairs": 56, "iou_sem": 0.05, "model": "organisms/planted-seed0"}
    """
    rows = run(store, "_graph-features", concept=concept)
    gids = sorted({r["gid"] for r in rows})
    info = {}                            # gid -> (lang, (concept, item), n_layers)
    model = {}                           # gid -> model name
    for r in rows:
        info[r["gid"]] = (r["lang"], (r["concept"] or "", r["item"]), r["n_layers"])
        model[r["gid"]] = r.get("model") or ""
    first = {}
    for r in rows:                       # one feature table per graph (a graph with two lang tags is listed twice)
        first.setdefault(r["gid"], r)
    index = {g: i for i, g in enumerate(gids)}
    t = _feature_tables([first[g] for g in gids], lambda r: index[r["gid"]])
    n_layers = max((i[2] for i in info.values()), default=0)
    sets = _FeatureSets(t, len(gids), n_layers)
    by_lang = defaultdict(list)                   # lang -> graph numbers (index), in gid order
    for gid in gids:
        by_lang[info[gid][0]].append(index[gid])
    prompt = {}                                   # (concept, item) -> a number: parallel prompts share it
    same = np.array([prompt.setdefault(info[g][1], len(prompt)) for g in gids], np.int64)
    out = []
    for lang_a, lang_b in combinations(sorted(by_lang), 2):
        ga, gb = np.array(by_lang[lang_a]), np.array(by_lang[lang_b])
        # every (a, b) pair in row order (a outer, b inner), as flat positions in the (A, B) grid
        parallel_pairs = same[ga][:, None] == same[gb][None, :]
        parallel = np.flatnonzero(parallel_pairs)
        unrelated = np.flatnonzero(~parallel_pairs)
        if len(unrelated) > max_pairs:  # deterministic thinning, every k-th pair
            unrelated = unrelated[:: -(-len(unrelated) // max_pairs)]
        in_parallel = np.unique(np.concatenate([ga[parallel // len(gb)], gb[parallel % len(gb)]]))
        models = ", ".join(sorted({model[gids[i]] for i in in_parallel.tolist() if model[gids[i]]}))
        par = sets.ious(ga[parallel // len(gb)], gb[parallel % len(gb)])
        base = sets.ious(ga[unrelated // len(gb)], gb[unrelated % len(gb)])
        for j, layer in enumerate([*range(n_layers), None]):
            if not par[j]:
                continue
            out.append({"lang_a": lang_a, "lang_b": lang_b, "layer": layer,
                        "depth": None if layer is None else layer / max(n_layers - 1, 1),
                        "iou": float(np.mean(par[j])), "baseline": float(np.mean(base[j])) if base[j] else None,
                        "n_pairs": len(parallel), "n_baseline_pairs": len(unrelated),
                        "iou_sem": _sem(par[j]), "model": models})
    return out


class _FeatureSets:
    """Each graph's feature set per layer, as a sparse (graph x feature) matrix: the IoU of many pairs
    at every layer in a few sparse products."""

    def __init__(self, t: dict, n_graphs: int, n_layers: int):
        from scipy import sparse

        keys, col = np.unique(t["code"], return_inverse=True)
        self.col_layer = _layer(keys)
        self.n_layers = n_layers
        self.m = sparse.csr_matrix((np.ones(len(col)), (t["row"], col)), shape=(n_graphs, max(len(keys), 1)))
        layer = np.where((t["layer"] >= 0) & (t["layer"] < n_layers), t["layer"], n_layers)   # others: whole graph only
        width = n_layers + 2                                               # per graph: per layer, other, all
        self.sizes = np.bincount(t["row"] * width + layer, minlength=n_graphs * width).astype(np.float64) \
                       .reshape(n_graphs, width)
        self.sizes[:, -1] = self.sizes[:, :-1].sum(axis=1)

    def ious(self, a: np.ndarray, b: np.ndarray) -> list[list[float]]:
        """Per layer 0..n_layers-1, then the whole graph: the IoU of each pair (a[i], b[i]) (graph
        numbers) where either set is non-empty."""
        if not len(a):
            return [[] for _ in range(self.n_layers + 1)]
        both = self.m[a].multiply(self.m[b]).tocoo()                      # shared features, by pair
        layer = self.col_layer[both.col]
        layer = np.where((layer >= 0) & (layer < self.n_layers), layer, self.n_layers)
        width = self.n_layers + 2
        inter = np.bincount(both.row * width + layer, minlength=len(a) * width).astype(np.float64).reshape(len(a), width)
        inter[:, -1] = inter[:, :-1].sum(axis=1)
        union = self.sizes[a] + self.sizes[b] - inter
        out = []
        for j in [*range(self.n_layers), self.n_layers + 1]:
            seen = union[:, j] > 0
            out.append((inter[seen, j] / union[seen, j]).tolist())
        return out


def _sem(values: list[float]) -> float | None:
    """Standard error of the mean (sample standard deviation / sqrt(n)); None below two values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return (sum((v - mean) ** 2 for v in values) / (n - 1) / n) ** 0.5


def plot_iou(rows: list[dict], out_stem: str | Path, title: str = "", concept: str = "") -> list[Path]:
    """Draw IoU against normalised layer depth, one line per language pair, its baseline dashed.

    Error bars: ±1 standard error of the mean IoU over the parallel prompt pairs. The default title
    says which concept, which model and how many parallel pairs. Writes <out_stem>.png and
    <out_stem>.svg and returns both paths.
    """
    from circuit_atlas.queries.figures import save_figure

    return save_figure(iou_figure(rows, title, concept), out_stem)


def iou_figure(rows: list[dict], title: str = "", concept: str = ""):
    """The matplotlib figure of `plot_iou` (one axes: an error-bar line per language pair, dashed baselines)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    rows = [r for r in rows if r["layer"] is not None]          # whole-graph rows have no depth
    pairs = sorted({(r["lang_a"], r["lang_b"]) for r in rows})
    for i, pair in enumerate(pairs):
        mine = sorted((r for r in rows if (r["lang_a"], r["lang_b"]) == pair), key=lambda r: r["depth"])
        color = f"C{i % 10}"
        n = mine[0]["n_pairs"]
        ax.errorbar([r["depth"] for r in mine], [r["iou"] for r in mine],
                    yerr=[r.get("iou_sem") or 0.0 for r in mine], fmt="-o", ms=3, capsize=3, color=color,
                    label=f"{pair[0]}–{pair[1]} ({n} pair{'s' * (n != 1)})")
        base = [(r["depth"], r["baseline"]) for r in mine if r["baseline"] is not None]
        ax.plot([p[0] for p in base], [p[1] for p in base], "--", color=color, alpha=0.6)
    ax.plot([], [], "--", color="gray", label="unrelated prompts (baseline)")
    ax.set_xlabel("normalised layer depth")
    ax.set_ylabel("IoU of active features (mean ± s.e. over pairs)")
    ax.set_title(title or default_title(rows, concept), fontsize=10)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


def default_title(rows: list[dict], concept: str = "") -> str:
    """E.g. "Feature sharing across languages: concept antonym, organisms/planted-seed0, 24 parallel pairs"."""
    models = sorted({m for r in rows for m in (r.get("model") or "").split(", ") if m})
    n_pairs = sum({(r["lang_a"], r["lang_b"]): r["n_pairs"] for r in rows}.values())
    return (f"Feature sharing across languages: {f'concept {concept}' if concept else 'all concepts'}, "
            f"{', '.join(models) or 'unknown model'}, {n_pairs} parallel pair{'s' * (n_pairs != 1)}\n"
            "(dashed: unrelated-prompt baseline)")
