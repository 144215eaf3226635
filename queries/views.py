"""One stored graph for people: a summary to read (`summary`) and an export for the viewers (`export_view`).

The export is circuit-tracer / Neuronpedia JSON with the viewer state a researcher would set by hand:
`qParams.pinnedIds` (the nodes of a subgraph) and `qParams.supernodes` ([name, node_id, ...] groups),
both in the file's node ids. Feature nodes without a label of their own (clerp) get the label the
feature shows in the store (`labels auto` / `labels import`), so the viewer names them.
"""
from __future__ import annotations

from circuit_atlas.queries.analyses import labels_of
from circuit_atlas.queries.registry import QueryError, current_timeout, run

FEATURE_COLUMNS = ("fkey", "f1", "f2", "f3")        # row columns that name a global feature


def select_graph(store, selector: str) -> str:
    """The id of the one graph `selector` (a graph id or slug) names."""
    gids = [r["gid"] for r in run(store, "_graphs-selected", selector=selector)]
    if len(gids) == 1:
        return gids[0]
    if not gids:
        raise QueryError(f"no graph with id or slug {selector!r}; list them with: "
                         "circuit-atlas query search-graphs -p limit=20")
    raise QueryError(f"{selector!r} names {len(gids)} graphs (a tag, or a slug used twice); give one id: "
                     + ", ".join(gids[:5]) + (" ..." if len(gids) > 5 else ""))


def select_graphs(store, selectors=(), cypher: str | None = None, params: dict | None = None) -> list[str]:
    """The ids of the graphs that `selectors` (graph ids, slugs, tags "key=value") and `cypher` (a
    read-only query whose rows have a `gid` or `id` column, or one column) name, sorted, no repeats.
    A selector that names no graph is an error: nothing is done on a typo."""
    gids: set[str] = set()
    for selector in selectors:
        found = [r["gid"] for r in run(store, "_graphs-selected", selector=selector)]
        if not found:
            raise QueryError(f"{selector!r} names no graph (give a graph id, a slug, or a tag key=value; "
                             "list them with: circuit-atlas query search-graphs)")
        gids.update(found)
    if cypher is not None:
        rows = store.query(cypher, params or {}, max_rows=10_000_000, timeout_s=current_timeout())
        column = next((c for c in ("gid", "id") if rows and c in rows[0]), None)
        if rows and column is None and len(rows[0]) != 1:
            raise QueryError(f"the query returns columns {', '.join(rows[0])}: return the graph ids as `gid`")
        ids = [r[column] if column else next(iter(r.values())) for r in rows]
        stored = store.existing_graphs(ids) if ids else set()
        unknown = [i for i in ids if i not in stored]
        if unknown:
            raise QueryError(f"the query returns {len(unknown)} values that are not graph ids, e.g. {unknown[0]!r}")
        gids.update(ids)
    return sorted(gids)


def _shown_labels(store, graph) -> dict[str, str]:
    keys = sorted({graph.feature_key(n) for n in graph.nodes} - {None})
    return labels_of(store, keys)


def summary(store, selector: str, top: int = 10) -> dict:
    """The prompt, its graph's size and tags, its top logits, and its most influential features with labels."""
    graph = store.get_graph(select_graph(store, selector))
    shown = _shown_labels(store, graph)
    logits = sorted((n for n in graph.nodes if n.kind == "logit"), key=lambda n: -(n.logit_prob or 0.0))
    features = sorted((n for n in graph.nodes if n.kind == "feature"),
                      key=lambda n: (n.influence if n.influence is not None else 1.0, n.node_id))
    token_at = lambda pos: graph.prompt_tokens[pos] if 0 <= pos < len(graph.prompt_tokens) else None
    return {
        "gid": graph.id, "slug": graph.slug, "prompt": graph.prompt, "model": graph.model,
        "transcoder_set": graph.transcoder_set, "n_nodes": len(graph.nodes), "n_edges": graph.n_edges,
        "tags": [f"{k}={v}" for k, v in sorted(graph.tags.items())],
        "top_logits": [{"token": n.token, "prob": n.logit_prob} for n in logits[:top]],
        "top_features": [{"node_id": n.node_id, "layer": n.layer, "pos": n.pos, "at_token": token_at(n.pos),
                          "importance": None if n.influence is None else 1.0 - n.influence,
                          "activation": n.activation, "label": n.label or shown.get(graph.feature_key(n), "")}
                         for n in features[:top]],
    }


def export_view(store, selector: str, node_ids=(), query: str | None = None, params: dict | None = None,
                supernodes: bool = False):
    """The stored graph with pinned nodes and supernodes in qParams, ready for `write_graph_json`.

    Pinned: `node_ids`, plus the nodes of this graph that the rows of named `query` mention (features by
    key, `start_token` embeddings, `end_token` logits; a row with `members` becomes a supernode).
    `supernodes`: also every stored supernode with members in this graph.
    """
    from circuit_atlas.ingest.write import file_node_ids

    graph = store.get_graph(select_graph(store, selector))
    by_id = {n.node_id: n for n in graph.nodes}
    unknown = [i for i in node_ids if i not in by_id]
    if unknown:
        raise QueryError(f"graph {graph.slug or graph.id} has no node {unknown[0]!r}; node ids look like "
                         f"{', '.join(list(by_id)[:3])} (see `circuit-atlas graph show`)")
    occurrences: dict[str, list[str]] = {}
    for n in graph.nodes:
        if (key := graph.feature_key(n)) is not None:
            occurrences.setdefault(key, []).append(n.node_id)
    pinned, groups = list(node_ids), []
    if query is not None:
        rows = run(store, query, params or {})
        for row in rows:
            pinned += [i for c in FEATURE_COLUMNS if row.get(c) for i in occurrences.get(row[c], [])]
            pinned += [n.node_id for n in graph.nodes if n.kind == "embedding" and "start_token" in row
                       and n.token == row["start_token"]]
            pinned += [n.node_id for n in graph.nodes if n.kind == "logit" and "end_token" in row
                       and n.token == row["end_token"]]
            if row.get("members"):
                groups.append([row.get("name") or row.get("id") or "group",
                               *(i for m in row["members"] for i in occurrences.get(m, []))])
        if not pinned and not any(len(g) > 1 for g in groups):
            raise QueryError(f"the {len(rows)} rows of {query} name no node of graph {graph.slug or graph.id}")
    if supernodes:
        for row in run(store, "supernodes", source="", limit=100_000):
            groups.append([row["name"], *(i for m in row["members"] for i in occurrences.get(m, []))])
    shown = _shown_labels(store, graph)
    for n in graph.nodes:
        if n.kind == "feature" and not n.label:
            n.label = shown.get(graph.feature_key(n), "")
    file_id = dict(zip((n.node_id for n in graph.nodes), file_node_ids(graph)))
    pinned = list(dict.fromkeys(pinned))
    q = dict(graph.extra.get("qParams") or {"pinnedIds": [], "supernodes": [], "linkType": "both",
                                            "clickedId": "", "sg_pos": ""})
    q["pinnedIds"] = list(dict.fromkeys([*q.get("pinnedIds", []), *(file_id[i] for i in pinned)]))
    q["supernodes"] = [*q.get("supernodes", []),
                       *([g[0], *dict.fromkeys(file_id[i] for i in g[1:])] for g in groups if len(g) > 1)]
    graph.extra["qParams"] = q
    return graph
