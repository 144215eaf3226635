"""Attribution-graph files as they exist in the wild -> `circuit_atlas.graph.Graph` (the writer: ingest/write.py).

Read:  circuit-tracer / Neuronpedia JSON (`.json`, `.json.gz`) and circuit-tracer `Graph.to_pt` files
       (`.pt`, `.pt.gz`, see `ingest.pt`: the FULL unpruned graph; the JSON is the pruned one).
Write: ingest/write.py, circuit-tracer / Neuronpedia JSON with the field set of `create_graph_files`.

The JSON variants handled (docs/formats.md has the long form):
  * node ids "{layer}_{index}_{pos}", "E_{token}_{pos}", "{n_layers+1}_{token}_{pos}" for logits;
    error nodes as "{layer}_-1_{pos}" (Neuronpedia) or "0_{layer}_{pos}" (circuit-tracer <= 0.5.0).
    Our error ids are always "{layer}_-1_{pos}"; the file's style is remembered for export.
  * the 0.5.0 error id can equal a layer-0 feature's id in the same file. The two nodes are kept
    apart (feature_type tells them apart) and each link naming that id is attributed by
    `_resolve_collisions` (errors have no incoming edges; circuit-tracer writes links sorted by
    (target, source) in node order; an error at layer l only reaches layers > l).
  * `feature`: Cantor(layer, index) for transcoder features (or the raw index in old exports; the
    node id's middle part is authoritative and the two must agree), -1 for errors, the position
    for embeddings, the token id for logits.
  * `scan` holding a model id or a transcoder repo; with or without `info`, `generation_settings`,
    `pruning_settings`; `qParams`.

What the Graph does not model is kept in `graph.extra`, so that writing a graph read from a file gives
back an equivalent file:
  extra["metadata"]         metadata fields verbatim that Graph has no field for (scan,
                            transcoder_list, schema_version, info minus transcoder_set/generator, ...)
  extra["qParams"]          viewer state: pinnedIds, supernodes ([label, node_id, ...]), ...
                            (node ids as written in the file, see `file_node_ids`)
  extra["error_ids"]        "0_{layer}_{pos}" when the file used circuit-tracer's error ids
  extra["feature_encoding"] "raw" when `feature` held raw transcoder indices, not Cantor pairs
  extra["target_logit"]     node_id of the node marked is_target_logit
  extra["id_collisions"]    {file id: [feature node_id, error node_id]} when a collision was resolved
`graph.generator` holds info.generator ({name, version, url}) plus "generation_settings".
"""
from __future__ import annotations

import glob
import gzip
import io
import json
import re
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from circuit_atlas.graph import EMBEDDING_LAYER, Graph, Node
from circuit_atlas.ingest import schema
from circuit_atlas.ingest.checks import check_values
from circuit_atlas.ingest.errors import GraphFileError, _more, _Problem
from circuit_atlas.ingest.names import model_from_scan, transcoder_set_from_scan
from circuit_atlas.ingest.schema import LEGACY_ERROR_IDS, cantor, logit_clerp as _logit_clerp
# the writer's names stay importable from here too, where README and docs/formats.md import them
from circuit_atlas.ingest.write import file_node_ids, graph_to_json, write_graph_json  # noqa: F401

try:  # 2-3x faster parsing of large files; the stdlib is the fallback and the NaN diagnostician
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

DEFAULT_MAX_BYTES = 2 * 1024**3   # refuse files (after decompression) larger than this: 2 GiB


# ---------------------------------------------------------------------------------------------- read

def read_graph_file(path, *, max_bytes: int = DEFAULT_MAX_BYTES, tokenizer=None) -> Graph:
    """Read a `.json`, `.json.gz`, `.pt` or `.pt.gz` attribution graph.

    `tokenizer` (`.pt` only): a tokenizer directory / tokenizer.json path, or an object with
    `.decode(ids)`, to spell the prompt tokens; default: the file's `cfg.tokenizer_name`, if local.
    Raises GraphFileError("<path>: <problem>") for anything unreadable.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        data = _read_bytes(path, max_bytes)
        if name.endswith((".pt", ".pt.gz")):
            from circuit_atlas.ingest import pt
            return pt.graph_from_pt(data, tokenizer=tokenizer)
        return _graph_from_json(_loads(data))
    except _Problem as e:
        raise GraphFileError(f"{path}: {e}") from None
    except FileNotFoundError:                # expand_paths keeps a glob that matched nothing, to say so here
        what = "no file matches this pattern" if glob.has_magic(str(path)) else "no such file or folder"
        raise GraphFileError(f"{path}: cannot read: {what}") from None
    except OSError as e:
        raise GraphFileError(f"{path}: cannot read: {e.strerror or e}") from None
    except RecursionError:   # a value nested too deeply for validation, in a file orjson could parse
        raise GraphFileError(f"{path}: a value is nested too deeply to read") from None


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size > max_bytes:
        raise _Problem(f"file is {size:,} bytes, over the {max_bytes:,}-byte limit (raise max_bytes)")
    with path.open("rb") as f:
        return _gunzip(f.read(), max_bytes)


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    if data[:2] == b"\x1f\x8b":   # gzip, whatever the name says; capped against decompression bombs
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as z:
                data = z.read(max_bytes + 1)
        except (OSError, EOFError) as e:
            raise _Problem(f"corrupt gzip data ({e})") from None
        if len(data) > max_bytes:
            raise _Problem(f"decompresses to over the {max_bytes:,}-byte limit (raise max_bytes)")
    return data


MAX_JSON_DEPTH = 1024   # orjson's limit; the stdlib's recursive parser overflows the stack further down


def _loads(data: bytes):
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            if "depth" in str(e):
                raise _Problem(f"JSON nested deeper than {MAX_JSON_DEPTH} levels ({e})") from None
            # else the stdlib gives line/column, and parses NaN so that we can name it
    if not data.strip():
        raise _Problem("empty file (no JSON in it)")
    try:
        return json.loads(data)
    except RecursionError:
        raise _Problem("JSON nested too deeply to parse (thousands of levels)") from None
    except UnicodeDecodeError as e:
        raise _Problem(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        what = "truncated JSON" if e.pos >= len(data.rstrip()) else "invalid JSON"
        raise _Problem(f"{what}: {e.msg} at line {e.lineno} column {e.colno}") from None


def graph_from_bytes(data: bytes, source: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Graph:
    """A graph JSON document held in memory (gzip-compressed or not), e.g. an artifact carried by
    redis; errors name `source` as read_graph_file's name the file."""
    try:
        return _graph_from_json(_loads(_gunzip(data, max_bytes)))
    except _Problem as e:
        raise GraphFileError(f"{source}: {e}") from None


def graph_from_json(data, source: str = "<json>") -> Graph:
    """A graph JSON document already parsed (a dict) -> Graph; errors name `source`."""
    try:
        return _graph_from_json(data)
    except _Problem as e:
        raise GraphFileError(f"{source}: {e}") from None


def _graph_from_json(data) -> Graph:
    if not isinstance(data, dict) or not {"nodes", "links"} <= data.keys():
        found = ", ".join(map(str, list(data)[:6])) if isinstance(data, dict) else type(data).__name__
        raise _Problem("not an attribution graph: expected a JSON object with 'metadata', 'nodes' "
                       f"and 'links' (found: {found or 'empty object'})")
    try:
        f = schema.GraphFile.model_validate({k: v for k, v in data.items() if k != "links"})
    except ValidationError as e:
        raise _Problem(_validation_message(e)) from None
    if not f.nodes:
        raise _Problem("empty graph: 'nodes' is empty")
    meta = f.metadata

    nodes, file_ids, styles, target_logit = [], [], set(), None
    for i, n in enumerate(f.nodes):
        node, style = _node_from_json(i, n, meta.prompt_tokens)
        nodes.append(node)
        file_ids.append(n.node_id)
        styles.add(style)
        if n.is_target_logit and target_logit is None:
            target_logit = node.node_id
    if {"cantor", "raw"} <= styles:
        raise _Problem("'feature' mixes Cantor-paired and raw transcoder indices")
    n_layers = _set_logit_layers(nodes, meta)
    _check_unique([n.node_id for n in nodes])

    src_ids, dst_ids, weights = _link_columns(data["links"])
    index, collisions = _file_index(file_ids, nodes)
    src = _lookup(src_ids, index, "source")
    dst = _lookup(dst_ids, index, "target")
    if collisions:
        _resolve_collisions(src, dst, src_ids, dst_ids, collisions, nodes)
    _check_no_duplicate_links(src, dst, nodes)

    transcoder_set = (meta.info.transcoder_set if meta.info and meta.info.transcoder_set is not None
                      else transcoder_set_from_scan(meta.scan))
    generator = dict(meta.info.generator or {}) if meta.info else {}
    if meta.generation_settings is not None:
        generator["generation_settings"] = meta.generation_settings
    extra = {"metadata": _unmodelled_metadata(data["metadata"])}
    if f.qParams is not None:
        extra["qParams"] = data["qParams"]
    if "legacy-error" in styles:
        extra["error_ids"] = LEGACY_ERROR_IDS
    if "raw" in styles:
        extra["feature_encoding"] = "raw"
    if target_logit is not None:
        extra["target_logit"] = target_logit
    if collisions:
        extra["id_collisions"] = {fid: [nodes[i].node_id for i in pair] for fid, pair in collisions.items()}
    graph = Graph(
        prompt=meta.prompt, prompt_tokens=list(meta.prompt_tokens),
        model=model_from_scan(meta.scan, transcoder_set), transcoder_set=transcoder_set,
        n_layers=n_layers, nodes=nodes, edge_source=src, edge_target=dst, edge_weight=weights,
        slug=meta.slug, node_threshold=meta.node_threshold,
        edge_threshold=meta.pruning_settings.edge_threshold if meta.pruning_settings else None,
        generator=generator, extra=extra,
    )
    check_values(graph)
    return graph


def _validation_message(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
    if err["type"] == "missing":
        problem = f"missing required field '{loc}'"
    else:
        problem = f"{loc}: {err['msg']} (got {err['input']!r:.60})"
    return problem + _more(e.error_count() - 1, "problem")


_NODE_ID = re.compile(r"(E|\d+)_(-?\d+)_(\d+)")   # layer_index_pos, E_token_pos, layer_token_pos


def _node_from_json(i: int, n: schema.Node, tokens: list[str]) -> tuple[Node, str]:
    """One file node -> (Node, style). style: 'cantor' | 'raw' | 'legacy-error' | ''."""
    def bad(problem: str) -> _Problem:
        return _Problem(f"node {i} ({n.node_id!r}): {problem}")

    kind = schema.FEATURE_TYPES.get(n.feature_type)
    if kind is None:
        raise bad(f"unknown feature_type {n.feature_type!r} (known: {', '.join(schema.FEATURE_TYPES)})")
    m = _NODE_ID.fullmatch(n.node_id)
    if m is None:
        raise bad("node_id is not '<layer>_<index>_<position>'")
    head, middle, pos = m[1], int(m[2]), int(m[3])
    layer = str(n.layer)
    if pos != n.ctx_idx:
        raise bad(f"ctx_idx {n.ctx_idx} disagrees with the node_id's position {pos}")
    label = n.clerp or ""
    style = ""

    if kind == "embedding":
        if head != "E" or layer != "E":
            raise bad("an embedding's node_id and layer start with 'E'")
        if not 0 <= pos < len(tokens):
            raise bad(f"position {pos} is outside prompt_tokens (length {len(tokens)})")
        if n.feature not in (None, pos):
            raise bad(f"an embedding's 'feature' is its position {pos}, not {n.feature}")
        node = Node(n.node_id, kind, EMBEDDING_LAYER, pos, token_id=middle, token=tokens[pos],
                    influence=n.influence, label=label)
        return node, style
    if not _is_int(layer) or int(layer) < 0:
        raise bad(f"layer {n.layer!r} is not a non-negative integer")
    layer_i = int(layer)
    if kind == "logit":
        if head != layer or n.feature not in (None, middle):
            raise bad("a logit's node_id is '<layer>_<token id>_<position>' and 'feature' its token id")
        token, label = _logit_token(label, n.token_prob)
        node = Node(n.node_id, kind, layer_i, pos, token_id=middle, token=token,
                    influence=n.influence, logit_prob=n.token_prob, label=label)
    elif kind == "error":
        if n.feature not in (None, -1):
            raise bad(f"an error node's 'feature' is -1, not {n.feature}")
        if middle != -1:  # circuit-tracer's "0_{layer}_{pos}"
            if head != "0" or middle != layer_i:
                raise bad(f"an error node's id is '{layer_i}_-1_{pos}' or '0_{layer_i}_{pos}'")
            style = "legacy-error"
        elif head != layer:
            raise bad(f"node_id layer {head} disagrees with layer {layer}")
        node = Node(f"{layer_i}_-1_{pos}", kind, layer_i, pos, influence=n.influence,
                    activation=n.activation, label=label)
    else:
        if head != layer or middle < 0:
            raise bad(f"a feature's node_id is '{layer}_<index>_<position>' with index >= 0")
        if n.feature is None:  # left out: the node id says it all (written back as Cantor)
            pass
        elif n.feature == cantor(layer_i, middle):
            style = "cantor" if n.feature != middle else ""
        elif n.feature == middle:
            style = "raw"
        else:
            raise bad(f"'feature' {n.feature} is neither Cantor({layer_i}, {middle}) = "
                      f"{cantor(layer_i, middle)} nor the raw index {middle}")
        node = Node(n.node_id, kind, layer_i, pos, feature=middle, activation=n.activation,
                    influence=n.influence, label=label)
    return node, style


def _is_int(s: str) -> bool:
    return s.isdigit() or (s[:1] == "-" and s[1:].isdigit())


def _logit_token(clerp: str, prob: float) -> tuple[str | None, str]:
    """(token text, label) from a logit's clerp 'Output " Austin" (p=0.396)'; label only if custom."""
    m = re.fullmatch(r'Output "(.*)" \(p=[-+0-9.eE]+\)', clerp, flags=re.S)
    token = m.group(1) if m else None
    return token, ("" if m and clerp == _logit_clerp(token, prob) else clerp)


def _set_logit_layers(nodes: list[Node], meta: schema.Metadata) -> int:
    """Logits sit at JSON layer n_layers + 1; ours at n_layers. Returns n_layers."""
    logit_layers = {n.layer for n in nodes if n.kind == "logit"}
    if len(logit_layers) > 1:
        raise _Problem(f"logit nodes on several layers {sorted(logit_layers)}")
    if logit_layers:
        n_layers = logit_layers.pop() - 1
    else:  # a subgraph without logits: our writer leaves a hint, else the deepest layer seen
        hint = (meta.model_extra or {}).get("n_layers")
        n_layers = hint if isinstance(hint, int) else 1 + max(
            (n.layer for n in nodes if n.kind in ("feature", "error")), default=-1)
    for n in nodes:
        if n.kind == "logit":
            n.layer = n_layers
        elif n.kind != "embedding" and n.layer >= n_layers:
            raise _Problem(f"node {n.node_id!r}: layer {n.layer} is not below the logit layer "
                           f"{n_layers + 1} (n_layers = {n_layers})")
    return n_layers


def _check_unique(ids: list[str]) -> None:
    if len(set(ids)) != len(ids):
        seen = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise _Problem(f"duplicate node id {dup!r}")


def _link_columns(links) -> tuple[list, list, np.ndarray]:
    """The links as columns, type-checked in bulk (no per-link objects)."""
    if not isinstance(links, list):
        raise _Problem(f"'links' is a {type(links).__name__}, not a list")
    try:
        src = [link["source"] for link in links]
        dst = [link["target"] for link in links]
        w = [link["weight"] for link in links]
    except (KeyError, TypeError):
        k, link = next((k, x) for k, x in enumerate(links)
                       if not isinstance(x, dict) or not {"source", "target", "weight"} <= x.keys())
        raise _Problem(f"link {k} is not an object with 'source', 'target' and 'weight' "
                       f"(got {link!r:.80})") from None
    for col, name, ok in ((src, "source", (str,)), (dst, "target", (str,)), (w, "weight", (int, float))):
        if not {type(x) for x in col} <= set(ok):
            k = next(k for k, x in enumerate(col) if type(x) not in ok)
            want = "a string" if ok == (str,) else "a number"
            raise _Problem(f"link {k}: '{name}' should be {want} (got {col[k]!r:.60})")
    weights = np.asarray(w, dtype=np.float64)
    with np.errstate(over="ignore"):
        finite = np.isfinite(weights.astype(np.float32))
    if not finite.all():
        k = int(np.flatnonzero(~finite)[0])
        what = (f"a weight {w[k]} beyond float32's range (±3.4e38)" if np.isfinite(weights[k])
                else f"a non-finite weight {w[k]}")
        raise _Problem(f"link {k} ({src[k]} -> {dst[k]}) has {what}"
                       + _more(int((~finite).sum()) - 1, "such link"))
    return src, dst, weights.astype(np.float32)


def _file_index(file_ids: list[str], nodes: list[Node]) -> tuple[dict, dict]:
    """node id as written in the file -> node index, and the 0.5.0 collisions: id -> (feature, error)."""
    where = defaultdict(list)
    for i, fid in enumerate(file_ids):
        where[fid].append(i)
    index, collisions = {}, {}
    for fid, idx in where.items():
        if len(idx) == 1:
            index[fid] = idx[0]
        else:  # canonical ids are unique, so this is a layer-0 feature and a "0_{l}_{p}" error
            pair = sorted(idx, key=lambda i: nodes[i].kind != "feature")
            assert [nodes[i].kind for i in pair] == ["feature", "error"], fid
            collisions[fid] = tuple(pair)
            index[fid] = -2
    return index, collisions


def _lookup(ids: list[str], index: dict, end: str) -> np.ndarray:
    out = np.array([index.get(x, -1) for x in ids], dtype=np.int64)
    if (out == -1).any():
        k = int(np.flatnonzero(out == -1)[0])
        raise _Problem(f"link {k}: {end} {ids[k]!r} is not a node of this graph"
                       + _more(int((out == -1).sum()) - 1, "such link"))
    return out


def _resolve_collisions(src, dst, src_ids, dst_ids, collisions, nodes) -> None:
    """Attribute every link naming a colliding "0_{l}_{p}" id to its feature or to its error node.

    Evidence, strongest first: (1) errors have no incoming edges, so as a target the id is the
    feature; (2) one target with links from both: circuit-tracer writes links sorted by (target,
    source) in node order, and the feature comes first; (3) a single link: in that order its source
    lies between the known sources before and after it for the same target; (4) an error at layer l
    only reaches layers > l. Links that stay undecided (only in files not in circuit-tracer's order)
    go to the error node, or feature first when both are present, with a warning; none is dropped.
    """
    for k in np.flatnonzero(dst == -2):
        dst[k] = collisions[dst_ids[k]][0]
    ordered = _is_ct_ordered(src, dst)
    groups = defaultdict(list)           # (target, colliding id) -> positions in the links
    for k in np.flatnonzero(src == -2).tolist():
        groups[int(dst[k]), src_ids[k]].append(k)
    undecided = 0
    certain = src >= 0                   # a guess is no evidence for the next decision
    for (t, fid), ks in groups.items():
        feat, err = collisions[fid]
        if len(ks) > 2:
            raise _Problem(f"{len(ks)} links {fid} -> {nodes[t].node_id}, at most 2 can be told apart")
        if len(ks) == 2:
            src[ks[0]], src[ks[1]] = feat, err
            undecided += 0 if ordered else 2
            certain[ks] = ordered
            continue
        k = ks[0]
        candidates = [feat, err]
        if ordered:
            same = np.flatnonzero((dst == t) & certain)
            before = src[same[same < k]].max(initial=-1)
            after = src[same[same > k]].min(initial=len(nodes))
            candidates = [c for c in candidates if before < c < after] or candidates
        if len(candidates) == 2 and nodes[t].layer <= nodes[err].layer:
            candidates = [feat]
        undecided += len(candidates) == 2
        certain[k] = len(candidates) == 1
        src[k] = candidates[-1]
    if undecided:
        warnings.warn(f"{undecided} links from colliding node ids could not be attributed with certainty "
                      "(links not in circuit-tracer's order)", stacklevel=3)


def _is_ct_ordered(src: np.ndarray, dst: np.ndarray) -> bool:
    """Are the (unambiguous) links sorted by (target, source), as circuit-tracer writes them?"""
    known = src >= 0
    key = dst[known] * (len(src) + 2 + int(src.max(initial=0))) + src[known]
    return bool((np.diff(dst) >= 0).all() and (np.diff(key) > 0).all())


def _check_no_duplicate_links(src: np.ndarray, dst: np.ndarray, nodes: list[Node]) -> None:
    key = src * len(nodes) + dst
    uniq, first, counts = np.unique(key, return_index=True, return_counts=True)
    if (counts > 1).any():
        k = int(first[np.argmax(counts > 1)])
        raise _Problem(f"duplicate link {nodes[src[k]].node_id} -> {nodes[dst[k]].node_id}")


# Metadata fields that Graph models; everything else is kept verbatim in extra["metadata"].
_MODELLED = {"slug", "prompt_tokens", "prompt", "node_threshold", "generation_settings", "pruning_settings"}


def _unmodelled_metadata(meta: dict) -> dict:
    kept = {k: v for k, v in meta.items() if k not in _MODELLED}
    if isinstance(kept.get("info"), dict):
        kept["info"] = {k: v for k, v in kept["info"].items() if k not in ("transcoder_set", "generator")}
    if isinstance(meta.get("pruning_settings"), dict) and set(meta["pruning_settings"]) - {"node_threshold", "edge_threshold"}:
        kept["pruning_settings"] = meta["pruning_settings"]
    return kept
