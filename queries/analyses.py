"""Named queries that need a little Python around their Cypher: a choice of statement, or a join of results.

Each function is registered under its query name; its docstring is its documentation (see registry.py).
"""
from __future__ import annotations

import statistics

from circuit_atlas.queries.registry import QueryError, analysis, run


@analysis("search-graphs")
def search_graphs(store, text: str, tags: list, limit: int) -> list[dict]:
    """Graphs by prompt text and tags.

    A graph matches when its prompt contains $text (case-insensitive) and it carries every tag in $tags.

    Parameters:
      $text: str = ""          a piece of the prompt ("" matches every prompt)
      $tags: list = []         tags "key=value" the graph must all carry (comma-separated on the command line)
      $limit: int = 100        rows returned
    Example row:
      {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "slug": "cold-clt-hp", "prompt": "<bos>The saying goes: Fire is to heat as ice is to", "model": "gemma-2-2b", "n_edges": 7660, "tags": ["set=analogies"]}
    """
    if not tags:  # the embedded engine cannot type an empty list parameter
        return run(store, "_graphs-by-text", text=text, limit=limit)
    return run(store, "_graphs-by-text-and-tags", text=text, tags=sorted(set(tags)), limit=limit)


@analysis("common-paths")
def common_paths(store, hops: int, min_weight: float, token: str, tag: str, rank_by: str, limit: int) -> list[dict]:
    """Recurring paths from embeddings through features to logits, counted across graphs.

    A path is identified by its sequence of global features (f1 .. f<hops-1>); only edges with
    |weight| >= $min_weight are walked (the strong-edge restriction keeps a 3-hop search over 10M
    edges near a second). Ranked by the graphs it occurs in, then by its mean strength (product of
    |weight|, strongest path per graph) or, with rank_by=min, its best bottleneck (min |weight|).

    Parameters:
      $hops: int = 3           edges per path, 2 to 4 (2: embedding -> feature -> logit)
      $min_weight: float = 1.0 only edges with at least this |weight|
      $token: str = ""         only paths ending in this logit token, e.g. " cold" ("" for any)
      $tag: str = ""           only graphs with this tag "key=value" ("" for all)
      $rank_by: str = "product" "product" (mean strength) or "min" (bottleneck) after graph count
      $limit: int = 25         rows returned
    Example row:
      {"f1": "mntss/clt-gemma-2-2b-2.5M/0/18753", "f2": "mntss/clt-gemma-2-2b-2.5M/1/12928", "n_graphs": 30, "n_paths": 41, "mean_strength": 9.1, "max_strength": 40.2, "max_bottleneck": 2.9}
    """
    if hops not in (2, 3, 4):
        raise QueryError(f"common-paths: hops={hops}; use 2, 3 or 4")
    if rank_by not in ("product", "min"):
        raise QueryError(f"common-paths: rank_by={rank_by!r}; use 'product' or 'min'")
    return run(store, f"_common-paths-{hops}", min_weight=min_weight, token=token, tag=tag,
               rank_by=rank_by, limit=limit)


@analysis("feature-profile")
def feature_profile(store, fkey: str, top: int) -> list[dict]:
    """Everything about one feature: its label, graphs, activation distribution, strongest inputs and outputs.

    One row. `upstream`/`downstream` aggregate direct edges over every graph (see feature-upstream);
    `graphs` lists the graphs it occurs in, strongest activation first.

    Parameters:
      $fkey: str               the global feature key, "<transcoder set>/<layer>/<feature>"
      $top: int = 10           neighbours and graphs listed
    Example row:
      {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "label": "", "n_graphs": 57, "n_occurrences": 712, "activation": {"min": 0.5, "median": 4.1, "mean": 4.3, "max": 16.0, "quartiles": [2.5, 4.1, 6.0]}, "graphs": [], "upstream": [], "downstream": []}
    """
    feature = run(store, "_feature", fkey=fkey)
    if not feature:
        raise QueryError(f"feature-profile: no feature {fkey!r} in the store; find keys with hubs-by-graphs or search-features")
    occurrences = run(store, "_feature-occurrences", fkey=fkey)
    activations = sorted(o["activation"] for o in occurrences if o["activation"] is not None)
    return [{
        "fkey": fkey, "layer": feature[0]["layer"], "label": feature[0]["label"],
        "n_graphs": len({o["gid"] for o in occurrences}), "n_occurrences": len(occurrences),
        "activation": _distribution(activations),
        "graphs": run(store, "feature-graphs", fkey=fkey, limit=top),
        "upstream": run(store, "feature-upstream", fkey=fkey, limit=top),
        "downstream": run(store, "feature-downstream", fkey=fkey, limit=top),
    }]


def _distribution(values: list[float]) -> dict:
    if not values:
        return {"min": None, "median": None, "mean": None, "max": None, "quartiles": None}
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"min": values[0], "median": statistics.median(values), "mean": statistics.fmean(values),
            "max": values[-1], "quartiles": quartiles}


UNCHANGED = 1e-5  # relative change below float32 summation noise: not reported as a change


@analysis("graph-diff")
def graph_diff(store, a: str, b: str, limit: int) -> list[dict]:
    """What is in one graph (or tag set) and not the other: features, nodes and edges, with weight changes.

    $a and $b each select graphs: a graph id, a slug, or a tag "key=value" (a set). Features match
    by global key, nodes by node id, edges by (source node id, target node id). A value is the sum
    over the set divided by its size (absent = 0): activation for features and nodes, weight for
    edges; so for two single graphs it is the plain value. Rows: everything only in a or only in
    b, and what is in both with a changed value, largest |change| first.

    Parameters:
      $a: str                  graph id, slug or tag "key=value"
      $b: str                  graph id, slug or tag "key=value"
      $limit: int = 200        rows returned
    Example row:
      {"item": "edge", "key": "E_2_0 -> 0_19204_1", "status": "both", "a": 1.28, "b": 0.91, "change": -0.37}
    """
    sets = {}
    for side, selector in (("a", a), ("b", b)):
        gids = [r["gid"] for r in run(store, "_graphs-selected", selector=selector)]
        if not gids:
            raise QueryError(f"graph-diff: ${side}={selector!r} names no graph (give a graph id, slug, or tag key=value)")
        sets[side] = (gids, run(store, "_graph-set-nodes", gids=gids), run(store, "_graph-set-edges", gids=gids))
    values = {}
    for side, (gids, nodes, edges) in sets.items():
        n = len(gids)
        v = values[side] = {}
        for r in nodes:
            v[("node", r["node_id"])] = (r["activation"] or 0.0) / n
            if r["fkey"] is not None:
                v[("feature", r["fkey"])] = v.get(("feature", r["fkey"]), 0.0) + (r["activation"] or 0.0) / n
        for r in edges:
            v[("edge", f"{r['source']} -> {r['target']}")] = r["weight"] / n
    rows = []
    for key in values["a"].keys() | values["b"].keys():
        in_a, in_b = key in values["a"], key in values["b"]
        va, vb = values["a"].get(key), values["b"].get(key)
        change = (vb or 0.0) - (va or 0.0)
        if in_a and in_b and abs(change) <= UNCHANGED * max(abs(va), abs(vb)):
            continue
        status = "both" if in_a and in_b else ("only_a" if in_a else "only_b")
        rows.append({"item": key[0], "key": key[1], "status": status, "a": va, "b": vb, "change": change})
    rows.sort(key=lambda r: (-abs(r["change"]), r["item"], r["key"]))
    return rows[:limit]
