"""Profiles of the top features: where they occur, what they promote, and the store's view of them.

Each profile is a flat dict of short values (the report prints it as a two-column table). It merges:
  - the audit's own graphs: graphs per prompt set containing the feature, mean max activation;
  - the model: the tokens the feature's decoder promotes most through the unembedding;
  - the query library's `feature-profile`, when the store holds graphs and that query exists.
"""
from __future__ import annotations

import logging

from circuit_atlas.audit.summary import SETS, GraphSummary

log = logging.getLogger("circuit_atlas.audit")


def profiles(keys: list[str], summaries: list[GraphSummary], *, store=None, model=None) -> dict[str, dict]:
    out = {}
    for key in keys:
        p: dict = {}
        for name in SETS:
            group = [s for s in summaries if s.set == name]
            if group:
                hits = [s.max_activation[key] for s in group if key in s.max_activation]
                p[f"graphs_{name}"] = f"{len(hits)}/{len(group)}"
                p[f"max_act_{name}"] = max(hits) if hits else 0.0
        if model is not None:
            from circuit_atlas.audit.activations import top_output_tokens
            p["promotes"] = ", ".join(repr(t) for t in top_output_tokens(model, key, k=8))
        if store is not None:
            p.update(_library_profile(store, key))
        out[key] = p
    return out


def _library_profile(store, key: str) -> dict:
    """The query library's feature-profile (across every stored graph), as short strings; {} without it."""
    try:
        from circuit_atlas import queries
    except ImportError:  # the queries package is optional for audits
        return {}
    try:
        row = queries.run(store, "feature-profile", fkey=key, top=5)[0]
    except queries.QueryError as e:  # the feature is not in the store (e.g. a --no-store trace)
        log.debug("feature-profile %s: %s", key, e)
        return {}
    activation = row.get("activation") or {}
    out = {"store_graphs": row.get("n_graphs"), "store_occurrences": row.get("n_occurrences"),
           "store_activation_median": activation.get("median"), "store_activation_max": activation.get("max")}
    for side in ("upstream", "downstream"):
        out[f"store_{side}"] = ", ".join(f"{_neighbour(r)} ({r['total_weight']:+.3g})" for r in row.get(side, []))
    return out


def _neighbour(row: dict) -> str:
    """A neighbour from feature-upstream/-downstream: a feature key, a token, or an error node's layer."""
    if row.get("fkey"):
        return "/".join(row["fkey"].rsplit("/", 2)[-2:])
    if row.get("token") is not None:
        return f"{row['kind']} {row['token']!r}"
    return f"{row['kind']}@{row['layer']}"


def store_labels(store, keys: set[str]) -> dict[str, str]:
    """Labels of (:Feature) rows in the store for these keys (non-empty only)."""
    from circuit_atlas.audit import cypher
    rows = store.query(cypher.FEATURE_LABELS, {"keys": sorted(keys)})
    return {r["key"]: r["label"] for r in rows if r["label"]}
