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

from circuit_atlas.queries.registry import analysis, run


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
    totals = {r["lang"]: r["n_graphs"] for r in run(store, "_concept-lang-graphs", concept=concept)}
    per = defaultdict(dict)
    for r in run(store, "_multilingual-feature-langs", concept=concept):
        per[r["fkey"]][r["lang"]] = {"lang": r["lang"], "n_graphs": r["n_graphs"], "share": r["n_graphs"] / totals[r["lang"]],
                                     "activation": r["activation"], "influence": r["influence"]}
    rows = []
    for fkey, langs in per.items():
        if len(langs) < k:
            continue
        shares = [langs[lang]["share"] if lang in langs else 0.0 for lang in totals]
        rows.append({"fkey": fkey, "n_langs": len(langs), "consistency": min(shares),
                     "mean_share": sum(shares) / len(shares), "per_lang": [langs[lang] for lang in sorted(langs)]})
    info = {r["fkey"]: r for r in run(store, "_labels-of", keys=sorted(per))} if per else {}
    rows.sort(key=lambda r: (-r["consistency"], -r["mean_share"], info[r["fkey"]]["layer"], r["fkey"]))
    return [{"fkey": r["fkey"], "layer": info[r["fkey"]]["layer"], "label": info[r["fkey"]]["label"], **r}
            for r in rows[:limit]]


@analysis("multilingual-iou")
def multilingual_iou(store, concept: str, max_pairs: int) -> list[dict]:
    """Per language pair and layer: mean IoU of active features of parallel prompts vs unrelated prompts.

    Needs graphs tagged lang=<code> and item=<id> (parallel prompts share (concept, item)).
    `depth` is layer / (n_layers - 1). `baseline` averages over prompt pairs of different items in
    the same two languages (at most $max_pairs of them per language pair, chosen deterministically).
    After a pair's layers comes its whole-graph row (layer and depth null): the IoU of all the
    features of the two graphs, every layer together.

    Parameters:
      $concept: str = ""       only graphs tagged concept=<value> ("" for all)
      $max_pairs: int = 2000   cap on unrelated pairs per language pair for the baseline
    Example row:
      {"lang_a": "en", "lang_b": "fr", "layer": 2, "depth": 0.67, "iou": 0.41, "baseline": 0.12, "n_pairs": 8, "n_baseline_pairs": 56}
    """
    rows = run(store, "_active-features", concept=concept)
    features = defaultdict(dict)         # gid -> layer -> set of feature keys
    info = {}                            # gid -> (lang, (concept, item), n_layers)
    for r in rows:
        features[r["gid"]][r["layer"]] = set(r["features"])
        info[r["gid"]] = (r["lang"], (r["concept"] or "", r["item"]), r["n_layers"])
    by_lang = defaultdict(list)
    for gid in sorted(info):
        by_lang[info[gid][0]].append(gid)
    n_layers = max((i[2] for i in info.values()), default=0)
    out = []
    for lang_a, lang_b in combinations(sorted(by_lang), 2):
        pairs = [(g1, g2) for g1 in by_lang[lang_a] for g2 in by_lang[lang_b]]
        parallel = [p for p in pairs if info[p[0]][1] == info[p[1]][1]]
        unrelated = [p for p in pairs if info[p[0]][1] != info[p[1]][1]]
        if len(unrelated) > max_pairs:  # deterministic thinning, every k-th pair
            unrelated = unrelated[:: -(-len(unrelated) // max_pairs)]
        for layer in [*range(n_layers), None]:
            iou = _mean_iou(features, parallel, layer)
            if iou is None:
                continue
            out.append({"lang_a": lang_a, "lang_b": lang_b, "layer": layer,
                        "depth": None if layer is None else layer / max(n_layers - 1, 1), "iou": iou,
                        "baseline": _mean_iou(features, unrelated, layer),
                        "n_pairs": len(parallel), "n_baseline_pairs": len(unrelated)})
    return out


def _mean_iou(features: dict, pairs: list, layer: int | None) -> float | None:
    """Mean IoU of the pairs' feature sets at `layer` (None: the whole graph, every layer's features)."""
    scores = []
    for g1, g2 in pairs:
        if layer is None:
            f1, f2 = set().union(*features[g1].values()), set().union(*features[g2].values())
        else:
            f1, f2 = features[g1].get(layer, set()), features[g2].get(layer, set())
        if f1 or f2:
            scores.append(len(f1 & f2) / len(f1 | f2))
    return sum(scores) / len(scores) if scores else None


def plot_iou(rows: list[dict], out_stem: str | Path, title: str = "") -> list[Path]:
    """Draw IoU against normalised layer depth, one line per language pair, its baseline dashed.

    Writes <out_stem>.png and <out_stem>.svg and returns both paths.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = [r for r in rows if r["layer"] is not None]          # whole-graph rows have no depth
    pairs = sorted({(r["lang_a"], r["lang_b"]) for r in rows})
    for i, pair in enumerate(pairs):
        pts = sorted((r["depth"], r["iou"], r["baseline"]) for r in rows if (r["lang_a"], r["lang_b"]) == pair)
        color = f"C{i % 10}"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", ms=3, color=color, label=f"{pair[0]}–{pair[1]}")
        base = [(p[0], p[2]) for p in pts if p[2] is not None]
        ax.plot([p[0] for p in base], [p[1] for p in base], "--", color=color, alpha=0.6)
    ax.plot([], [], "--", color="gray", label="unrelated prompts (baseline)")
    ax.set_xlabel("normalised layer depth")
    ax.set_ylabel("IoU of active features")
    ax.set_title(title or "Feature sharing across languages (dashed: unrelated-prompt baseline)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths
