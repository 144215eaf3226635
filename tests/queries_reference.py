"""Plain-Python answers to the library queries, computed straight from Graph objects.

Independent of the store and of Cypher: each function re-derives what its query is documented to
answer, so a test can compare the two. Written for clarity, not speed (the test corpus is small).
"""
from __future__ import annotations

from collections import defaultdict
from itertools import combinations


def features(graph):
    return [(n, graph.feature_key(n)) for n in graph.nodes if graph.feature_key(n)]


def has_tag(graph, tag: str) -> bool:
    return tag in {f"{k}={v}" for k, v in graph.tags.items()}


def hubs_by_graphs(graphs, min_graphs):
    acc = defaultdict(lambda: {"gids": set(), "n": 0, "acts": []})
    for g in graphs:
        for n, k in features(g):
            a = acc[k]
            a["gids"].add(g.id)
            a["n"] += 1
            if n.activation is not None:
                a["acts"].append(n.activation)
    return {k: {"n_graphs": len(a["gids"]), "n_occurrences": a["n"], "mean_activation": sum(a["acts"]) / len(a["acts"])}
            for k, a in acc.items() if len(a["gids"]) >= min_graphs}


def hubs_by_weight(graphs):
    acc = defaultdict(lambda: {"w": 0.0, "gids": set(), "edges": 0})
    for g in graphs:
        for s, t, w in g.edges():
            for node in (s, t):
                k = g.feature_key(node)
                if k:
                    acc[k]["w"] += abs(w)
                    acc[k]["gids"].add(g.id)
                    acc[k]["edges"] += 1
    return {k: {"total_abs_weight": a["w"], "n_graphs": len(a["gids"]), "n_edges": a["edges"]} for k, a in acc.items()}


def hubs_by_influence(graphs):
    acc = defaultdict(lambda: {"imp": 0.0, "best": None, "gids": set()})
    for g in graphs:
        for n, k in features(g):
            if n.influence is None:
                continue
            a = acc[k]
            a["imp"] += 1.0 - n.influence
            a["best"] = n.influence if a["best"] is None else min(a["best"], n.influence)
            a["gids"].add(g.id)
    return {k: {"importance": a["imp"], "best_influence": a["best"], "n_graphs": len(a["gids"])} for k, a in acc.items()}


def search_features(graphs, text):
    gids = defaultdict(set)
    for g in graphs:
        for n, k in features(g):
            if text.lower() in (n.label or "").lower():
                gids[k].add(g.id)
    return {k: len(v) for k, v in gids.items()}   # graphs in which a label of the feature matched


def search_graphs(graphs, text, tags):
    return {g.id for g in graphs if text.lower() in g.prompt.lower() and all(has_tag(g, t) for t in tags)}


def feature_graphs(graphs, fkey):
    out = {}
    for g in graphs:
        occ = [n for n, k in features(g) if k == fkey]
        if occ:
            out[g.id] = {"n_occurrences": len(occ), "max_activation": max(n.activation for n in occ),
                         "best_influence": min(n.influence for n in occ)}
    return out


def neighbours(graphs, fkey, direction):
    """Edges into (direction='up') or out of ('down') the feature's occurrences, grouped by the other end."""
    acc = defaultdict(lambda: {"w": 0.0, "abs": 0.0, "n": 0, "gids": set()})
    for g in graphs:
        for s, t, w in g.edges():
            me, other = (t, s) if direction == "up" else (s, t)
            if g.feature_key(me) != fkey:
                continue
            a = acc[(other.kind, other.layer, g.feature_key(other), other.token)]
            a["w"] += w
            a["abs"] += abs(w)
            a["n"] += 1
            a["gids"].add(g.id)
    return {k: {"total_weight": a["w"], "total_abs_weight": a["abs"], "n_edges": a["n"], "n_graphs": len(a["gids"])}
            for k, a in acc.items()}


def activations(graphs, fkey):
    return sorted(n.activation for g in graphs for n, k in features(g) if k == fkey)


def graph_diff(set_a, set_b):
    """{(item, key): (a value or None, b value or None)} for graph lists a and b (values averaged over the set)."""
    def values(graphs):
        v = defaultdict(float)
        for g in graphs:
            for n in g.nodes:
                v[("node", n.node_id)] += (n.activation or 0.0) / len(graphs)
                if g.feature_key(n):
                    v[("feature", g.feature_key(n))] += (n.activation or 0.0) / len(graphs)
            for s, t, w in g.edges():
                v[("edge", f"{s.node_id} -> {t.node_id}")] += w / len(graphs)
        return v
    va, vb = values(set_a), values(set_b)
    return {key: (va.get(key), vb.get(key)) for key in va.keys() | vb.keys()
            if not (key in va and key in vb and abs(va[key] - vb[key]) <= 1e-5 * max(abs(va[key]), abs(vb[key])))}


def shared_multilingual(graphs, concept, k):
    per = defaultdict(lambda: defaultdict(lambda: {"acts": [], "infl": [], "gids": set()}))
    for g in graphs:
        if g.tags.get("concept") != concept or "lang" not in g.tags:
            continue
        for n, key in features(g):
            p = per[key][g.tags["lang"]]
            if n.activation is not None:
                p["acts"].append(n.activation)
            if n.influence is not None:
                p["infl"].append(n.influence)
            p["gids"].add(g.id)
    return {key: {lang: {"n_graphs": len(p["gids"]), "activation": sum(p["acts"]) / len(p["acts"]),
                         "influence": min(p["infl"])} for lang, p in langs.items()}
            for key, langs in per.items() if len(langs) >= k}


def multilingual_iou(graphs):
    """{(lang_a, lang_b, layer): (iou, baseline)}; parallel = same (concept, item), baseline = different;
    layer None: the whole graph."""
    tagged = [g for g in graphs if "lang" in g.tags and "item" in g.tags]
    layer_sets = {g.id: defaultdict(set) for g in tagged}
    for g in tagged:
        for n, key in features(g):
            layer_sets[g.id][n.layer].add(key)
    n_layers = max(g.n_layers for g in tagged)
    out = {}
    for la, lb in combinations(sorted({g.tags["lang"] for g in tagged}), 2):
        for layer in range(n_layers):
            same, other = [], []
            for ga in (g for g in tagged if g.tags["lang"] == la):
                for gb in (g for g in tagged if g.tags["lang"] == lb):
                    fa, fb = layer_sets[ga.id][layer], layer_sets[gb.id][layer]
                    if not (fa | fb):
                        continue
                    parallel = (ga.tags.get("concept"), ga.tags["item"]) == (gb.tags.get("concept"), gb.tags["item"])
                    (same if parallel else other).append(len(fa & fb) / len(fa | fb))
            if same:
                out[(la, lb, layer)] = (sum(same) / len(same), sum(other) / len(other) if other else None)
        same, other = [], []                 # the whole graph: every layer's features together
        for ga in (g for g in tagged if g.tags["lang"] == la):
            for gb in (g for g in tagged if g.tags["lang"] == lb):
                fa = {k for _, k in features(ga)}
                fb = {k for _, k in features(gb)}
                parallel = (ga.tags.get("concept"), ga.tags["item"]) == (gb.tags.get("concept"), gb.tags["item"])
                (same if parallel else other).append(len(fa & fb) / len(fa | fb))
        out[(la, lb, None)] = (sum(same) / len(same), sum(other) / len(other) if other else None)
    return out


def multilingual_pair_ious(graphs):
    """{(lang_a, lang_b, layer): [IoU of each parallel pair]}, for error bars over pairs."""
    tagged = [g for g in graphs if "lang" in g.tags and "item" in g.tags]
    out = defaultdict(list)
    for ga in tagged:
        for gb in tagged:
            if ga.tags["lang"] >= gb.tags["lang"] or \
                    (ga.tags.get("concept"), ga.tags["item"]) != (gb.tags.get("concept"), gb.tags["item"]):
                continue
            for layer in range(max(g.n_layers for g in tagged)):
                fa = {key for n, key in features(ga) if n.layer == layer}
                fb = {key for n, key in features(gb) if n.layer == layer}
                if fa | fb:
                    out[(ga.tags["lang"], gb.tags["lang"], layer)].append(len(fa & fb) / len(fa | fb))
    return dict(out)


def path_instances(graphs, hops, min_weight, token="", tag=""):
    """Every path embedding -> features -> logit along edges with |weight| >= min_weight, as
    (graph, start token, feature keys, end token, signed weights)."""
    for g in graphs:
        if tag and not has_tag(g, tag):
            continue
        out_edges = defaultdict(list)
        for s, t, w in g.edges():
            if abs(w) >= min_weight:
                out_edges[id(s)].append((t, w))

        def walk(node, feats, ws):
            if len(ws) == hops:
                if node.kind == "logit" and (not token or node.token == token):
                    yield tuple(feats), node.token, ws
                return
            if ws and node.kind != "feature":
                return
            for t, w in out_edges[id(node)]:
                is_last = len(ws) + 1 == hops
                if is_last or t.kind == "feature":
                    yield from walk(t, feats + ([g.feature_key(t)] if not is_last else []), ws + [w])

        for e in (n for n in g.nodes if n.kind == "embedding"):
            for feats, end, ws in walk(e, [], []):
                yield g, e.token, feats, end, ws


def common_paths(graphs, hops, min_weight, token="", tag="", sign="excitatory"):
    """{(start, f1, .., end, signs): {"n_graphs", "n_paths", "mean_strength", "max_strength", "max_bottleneck"}}.

    strength = product of signed weights; per graph the largest |strength| counts; excitatory = every
    edge positive, inhibitory = negative product."""
    per_graph = defaultdict(dict)   # key -> gid -> (|strength|, bottleneck, paths, sign)
    for g, start, feats, end, ws in path_instances(graphs, hops, min_weight, token, tag):
        strength = 1.0
        for w in ws:
            strength *= w
        if sign == "excitatory" and not all(w > 0 for w in ws) or sign == "inhibitory" and strength >= 0:
            continue
        key = (start, *feats, end, "".join("+" if w > 0 else "-" for w in ws))
        s0, b0, c0, _ = per_graph[key].get(g.id, (0.0, 0.0, 0, 1))
        per_graph[key][g.id] = (max(s0, abs(strength)), max(b0, min(abs(w) for w in ws)), c0 + 1,
                                1 if strength > 0 else -1)
    return {key: {"n_graphs": len(by_g), "n_paths": sum(v[2] for v in by_g.values()),
                  "mean_strength": next(iter(by_g.values()))[3] * sum(v[0] for v in by_g.values()) / len(by_g),
                  "max_strength": next(iter(by_g.values()))[3] * max(v[0] for v in by_g.values()),
                  "max_bottleneck": max(v[1] for v in by_g.values())}
            for key, by_g in per_graph.items()}


def supernode_inputs(graphs, min_graphs, min_weight):
    """(graphs per feature with importance, signed in/out profiles) as queries.supernodes.Corpus documents them:
    per candidate, direction and neighbour identity (kind, layer, feature key, token), the edges of every
    graph between the two summed; a neighbour enters when those edges average >= min_weight in |weight|,
    with the signed sum of all of them, under its partner name (a feature by key, an embedding or logit
    by token, an error node by layer; identities of one name add up)."""
    occ = defaultdict(dict)
    for g in graphs:
        for n, key in features(g):
            imp = 1.0 - (n.influence if n.influence is not None else 1.0)
            occ[key][g.id] = max(occ[key].get(g.id, imp), imp)
    cands = {k: v for k, v in occ.items() if len(v) >= min_graphs}

    def name(g, n):
        k = g.feature_key(n)
        return k if k else (f"{n.kind}:{n.token}" if n.kind in ("embedding", "logit") else f"{n.kind}@{n.layer}")

    rows = defaultdict(lambda: [0.0, 0.0, 0])           # (feature, side, identity, name) -> [sum w, sum |w|, edges]
    for g in graphs:
        for s, t, w in g.edges():
            for feature, side, other in ((g.feature_key(s), "out:", t), (g.feature_key(t), "in:", s)):
                if feature in cands:
                    row = rows[feature, side, (other.kind, other.layer, g.feature_key(other), other.token), name(g, other)]
                    row[0] += w
                    row[1] += abs(w)
                    row[2] += 1
    profiles = defaultdict(lambda: defaultdict(float))
    for (feature, side, _, partner), (total, total_abs, n_edges) in rows.items():
        if total_abs / n_edges >= min_weight:
            profiles[feature][side + partner] += total
    return cands, {k: dict(profiles[k]) for k in cands}


def label_evidence(graphs):
    """{fkey: (Counter of prompt tokens its occurrences sit on, {logit token: summed direct edge weight})}."""
    from collections import Counter
    inputs, logits = defaultdict(Counter), defaultdict(lambda: defaultdict(float))
    for g in graphs:
        for n, key in features(g):
            inputs[key][g.prompt_tokens[n.pos]] += 1
        for s, t, w in g.edges():
            if g.feature_key(s) and t.kind == "logit":
                logits[g.feature_key(s)][t.token] += w
    return {k: (inputs[k], dict(logits[k])) for k in inputs}


def auto_label_text(inputs, logits, promotes=()):
    """The documented rule: '"<token sat on most, special tokens last>" → say "<logit driven most>"'."""
    import json
    special = lambda t: t.startswith("<") and t.endswith(">")
    ranked = sorted(inputs, key=lambda t: (special(t), -inputs[t], t))
    read = json.dumps(ranked[0], ensure_ascii=False) if ranked else ""
    pos = sorted((t for t, w in logits.items() if w > 0), key=lambda t: (-logits[t], t))
    neg = sorted(logits, key=lambda t: (-abs(logits[t]), t))
    say = (f"say {json.dumps(pos[0], ensure_ascii=False)}" if pos else
           f"say {json.dumps(promotes[0], ensure_ascii=False)}" if promotes else
           f"not {json.dumps(neg[0], ensure_ascii=False)}" if neg else "")
    return " → ".join(p for p in (read, say) if p)


def hub_positions(graphs):
    """{fkey: {"n_graphs", "position_share", "on_bos"}}: the share of its prompt's positions a feature sits
    on, averaged over the graphs it occurs in, and the graphs where it sits on position 0."""
    per = defaultdict(dict)
    for g in graphs:
        for n, key in features(g):
            per[key].setdefault(g.id, (set(), len(g.prompt_tokens)))[0].add(n.pos)
    return {k: {"n_graphs": len(by_g), "position_share": sum(len(p) / n for p, n in by_g.values()) / len(by_g),
                "on_bos": sum(0 in p for p, _ in by_g.values())} for k, by_g in per.items()}


def consistency(graphs, concept):
    """{fkey: (consistency, mean share)}: per language of the concept, the share of its graphs holding the feature."""
    langs = defaultdict(set)
    holding = defaultdict(lambda: defaultdict(set))
    for g in graphs:
        if g.tags.get("concept") == concept and "lang" in g.tags:
            langs[g.tags["lang"]].add(g.id)
            for _, key in features(g):
                holding[key][g.tags["lang"]].add(g.id)
    out = {}
    for key, by_lang in holding.items():
        shares = [len(by_lang.get(lang, ())) / len(gids) for lang, gids in langs.items()]
        out[key] = (min(shares), sum(shares) / len(shares))
    return out


def thinned_baseline_pairs(graphs, lang_a, lang_b, max_pairs):
    """Unrelated (lang_a, lang_b) prompt pairs as multilingual-iou's baseline takes them: every pair of
    graph ids in sorted order (lang_a's id, then lang_b's), different (concept, item); above max_pairs,
    every k-th of them from the first, k = ceil(n / max_pairs)."""
    a = sorted((g for g in graphs if g.tags.get("lang") == lang_a and "item" in g.tags), key=lambda g: g.id)
    b = sorted((g for g in graphs if g.tags.get("lang") == lang_b and "item" in g.tags), key=lambda g: g.id)
    pairs = [(ga, gb) for ga in a for gb in b
             if (ga.tags.get("concept"), ga.tags["item"]) != (gb.tags.get("concept"), gb.tags["item"])]
    if len(pairs) <= max_pairs:
        return pairs
    k = -(-len(pairs) // max_pairs)
    return [p for i, p in enumerate(pairs) if i % k == 0]


def mean_iou(pairs, layer):
    """Mean IoU of the pairs' feature sets at `layer` (None: every layer); pairs with both sets empty skipped."""
    scores = []
    for ga, gb in pairs:
        fa = {k for n, k in features(ga) if layer is None or n.layer == layer}
        fb = {k for n, k in features(gb) if layer is None or n.layer == layer}
        if fa | fb:
            scores.append(len(fa & fb) / len(fa | fb))
    return sum(scores) / len(scores) if scores else None
