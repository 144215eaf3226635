"""Graph -> circuit-tracer / Neuronpedia JSON, the field set of circuit-tracer's `create_graph_files`.

What a graph read by ingest/formats.py kept in `graph.extra` (its file's error ids, feature encoding,
metadata and viewer state) is written back, so that reading a file and writing it gives an equivalent file.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from circuit_atlas.graph import Graph, Node
from circuit_atlas.ingest import schema
from circuit_atlas.ingest.names import model_from_scan, transcoder_set_from_scan
from circuit_atlas.ingest.schema import LEGACY_ERROR_IDS, cantor, logit_clerp

try:  # 2-3x faster than the stdlib for large graphs
    import orjson
except ImportError:  # pragma: no cover
    orjson = None


def write_graph_json(graph: Graph, path, *, update_index: bool = False) -> Path:
    """Write circuit-tracer / Neuronpedia JSON (`.json`, or gzip-compressed if `path` ends in `.gz`).

    `update_index`: also add the graph to `graph-metadata.json` beside it, which circuit-tracer's
    local viewer lists (the viewer loads `<slug>.json`, so name the file after the slug).
    """
    path = Path(path)
    data = graph_to_json(graph)
    blob = orjson.dumps(data) if orjson is not None else json.dumps(data, ensure_ascii=False).encode()
    if path.name.endswith(".gz"):
        blob = gzip.compress(blob, mtime=0)
    path.write_bytes(blob)
    if update_index:
        _update_viewer_index(path.parent / "graph-metadata.json", data["metadata"])
    return path


def graph_to_json(graph: Graph) -> dict:
    """The JSON document (a dict) for `graph`; see `write_graph_json`."""
    if not np.isfinite(graph.edge_weight).all():
        raise ValueError("graph has non-finite edge weights; they cannot be written as JSON")
    ids = file_node_ids(graph)
    nodes = [_node_to_json(graph, n, fid) for n, fid in zip(graph.nodes, ids)]
    logit_ids = [n.node_id for n in graph.nodes if n.kind == "logit"]
    target = graph.extra.get("target_logit")
    if target not in logit_ids:   # circuit-tracer's target is the first (most probable) logit
        target = logit_ids[0] if logit_ids else None
    for n, d in zip(graph.nodes, nodes):
        d["is_target_logit"] = n.kind == "logit" and n.node_id == target
    links = [{"source": s, "target": t, "weight": w} for s, t, w in zip(
        [ids[i] for i in graph.edge_source.tolist()], [ids[i] for i in graph.edge_target.tolist()],
        graph.edge_weight.tolist())]
    return {"metadata": _metadata_to_json(graph), "qParams": _qparams(graph, set(ids)),
            "nodes": nodes, "links": links}


def file_node_ids(graph: Graph) -> list[str]:
    """The node ids as written to (and read from) a file: our ids, except that error nodes take
    circuit-tracer's "0_{layer}_{pos}" when the source file used it and no other node has that id."""
    ids = [n.node_id for n in graph.nodes]
    if graph.extra.get("error_ids") == LEGACY_ERROR_IDS:
        taken = set(ids)
        ids = [f"0_{n.layer}_{n.pos}" if n.kind == "error" and f"0_{n.layer}_{n.pos}" not in taken else i
               for n, i in zip(graph.nodes, ids)]
    return ids


def _node_to_json(graph: Graph, n: Node, file_id: str) -> dict:
    expected = {"feature": f"{n.layer}_{n.feature}_{n.pos}", "error": f"{n.layer}_-1_{n.pos}",
                "embedding": f"E_{n.token_id}_{n.pos}", "logit": f"{graph.n_layers + 1}_{n.token_id}_{n.pos}"}
    if n.node_id != expected.get(n.kind):
        raise ValueError(f"node {n.node_id!r}: a {n.kind} node's id must be {expected.get(n.kind)!r} "
                         "(see circuit_atlas.graph); it could not be read back")
    legacy_error = file_id != n.node_id
    if n.kind == "feature":
        raw = graph.extra.get("feature_encoding") == "raw"
        feature = n.feature if raw else cantor(n.layer, n.feature)
        layer, js = str(n.layer), f"{n.layer}_{n.feature}-0"
    elif n.kind == "error":
        feature, layer = -1, str(n.layer)
        js = f"{n.layer}_{n.pos}-0" if legacy_error else f"{n.layer}_-1-{n.pos}"
    elif n.kind == "embedding":
        feature, layer, js = n.pos, "E", f"E_{n.token_id}-{n.pos}"
    else:
        feature, layer, js = n.token_id, str(graph.n_layers + 1), f"L_{n.token_id}-{n.pos}"
    clerp = n.label
    if n.kind == "logit" and not clerp and n.token is not None:
        clerp = logit_clerp(n.token, n.logit_prob or 0.0)
    return {
        "node_id": file_id, "feature": feature, "layer": layer, "ctx_idx": n.pos,
        "feature_type": schema.KIND_FEATURE_TYPE[n.kind],
        "token_prob": (n.logit_prob or 0.0) if n.kind == "logit" else 0.0,
        "is_target_logit": False, "run_idx": 0, "reverse_ctx_idx": 0, "jsNodeId": js, "clerp": clerp,
        "influence": n.influence, "activation": n.activation,
    }


def _metadata_to_json(graph: Graph) -> dict:
    kept = dict(graph.extra.get("metadata") or {})
    scan = kept.pop("scan", None)
    if scan is None or model_from_scan(scan, graph.transcoder_set) != graph.model:
        scan = graph.model
    meta = {
        "slug": graph.slug, "scan": scan, "transcoder_list": kept.pop("transcoder_list", []),
        "prompt_tokens": list(graph.prompt_tokens), "prompt": graph.prompt,
        "node_threshold": graph.node_threshold, "schema_version": kept.pop("schema_version", 1),
    }
    info = kept.pop("info", None)
    generator = {k: v for k, v in graph.generator.items() if k != "generation_settings"}
    if info is not None or generator or graph.transcoder_set != transcoder_set_from_scan(scan):
        info = dict(info or {})
        info["transcoder_set"] = graph.transcoder_set
        if generator:
            info["generator"] = generator
        meta["info"] = _in_order(info, ["creator_name", "creator_url", "source_urls", "transcoder_set",
                                        "generator", "create_time_ms"])
    if "generation_settings" in graph.generator:
        meta["generation_settings"] = graph.generator["generation_settings"]
    pruning = kept.pop("pruning_settings", None)
    if pruning is not None or graph.edge_threshold is not None:
        meta["pruning_settings"] = {**(pruning or {}), "node_threshold": graph.node_threshold,
                                    "edge_threshold": graph.edge_threshold}
    kept.pop("n_layers", None)
    if not any(n.kind == "logit" for n in graph.nodes):
        kept["n_layers"] = graph.n_layers   # a reader cannot find it from the logit layer
    return {**meta, **kept}


def _in_order(d: dict, order: list[str]) -> dict:
    return {**{k: d[k] for k in order if k in d}, **{k: v for k, v in d.items() if k not in order}}


def _qparams(graph: Graph, ids: set[str]) -> dict:
    """The viewer state; pinned nodes and supernode members the graph no longer has are dropped."""
    q = dict(graph.extra.get("qParams") or
             {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""})
    if isinstance(q.get("pinnedIds"), list):
        q["pinnedIds"] = [i for i in q["pinnedIds"] if i in ids]
    if isinstance(q.get("supernodes"), list):
        q["supernodes"] = [s[:1] + [i for i in s[1:] if i in ids] for s in q["supernodes"]
                           if isinstance(s, list) and any(i in ids for i in s[1:])]
    if q.get("clickedId") and q["clickedId"] not in ids:
        q["clickedId"] = ""
    return q


def _update_viewer_index(index_path: Path, metadata: dict) -> None:
    """Add (or replace, by slug) a graph's metadata in circuit-tracer's graph-metadata.json."""
    index = json.loads(index_path.read_text()) if index_path.exists() else {"graphs": []}
    entry = {k: metadata.get(k) for k in ("slug", "scan", "transcoder_list", "prompt_tokens", "prompt",
                                          "node_threshold", "schema_version")}
    index["graphs"] = [g for g in index["graphs"] if g.get("slug") != entry["slug"]] + [entry]
    index_path.write_text(json.dumps(index, indent=2, ensure_ascii=False))

