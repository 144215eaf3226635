"""Audit findings in the graph store: (:Audit) nodes linked to the features they flagged."""
from __future__ import annotations

from pathlib import Path

from circuit_atlas.audit import cypher
from circuit_atlas.audit.analyses import parse_key
from circuit_atlas.audit.result import AuditResult


def save_audit(store, result: AuditResult, report_dir: str, n_flagged: int,
               graph_sets: dict[str, str] | None = None) -> int:
    """Store the audit and FLAGGED links to its top `n_flagged` features; returns how many were flagged.

    `graph_sets` (graph id -> prompt set) adds (:Audit)-[:AUDITED {set}]->(:Graph) for stored graphs.
    The report directory is stored absolute, so `audit report ID` finds it from any directory.
    """
    report_dir = str(Path(report_dir).absolute())
    store.execute(cypher.CREATE_AUDIT, dict(
        id=result.id, created=result.created, model=result.model, transcoder_set=result.transcoder_set,
        target_tokens=" | ".join(result.target_tokens), report=str(report_dir),
        n_suspect=result.n_graphs.get("suspect", 0), n_control=result.n_graphs.get("control", 0),
        n_generic=result.n_graphs.get("generic", 0)))
    rows = []
    for r in result.ranked[:n_flagged]:
        tset, layer, feature = parse_key(r["key"])
        rows.append(dict(key=r["key"], transcoder_set=tset, layer=layer, feature=feature, label=r.get("label") or "",
                         rank=int(r["rank"]), score=float(r["score"]), analysis="+".join(r["analyses"])))
    if rows:
        store.execute(cypher.FLAG_FEATURES, dict(id=result.id, rows=rows))
    if graph_sets:
        store.execute(cypher.LINK_GRAPHS, dict(id=result.id, rows=[dict(gid=g, set=s) for g, s in graph_sets.items()]))
    return len(rows)


def audits_flagging(store, feature_key: str) -> list[dict]:
    """Which audits flagged a feature (newest first)."""
    return store.query(cypher.AUDITS_FLAGGING, dict(key=feature_key))


def flagged_by(store, audit_id: str) -> list[dict]:
    """The features an audit flagged, best first."""
    return store.query(cypher.FLAGGED_BY, dict(id=audit_id))


def get_audit(store, audit_id: str) -> dict | None:
    rows = store.query(cypher.GET_AUDIT, dict(id=audit_id))
    return rows[0] if rows else None


def list_audits(store) -> list[dict]:
    return store.query(cypher.LIST_AUDITS)


def audited_graphs(store, audit_id: str) -> list[dict]:
    """The stored graphs an audit analysed: {gid, set, prompt}."""
    return store.query(cypher.AUDITED_GRAPHS, dict(id=audit_id))
