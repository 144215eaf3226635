"""Profiles of the top features: where they occur, what they promote, and the store's view of them.

Each profile is a flat dict of short values (the report prints it as a two-column table). It merges:
  - the audit's own graphs: graphs per prompt set containing the feature, mean max activation;
  - the model: the tokens the feature's decoder promotes most through the unembedding;
  - the query library's `feature-profile`, when the store holds graphs and that query exists.
"""
from __future__ import annotations

import logging

from audit.summary import SETS, GraphSummary

log = logging.getLogger("circuit_atlas.audit")


def profiles(keys: list[str], summaries: list[GraphSummary], result, *, store=None, model=None) -> dict[str, dict]:
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
            from audit.activations import top_output_tokens
            p["promotes"] = ", ".join(repr(t) for t in top_output_tokens(model, key, k=8))
        if store is not None:
            p.update(_library_profile(store, key))
        out[key] = p
    return out


def _library_profile(store, key: str) -> dict:
    """The queries library's feature-profile, flattened to short strings; {} when it is not available."""
    try:
        import queries
        rows = queries.run(store, "feature-profile", {"key": key})
    except Exception as e:  # the library is optional here: a missing query must not fail the audit
        log.debug("feature-profile unavailable for %s: %s", key, e)
        return {}
    if not rows:
        return {}
    row = rows[0] if len(rows) == 1 else {"rows": len(rows), **rows[0]}
    return {f"store_{k}": (v if isinstance(v, (int, float, str)) or v is None else str(v)[:200])
            for k, v in row.items()}


def store_labels(store, keys: set[str]) -> dict[str, str]:
    """Labels of (:Feature) rows in the store for these keys (non-empty only)."""
    from audit import cypher
    rows = store.query(cypher.FEATURE_LABELS, {"keys": sorted(keys)})
    return {r["key"]: r["label"] for r in rows if r["label"]}
