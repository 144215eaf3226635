"""Graph <-> store rows: the one translation both backends share.

`graph_rows` turns graphs into column tables (pyarrow) laid out exactly as the schema declares them;
the embedded backend COPYs them as they are, Neo4j UNWINDs them in batches. `graph_from_rows` is the
inverse, used by `Store.get_graph`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from circuit_atlas.graph import Graph, Node
from circuit_atlas.store import schema

ARROW_TYPES = {"STRING": pa.string(), "INT64": pa.int64(), "DOUBLE": pa.float64(), "FLOAT": pa.float32(),
               "BOOL": pa.bool_(), "STRING[]": pa.list_(pa.string())}

UID_REF = pa.dictionary(pa.int32(), pa.string())   # an edge endpoint: index into its graph's uids


@dataclass
class GraphRows:
    """One table per label / relationship type; rel tables start with the (src, dst) key columns."""
    graphs: pa.Table
    nodes: pa.Table
    features: pa.Table       # every feature the graphs use, deduplicated by key
    has_node: pa.Table
    of_feature: pa.Table
    effects: pa.Table
    tags: list[dict]         # rows for statements.LINK_TAGS: {gid, id, key, value}

    @property
    def n_edges(self) -> int:
        return self.effects.num_rows


def _label_table(label: schema.Label, columns: dict) -> pa.Table:
    return pa.table({name: pa.array(columns[name], type=ARROW_TYPES[typ]) for name, typ in label.properties.items()})


def _rel_table(rel: schema.Rel, src, dst, **props) -> pa.Table:
    as_strings = lambda x: x if isinstance(x, pa.ChunkedArray) else pa.array(x, type=pa.string())
    cols = {"src": as_strings(src), "dst": as_strings(dst)}
    cols |= {name: pa.array(props[name], type=ARROW_TYPES[typ]) for name, typ in rel.properties.items()}
    return pa.table(cols)


def tag_rows(graph: Graph) -> list[dict]:
    return [{"gid": graph.id, "id": f"{k}={v}", "key": k, "value": str(v)} for k, v in sorted(graph.tags.items())]


def graph_rows(graphs: list[Graph]) -> GraphRows:
    """Columns for a batch of graphs (features shared between graphs of the batch appear once).

    Edge endpoints are dictionary-encoded columns over each graph's uids (the edge arrays are the
    indices): no Python loop and no string copy per edge, which matters at 10^6 edges per batch.
    """
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    g_cols = {name: [] for name in schema.GRAPH.properties}
    n_cols = {name: [] for name in schema.NODE.properties}
    features: dict[str, tuple] = {}
    src, dst, weights, tags = [], [], [], []
    for g in graphs:
        meta = json.dumps({"generator": g.generator, "extra": g.extra, "scores": g.scores}, ensure_ascii=False)
        for name, value in dict(
            id=g.id, slug=g.slug, prompt=g.prompt, model=g.model, transcoder_set=g.transcoder_set,
            n_layers=g.n_layers, n_nodes=len(g.nodes), n_edges=g.n_edges, node_threshold=g.node_threshold,
            edge_threshold=g.edge_threshold, created=created, prompt_tokens=list(g.prompt_tokens), meta=meta,
        ).items():
            g_cols[name].append(value)
        nodes = g.nodes
        uids = [f"{g.id}/{n.node_id}" for n in nodes]
        fkeys = [g.feature_key(n) for n in nodes]
        columns = dict(uid=uids, gid=[g.id] * len(nodes), fkey=fkeys)
        for name in ("node_id", "kind", "layer", "pos", "feature", "token_id", "token", "activation",
                     "influence", "logit_prob", "label"):
            columns[name] = [getattr(n, name) for n in nodes]
        for name, values in columns.items():
            n_cols[name] += values
        for n, fkey in zip(nodes, fkeys):
            if fkey is not None and (fkey not in features or not features[fkey][4]):
                features[fkey] = (fkey, g.transcoder_set, n.layer, n.feature, n.label)
        uid_array = pa.array(uids, type=pa.string())     # edges index into it: dictionary-encoded, no copy
        src.append(pa.DictionaryArray.from_arrays(g.edge_source, uid_array))   # (E,) uid of each edge's source
        dst.append(pa.DictionaryArray.from_arrays(g.edge_target, uid_array))
        weights.append(g.edge_weight)
        tags += tag_rows(g)
    fcols = {name: [f[i] for f in features.values()] for i, name in enumerate(schema.FEATURE.properties)}
    linked = [i for i, k in enumerate(n_cols["fkey"]) if k is not None]
    return GraphRows(
        graphs=_label_table(schema.GRAPH, g_cols),
        nodes=_label_table(schema.NODE, n_cols),
        features=_label_table(schema.FEATURE, fcols),
        has_node=_rel_table(schema.HAS_NODE, n_cols["gid"], n_cols["uid"]),
        of_feature=_rel_table(schema.OF_FEATURE, [n_cols["uid"][i] for i in linked],
                              [n_cols["fkey"][i] for i in linked]),
        effects=_rel_table(schema.EFFECT, pa.chunked_array(src, type=UID_REF), pa.chunked_array(dst, type=UID_REF),
                           weight=np.concatenate(weights) if weights else np.array([], dtype=np.float32)),
        tags=tags,
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
