"""Cross-graph aggregates, kept exact by every write in the same transaction as the graphs it writes.

Questions across 10,000 graphs (70M edges) cannot walk every node and edge in under a second, so
what they need is computed once per graph, at ingest, from the rows being written:

  * per graph and feature, its *contribution* (occurrences, activation sum and count, importance,
    best influence, first position, |weight| and count of edges touching it): summed into the
    Feature node's aggregates (schema.FEATURE: n_graphs, n_occurrences, act_sum, ... edge_graphs),
    and kept, compressed, on the Graph node (`Graph.features`) for the questions that pick graphs
    by tag at query time (multilingual IoU and shared features) — tags can change, contributions
    cannot, so nothing needs maintaining when a graph is re-tagged;
  * per graph, its *strong paths*: every embedding -> feature(s) -> logit path of 2-4 edges whose
    edges all have |weight| >= PATH_MIN_WEIGHT (Path nodes); common-paths filters and groups them
    instead of joining edges.

Deleting a graph subtracts its contribution (read back from the store, so exactly what was added)
and recomputes the one aggregate that cannot be subtracted (best_influence, a minimum) for the
features whose minimum came from it. `recompute(store)` rebuilds everything from the nodes and edges,
for tests and repairs.
"""
from __future__ import annotations

import base64
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PATH_MIN_WEIGHT = 1.0          # strong paths are stored down to this |weight| (common-paths' default)
PATH_CAP = 200_000             # a graph with more strong paths stores none (Graph.n_paths = -1)
MAX_HOPS = 4

# The Feature aggregates, in schema order; how a batch's contributions combine into each, and how two
# values of it combine (every one a sum except best_influence, a minimum).
FEATURE_AGGREGATES = ("n_graphs", "n_occurrences", "act_sum", "act_n", "position_sum", "on_bos", "importance",
                      "infl_graphs", "best_influence", "abs_weight", "n_edges", "edge_graphs")
MINIMA = ("best_influence",)

# Graph.features: per feature of the graph, these columns (little-endian), zlib-compressed, base64.
BLOB_COLUMNS = (("layer", "<i4"), ("feature", "<i8"), ("n_occ", "<i4"), ("act_n", "<i4"), ("act_sum", "<f8"),
                ("best_influence", "<f8"))


def _np(col, fill=None) -> np.ndarray:
    """An Arrow column as numpy (nulls as `fill`, NaN for floats by default)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if fill is not None:
        col = pc.fill_null(col, fill)
    return col.to_numpy(zero_copy_only=False)


def contributions(nodes: pa.Table, effects: pa.Table, first_uid: int, graph_index: np.ndarray,
                  n_positions: np.ndarray) -> pa.Table:
    """One row per (graph, feature) of a batch: what that graph adds to the feature's aggregates.

    nodes/effects: the batch's Node and EFFECT rows (rows.GraphRows); node uids are first_uid,
    first_uid + 1, ... in row order; graph_index: (N,) the batch index of each node's graph;
    n_positions: (G,) prompt positions of each graph (a graph without prompt tokens counts 1).
    Rows are sorted by graph, layer, feature. Numpy throughout: one sort, then sums per run.
    """
    n = nodes.num_rows
    src = _np(effects["src"]) - first_uid
    dst = _np(effects["dst"]) - first_uid
    w = np.abs(_np(effects["weight"]).astype(np.float64))
    abs_w = np.bincount(src, w, minlength=n) + np.bincount(dst, w, minlength=n)      # (N,) edges touching it
    n_e = np.bincount(src, minlength=n) + np.bincount(dst, minlength=n)
    idx = np.flatnonzero(_np(pc.is_valid(nodes["fkey"])))                         # feature occurrences
    g, layer, feature = graph_index[idx], _np(nodes["layer"])[idx], _np(nodes["feature"])[idx]
    order = np.lexsort((feature, layer, g))
    idx, g, layer, feature = idx[order], g[order], layer[order], feature[order]
    new = np.ones(len(idx), bool)
    new[1:] = (g[1:] != g[:-1]) | (layer[1:] != layer[:-1]) | (feature[1:] != feature[:-1])
    starts = np.flatnonzero(new)                                                  # (C,) first row of each run
    total = lambda values: np.add.reduceat(values, starts) if len(starts) else values[:0]
    act, infl = _np(nodes["activation"]).astype(np.float64)[idx], _np(nodes["influence"]).astype(np.float64)[idx]
    has_act, has_infl = ~np.isnan(act), ~np.isnan(infl)
    n_occ = np.diff(np.append(starts, len(idx)))
    gs = g[starts]
    return pa.table({
        "g": pa.array(gs, pa.int64()), "key": nodes["fkey"].take(pa.array(idx[starts])),
        "layer": pa.array(layer[starts], pa.int64()), "feature": pa.array(feature[starts], pa.int64()),
        "n_occ": pa.array(n_occ, pa.int64()),
        "first_pos": pa.array(np.minimum.reduceat(_np(nodes["pos"])[idx], starts) if len(starts) else [], pa.int64()),
        "act_sum": pa.array(total(np.where(has_act, act, 0.0))), "act_n": pa.array(total(has_act.astype(np.int64))),
        "importance": pa.array(total(np.where(has_infl, 1.0 - infl, 0.0))),
        "infl_n": pa.array(total(has_infl.astype(np.int64))),
        "best_influence": pa.array(np.fmin.reduceat(infl, starts) if len(starts) else infl[:0], from_pandas=True),
        "abs_weight": pa.array(total(abs_w[idx])), "n_edges": pa.array(total(n_e[idx]).astype(np.int64)),
        "positions": pa.array(n_occ / np.maximum(n_positions[gs], 1)),
    })


def feature_deltas(contrib: pa.Table) -> pa.Table:
    """The Feature aggregates of a batch's contributions, one row per feature key (schema order)."""
    t = contrib.append_column("has_infl", pc.cast(pc.greater(contrib["infl_n"], 0), pa.int64())) \
               .append_column("has_edge", pc.cast(pc.greater(contrib["n_edges"], 0), pa.int64())) \
               .append_column("bos", pc.cast(pc.equal(contrib["first_pos"], 0), pa.int64()))
    agg = t.group_by("key", use_threads=False).aggregate([
        ("g", "count"), ("n_occ", "sum"), ("act_sum", "sum"), ("act_n", "sum"), ("positions", "sum"), ("bos", "sum"),
        ("importance", "sum"), ("has_infl", "sum"), ("best_influence", "min"), ("abs_weight", "sum"),
        ("n_edges", "sum"), ("has_edge", "sum")])
    names = ["g_count", "n_occ_sum", "act_sum_sum", "act_n_sum", "positions_sum", "bos_sum", "importance_sum",
             "has_infl_sum", "best_influence_min", "abs_weight_sum", "n_edges_sum", "has_edge_sum"]
    cols = {"key": agg["key"]}
    for name, col in zip(FEATURE_AGGREGATES, names):
        cols[name] = agg[col].cast(pa.float64() if name in ("act_sum", "position_sum", "importance", "best_influence",
                                                             "abs_weight") else pa.int64())
    return pa.table(cols)


def encode_blob(contrib: pa.Table) -> str:
    """Graph.features of one graph from its contribution rows (sorted by layer, feature)."""
    parts = []
    for name, dtype in BLOB_COLUMNS:
        col = contrib[name].to_numpy(zero_copy_only=False)
        parts.append(np.asarray(col).astype(dtype).tobytes())      # null influence -> NaN
    header = np.array([contrib.num_rows], "<i8").tobytes()
    return base64.b64encode(zlib.compress(header + b"".join(parts), 1)).decode("ascii")


def decode_blob(blob: str | None) -> dict[str, np.ndarray]:
    """Graph.features -> {column: array}; best_influence is NaN where no occurrence had an influence."""
    if not blob:
        return {name: np.zeros(0, dtype) for name, dtype in BLOB_COLUMNS}
    raw = zlib.decompress(base64.b64decode(blob))
    n = int(np.frombuffer(raw[:8], "<i8")[0])
    out, at = {}, 8
    for name, dtype in BLOB_COLUMNS:
        size = np.dtype(dtype).itemsize * n
        out[name] = np.frombuffer(raw[at:at + size], dtype)
        at += size
    return out


def blobs(contrib: pa.Table, n_graphs: int) -> list[str]:
    """Graph.features for each graph of a batch (contributions sorted by graph)."""
    g = contrib["g"].to_numpy()
    bounds = np.searchsorted(g, np.arange(n_graphs + 1))
    return [encode_blob(contrib.slice(bounds[i], bounds[i + 1] - bounds[i])) for i in range(n_graphs)]


def strong_paths(nodes: pa.Table, effects: pa.Table, first_uid: int, graph_index: np.ndarray, n_graphs: int,
                 min_weight: float = PATH_MIN_WEIGHT, cap: int | None = None) -> tuple[pa.Table, np.ndarray]:
    """Every embedding -> feature (-> feature (-> feature)) -> logit path of a batch whose edges all have
    |weight| >= min_weight, as Path rows (schema.PATH), and per graph how many (Graph.n_paths).

    Pruned attribution graphs have tens to hundreds; a dense graph (an unpruned .pt graph, a random
    one) can have billions: the paths of each graph are counted first, and a graph with more than `cap`
    stores none and gets n_paths = -1 (common-paths then walks the edges). Edges never leave their
    graph, so the batch is walked at once: paths are index arrays extended one strong edge at a time."""
    is_feat = _np(pc.is_valid(nodes["fkey"]))
    is_emb = _np(pc.equal(nodes["kind"], "embedding"), False)
    is_logit = _np(pc.equal(nodes["kind"], "logit"), False)
    w = _np(effects["weight"])
    strong = np.abs(w) >= min_weight
    src = _np(effects["src"])[strong] - first_uid
    dst = _np(effects["dst"])[strong] - first_uid
    w = w[strong]
    # count first: total[x] = strong paths of 1 to MAX_HOPS - 1 edges from feature x to a logit through features
    n = nodes.num_rows
    feat_edge = is_feat[src]
    reach = np.bincount(src[feat_edge & is_logit[dst]], minlength=n).astype(np.float64)
    total = reach.copy()
    for _ in range(MAX_HOPS - 2):
        inner = feat_edge & is_feat[dst]
        reach = np.bincount(src[inner], reach[dst[inner]], minlength=n)
        total += reach
    starts_here = is_emb[src] & is_feat[dst]
    counts = np.bincount(graph_index[src[starts_here]], total[dst[starts_here]], minlength=n_graphs)
    over = counts > (PATH_CAP if cap is None else cap)
    if over.any():                                   # leave those graphs' edges out of the walk
        keep = ~over[graph_index[src]]
        src, dst, w = src[keep], dst[keep], w[keep]
    n_paths = np.where(over, -1, counts).astype(np.int64)
    order = np.argsort(src, kind="stable")
    src, dst, w = src[order], dst[order], w[order]
    starts = np.searchsorted(src, np.arange(nodes.num_rows + 1))             # CSR: edges out of node i

    def extend(last: np.ndarray):
        """(path index, edge index) for every strong edge out of each path's last node."""
        counts = starts[last + 1] - starts[last]
        path = np.repeat(np.arange(len(last)), counts)
        edge = starts[last][path] + (np.arange(len(path)) - np.repeat(np.cumsum(counts) - counts, counts))
        return path, edge

    first = np.flatnonzero(is_emb[src] & is_feat[dst])                     # embedding -> feature
    seq, weights, done = [src[first], dst[first]], [w[first]], []           # node / weight columns of open paths
    for hops in range(2, MAX_HOPS + 1):
        path, edge = extend(seq[-1])
        for target, out in ((is_logit, "done"), (is_feat, "open")):
            keep = target[dst[edge]]
            p, e = path[keep], edge[keep]
            cols = ([c[p] for c in seq] + [dst[e]], [c[p] for c in weights] + [w[e]])
            if out == "done":
                done.append((hops, *cols))
            else:
                seq, weights = cols
    parts = []
    for hops, cols_nodes, cols_w in done:
        m = len(cols_nodes[0])
        ws = np.stack(cols_w, 1).astype(np.float64) if m else np.zeros((0, hops))   # (m, hops)
        take = lambda column, i: nodes[column].take(pa.array(cols_nodes[i], pa.int64()))
        signs = pa.array(np.full(m, "", object), pa.string())
        for i in range(hops):
            signs = pc.binary_join_element_wise(signs, pa.array(np.where(ws[:, i] < 0, "-", "+"), pa.string()), "")
        none = pa.nulls(m, pa.string())
        parts.append(pa.table({
            "gid": take("gid", 0), "hops": pa.array(np.full(m, hops), pa.int64()), "start_token": take("token", 0),
            "f1": take("fkey", 1), "f2": take("fkey", 2) if hops > 2 else none, "f3": take("fkey", 3) if hops > 3 else none,
            "end_token": take("token", hops), "signs": signs,
            "strength": pa.array(np.prod(ws, axis=1)), "bottleneck": pa.array(np.min(np.abs(ws), axis=1, initial=np.inf)),
        }))
    t = pa.concat_tables(parts)
    ids = pc.binary_join_element_wise(t["gid"], pa.array(np.arange(t.num_rows).astype(str), pa.string()), "/")
    return t.add_column(0, "id", ids), n_paths


# --- per (feature, neighbour) aggregates: feature-upstream / feature-downstream ------------------------
# A neighbour is what the other end of an edge is globally, as those queries group it: its identity
# (kind, layer, feature key, token) -- a feature by its key, an embedding or logit by its token, an error
# by its layer. One Neighbour row per (feature, direction, neighbour): "up" (0) for edges into the
# feature's occurrences, "down" (1) for edges out of them (an edge between two features is in both).
# Every aggregate is a sum, so a deletion subtracts exactly what the graph added, and a row whose
# n_edges reaches 0 is deleted.
#
# Keys are integers: each identity gets a store-wide number at first ingest (a NeighbourEnd row, its
# `key` the identity string), a feature's number being that of its own identity as a neighbour
# (kind "feature", its layer and key, no token), and a row's id packs (feature, direction, neighbour)
# into one INT64 (neighbour_id). String keys made the rows cost 4x the edges they summarise to write
# and store (docs/queries.md).
NEIGHBOUR_AGGREGATES = ("weight", "abs_weight", "n_edges", "n_graphs")
NEIGHBOUR_ENDS = ("kind", "layer", "fkey", "token")           # the other end's columns on Node
END_BITS = 31                                                  # identity numbers are < 2**31


def _marked(col: pa.Array) -> pa.Array:
    """Strings where null and "" stay apart: null -> "", a value v -> "=" + v."""
    text = col.cast(pa.string())
    return pc.if_else(pc.is_valid(text), pc.binary_join_element_wise("=", text, ""), "")


def identity(kind, layer, fkey, token) -> pa.Array:
    """NeighbourEnd.key of each row of these Node columns (one string per identity, nulls kept apart)."""
    return pc.binary_join_element_wise(*[_marked(c) for c in (kind, layer, fkey, token)], "\x1f")


def neighbour_id(feature_end, direction, end):
    """Neighbour.id from the feature's identity number, the direction (0 up, 1 down) and the
    neighbour's identity number (numpy arrays or ints)."""
    return (feature_end << (END_BITS + 1)) | (direction << END_BITS) | end


def neighbour_contributions(nodes: pa.Table, effects: pa.Table, first_uid: int,
                            graph_index: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """(rows, ends) for a batch. `ends`: the distinct identities its rows name (schema.NEIGHBOUR_END's
    columns but the store's number `id`), the neighbours' and the features' own. `rows`: one per
    (feature, direction, neighbour) touched, naming its feature's identity (`fend`) and its neighbour's
    (`end`) by their row in `ends` (the store numbers them: keyed_neighbours), with the feature's key,
    the direction, the sum of the edges' weights and |weights|, their number, and the number of the
    batch's graphs that have one.

    Numpy on integer codes: an identity string is made once per node, never per row. Rows are in no
    particular order."""
    n = nodes.num_rows
    src = _np(effects["src"]) - first_uid
    dst = _np(effects["dst"]) - first_uid
    w = _np(effects["weight"]).astype(np.float64)
    is_feat = _np(pc.is_valid(nodes["fkey"]))
    whole = lambda col: col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    feature_nodes = pa.array(np.flatnonzero(is_feat), pa.int64())
    own = {"kind": pa.array(["feature"] * len(feature_nodes), pa.string()),     # a feature's own identity
           "layer": nodes["layer"].take(feature_nodes), "fkey": nodes["fkey"].take(feature_nodes),
           "token": pa.nulls(len(feature_nodes), pa.string())}
    both = {c: pa.concat_arrays([whole(nodes[c]), whole(own[c]).cast(nodes[c].type)]) for c in NEIGHBOUR_ENDS}
    encoded = pc.dictionary_encode(identity(*both.values()))
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)    # (N + F,) identity of each
    ident_code = codes[:n]                                                      # (N,) a node's as a neighbour
    own_code = np.full(n, -1, np.int64)
    own_code[_np(feature_nodes)] = codes[n:]                                    # (N,) a feature node's own
    n_ident = len(encoded.dictionary) or 1
    up, down = is_feat[dst], is_feat[src]
    feat = np.concatenate([dst[up], src[down]])                   # (R,) the feature end of each row
    nbr = np.concatenate([src[up], dst[down]])                    # (R,) the neighbour end
    direction = np.concatenate([np.zeros(up.sum(), np.int64), np.ones(down.sum(), np.int64)])
    weight = np.concatenate([w[up], w[down]])
    key = (own_code[feat] * 2 + direction) * n_ident + ident_code[nbr]
    n_graphs = int(graph_index.max()) + 1 if len(graph_index) else 1
    order = np.argsort(key * n_graphs + graph_index[feat], kind="stable")
    key, feat, nbr, direction, weight = key[order], feat[order], nbr[order], direction[order], weight[order]
    g = graph_index[feat]
    run = np.ones(len(key), bool)
    run[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(run)                                   # (K,) first row of each (feature, dir, neighbour)
    new_graph = run.copy()
    new_graph[1:] |= g[1:] != g[:-1]
    sums = lambda values: np.add.reduceat(values, starts) if len(starts) else values[:0]
    fend, end = own_code[feat[starts]], ident_code[nbr[starts]]
    used = np.zeros(n_ident, bool)
    used[fend], used[end] = True, True
    kept = np.flatnonzero(used)                                    # the identities rows name, renumbered
    renumber = np.cumsum(used) - 1
    first = np.full(n_ident, -1, np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]               # a node of each identity
    at = pa.array(first[kept], pa.int64())
    ends = pa.table({"key": encoded.dictionary.take(pa.array(kept, pa.int64())),
                     **{c: both[c].take(at) for c in NEIGHBOUR_ENDS}})
    rows = pa.table({
        "fkey": nodes["fkey"].take(pa.array(feat[starts], pa.int64())),
        "fend": pa.array(renumber[fend], pa.int64()), "dir": pa.array(direction[starts], pa.int64()),
        "end": pa.array(renumber[end], pa.int64()),
        "weight": pa.array(sums(weight)), "abs_weight": pa.array(sums(np.abs(weight))),
        "n_edges": pa.array(np.diff(np.append(starts, len(key))), pa.int64()),
        "n_graphs": pa.array(sums(new_graph.astype(np.int64)), pa.int64()),
    })
    return rows, ends


def keyed_neighbours(neighbours: pa.Table, numbers: np.ndarray) -> pa.Table:
    """The rows of neighbour_contributions with integer keys, given the store's number of each of its
    `ends` (numbers[i] for row i): schema.NEIGHBOUR's columns plus `fkey`, the feature that links the row."""
    numbers = np.asarray(numbers, np.int64)
    if len(numbers) and numbers.max() >= 1 << END_BITS:
        raise OverflowError("more than 2**31 neighbour identities: Neighbour.id cannot pack them")
    end, fend = numbers[_np(neighbours["end"])], numbers[_np(neighbours["fend"])]
    return pa.table({"id": pa.array(neighbour_id(fend, _np(neighbours["dir"]), end), pa.int64()),
                     "dir": neighbours["dir"], "end_id": pa.array(end, pa.int64()),
                     **{a: neighbours[a] for a in NEIGHBOUR_AGGREGATES}, "fkey": neighbours["fkey"]})
