"""Named queries that need a little Python around their Cypher: a choice of statement, or a join of results.

Each function is registered under its query name; its docstring is its documentation (see registry.py).
"""
from __future__ import annotations

import statistics

from circuit_atlas.queries.explain import unknown_feature
from circuit_atlas.queries.labels import token_text
from circuit_atlas.store.aggregates import PATH_MIN_WEIGHT
from circuit_atlas.store.statements import UNWALKED_GRAPHS
from circuit_atlas.queries.registry import QueryError, analysis, current_timeout, run


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
def common_paths(store, hops: int, min_weight: float, token: str, tag: str, sign: str, rank_by: str,
                 limit: int) -> list[dict]:
    """Recurring signed paths from an input token through features to an output logit, counted across graphs.

    A path is identified by its start token, its sequence of global features (f1 .. f<hops-1>), its
    end token and the signs of its edges; only edges with |weight| >= $min_weight are walked (the
    strong-edge restriction keeps a 3-hop search over 10M edges near a second). Its strength is the
    product of its signed weights. By default only excitatory paths count, every edge positive (the
    start token raises each feature in turn, and the last raises the end logit); sign=inhibitory gives
    the paths of negative strength (the start token lowers the end logit through them), sign=all every
    path, double inhibitions included (net positive). Per graph the strongest such path counts;
    `mean_strength` averages it over graphs and keeps the sign; `max_bottleneck` is the best min |weight|.
    Ranked by the graphs it occurs in, then |mean_strength| (or, with rank_by=min, the bottleneck).
    `path` reads the row: `" Dallas" → [label of f1] → [label of f2] → " Austin"`, each feature by its
    label (its short key "layer/index" when it has none), each edge "→" when it excites, "⊣" when it inhibits.
    With $min_weight >= 1.0 (the default) it reads the strong paths stored at ingest, so it does not
    walk the corpus's edges; below 1.0 it walks them (slower on a large store), and so it does when a
    graph has too many strong paths to store them (a dense, unpruned graph).

    Parameters:
      $hops: int = 3           edges per path, 2 to 4 (2: embedding -> feature -> logit)
      $min_weight: float = 1.0 only edges with at least this |weight|
      $token: str = ""         only paths ending in this logit token, e.g. " Austin" ("" for any)
      $tag: str = ""           only graphs with this tag "key=value" ("" for all)
      $sign: str = "excitatory" "excitatory" (every edge > 0), "inhibitory" (strength < 0) or "all"
      $rank_by: str = "strength" "strength" (|mean strength|) or "min" (bottleneck) after graph count
      $limit: int = 25         rows returned
    Example row:
      {"path": "\\" Dallas\\" → [\\" Dallas\\" → say \\" Texas\\"] → [\\" is\\" → say \\" Austin\\"] → \\" Austin\\"", "start_token": " Dallas", "f1": "mntss/gemma-scope-transcoders/20/15589", "f1_label": "\\" Dallas\\" → say \\" Texas\\"", "f2": "mntss/gemma-scope-transcoders/23/12237", "f2_label": "\\" is\\" → say \\" Austin\\"", "end_token": " Austin", "signs": "+++", "n_graphs": 1, "n_paths": 2, "mean_strength": 412.5, "max_strength": 412.5, "max_bottleneck": 3.1}
    """
    if hops not in (2, 3, 4):
        raise QueryError(f"common-paths: hops={hops}; use 2, 3 or 4")
    if not min_weight >= 0:                    # NaN too
        raise QueryError(f"common-paths: min_weight={min_weight}; give a number >= 0 (an edge's |weight| is "
                         "never negative; 0 walks every edge)")
    if sign not in ("excitatory", "inhibitory", "all"):
        raise QueryError(f"common-paths: sign={sign!r}; use 'excitatory', 'inhibitory' or 'all'")
    rank_by = {"product": "strength"}.get(rank_by, rank_by)      # the name before strengths were signed
    if rank_by not in ("strength", "min"):
        raise QueryError(f"common-paths: rank_by={rank_by!r}; use 'strength' or 'min'")
    common = dict(min_weight=min_weight, token=token, sign=sign, rank_by=rank_by, limit=limit)
    stored = min_weight >= PATH_MIN_WEIGHT and store.query(UNWALKED_GRAPHS, timeout_s=current_timeout())[0]["n"] == 0
    if stored:                                 # answered by the strong paths stored at ingest
        rows = run(store, "_strong-paths-tagged" if tag else "_strong-paths", hops=hops, **common,
                   **({"tag": tag} if tag else {}))
    else:                                      # weaker edges: walk them
        rows = run(store, f"_common-paths-{hops}", tag=tag, **common)
    features = [f"f{i}" for i in range(1, hops)]
    shown = labels_of(store, {r[f] for r in rows for f in features})
    out = []
    for r in rows:
        names = [shown.get(r[f]) or short_key(r[f]) for f in features]
        arrows = ["→" if s == "+" else "⊣" for s in r["signs"]]
        steps = [token_text(r["start_token"])] + [f"[{n}]" for n in names] + [token_text(r["end_token"])]
        path = steps[0] + "".join(f" {a} {s}" for a, s in zip(arrows, steps[1:]))
        row = {"path": path, "start_token": r["start_token"]}
        for f in features:
            row[f], row[f"{f}_label"] = r[f], shown.get(r[f]) or ""
        out.append(row | {k: r[k] for k in ("end_token", "signs", "n_graphs", "n_paths", "mean_strength",
                                               "max_strength", "max_bottleneck")})
    return out


def short_key(fkey: str) -> str:
    """'layer/index' of a global feature key: enough to tell features of one transcoder set apart."""
    return "/".join(fkey.rsplit("/", 2)[-2:])


def labels_of(store, keys) -> dict[str, str]:
    """The label each feature shows, for a set of feature keys ({} for none)."""
    return {r["fkey"]: r["label"] or "" for r in feature_labels(store, keys)}


POINT_LOOKUPS = 200    # up to this many keys: one index lookup each (~1 ms) instead of a scan of every Feature


def feature_labels(store, keys) -> list[dict]:
    """The rows of _labels-of ({fkey, layer, label}) for a set of feature keys, the stored ones.

    The embedded engine joins a list of keys by scanning every Feature (0.5 s at 10,000 realistic
    graphs' 650,000 features), whatever the list's length: a few keys are looked up one by one."""
    keys = sorted({k for k in keys if k})
    if len(keys) > POINT_LOOKUPS:
        return run(store, "_labels-of", keys=keys)
    return [r for k in keys for r in run(store, "_label-of", fkey=k)]


@analysis("feature-upstream")
def feature_upstream(store, fkey: str, limit: int) -> list[dict]:
    """The strongest direct inputs of one feature, aggregated across all graphs it appears in.

    Inputs are grouped by what they are globally: a feature by its key, an embedding or logit by its
    token, an error node by its layer. Ranked by summed |weight| over graphs; `label` is a feature's label.
    Reads the Neighbour aggregates kept at ingest (schema.NEIGHBOUR), not the edges.

    Parameters:
      $fkey: str               the global feature key
      $limit: int = 10         rows returned
    Example row:
      {"kind": "feature", "layer": 0, "fkey": "mntss/clt-gemma-2-2b-2.5M/0/18753", "label": "\\"The\\"", "token": null, "total_weight": 31.2, "total_abs_weight": 33.0, "n_edges": 40, "n_graphs": 38}
    """
    return feature_neighbours(store, fkey, "upstream", limit)


@analysis("feature-downstream")
def feature_downstream(store, fkey: str, limit: int) -> list[dict]:
    """The strongest direct outputs of one feature, aggregated across all graphs it appears in.

    Targets are grouped like feature-upstream: features by key (with their label), logits by token, errors by layer.
    Reads the Neighbour aggregates kept at ingest (schema.NEIGHBOUR), like feature-upstream.

    Parameters:
      $fkey: str               the global feature key
      $limit: int = 10         rows returned
    Example row:
      {"kind": "logit", "layer": 26, "fkey": null, "label": null, "token": " cold", "total_weight": 12.5, "total_abs_weight": 12.5, "n_edges": 3, "n_graphs": 3}
    """
    return feature_neighbours(store, fkey, "downstream", limit)


def feature_neighbours(store, fkey: str, direction: str, limit: int) -> list[dict]:
    """feature-upstream / -downstream: the feature's rows of one direction, strongest |weight| first,
    then kind, layer, feature key, token (nulls as ""); their identities and labels looked up by key.

    Reads rows without their identities (_feature-<direction>-rows) until the last one read is weaker
    than the limit-th, so every row tied with it is in hand, then orders those by identity: the same rows
    as one ORDER BY over every row, which on the embedded engine costs a scan of every identity and every
    Feature to join them (a hub feature's profile took 1.3 s at 10,000 graphs, docs/queries.md)."""
    if limit <= 0:
        return []
    want = limit + 1
    rows = run(store, f"_feature-{direction}-rows", fkey=fkey, limit=want)
    while len(rows) == want and rows[-1]["total_abs_weight"] == rows[limit - 1]["total_abs_weight"]:
        want *= 2                             # rows tied with the limit-th may go on past those read
        rows = run(store, f"_feature-{direction}-rows", fkey=fkey, limit=want)
    if len(rows) > limit:
        rows = [r for r in rows if r["total_abs_weight"] >= rows[limit - 1]["total_abs_weight"]]
    if not rows:
        return []
    ends = {e["id"]: e for e in run(store, "_neighbour-ends", ids=sorted({r["end_id"] for r in rows}))}
    labels = {r["fkey"]: r["label"] for r in feature_labels(store, {ends[r["end_id"]]["fkey"] for r in rows})}
    out = []
    for r in rows:
        e = ends[r["end_id"]]
        out.append({"kind": e["kind"], "layer": e["layer"], "fkey": e["fkey"], "label": labels.get(e["fkey"]),
                    "token": e["token"], **{k: r[k] for k in ("total_weight", "total_abs_weight", "n_edges", "n_graphs")}})
    out.sort(key=lambda r: (-r["total_abs_weight"], r["kind"], r["layer"] is None, r["layer"] or 0, r["fkey"] or "",
                            r["token"] or ""))
    return out[:limit]


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
        raise QueryError(f"feature-profile: {unknown_feature(store, fkey)}")
    [activations] = [r["activations"] for r in run(store, "_feature-activations", fkey=fkey)]   # sorted
    return [{
        "fkey": fkey, "layer": feature[0]["layer"], "label": feature[0]["label"],
        "n_graphs": feature[0]["n_graphs"], "n_occurrences": feature[0]["n_occurrences"],
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
    b, and what is in both with a changed value, largest |change| first; a feature row shows its label.

    Parameters:
      $a: str                  graph id, slug or tag "key=value"
      $b: str                  graph id, slug or tag "key=value"
      $limit: int = 200        rows returned
    Example row:
      {"item": "feature", "key": "mntss/clt-gemma-2-2b-2.5M/0/19204", "label": "\\"The\\" → say \\" the\\"", "status": "both", "a": 1.28, "b": 0.91, "change": -0.37}
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
    rows = rows[:limit]
    shown = labels_of(store, {r["key"] for r in rows if r["item"] == "feature"})
    return [{"item": r["item"], "key": r["key"], "label": shown.get(r["key"]) if r["item"] == "feature" else None,
             **{k: r[k] for k in ("status", "a", "b", "change")}} for r in rows]
