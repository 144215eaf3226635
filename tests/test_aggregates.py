"""Cross-graph aggregates stay exact through ingests, deletions and re-tagging, on both backends.

The reference is computed from scratch, in plain Python, from the graphs the store gives back
(get_graph): per feature its totals over graphs, per graph its strong paths and feature table. The
store's aggregates (Feature properties, Path nodes, Graph.features) must equal it after any sequence
of random batches of ingests, deletions, re-ingests and tag changes. A deletion must also leave the
store exactly as if the graph had never been ingested.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict

import pytest

from circuit_atlas.corpus import load_summary, realistic_graph
from circuit_atlas.store import open_store
from circuit_atlas.store.aggregates import FEATURE_AGGREGATES, PATH_MIN_WEIGHT, decode_blob
from tests.backends import WRITE_PATHS

SUMMARY = load_summary()


def corpus(n: int, seed: int = 0, scale: float = 0.06) -> list:
    rng = random.Random(seed)
    return [realistic_graph(SUMMARY, seed=1000 * seed + i, scale=scale,
                            tags={"lang": rng.choice(["en", "fr", "de"]), "concept": rng.choice(["a", "b"])})
            for i in range(n)]


# --- the reference, from scratch --------------------------------------------------------------

def reference(graphs) -> tuple[dict, dict, dict]:
    """(feature key -> aggregates, graph id -> sorted strong paths, graph id -> feature table)."""
    feats: dict[str, dict] = {}
    paths, tables = {}, {}
    for g in graphs:
        per = defaultdict(list)                                     # key -> [node index]
        for i, n in enumerate(g.nodes):
            if g.feature_key(n) is not None:
                per[g.feature_key(n)].append(i)
        touching = defaultdict(lambda: [0.0, 0])
        for s, t, w in zip(g.edge_source.tolist(), g.edge_target.tolist(), g.edge_weight.tolist()):
            for i in (s, t):
                touching[i][0] += abs(w)
                touching[i][1] += 1
        table = []
        for key, idx in per.items():
            nodes = [g.nodes[i] for i in idx]
            acts = [n.activation for n in nodes if n.activation is not None]
            infl = [n.influence for n in nodes if n.influence is not None]
            edges = sum(touching[i][1] for i in idx)
            f = feats.setdefault(key, {a: 0 for a in FEATURE_AGGREGATES} | {"best_influence": None})
            f["n_graphs"] += 1
            f["n_occurrences"] += len(nodes)
            f["act_sum"] += sum(acts)
            f["act_n"] += len(acts)
            f["position_sum"] += len(nodes) / max(len(g.prompt_tokens), 1)
            f["on_bos"] += int(min(n.pos for n in nodes) == 0)
            f["importance"] += sum(1.0 - x for x in infl)
            f["infl_graphs"] += int(bool(infl))
            if infl:
                f["best_influence"] = min(infl) if f["best_influence"] is None else min(f["best_influence"], min(infl))
            f["abs_weight"] += sum(touching[i][0] for i in idx)
            f["n_edges"] += edges
            f["edge_graphs"] += int(edges > 0)
            table.append((nodes[0].layer, nodes[0].feature, len(nodes), len(acts), sum(acts),
                          min(infl) if infl else None))
        tables[g.id] = sorted(table)
        out = defaultdict(list)
        for s, t, w in zip(g.edge_source.tolist(), g.edge_target.tolist(), g.edge_weight.tolist()):
            if abs(w) >= PATH_MIN_WEIGHT:
                out[s].append((t, w))
        found = []

        def walk(path, weights):
            for t, w in out[path[-1]]:
                n = g.nodes[t]
                if n.kind == "logit" and len(path) >= 2:
                    found.append((path + [t], weights + [w]))
                if g.feature_key(n) is not None and len(path) < 4:
                    walk(path + [t], weights + [w])

        for i, n in enumerate(g.nodes):
            if n.kind == "embedding":
                walk([i], [])
        paths[g.id] = sorted((
            (len(p) - 1, g.nodes[p[0]].token, *[g.feature_key(g.nodes[i]) for i in p[1:-1]],
             *[None] * (5 - len(p)), g.nodes[p[-1]].token,
             "".join("-" if w < 0 else "+" for w in ws), round(math.prod(ws), 6), round(min(map(abs, ws)), 6))
            for p, ws in found), key=repr)                      # repr: a token may be None
    return feats, paths, tables


def neighbour_reference(graphs) -> dict:
    """(feature key, "up" | "down", kind, layer, fkey, token) -> [Σ weight, Σ |weight|, edges, graphs], walking
    every edge of every graph: what feature-upstream / -downstream group the edges by."""
    out: dict = {}
    for g in graphs:
        seen = set()
        end = lambda n: (n.kind, n.layer, g.feature_key(n), n.token)
        for s, t, w in zip(g.edge_source.tolist(), g.edge_target.tolist(), g.edge_weight.tolist()):
            a, b = g.nodes[s], g.nodes[t]
            for feature, direction, other in ((b, "up", a), (a, "down", b)):
                if g.feature_key(feature) is None:
                    continue
                key = (g.feature_key(feature), direction, *end(other))
                row = out.setdefault(key, [0.0, 0.0, 0, 0])
                row[0] += w
                row[1] += abs(w)
                row[2] += 1
                if key not in seen:
                    seen.add(key)
                    row[3] += 1
    return out


def stored_neighbours(store) -> dict:
    rows = []
    for direction, link in enumerate(("HAS_UPSTREAM", "HAS_DOWNSTREAM")):
        found = store.query(f"MATCH (f:Feature)-[:{link}]->(a:Neighbour) MATCH (e:NeighbourEnd {{id: a.end_id}}) "
                            "RETURN f.key AS f, f.layer AS flayer, a.id AS id, a.dir AS dir, e.id AS eid, "
                            "e.kind AS kind, e.layer AS layer, e.fkey AS nfkey, e.token AS token, a.weight AS w, "
                            "a.abs_weight AS aw, a.n_edges AS n, a.n_graphs AS g", max_rows=10**7)
        assert all(r["dir"] == direction for r in found), f"a Neighbour row linked by {link} is not of its direction"
        rows += found
    ends = store.query("MATCH (e:NeighbourEnd) RETURN e.key AS key, e.id AS id, e.kind AS kind, e.layer AS layer, "
                       "e.fkey AS fkey", max_rows=10**7)
    assert len({e["id"] for e in ends}) == len(ends), "two neighbour identities with one number"
    own = {e["fkey"]: e["id"] for e in ends if e["kind"] == "feature" and e["key"].endswith("\x1f")}
    for r in rows:                             # the row's key packs its feature's number, direction, neighbour
        assert r["id"] == ((own[r["f"]] << 32) | (r["dir"] << 31) | r["eid"]), f"Neighbour.id of {r} is not its key"
    out = {(r["f"], ("up", "down")[r["dir"]], r["kind"], r["layer"], r["nfkey"], r["token"]): [r["w"], r["aw"], r["n"], r["g"]]
           for r in rows}
    assert len(out) == len(rows), "two Neighbour rows (or links) for one (feature, direction, neighbour)"
    n_rows = store.query("MATCH (a:Neighbour) RETURN count(*) AS n")[0]["n"]
    assert n_rows == len(rows), "a Neighbour row is not linked from its feature exactly once (or has no identity)"
    return out


def stored(store) -> tuple[dict, dict, dict]:
    feats = {r["key"]: r for r in store.query(
        "MATCH (f:Feature) RETURN f.key AS key, " + ", ".join(f"f.{a} AS {a}" for a in FEATURE_AGGREGATES),
        max_rows=10**6)}
    paths = defaultdict(list)
    for r in store.query("MATCH (p:Path) RETURN p.gid AS gid, p.hops AS hops, p.start_token AS s, p.f1 AS f1, "
                         "p.f2 AS f2, p.f3 AS f3, p.end_token AS e, p.signs AS signs, p.strength AS strength, "
                         "p.bottleneck AS bottleneck", max_rows=10**6):
        paths[r["gid"]].append((r["hops"], r["s"], r["f1"], r["f2"], r["f3"], r["e"], r["signs"],
                                round(r["strength"], 6), round(r["bottleneck"], 6)))
    tables = {}
    for r in store.query("MATCH (g:Graph) RETURN g.id AS id, g.features AS features", max_rows=10**6):
        t = decode_blob(r["features"])
        tables[r["id"]] = sorted(
            (int(t["layer"][i]), int(t["feature"][i]), int(t["n_occ"][i]), int(t["act_n"][i]), float(t["act_sum"][i]),
             None if math.isnan(t["best_influence"][i]) else float(t["best_influence"][i])) for i in range(len(t["layer"])))
    return feats, {k: sorted(v, key=repr) for k, v in paths.items()}, tables


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def assert_exact(store) -> None:
    ids = [r["id"] for r in store.query("MATCH (g:Graph) RETURN g.id AS id", max_rows=10**6)]
    graphs = [store.get_graph(i) for i in ids]
    feats, paths, tables = reference(graphs)
    want, got = neighbour_reference(graphs), stored_neighbours(store)
    assert set(got) == set(want), "Neighbour rows differ from the (feature, neighbour) pairs of the stored edges"
    for key, row in want.items():
        assert got[key][2:] == row[2:], f"{key}: stored edges/graphs {got[key][2:]}, from scratch {row[2:]}"
        assert close(got[key][0], row[0]) and close(got[key][1], row[1]), f"{key}: stored {got[key]}, from scratch {row}"
    got_feats, got_paths, got_tables = stored(store)
    assert set(got_feats) == set(feats), "Feature nodes differ from the features the stored graphs use"
    for key, want in feats.items():
        for a in FEATURE_AGGREGATES:
            assert close(got_feats[key][a], want[a]), f"{key}.{a}: stored {got_feats[key][a]}, from scratch {want[a]}"
    assert {k: v for k, v in got_paths.items() if v} == {k: v for k, v in paths.items() if v}
    counted = {r["id"]: r["n"] for r in store.query("MATCH (g:Graph) RETURN g.id AS id, g.n_paths AS n", max_rows=10**6)}
    assert counted == {gid: len(p) for gid, p in paths.items()}, "Graph.n_paths is not the number of its strong paths"
    assert set(got_tables) == set(tables)
    for gid, want in tables.items():
        got = got_tables[gid]
        assert [r[:4] for r in got] == [r[:4] for r in want]
        assert all(close(x[4], y[4]) and close(x[5], y[5]) for x, y in zip(got, want))
    assert_links_carry_their_occurrence(store, graphs)


def assert_links_carry_their_occurrence(store, graphs) -> None:
    """OF_FEATURE's copies (graph id, activation, influence) equal the occurrence's, from the graphs given back."""
    want = sorted((g.id, n.node_id, g.feature_key(n), n.activation, n.influence)
                  for g in graphs for n in g.nodes if g.feature_key(n) is not None)
    got = sorted((r["gid"], r["id"], r["key"], r["activation"], r["influence"]) for r in store.query(
        "MATCH (n:Node)-[o:OF_FEATURE]->(f:Feature) RETURN o.gid AS gid, n.node_id AS id, f.key AS key, "
        "o.activation AS activation, o.influence AS influence", max_rows=10**7))
    assert [r[:3] for r in got] == [r[:3] for r in want], "OF_FEATURE.gid differs from its occurrence's graph"
    assert all(close(x[3], y[3]) and close(x[4], y[4]) for x, y in zip(got, want)), \
        "OF_FEATURE.activation / influence differ from its occurrence's"


# --- the tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("store_uri, bulk", WRITE_PATHS, indirect=["store_uri"])
def test_aggregates_exact_after_random_ingests_deletions_and_retags(store_uri, bulk):
    rng = random.Random(7)
    graphs = corpus(24)
    options = {} if bulk is None else {"bulk": bulk}
    with open_store(store_uri, **options) as store:
        present: set[str] = set()
        for step in range(8):
            batch = rng.sample(graphs, rng.randint(1, 6))
            store.add_graphs(batch)
            present |= {g.id for g in batch}
            gone = rng.sample(sorted(present), min(len(present), rng.randint(0, 3)))
            store.delete_graphs(gone)
            present -= set(gone)
            some = rng.sample(sorted(present), min(len(present), 2))
            store.tag_graphs(some, {"lang": rng.choice(["en", "it"]), "step": str(step)})
            store.untag_graphs(some[:1], ["lang"])
            assert_exact(store)
        assert present, "the random walk should end with graphs stored"
        tags = store.query("MATCH (t:Tag) RETURN t.id AS id, EXISTS { MATCH (t)<-[:TAGGED]-(:Graph) } AS used")
        assert all(r["used"] for r in tags), "a tag no graph carries was left behind"


def dump(store) -> dict:
    """Everything in the store that a user can see, without the store-internal numbering (uid, path ids)."""
    q = lambda cypher: sorted((tuple(sorted(r.items())) for r in store.query(cypher, max_rows=10**6)), key=repr)
    feats = {r["key"]: r for r in store.query(
        "MATCH (f:Feature) RETURN f.key AS key, f.layer AS layer, f.feature AS feature, f.label AS label, "
        + ", ".join(f"f.{a} AS {a}" for a in FEATURE_AGGREGATES), max_rows=10**6)}
    return {
        "graphs": q("MATCH (g:Graph) RETURN g.id AS id, g.slug AS slug, g.n_edges AS n, g.features AS features"),
        "nodes": q("MATCH (g:Graph)-[:HAS_NODE]->(n:Node) RETURN g.id AS g, n.gid AS gid, n.node_id AS id, n.kind AS kind, "
                   "n.fkey AS fkey, n.activation AS act"),
        "edges": q("MATCH (a:Node)-[e:EFFECT]->(b:Node) RETURN a.gid AS ga, b.gid AS gb, a.node_id AS a, b.node_id AS b, "
                   "e.weight AS w"),
        "occurrences": q("MATCH (n:Node)-[:OF_FEATURE]->(f:Feature) RETURN n.gid AS gid, n.node_id AS id, f.key AS key"),
        "tags": q("MATCH (t:Tag) RETURN t.id AS id"),
        "tagged": q("MATCH (g:Graph)-[:TAGGED]->(t:Tag) RETURN g.id AS g, t.id AS t"),
        "paths": q("MATCH (p:Path) RETURN p.gid AS gid, p.hops AS hops, p.f1 AS f1, p.f2 AS f2, p.f3 AS f3, "
                   "p.signs AS signs, p.strength AS s"),
        "all_nodes": q("MATCH (n:Node) RETURN count(*) AS n"),
        "features": feats,
    }


def assert_same(a: dict, b: dict) -> None:
    for part in a:
        if part != "features":
            assert a[part] == b[part], f"{part} differ"
    assert set(a["features"]) == set(b["features"])
    for key, row in a["features"].items():
        for name, value in row.items():
            other = b["features"][key][name]
            assert close(value, other) if isinstance(value, float) else value == other, f"{key}.{name}: {value} != {other}"


def test_deleted_graph_leaves_the_store_as_if_never_ingested(store_uri, tmp_path):
    graphs = corpus(8, seed=3)
    gone = [graphs[1], graphs[4], graphs[6]]
    kept = [g for g in graphs if g not in gone]
    with open_store(store_uri) as store:
        store.add_graphs(graphs[:5])
        store.add_graphs(graphs[5:])
        report = store.delete_graphs([g.id for g in gone] + ["0" * 32])
        assert (report.graphs, report.missing) == (3, 1)
        assert report.edges == sum(g.n_edges for g in gone)
        after = dump(store)
    other = str(tmp_path / "never.db")          # the reference store never had them (embedded: same engine)
    with open_store(other if not store_uri.startswith("bolt") else store_uri) as ref:
        if store_uri.startswith("bolt"):
            ref.delete_graphs([g.id for g in kept])
            assert dump(ref)["all_nodes"] == [(("n", 0),)], "deleting every graph must leave no node"
        ref.add_graphs(kept)
        never = dump(ref)
    assert_same(after, never)
    assert after["graphs"] and all(dict(r)["id"] not in {g.id for g in gone} for r in after["graphs"])


def test_tag_and_untag_touch_nothing_else(store_uri):
    graphs = corpus(4, seed=5)
    with open_store(store_uri) as store:
        store.add_graphs(graphs)
        before = dump(store)
        ids = [graphs[0].id, graphs[2].id]
        assert store.tag_graphs(ids + ["f" * 32], {"split": "test"}) == 2
        tagged = {r["id"] for r in store.query("MATCH (g:Graph)-[:TAGGED]->(:Tag {id: 'split=test'}) RETURN g.id AS id")}
        assert tagged == set(ids)
        assert store.untag_graphs(ids, ["split=test"]) == 2
        assert store.untag_graphs([graphs[1].id], ["lang"]) == 1
        assert store.get_graph(graphs[1].id).tags == {"concept": graphs[1].tags["concept"]}
        store.tag_graphs([graphs[1].id], {"lang": graphs[1].tags["lang"]})
        assert_same(dump(store), before)


def walk(store, hops, **params) -> list[dict]:
    """common-paths' rows computed by walking the edges (the statement used below the stored threshold)."""
    from circuit_atlas import queries

    params = {"min_weight": 1.0, "token": "", "tag": "", "sign": "excitatory", "rank_by": "strength", "limit": 10**6} | params
    return queries.run(store, f"_common-paths-{hops}", **params)


def same_paths(got: list[dict], want: list[dict], hops: int) -> None:
    key = lambda r: (r["start_token"], *[r[f"f{i}"] for i in range(1, hops)], r["end_token"], r["signs"])
    assert sorted(map(key, got)) == sorted(map(key, want))
    by = {key(r): r for r in want}
    for r in got:
        w = by[key(r)]
        assert (r["n_graphs"], r["n_paths"]) == (w["n_graphs"], w["n_paths"])
        for c in ("mean_strength", "max_strength", "max_bottleneck"):
            assert math.isclose(r[c], w[c], rel_tol=1e-5), (c, r, w)


def test_common_paths_from_stored_paths_equal_the_walk(store_uri, monkeypatch):
    from circuit_atlas import queries
    from circuit_atlas.store import aggregates

    graphs = corpus(16, seed=9, scale=1.0)
    with open_store(store_uri) as store:
        store.add_graphs(graphs[:12])
        token = store.query("MATCH (p:Path {hops: 3}) RETURN p.end_token AS t LIMIT 1")[0]["t"]
        cases = [dict(hops=h, sign=s) for h in (2, 3, 4) for s in ("excitatory", "inhibitory", "all")]
        cases += [dict(hops=3, min_weight=1.7), dict(hops=3, token=token), dict(hops=2, tag="lang=fr"),
                  dict(hops=3, rank_by="min", sign="all")]
        for case in cases:
            rows = queries.run(store, "common-paths", **case, limit=10**6)
            assert rows or case.get("sign") == "inhibitory"
            same_paths(rows, walk(store, **case), case["hops"])
        # a graph with more strong paths than the cap stores none: common-paths walks the edges again
        monkeypatch.setattr(aggregates, "PATH_CAP", 3)
        store.add_graphs(graphs[12:])
        assert store.query("MATCH (g:Graph) WHERE g.n_paths < 0 RETURN count(*) AS n")[0]["n"] > 0
        assert store.query("MATCH (g:Graph), (p:Path) WHERE g.n_paths < 0 AND p.gid = g.id RETURN count(*) AS n")[0]["n"] == 0
        same_paths(queries.run(store, "common-paths", hops=3, sign="all", limit=10**6), walk(store, 3, sign="all"), 3)


def test_neighbours_tied_at_the_limit_come_in_the_full_order(store_uri):
    """Planted ties: a feature's inputs are nine embeddings, seven of whose edges weigh exactly 0.5 (and
    one 0.5 edge from an error node); each limit cuts through the tie, and the rows returned are those
    of the full order (|weight| descending, then kind, layer, key, token), on both backends. Rows read
    in |weight| order only, cut at the limit, would keep whichever tied rows the engine met first."""
    import numpy as np

    from circuit_atlas import queries
    from circuit_atlas.graph import Graph, Node

    tokens = ["zeta", "alpha", "mu", "beta", "omega", "kappa", "delta", "strong", "stronger"]
    nodes = [Node(f"E_{i}_{i}", "embedding", -1, i, token_id=i, token=t) for i, t in enumerate(tokens)]
    nodes += [Node("0_-1_8", "error", 0, 8), Node("1_7_8", "feature", 1, 8, feature=7, activation=1.0),
              Node("2_99_8", "logit", 2, 8, token_id=99, token="out")]
    feature = len(tokens) + 1
    weights = [0.5] * 7 + [2.0, -3.0] + [0.5]                  # the last from the error node
    graph = Graph(prompt=" ".join(tokens), prompt_tokens=tokens, model="toy", transcoder_set="toy/set", n_layers=2,
                  nodes=nodes, edge_source=np.array([*range(len(tokens) + 1), feature], np.int32),
                  edge_target=np.array([feature] * (len(tokens) + 1) + [feature + 1], np.int32),
                  edge_weight=np.array([*weights, 1.0], np.float32))
    # the full order: |weight| desc, then kind ("embedding" < "error"), layer, key, token
    full = ["stronger", "strong"] + sorted(tokens[:7]) + ["error"]
    with open_store(store_uri) as store:
        store.add_graph(graph)
        for limit in range(1, len(full) + 2):
            rows = queries.run(store, "feature-upstream", fkey="toy/set/1/7", limit=limit)
            assert [r["token"] or r["kind"] for r in rows] == full[:limit], limit
        [profile] = queries.run(store, "feature-profile", fkey="toy/set/1/7", top=4)
        assert [r["token"] for r in profile["upstream"]] == full[:4]
        assert [r["token"] for r in profile["downstream"]] == ["out"]
