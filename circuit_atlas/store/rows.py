"""Graph <-> store rows: the one translation both backends share.

`graph_rows` turns graphs into column tables (pyarrow) laid out exactly as the schema declares them;
the embedded backend COPYs them as they are, Neo4j UNWINDs them in batches. `graph_from_rows` is the
inverse, used by `Store.get_graph`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from operator import attrgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from circuit_atlas.graph import Graph, Node
from circuit_atlas.store import aggregates, schema

ARROW_TYPES = {"STRING": pa.string(), "INT64": pa.int64(), "DOUBLE": pa.float64(), "FLOAT": pa.float32(),
               "BOOL": pa.bool_(), "STRING[]": pa.list_(pa.string())}


@dataclass
class GraphRows:
    """One table per label / relationship type; rel tables start with the (src, dst) key columns."""
    graphs: pa.Table
    nodes: pa.Table
    features: pa.Table       # every feature the graphs use, deduplicated by key, with the batch's aggregates
    has_node: pa.Table
    of_feature: pa.Table
    effects: pa.Table
    tags: list[dict]         # rows for statements.LINK_TAGS: {gid, id, key, value}
    paths: pa.Table          # the graphs' strong paths (aggregates.strong_paths)
    neighbours: pa.Table | None = None   # per (feature, direction, neighbour) sums naming identities by their
    neighbour_ends: pa.Table | None = None   # row here (aggregates.neighbour_contributions; the store numbers them)


def _column(values, typ: str) -> pa.Array:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(ARROW_TYPES[typ])
    return pa.array(values, type=ARROW_TYPES[typ])


def _label_table(label: schema.Label, columns: dict) -> pa.Table:
    return pa.table({name: _column(columns[name], typ) for name, typ in label.properties.items()})


def _rel_table(rel: schema.Rel, src, dst, **props) -> pa.Table:
    cols = {"src": src, "dst": dst} | {name: _column(props[name], typ) for name, typ in rel.properties.items()}
    return pa.table(cols)


def tag_rows(graph: Graph) -> list[dict]:
    return [{"gid": graph.id, "id": f"{k}={v}", "key": k, "value": str(v)} for k, v in sorted(graph.tags.items())]


def tag_tables(tags: list[dict]) -> tuple[pa.Table, pa.Table]:
    """(Tag rows, one per id; TAGGED rows, graph id -> tag id) for the embedded COPY path."""
    unique = list({r["id"]: r for r in tags}.values())
    return (_label_table(schema.TAG, {name: [r[name] for r in unique] for name in schema.TAG.properties}),
            pa.table({"src": pa.array([r["gid"] for r in tags], pa.string()),
                      "dst": pa.array([r["id"] for r in tags], pa.string())}))


NODE_FIELDS = ("node_id", "kind", "layer", "pos", "feature", "token_id", "token", "activation", "influence",
               "logit_prob", "label")


def graph_rows(graphs: list[Graph], first_uid: int, with_aggregates: bool = True) -> GraphRows:
    """Columns for a batch of graphs (features shared between graphs of the batch appear once).

    Nodes are numbered first_uid, first_uid + 1, ... in order (Node.uid: integer keys copy and
    index faster than strings), so an edge's endpoints are its graph's first uid plus the edge
    arrays, in numpy. Built column by column, with Arrow compute for the derived strings (fkey):
    no Python loop per edge, which matters at 10^6 edges per batch.
    """
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    g_cols = {name: [] for name in schema.GRAPH.properties if name not in ("features", "n_paths")}
    for g in graphs:
        meta = json.dumps({"generator": g.generator, "extra": g.extra, "scores": g.scores}, ensure_ascii=False)
        for name, value in dict(
            id=g.id, slug=g.slug, prompt=g.prompt, model=g.model, transcoder_set=g.transcoder_set,
            n_layers=g.n_layers, n_nodes=len(g.nodes), n_edges=g.n_edges, node_threshold=g.node_threshold,
            edge_threshold=g.edge_threshold, created=created, prompt_tokens=list(g.prompt_tokens), meta=meta,
        ).items():
            g_cols[name].append(value)

    nodes = [n for g in graphs for n in g.nodes]                        # (N,) every occurrence, graph by graph
    sizes = np.array([len(g.nodes) for g in graphs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)   # first node of each graph
    graph_of_node = pa.array(np.repeat(np.arange(len(graphs)), sizes))  # (N,) index of each node's graph
    n_cols = {name: list(map(attrgetter(name), nodes)) for name in NODE_FIELDS}
    n_cols = {name: _column(n_cols[name], schema.NODE.properties[name]) for name in NODE_FIELDS}
    gid = pa.array(g_cols["id"], type=pa.string()).take(graph_of_node)
    uid = pa.array(np.arange(first_uid, first_uid + len(nodes), dtype=np.int64))
    linked = pc.and_(pc.equal(n_cols["kind"], "feature"), pc.is_valid(n_cols["feature"]))
    tsets = pa.array(g_cols["transcoder_set"], type=pa.string()).take(graph_of_node)
    fkey = pc.if_else(linked, pc.binary_join_element_wise(      # Graph.feature_key, for every node at once
        tsets, n_cols["layer"].cast(pa.string()), n_cols["feature"].cast(pa.string()), "/"), None)
    n_cols |= {"uid": uid, "gid": gid, "fkey": fkey}

    uses = pa.table({"key": fkey, "transcoder_set": tsets, "layer": n_cols["layer"], "feature": n_cols["feature"],
                     "label": n_cols["label"]}).filter(linked)
    labelled = pc.not_equal(uses["label"], "")                # a feature takes its first non-empty label
    uses = pa.concat_tables([uses.filter(labelled), uses.filter(pc.invert(labelled))])
    features = uses.group_by("key", use_threads=False).aggregate(
        [(c, "first") for c in uses.column_names[1:]]).rename_columns(uses.column_names)

    def endpoints(which: str) -> pa.Array:                     # (E,) int64 uid of each edge's source / target
        uids = [getattr(g, which).astype(np.int64) + first for g, first in zip(graphs, (first_uid + offsets).tolist())]
        return pa.array(np.concatenate(uids) if uids else np.zeros(0, np.int64), pa.int64())

    weights = [g.edge_weight for g in graphs]
    nodes = _label_table(schema.NODE, n_cols)
    effects = _rel_table(schema.EFFECT, endpoints("edge_source"), endpoints("edge_target"),
                         weight=np.concatenate(weights) if weights else np.array([], dtype=np.float32))
    graph_index = np.repeat(np.arange(len(graphs)), sizes)              # (N,) batch index of each node's graph
    if with_aggregates:
        contrib = aggregates.contributions(nodes, effects, first_uid, graph_index,
                                           np.array([len(g.prompt_tokens) for g in graphs], dtype=np.int64))
        g_cols["features"] = aggregates.blobs(contrib, len(graphs))
        paths, g_cols["n_paths"] = aggregates.strong_paths(nodes, effects, first_uid, graph_index, len(graphs))
        features = features.join(aggregates.feature_deltas(contrib), "key", use_threads=False)
        neighbours, ends = aggregates.neighbour_contributions(nodes, effects, first_uid, graph_index)
    else:                              # bench/ingest.py's "before": the write path without aggregates
        g_cols["features"], g_cols["n_paths"] = [None] * len(graphs), [None] * len(graphs)
        paths = aggregates.strong_paths(nodes.slice(0, 0), effects.slice(0, 0), first_uid, graph_index[:0], 0)[0]
        for name in aggregates.FEATURE_AGGREGATES:
            features = features.append_column(name, pa.nulls(features.num_rows, pa.float64()))
        neighbours = ends = None
    return GraphRows(
        graphs=_label_table(schema.GRAPH, g_cols),
        nodes=nodes,
        features=_label_table(schema.FEATURE, {name: features[name] for name in schema.FEATURE.properties}),
        has_node=_rel_table(schema.HAS_NODE, gid, uid),
        of_feature=_rel_table(schema.OF_FEATURE, uid.filter(linked), fkey.filter(linked), gid=gid.filter(linked),
                              activation=n_cols["activation"].filter(linked), influence=n_cols["influence"].filter(linked)),
        effects=effects,
        tags=[row for g in graphs for row in tag_rows(g)],
        paths=paths,
        neighbours=neighbours,
        neighbour_ends=ends,
    )


def graph_from_rows(info: dict, nodes: list[dict], edges: list[dict], tags: list[dict]) -> Graph:
    """Rebuild a Graph from the rows of statements.GET_GRAPH / GET_NODES / GET_EDGES / GET_TAGS."""
    meta = json.loads(info["meta"] or "{}")
    node_objs = [Node(node_id=r["node_id"], kind=r["kind"], layer=r["layer"], pos=r["pos"], feature=r["feature"],
                      token_id=r["token_id"], token=r["token"], activation=r["activation"],
                      influence=r["influence"], logit_prob=r["logit_prob"], label=r["label"] or "")
                 for r in nodes]
    index = {n.node_id: i for i, n in enumerate(node_objs)}
    return Graph(
        prompt=info["prompt"], prompt_tokens=list(info["prompt_tokens"] or []), model=info["model"],
        transcoder_set=info["transcoder_set"], n_layers=info["n_layers"], nodes=node_objs,
        edge_source=np.array([index[e["source"]] for e in edges], dtype=np.int32),
        edge_target=np.array([index[e["target"]] for e in edges], dtype=np.int32),
        edge_weight=np.array([e["weight"] for e in edges], dtype=np.float32),
        slug=info["slug"] or "", node_threshold=info["node_threshold"], edge_threshold=info["edge_threshold"],
        generator=meta.get("generator", {}), extra=meta.get("extra", {}), scores=meta.get("scores", {}),
        tags={t["key"]: t["value"] for t in tags},
    )


def plain_value(value):
    """An engine's own number types as plain int / float, inside lists and maps too: the embedded
    engine returns a sum of integers as a 128-bit Decimal where Neo4j returns an int."""
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
